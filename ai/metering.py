"""Per-key limits of `/v1`: requests per minute (the `limits` library's moving window on Redis) and monthly tokens."""
from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone

from django.conf import settings
from django.db.models import Sum
from limits import RateLimitItemPerMinute
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from ai.exceptions import QuotaExhausted, RateLimited
from ai.models import AiJob, KeyPolicy, UsageDay
from jobs.models import ApiKey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    """Where a key stands in its current window; `headers()` are the X-RateLimit-* of every answer."""

    limit: int
    remaining: int
    reset: float

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining), "X-RateLimit-Reset": str(math.ceil(self.reset))}


@functools.cache
def _limiter() -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(RedisStorage(settings.REDIS_URL))


def policy(key: ApiKey) -> KeyPolicy:
    """The key's policy row, unsaved with empty fields when it has none."""
    try:
        return key.ai_policy
    except KeyPolicy.DoesNotExist:
        return KeyPolicy(api_key=key)


def hit(key: ApiKey) -> Window | None:
    """Count one request of `key`; RateLimited (429, Retry-After and X-RateLimit-*) when over its limit.

    With Redis unreachable the request is let through unmetered (None; logged): the limiter guards
    capacity, and refusing every call while it is down would be the outage it exists to prevent.
    """
    mine = policy(key).requests_per_minute
    per_minute = mine if mine is not None else settings.AI_RATE_LIMIT_PER_MINUTE
    item = RateLimitItemPerMinute(per_minute)
    try:
        allowed = _limiter().hit(item, "ai", str(key.pk))
        stats = _limiter().get_window_stats(item, "ai", str(key.pk))
    except RedisError as exc:
        log.warning("rate limit of API key %s not checked, Redis unreachable: %s", key.pk, exc)
        return None
    window = Window(limit=per_minute, remaining=max(0, stats.remaining), reset=stats.reset_time)
    if not allowed:
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            f"rate limit of {per_minute} requests per minute reached for this key; retry in {wait} s",
            extra={"limit": per_minute, "retryAfter": wait}, headers={"Retry-After": str(wait), **window.headers()},
        )
    return window


def month_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(dt_timezone.utc)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def tokens_this_month(key: ApiKey) -> int:
    """The tokens of the key's succeeded jobs this month (UTC), from the rollups."""
    return int(UsageDay.objects.filter(api_key=key, day__gte=month_start().date()).aggregate(n=Sum("tokens"))["n"] or 0)


def tokens_reserved(key: ApiKey) -> int:
    """The input tokens of the key's jobs of this month that have not ended yet: already promised to them."""
    pending = AiJob.objects.filter(api_key=key, created_at__gte=month_start(), status__in=[AiJob.Status.QUEUED, AiJob.Status.PROCESSING])
    return int(pending.aggregate(n=Sum("tokens_in"))["n"] or 0)


def quota(key: ApiKey) -> int:
    """The key's monthly token quota: its policy's, else AI_MONTHLY_TOKEN_QUOTA; 0 means none."""
    mine = policy(key).monthly_token_quota
    return int(mine if mine is not None else settings.AI_MONTHLY_TOKEN_QUOTA)


def check_quota(key: ApiKey, tokens: int) -> None:
    """QuotaExhausted (402) if `tokens` more would pass the key's monthly quota, counting used and reserved tokens.

    Call it inside the transaction that then stores the job: it locks the key's row, so two
    requests of one key cannot both pass on the same remainder.
    """
    limit = quota(key)
    if not limit:
        return
    list(ApiKey.objects.select_for_update().filter(pk=key.pk).values_list("pk"))
    used = tokens_this_month(key) + tokens_reserved(key)
    if used + tokens > limit:
        raise QuotaExhausted(
            f"monthly token quota of {limit} reached for this key ({used} used or reserved; this job needs {tokens} input tokens)",
            extra={"quota": limit, "used": used, "needed": tokens, "resetsAt": _next_month().isoformat().replace("+00:00", "Z")},
        )


def _next_month() -> datetime:
    start = month_start()
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
