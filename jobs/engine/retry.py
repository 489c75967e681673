"""Retry policy as a pure function: given the attempt and the error, decide and say how long to wait."""
from __future__ import annotations

from dataclasses import dataclass

from jobs.exceptions import ErrorKind


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: the n-th retry waits delay * factor**(n-1) seconds, capped."""

    delay: float = 2.0
    factor: float = 2.0
    max_delay: float = 3600.0

    def seconds(self, retry_number: int) -> float:
        if retry_number < 1:
            raise ValueError("retry_number starts at 1")
        return min(self.delay * self.factor ** (retry_number - 1), self.max_delay)


@dataclass(frozen=True)
class Decision:
    retry: bool
    delay: float = 0.0
    reason: str = ""


def decide(*, attempts_made: int, max_attempts: int, kind: ErrorKind, retryable: bool, backoff: Backoff, at_least: float | None = None) -> Decision:
    """What to do after attempt number `attempts_made` (1-based) failed; `at_least` (a Retry-After) lengthens the wait up to the cap."""
    if not retryable:
        return Decision(retry=False, reason=f"{kind.value} errors are not retried")
    if attempts_made >= max_attempts:
        return Decision(retry=False, reason=f"attempts exhausted ({attempts_made}/{max_attempts})")
    delay = backoff.seconds(attempts_made)
    if at_least is not None and at_least > delay:
        delay = min(at_least, backoff.max_delay)
    return Decision(retry=True, delay=delay)
