"""The hooks' outbox: every change that hooks consume is a JobEvent written `delivered=False` in the
transaction of the change, and reaches every hook at least once, in order per job and hook.

- The fast path: right after the commit, the process that made the change calls the hooks
  (`deliver`) and marks the event delivered. A worker defers the mark to its next statement
  (`states.move` sends it along) or to its next idle moment, so a job still costs two statements.
- A hook that raises gets a HookDelivery row, retried with backoff (`retry_due`) and, after
  MAX_ATTEMPTS, stuck until an operator retries it (`retry_stuck`). It never holds up other hooks.
- The sweep (`sweep`, each scheduler tick) delivers every event still undelivered SWEEP_AFTER
  seconds after it was written: the process that wrote it died before its hooks ran.
- Order per job and hook: a change whose job has an undelivered earlier event, or an open
  delivery, is not delivered on the fast path (the transition statement says so) but left to the
  sweep, which delivers in event order and queues a hook's later deliveries of a job behind its
  open one.

Consumers are idempotent: a change may arrive twice (a process died after the hooks ran but before
the mark), never out of order and never not at all. Progress is not an event: it is a level that
the next progress or outcome supersedes, and goes to hooks on the fast path only.
"""
from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any, Iterable, Mapping, Sequence

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from jobs.engine import hooks, sql
from jobs.engine.hooks import JobChange
from jobs.engine.retry import Backoff
from jobs.models import HookDelivery, JobEvent

log = logging.getLogger(__name__)

#: An undelivered event older than this (seconds) is the sweep's: its writer is gone, or its job waits in order.
SWEEP_AFTER = 5.0
SWEEP_BATCH = 200
#: A failing delivery is retried this many times, backing off, then shown as stuck.
MAX_ATTEMPTS = 8
BACKOFF = Backoff(delay=2.0, factor=2.0, max_delay=300.0)

#: (from, to) -> the change hooks see. Moves not listed (a promotion, a cancel request, a removal) are no hook's.
EVENTS: dict[tuple[str | None, str], str] = {
    (None, "waiting"): "created",
    (None, "delayed"): "created",
    ("waiting", "active"): "started",
    ("active", "completed"): "completed",
    ("active", "delayed"): "retrying",
    ("active", "failed"): "failed",
    ("waiting", "failed"): "failed",
    ("delayed", "failed"): "failed",
    ("waiting", "cancelled"): "cancelled",
    ("delayed", "cancelled"): "cancelled",
    ("active", "cancelled"): "cancelled",
    ("failed", "waiting"): "retried",
    ("cancelled", "waiting"): "retried",
    ("active", "waiting"): "waiting",
}


def event_name(from_status: str | None, to_status: str | None) -> str | None:
    """The hook event of a move, or None when no hook consumes it."""
    return EVENTS.get((from_status, to_status)) if to_status else None


def change_of(event: JobEvent, *, payload: Any = None) -> JobChange:
    """The change a hook sees, rebuilt from its event row (the job may be gone), with the job's payload if at hand."""
    name = event_name(event.from_status, event.to_status) or ""
    return JobChange(
        job_id=event.job_id, queue=event.queue, type=event.type, event=name, status=event.to_status or "",
        group_ref=event.group_ref, owner_id=event.owner_id, progress=100 if name == "completed" else 0,
        data=dict(event.data or {}), event_id=event.id, at=event.at, payload=payload,
    )


# -- the fast path -------------------------------------------------------------------------------

_pending: list[int] = []
_lock = threading.Lock()
#: A worker sets this: marks ride on its next transition, or go out when it is idle.
defer_marks = False


def deliver(changes: Sequence[JobChange], *, blocked: Iterable[str] = (), held: Mapping[str, Iterable[str]] | None = None) -> None:
    """After the commit of `changes`: call every hook with each, in order, and mark them delivered.

    Changes of a job in `blocked` (an earlier change of it has not reached its hooks) are left to
    the sweep. A hook in `held[job_id]` has an open delivery of that job: the change queues behind
    it. A hook that raises gets a HookDelivery to retry; the other hooks still get the change. When
    the database cannot record that (it is down), the change is left unmarked: the sweep delivers
    it again to every hook (they are idempotent).
    """
    skipped = set(blocked)
    waiting = {job: set(names) for job, names in (held or {}).items()}
    done: list[int] = []
    in_atomic = transaction.get_connection().in_atomic_block
    consumers = hooks.consumers()
    for change in changes:
        if change.job_id in skipped:
            continue
        _fault_point(change)
        behind = waiting.setdefault(change.job_id, set())
        failures: list[tuple[str, BaseException]] = []
        try:
            for consumer in consumers:
                if consumer.name in behind:
                    if change.event_id is not None:
                        _queue_behind(change, consumer.name)
                    continue
                error = hooks.call(consumer, change, in_atomic=in_atomic)
                if error is not None:
                    failures.append((consumer.name, error))
                    behind.add(consumer.name)  # this job's next changes queue behind it
            if failures and change.event_id is not None:
                _record_failures(change, failures)
        except DatabaseError:
            log.exception("could not record a hook's delivery of %s %s; the sweep will deliver it again", change.event, change.job_id)
            skipped.add(change.job_id)  # and keep this job's later changes in order behind it
            continue
        if change.event_id is not None:  # progress is no event: nothing to mark
            done.append(change.event_id)
    if done:
        with _lock:
            _pending.extend(done)
        if not defer_marks:
            try:
                flush()
            except DatabaseError:
                log.exception("could not mark %d delivered events; they are marked later or swept again", len(done))


def _queue_behind(change: JobChange, consumer: str) -> None:
    assert change.event_id is not None
    HookDelivery.objects.get_or_create(event_id=change.event_id, consumer=consumer, defaults=dict(job_id=change.job_id, next_at=timezone.now()))


def waits(job_ids: set[str], *, exclude: set[int]) -> tuple[set[str], dict[str, set[str]]]:
    """For a bulk move: the jobs with an undelivered earlier event (blocked), and the hooks with an open delivery of each (held)."""
    if not job_ids:
        return set(), {}
    ids = list(job_ids)
    blocked = set(JobEvent.objects.filter(job_id__in=ids, delivered=False).exclude(id__in=list(exclude)).values_list("job_id", flat=True))
    return blocked, _held(ids)


def _held(job_ids: Sequence[str]) -> dict[str, set[str]]:
    """The hooks with an open delivery of each job."""
    held: dict[str, set[str]] = {}
    for job_id, consumer in HookDelivery.objects.filter(job_id__in=list(job_ids), done_at__isnull=True).values_list("job_id", "consumer"):
        held.setdefault(job_id, set()).add(consumer)
    return held


def take_pending() -> list[int]:
    """The event ids delivered but not yet marked, handed to the caller's statement (states.move)."""
    with _lock:
        taken = list(_pending)
        _pending.clear()
    return taken


def give_back(ids: Sequence[int]) -> None:
    """Ids whose statement failed: they are marked later."""
    if ids:
        with _lock:
            _pending.extend(ids)


def flush() -> int:
    """Mark the delivered events of this process in one statement; returns how many were pending."""
    ids = take_pending()
    if not ids:
        return 0
    try:
        sql.mark_delivered(ids)
    except Exception:
        give_back(ids)
        raise
    return len(ids)


def _record_failures(change: JobChange, failures: list[tuple[str, BaseException]]) -> None:
    assert change.event_id is not None
    now = timezone.now()
    for consumer, exc in failures:
        HookDelivery.objects.get_or_create(
            event_id=change.event_id, consumer=consumer,
            defaults=dict(job_id=change.job_id, attempts=1, next_at=now + timedelta(seconds=BACKOFF.seconds(1)), last_error=_describe(exc)),
        )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"[:5000]


def _fault_point(change: JobChange) -> None:
    """Tests of the outbox kill a process here, after a change committed and before its hooks ran."""
    point = settings.JOBS_FAULT_POINT
    if point and point == f"before-hooks:{change.event}":
        import os

        log.error("JOBS_FAULT_POINT %s: exiting before the hooks of %s %s", point, change.event, change.job_id)
        os._exit(137)


# -- the sweep and the retries (the scheduler) ---------------------------------------------------


def sweep(*, after: float = SWEEP_AFTER, batch: int = SWEEP_BATCH) -> int:
    """Deliver events left undelivered for `after` seconds, in order; returns how many were handled."""
    cutoff = timezone.now() - timedelta(seconds=after)
    skip = connection.features.has_select_for_update_skip_locked
    with transaction.atomic():
        events = list(JobEvent.objects.select_for_update(skip_locked=skip).filter(delivered=False, at__lt=cutoff).order_by("id")[:batch])
        if not events:
            return 0
        held = _held(list({e.job_id for e in events}))
        for event in events:
            change = change_of(event)
            for consumer in hooks.consumers():
                if consumer.name in held.get(event.job_id, ()):
                    _queue_behind(change, consumer.name)  # behind an open delivery of the same job and hook: it waits its turn
                    continue
                error = hooks.call(consumer, change)
                if error is not None:
                    _record_failures(change, [(consumer.name, error)])
                    held.setdefault(event.job_id, set()).add(consumer.name)
        JobEvent.objects.filter(id__in=[e.id for e in events]).update(delivered=True)
    log.warning("hook sweep delivered %d events that their writers had not", len(events))
    return len(events)


def retry_due(*, batch: int = 100) -> int:
    """Retry open deliveries that are due, each only once it is the first open one of its job and hook."""
    now = timezone.now()
    skip = connection.features.has_select_for_update_skip_locked
    by_name = {c.name: c for c in hooks.consumers()}
    handled = 0
    with transaction.atomic():
        due = list(HookDelivery.objects.select_for_update(skip_locked=skip).filter(done_at__isnull=True, stuck=False, next_at__lte=now).order_by("job_id", "consumer", "event_id")[:batch])
        for delivery in due:
            earlier = HookDelivery.objects.filter(job_id=delivery.job_id, consumer=delivery.consumer, done_at__isnull=True, event_id__lt=delivery.event_id).exists()
            if earlier:
                continue
            event = JobEvent.objects.filter(id=delivery.event_id).first()
            consumer = by_name.get(delivery.consumer)
            if event is None or consumer is None:
                why = "its event is gone" if event is None else f"no hook named {delivery.consumer!r} is registered"
                HookDelivery.objects.filter(pk=delivery.pk).update(stuck=True, last_error=f"cannot deliver: {why}")
                continue
            error = hooks.call(consumer, change_of(event))
            handled += 1
            if error is None:
                HookDelivery.objects.filter(pk=delivery.pk).update(done_at=timezone.now(), attempts=F("attempts") + 1, last_error="")
                continue
            attempts = delivery.attempts + 1
            stuck = attempts >= MAX_ATTEMPTS
            HookDelivery.objects.filter(pk=delivery.pk).update(
                attempts=attempts, stuck=stuck, last_error=_describe(error),
                next_at=now if stuck else now + timedelta(seconds=BACKOFF.seconds(attempts)),
            )
            if stuck:
                log.error("hook %s is stuck on event %s of job %s after %d attempts: %s", delivery.consumer, delivery.event_id, delivery.job_id, attempts, error)
    return handled


def retry_stuck(ids: Iterable[int]) -> int:
    """An operator's retry: stuck deliveries become due now, with their attempts counted afresh."""
    return HookDelivery.objects.filter(pk__in=list(ids), done_at__isnull=True).update(stuck=False, attempts=0, next_at=timezone.now())
