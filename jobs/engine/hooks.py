"""Extension points called in order after a job's status change commits (not post_save signals).

Other apps register named hooks here, e.g. a pipeline enqueues its next stage when a stage's job
completes, and the events app forwards every change to WebSocket subscribers. Each change reaches
each hook at least once and in order per job (jobs.engine.outbox delivers, retries and sweeps).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Protocol

from django.db import transaction
from django.utils import timezone

log = logging.getLogger(__name__)


class _JobLike(Protocol):
    """A job row or a worker's claim: what a change is built from."""

    @property
    def id(self) -> str: ...
    @property
    def queue(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def group_ref(self) -> str | None: ...
    @property
    def owner_id(self) -> int | None: ...
    @property
    def payload(self) -> Any: ...


@dataclass(frozen=True)
class JobChange:
    """What just happened to a job, as a hook sees it."""

    job_id: str
    queue: str
    type: str
    event: str  # created, retried, started, progress, completed, failed, retrying, cancelled, waiting
    status: str
    group_ref: str | None = None
    owner_id: int | None = None
    progress: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    #: The JobEvent that records the change (None for progress, which is not an event): a consumer's idempotency key.
    event_id: int | None = None
    #: When the change happened (the event's time).
    at: datetime | None = None
    #: The job's payload where the change was made with it at hand (None when rebuilt from its event row):
    #: a hook reads what it needs of it here instead of reading the row again. Shared, not copied: read only.
    payload: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, job: _JobLike, event: str, status: str, *, progress: int = 0, event_id: int | None = None, **data: Any) -> JobChange:
        """The change `event` of `job`, now in `status`; `data` is what the hooks need of it (error, result, ...)."""
        return cls(
            job_id=job.id, queue=job.queue, type=job.type, event=event, status=status, group_ref=job.group_ref,
            owner_id=job.owner_id, progress=progress, data=data, event_id=event_id, at=timezone.now(), payload=job.payload,
        )


Hook = Callable[[JobChange], None]


@dataclass(frozen=True)
class Consumer:
    """A registered hook and the name its deliveries are tracked by (HookDelivery.consumer)."""

    name: str
    func: Hook


_CONSUMERS: list[Consumer] = []


def register(name: str, hook: Hook) -> Hook:
    """Add a hook under a stable name (it keys the hook's pending deliveries); returns the hook."""
    for i, existing in enumerate(_CONSUMERS):
        if existing.name == name:
            _CONSUMERS[i] = Consumer(name, hook)
            return hook
    _CONSUMERS.append(Consumer(name, hook))
    return hook


def unregister(name: str) -> None:
    """Remove a hook (tests)."""
    _CONSUMERS[:] = [c for c in _CONSUMERS if c.name != name]


def consumers() -> list[Consumer]:
    """The registered hooks, in the order they are called."""
    return list(_CONSUMERS)


def call(consumer: Consumer, change: JobChange, *, in_atomic: bool | None = None) -> BaseException | None:
    """Call one hook with one change; returns what it raised, or None.

    Inside a transaction (the outbox's sweep and retries) the hook runs in a savepoint, so a
    database error of its own is rolled back with it and the transaction goes on. `in_atomic`: the
    caller already knows whether one is open (a batch of changes asks once, not per hook).
    """
    if in_atomic is None:
        in_atomic = transaction.get_connection().in_atomic_block
    try:
        if in_atomic:
            with transaction.atomic():
                consumer.func(change)
        else:
            consumer.func(change)
    except Exception as exc:
        log.warning("job hook %s failed for %s %s: %s", consumer.name, change.event, change.job_id, exc, exc_info=True)
        return exc
    return None

