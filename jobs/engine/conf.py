"""Queue definitions from settings.JOBS_QUEUES, validated into frozen dataclasses."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

from jobs.engine import priority as priorities
from jobs.engine.retry import Backoff
from jobs.exceptions import NotFound


DEFAULT_PRIORITY = priorities.DEFAULT


@dataclass(frozen=True)
class Retention:
    """Keep at most `count` jobs of a final status, none older than `age` seconds (None: no limit)."""

    count: int | None = None
    age: float | None = None


@dataclass(frozen=True)
class RateLimit:
    """At most `max` jobs start per `duration` seconds, across all workers of the queue."""

    max: int
    duration: float


@dataclass(frozen=True)
class QueueConfig:
    name: str
    attempts: int = 3
    backoff: Backoff = Backoff()
    timeout: float = 600.0
    retention: dict[str, Retention] = field(default_factory=dict)
    rate_limit: RateLimit | None = None
    concurrency: int = 1
    group: str = "default"
    #: "processes": the group's worker runs `concurrency` processes, a job each; "threads": one
    #: process runs up to `concurrency` of this queue's jobs at once (I/O-bound work).
    mode: str = "processes"
    #: Fair scheduling (both off by default): a waiting job climbs one priority level per `aging`
    #: seconds waited; at most `per_owner_limit` jobs of one owner run at once in this queue.
    aging: float | None = None
    per_owner_limit: int | None = None
    #: The priority of a job enqueued on this queue without one (an integer or a level name when declared).
    priority: int = DEFAULT_PRIORITY

    @property
    def fair(self) -> bool:
        """Whether the dequeue must look past the head of the highest list (aging, or a per-owner limit)."""
        return self.aging is not None or self.per_owner_limit is not None


def _positive(name: str, key: str, value: Any, kind: type = float) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"queue {name!r}: {key} must be a number, got {value!r}") from exc
    if number <= 0:
        raise ValueError(f"queue {name!r}: {key} must be positive, got {value!r}")
    return number


def parse_queue(name: str, raw: dict[str, Any]) -> QueueConfig:
    """Validate one queue definition."""
    known = {"attempts", "backoff", "timeout", "retention", "rate_limit", "concurrency", "group", "mode", "aging", "per_owner_limit", "priority"}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"queue {name!r}: unknown keys {sorted(unknown)}")
    backoff_raw = raw.get("backoff", {})
    backoff = Backoff(
        delay=_positive(name, "backoff.delay", backoff_raw.get("delay", 2.0)),
        factor=_positive(name, "backoff.factor", backoff_raw.get("factor", 2.0)),
        max_delay=_positive(name, "backoff.max_delay", backoff_raw.get("max_delay", 3600.0)),
    )
    retention = {}
    for status, rule in (raw.get("retention") or {}).items():
        if status not in ("completed", "failed", "cancelled"):
            raise ValueError(f"queue {name!r}: retention applies to completed, failed or cancelled, not {status!r}")
        retention[status] = Retention(
            count=None if rule.get("count") is None else _positive(name, "retention.count", rule["count"], int),
            age=None if rule.get("age") is None else _positive(name, "retention.age", rule["age"]),
        )
    return QueueConfig(
        name=name,
        attempts=_positive(name, "attempts", raw.get("attempts", 3), int),
        backoff=backoff,
        timeout=_positive(name, "timeout", raw.get("timeout", 600)),
        retention=retention,
        rate_limit=parse_rate_limit(name, raw.get("rate_limit")),
        concurrency=_positive(name, "concurrency", raw.get("concurrency", 1), int),
        group=str(raw.get("group", "default")),
        mode=_mode(name, raw.get("mode", "processes")),
        aging=None if raw.get("aging") is None else _positive(name, "aging", raw["aging"]),
        per_owner_limit=None if raw.get("per_owner_limit") is None else _positive(name, "per_owner_limit", raw["per_owner_limit"], int),
        priority=_priority(name, raw.get("priority")),
    )


def _priority(name: str, value: Any) -> int:
    try:
        return priorities.parse(value)
    except ValueError as exc:
        raise ValueError(f"queue {name!r}: {exc}") from None


MODES = ("processes", "threads")


def _mode(name: str, mode: Any) -> str:
    if mode not in MODES:
        raise ValueError(f"queue {name!r}: mode must be one of {list(MODES)}, got {mode!r}")
    return str(mode)


def parse_rate_limit(name: str, rate: Any) -> RateLimit | None:
    """A `{"max": N, "duration": seconds}` rate limit of queue `name` (None when empty); ValueError says what is wrong."""
    if not rate:
        return None
    if not isinstance(rate, dict) or "max" not in rate or "duration" not in rate:
        raise ValueError(f"queue {name!r}: rate_limit needs max and duration, got {rate!r}")
    duration = _positive(name, "rate_limit.duration", rate["duration"])
    if duration != int(duration):
        # The limiter's windows are whole seconds; rounding would silently change the rate.
        raise ValueError(f"queue {name!r}: rate_limit.duration must be whole seconds, got {rate['duration']!r}")
    return RateLimit(max=_positive(name, "rate_limit.max", rate["max"], int), duration=duration)


@lru_cache(maxsize=1)
def all_queues() -> dict[str, QueueConfig]:
    """Every declared queue, by name."""
    return {name: parse_queue(name, raw) for name, raw in settings.JOBS_QUEUES.items()}


def get_queue(name: str) -> QueueConfig:
    try:
        return all_queues()[name]
    except KeyError:
        raise NotFound(f"no queue named {name!r}", extra={"queue": [f"unknown queue; known: {sorted(all_queues())}"]}) from None


def groups() -> dict[str, list[QueueConfig]]:
    """Queues by worker group: `make run` starts one worker per group, in the group's mode.

    A group's queues share one mode (one worker serves them all); a mix is refused.
    """
    out: dict[str, list[QueueConfig]] = {}
    for q in all_queues().values():
        out.setdefault(q.group, []).append(q)
    for name, queues in out.items():
        modes = {q.mode for q in queues}
        if len(modes) > 1:
            raise ValueError(f"worker group {name!r} mixes modes {sorted(modes)}: give its queues one mode, or separate groups")
    return out


def _reset(*, setting: str, **_: Any) -> None:
    if setting == "JOBS_QUEUES":
        all_queues.cache_clear()


setting_changed.connect(_reset)
