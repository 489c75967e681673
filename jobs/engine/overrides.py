"""Run-time overrides of a queue's concurrency and rate limit, set from the console, read by running workers.

The declaration (settings.JOBS_QUEUES, jobs.engine.conf) stays the default; an override is a column of
the queue's QueueState row (null: as declared), so it survives restarts and reaches every machine.
Workers read all overrides in one query when they start and on each heartbeat (`current()`): a threads worker caps
the queue's running jobs at the new concurrency (up to its own thread count); a supervising processes
worker (`--processes N`) starts or stops processes to match (`processes_for`); every worker's rate gate
applies the new limit to the next job it starts.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from jobs.access import Viewer, account
from jobs.engine import audit, conf
from jobs.exceptions import InvalidInput
from jobs.models import QueueState

#: How long a worker trusts its last read of the overrides.
TTL = 2.0
MAX_CONCURRENCY = 1000


@dataclass(frozen=True)
class Effective:
    """A queue's concurrency and rate limit as workers apply them now, and which of them are overridden."""

    concurrency: int
    rate_limit: conf.RateLimit | None
    concurrency_overridden: bool = False
    rate_limit_overridden: bool = False


_lock = threading.Lock()
_cache: tuple[float, dict[str, tuple[int | None, dict[str, Any] | None]]] = (0.0, {})


def current(*, max_age: float | None = None) -> dict[str, tuple[int | None, dict[str, Any] | None]]:
    """queue -> (concurrency, rate limit) overrides: read again when the last read is older than `max_age`
    seconds (0: now); None takes the last read (the first call reads). A worker reads on its heartbeat (its own
    connection), so the hot path never queries for them."""
    global _cache
    with _lock:
        read_at, values = _cache
        if not read_at or (max_age is not None and time.monotonic() - read_at >= max_age):
            rows = QueueState.objects.filter(concurrency__isnull=False) | QueueState.objects.filter(rate_limit__isnull=False)
            values = {name: (c, r) for name, c, r in rows.values_list("name", "concurrency", "rate_limit")}
            _cache = (time.monotonic(), values)
        return values


def effective(queue: str, *, max_age: float | None = None) -> Effective:
    """The queue's declared settings with its overrides applied (`max_age` as current() reads it)."""
    declared = conf.get_queue(queue)
    concurrency, rate = current(max_age=max_age).get(declared.name, (None, None))
    return Effective(
        concurrency=declared.concurrency if concurrency is None else concurrency,
        rate_limit=declared.rate_limit if rate is None else _rate(declared.name, rate),
        concurrency_overridden=concurrency is not None,
        rate_limit_overridden=rate is not None,
    )


def processes_for(queues: list[str], *, started_with: int) -> int:
    """How many processes a supervising worker of `queues` runs now: what it started with, unless a queue's
    concurrency is overridden; then the largest concurrency of its queues as applied (a process serves them all)."""
    current(max_age=0)
    applied = [effective(q) for q in queues]
    if not any(e.concurrency_overridden for e in applied):
        return started_with
    return max(e.concurrency for e in applied)


def _rate(queue: str, raw: dict[str, Any]) -> conf.RateLimit | None:
    """A stored override; {"max": 0} means "no limit" (an override may lift a declared limit)."""
    if not raw.get("max"):
        return None
    return conf.parse_rate_limit(queue, raw)


def save(queue: str, *, concurrency: int | None, rate_limit: dict[str, Any] | None, actor: Viewer | None, source: str) -> Effective:
    """Set (or with None, clear) a queue's overrides, audited with what they were and what they are."""
    name = conf.get_queue(queue).name
    errors: dict[str, list[str]] = {}
    if concurrency is not None and not (isinstance(concurrency, int) and 1 <= concurrency <= MAX_CONCURRENCY):
        errors["concurrency"] = [f"must be a whole number from 1 to {MAX_CONCURRENCY}"]
    if rate_limit is not None:
        try:
            if not isinstance(rate_limit, dict) or set(rate_limit) != {"max", "duration"}:
                raise ValueError('must be {"max": N, "duration": seconds}, with max 0 for no limit')
            if rate_limit["max"] != 0:
                conf.parse_rate_limit(name, rate_limit)
        except ValueError as exc:
            errors["rate_limit"] = [str(exc)]
    if errors:
        raise InvalidInput("invalid queue override", extra=errors)
    with transaction.atomic():
        state, _ = QueueState.objects.select_for_update().get_or_create(name=name)
        before = {"concurrency": state.concurrency, "rate_limit": state.rate_limit}
        state.concurrency, state.rate_limit, state.changed_by = concurrency, rate_limit, account(actor)
        state.save(update_fields=["concurrency", "rate_limit", "changed_by", "changed_at"])
        after = {"concurrency": concurrency, "rate_limit": rate_limit}
        audit.record(actor=actor, action="override", queue=name, detail={"before": before, "after": after}, source=source)
    return effective(name, max_age=0)
