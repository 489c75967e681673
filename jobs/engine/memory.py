"""How much memory this process holds now: read on each worker heartbeat, so it must stay cheap."""
from __future__ import annotations

import os
import resource
import sys

try:
    PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
except (AttributeError, ValueError, OSError):  # not a POSIX system that names it
    PAGE_SIZE = 4096


def rss_bytes() -> int | None:
    """The process's resident set size in bytes: now from /proc/self/statm on Linux (one small read, no
    extra dependency), else the peak that getrusage reports (kilobytes on Linux, bytes on macOS); None if neither answers."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE_SIZE
    except (OSError, ValueError, IndexError):
        pass
    try:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except (OSError, ValueError):
        return None
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024
