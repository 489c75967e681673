"""A queue's rate limit across all its workers, kept in Redis by the `limits` library (a moving window)."""
from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings

from jobs.engine import overrides

log = logging.getLogger(__name__)


class RateGate:
    """Waits until a queue's rate limit (across all its workers, in Redis) lets one more job start."""

    def __init__(self, who: str) -> None:
        self.who = who
        self._limiter: Any = None

    def wait(self, queue: str) -> None:
        rate = overrides.effective(queue).rate_limit  # as declared, or as the console overrode it
        if rate is None:
            return
        from limits import RateLimitItemPerSecond
        from limits.storage import RedisStorage
        from limits.strategies import MovingWindowRateLimiter

        if self._limiter is None:
            self._limiter = MovingWindowRateLimiter(RedisStorage(settings.REDIS_URL))
        item = RateLimitItemPerSecond(rate.max, max(1, int(rate.duration)))
        try:
            while not self._limiter.hit(item, "jobs", queue):
                reset = self._limiter.get_window_stats(item, "jobs", queue).reset_time
                time.sleep(min(max(reset - time.time(), 0.01), 1.0))
        except Exception:
            log.warning("worker %s: rate limit of %s not checked, Redis unreachable", self.who, queue)
