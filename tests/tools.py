"""System tools that some tests need (chromium, ffmpeg, espeak-ng): skip locally when one is missing, fail under CI.

CI installs every tool (.ci/run), so there a missing tool is a broken machine, not a reason to
pass with fewer tests: with CI=true `require()` fails the test. A local run skips it, and the
session summary lists what was skipped for which missing tool (tests/conftest.py).
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

#: Debian package that provides each command.
PACKAGES = {"chromium": "chromium", "ffmpeg": "ffmpeg", "espeak-ng": "espeak-ng", "dovecot": "dovecot-imapd"}
#: tool -> how many tests skipped for want of it, this session.
SKIPPED: dict[str, int] = {}


def in_ci() -> bool:
    """Whether this run is CI's (CI=true), where every test must run."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(*tools: str) -> list[str]:
    """The tools of `tools` that are not on PATH."""
    return [t for t in tools if shutil.which(t) is None]


def require(*tools: str, why: str = "") -> None:
    """Skip the calling test (fail it under CI=true) unless every tool is on PATH."""
    absent = missing(*tools)
    if not absent:
        return
    install = f"apt-get install -y {' '.join(PACKAGES.get(t, t) for t in absent)}"
    message = f"{' and '.join(absent)} not installed ({install}){': ' + why if why else ''}"
    if in_ci():
        pytest.fail(f"{message}; CI=true runs every test, so a missing tool fails the run", pytrace=False)
    for tool in absent:
        SKIPPED[tool] = SKIPPED.get(tool, 0) + 1
    pytest.skip(message)


def stop(proc: subprocess.Popen, *, grace: float = 10.0) -> None:
    """Stop a server a test started: SIGTERM, then SIGKILL after `grace` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
