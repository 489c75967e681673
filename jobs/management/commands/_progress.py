"""A small progress bar for long management commands (stdout only, no dependency)."""
from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    """Prints `label [####----] done/total` on one line, at most 10 times a second."""

    def __init__(self, total: int, label: str, out: Any = None, width: int = 30) -> None:
        self.total, self.label, self.out, self.width = max(total, 0), label, out or sys.stdout, width
        self.done = 0
        self._shown = 0.0

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._shown >= 0.1 or self.done >= self.total:
            self._shown = now
            self.show()

    def show(self) -> None:
        frac = self.done / self.total if self.total else 1.0
        filled = int(frac * self.width)
        self.out.write(f"\r{self.label} [{'#' * filled}{'-' * (self.width - filled)}] {self.done}/{self.total}")
        self.out.flush()

    def finish(self) -> None:
        self.show()
        self.out.write("\n")
