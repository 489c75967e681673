"""The engine's writes, as callers outside the worker see them: enqueue, cancel, retry, progress, pause, clean, dead letters.

This module and jobs.models, selectors, exceptions, tasks and access are what other apps import;
jobs.engine is the machinery behind them. Operator actions write an AuditEntry here.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Callable, Iterable

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from redis.exceptions import RedisError

from jobs import selectors
from jobs.access import User, Viewer, account
from jobs.engine import audit, broker, bulk, conf, hooks, intake, outbox, overrides, retention, sql
from jobs.engine.hooks import JobChange
from jobs.engine.intake import JobSpec
from jobs.engine.states import FINAL, PENDING, Move, Status, move
from jobs.exceptions import InvalidInput, InvalidTransition, NotFound
from jobs.models import DeadLetter, Job, JobEvent, QueueState

__all__ = [
    "JobChange", "JobSpec", "cancel", "cancel_many", "clean", "discard_dead_letters", "enqueue", "enqueue_many",
    "record_action", "register_hook", "retry", "retry_dead_letter", "retry_dead_letters", "retry_hook_deliveries", "retry_many", "set_paused",
    "update_progress",
]

log = logging.getLogger(__name__)

#: What a retry clears, so the job runs as if new (with its attempts counted afresh).
RETRY_RESET: dict[str, Any] = dict(
    attempts_made=0, progress=0, progress_message="", error_kind="", error_class="", failed_reason="", traceback="",
    result=None, started_at=None, completed_at=None, worker_name="", cancel_requested_at=None, run_at=None,
)


# -- enqueue ------------------------------------------------------------------------------------


def enqueue(spec: JobSpec, *, from_api: bool = False) -> tuple[Job, bool]:
    """Write a job and hand it to RQ after commit; returns (job, created).

    An idempotency key seen before (from the same owner) returns the first job, once the spec is
    valid: a bad request is refused even when its key was used. `from_api`: the caller is an API
    client, who may enqueue only job types registered with `api=True`.
    """
    now = timezone.now()
    job = intake.build(spec, now, from_api=from_api)
    key = intake.scoped_key(spec)
    if key:
        existing = Job.objects.filter(idempotency_key=key).first()
        if existing:
            return existing, False
    try:
        # A savepoint inside a caller's transaction only where an idempotency race can be recovered
        # from; without a key an IntegrityError fails the caller's transaction anyway (two round trips fewer).
        with transaction.atomic(savepoint=bool(key)):
            job.save(force_insert=True)
            event = intake.created_event(job, now)
            event.save(force_insert=True)
            intake.carry([job], [outbox.change_of(event, payload=job.payload)])
    except IntegrityError:
        if key:
            return Job.objects.get(idempotency_key=key), False
        raise
    return job, True


def enqueue_many(specs: Iterable[JobSpec], *, batch_size: int = 2000) -> list[Job]:
    """Enqueue many jobs in one transaction with bulk inserts; jobs whose idempotency key exists are returned as they are."""
    with intake.gc_paused():
        return _enqueue_many(list(specs), batch_size=batch_size)


def _enqueue_many(specs: list[JobSpec], *, batch_size: int) -> list[Job]:
    now = timezone.now()
    keys = [intake.scoped_key(s) for s in specs]
    wanted = [k for k in keys if k]
    existing = {j.idempotency_key: j for j in Job.objects.filter(idempotency_key__in=wanted)} if wanted else {}
    out: list[Job] = []
    new: list[Job] = []
    for spec, key in zip(specs, keys):
        job = intake.build(spec, now)  # checked before a known key returns its job, as in enqueue
        if key and key in existing:
            out.append(existing[key])
            continue
        if key:
            existing[key] = job
        new.append(job)
        out.append(job)
    events = [intake.created_event(j, now) for j in new]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            sql.copy_rows(Job, new)
            sql.copy_rows(JobEvent, events)  # takes the events' ids from their sequence first
        else:
            Job.objects.bulk_create(new, batch_size=batch_size)
            JobEvent.objects.bulk_create(events, batch_size=batch_size)
        intake.carry(new, [outbox.change_of(e, payload=j.payload) for j, e in zip(new, events)])
    return out


# -- one job ------------------------------------------------------------------------------------


def cancel(job_id: str, *, actor: Viewer | None = None, user: Viewer | None = None, source: str = "api", record: bool = True) -> Job:
    """Cancel a waiting or delayed job at once; ask an active one to stop (the worker stops it hard after a grace)."""
    job = selectors.job_get(job_id, user=user)
    if job.status in PENDING:
        try:
            moved = move(
                job.id, queue=job.queue, source=tuple(PENDING), target=Status.CANCELLED, message="cancelled",
                data={"error": "cancelled before it ran"}, completed_at=timezone.now(), error_kind="CANCELLED", failed_reason="cancelled before it ran",
            )
        except InvalidTransition as exc:
            if exc.current != Status.ACTIVE:
                raise
            job.status = Status.ACTIVE  # a worker claimed it meanwhile: ask it to stop instead
        else:
            job.status = Status.CANCELLED
            change = JobChange.of(job, "cancelled", Status.CANCELLED, event_id=moved.event_id, error="cancelled before it ran")
            _unlist_and_tell(job, change, moved)
    elif job.status != Status.ACTIVE:
        raise InvalidTransition(job.id, job.status, Status.CANCELLED)
    if job.status == Status.ACTIVE:
        now = timezone.now()
        if not Job.objects.filter(pk=job.id, status=Status.ACTIVE).update(cancel_requested_at=now):
            raise InvalidTransition(job.id, Job.objects.get(pk=job.id).status, Status.CANCELLED)
        JobEvent.objects.create(job_id=job.id, queue=job.queue, from_status=Status.ACTIVE, to_status=Status.ACTIVE, message="cancel requested", at=now)
    if record:
        audit.record(actor=actor, action="cancel", queue=job.queue, job_ids=[job.id], source=source)
    job.refresh_from_db()
    return job


def retry(job_id: str, *, actor: Viewer | None = None, user: Viewer | None = None, source: str = "api", record: bool = True) -> Job:
    """Run a failed or cancelled job again, with its attempts counted afresh."""
    job = selectors.job_get(job_id, user=user)
    with transaction.atomic():
        moved = move(
            job.id, queue=job.queue, source=(Status.FAILED, Status.CANCELLED), target=Status.WAITING, message="retried", **RETRY_RESET
        )
        DeadLetter.objects.filter(job_id=job.id, resolved_at__isnull=True).update(resolved_at=timezone.now(), resolution=DeadLetter.Resolution.RETRIED, retry_job_id=job.id)
        job.refresh_from_db()
        blocked, held = moved.waits(job.id)
        intake.carry([job], [JobChange.of(job, "retried", Status.WAITING, event_id=moved.event_id)], blocked=blocked, held=held)
        if record:
            audit.record(actor=actor, action="retry", queue=job.queue, job_ids=[job.id], source=source)
    return job


def update_progress(job_id: str, *, progress: float, message: str = "", user: Viewer | None = None) -> Job:
    """Record an active job's progress (0-100) and tell the hooks."""
    if isinstance(progress, bool) or not isinstance(progress, (int, float)) or not 0 <= progress <= 100:
        raise InvalidInput("invalid progress", extra={"progress": ["must be a number from 0 to 100"]})
    job = selectors.job_get(job_id, user=user)
    if not Job.objects.filter(pk=job.id, status=Status.ACTIVE).update(progress=int(progress), progress_message=message[:500], updated_at=timezone.now()):
        raise InvalidTransition(job.id, job.status, "progress")
    job.progress = int(progress)
    outbox.deliver([JobChange.of(job, "progress", Status.ACTIVE, progress=int(progress), message=message)])
    return job


def _unlist_and_tell(job: Job, change: JobChange, moved: Move) -> None:
    """After commit: take a cancelled job's id out of Redis's lists, then the hooks get the change."""

    def after_commit() -> None:
        broker.remove_from_lists(job.id, job.queue, job.priority)
        blocked, held = moved.waits(job.id)
        outbox.deliver([change], blocked=blocked, held=held)

    transaction.on_commit(after_commit)


# -- many jobs ----------------------------------------------------------------------------------


def retry_many(ids: Iterable[str], *, actor: Viewer | None, source: str = "admin") -> tuple[list[str], dict[str, str]]:
    """Retry every failed or cancelled job among `ids` with bulk statements; returns (retried, {skipped id: why}) and audits once."""
    done: list[str] = []
    skipped: dict[str, str] = {}
    for chunk in bulk.chunks(ids):
        with transaction.atomic():
            found = bulk.locked(chunk)
            events = bulk.move(found, (Status.FAILED, Status.CANCELLED), Status.WAITING, "retried", **RETRY_RESET)
            moved = [e.job_id for e in events]
            DeadLetter.objects.filter(job_id__in=moved, resolved_at__isnull=True).update(
                resolved_at=timezone.now(), resolution=DeadLetter.Resolution.RETRIED, retry_job_id=F("job_id")
            )
            told = bulk.changes(events)
            intake.carry(list(Job.objects.filter(pk__in=moved)), told.changes, blocked=told.blocked, held=told.held)
        done += moved
        skipped.update(bulk.skipped(chunk, set(moved), found, "failed or cancelled"))
    audit.record(actor=actor, action="retry", job_ids=done, detail={"skipped": len(skipped)}, source=source)
    return done, skipped


def cancel_many(ids: Iterable[str], *, actor: Viewer | None, source: str = "admin") -> tuple[list[str], dict[str, str]]:
    """Cancel every waiting or delayed job among `ids` and ask every active one to stop, with bulk statements.

    Returns (cancelled or asked-to-stop ids, {skipped id: why}) and audits once.
    """
    done: list[str] = []
    skipped: dict[str, str] = {}
    for chunk in bulk.chunks(ids):
        now = timezone.now()
        with transaction.atomic():
            found = bulk.locked(chunk)
            events = bulk.move(
                found, (Status.WAITING, Status.DELAYED), Status.CANCELLED, "cancelled",
                completed_at=now, error_kind="CANCELLED", failed_reason="cancelled before it ran",
            )
            moved = [e.job_id for e in events]
            active = [(i, q) for i, (q, st) in found.items() if st == Status.ACTIVE]
            Job.objects.filter(pk__in=[i for i, _ in active], status=Status.ACTIVE).update(cancel_requested_at=now)
            JobEvent.objects.bulk_create(
                [JobEvent(job_id=i, queue=q, from_status=Status.ACTIVE, to_status=Status.ACTIVE, message="cancel requested", at=now) for i, q in active]
            )
            bulk.tell(list(Job.objects.filter(pk__in=moved)), events, unlist=True)
        touched = moved + [i for i, _ in active]
        done += touched
        skipped.update(bulk.skipped(chunk, set(touched), found, "waiting, delayed or active"))
    audit.record(actor=actor, action="cancel", job_ids=done, detail={"skipped": len(skipped)}, source=source)
    return done, skipped


# -- queues -------------------------------------------------------------------------------------


def set_paused(queue: str, *, paused: bool, actor: Viewer | None = None, source: str = "api") -> QueueState:
    """Pause or resume a queue: workers take nothing from a paused queue; running jobs finish."""
    conf.get_queue(queue)
    with transaction.atomic():
        state, _ = QueueState.objects.update_or_create(name=queue, defaults={"paused": paused, "changed_by": account(actor)})
        audit.record(actor=actor, action="pause" if paused else "resume", queue=queue, source=source)
    try:
        broker.set_paused(queue, paused)
    except RedisError:
        # The database holds the pause; reconcile copies it to Redis once Redis answers.
        log.warning("queue %s %s in the database; Redis not reachable, reconcile will sync it", queue, "paused" if paused else "resumed")
    return state


def set_overrides(queue: str, *, concurrency: int | None, rate_limit: dict[str, Any] | None, actor: Viewer | None = None, source: str = "api") -> overrides.Effective:
    """Override a queue's concurrency and rate limit at run time (None: as declared); running workers pick them up
    within a heartbeat. Audited."""
    return overrides.save(queue, concurrency=concurrency, rate_limit=rate_limit, actor=actor, source=source)


def clean(queue: str, *, status: str = Status.COMPLETED, grace: float = 0, limit: int = 1000, actor: Viewer | None = None, source: str = "api", record: bool = True) -> int:
    """Remove up to `limit` jobs of a final status that ended more than `grace` seconds ago. Returns how many."""
    conf.get_queue(queue)
    if status not in FINAL:
        raise InvalidInput("invalid status", extra={"status": [f"must be one of {sorted(FINAL)}"]})
    if grace < 0 or limit < 1:
        raise InvalidInput("invalid clean", extra={"grace": ["must be >= 0"]} if grace < 0 else {"limit": ["must be >= 1"]})
    cutoff = timezone.now() - timedelta(seconds=grace)
    removed = retention.remove(Job.objects.filter(queue=queue, status=status, completed_at__lt=cutoff).order_by("completed_at"), limit)
    if record:
        audit.record(actor=actor, action="clean", queue=queue, job_ids=removed, detail={"status": status, "grace": grace, "limit": limit}, source=source)
    return len(removed)


# -- dead letters -------------------------------------------------------------------------------


def retry_dead_letters(
    job_ids: Iterable[str], *, actor: Viewer | None = None, user: Viewer | None = None, source: str = "admin",
    progress: Callable[[int], None] | None = None, record: bool = True,
) -> tuple[dict[str, str], dict[str, str]]:
    """Retry dead letters as new jobs with the dead jobs' input, in chunks; each letter is resolved once, even if two operators click.

    Returns ({dead job id: new job id}, {skipped id: why}) and audits once when any was retried.
    `user` limits the letters to the jobs that user may see; `progress(n)` is told after each chunk of n ids;
    `record=False`: the caller audits (a group's retry, jobs.deadletters).
    """
    retried: dict[str, str] = {}
    skipped: dict[str, str] = {}
    queues: set[str] = set()
    for chunk in bulk.chunks(job_ids):
        with transaction.atomic():
            now = timezone.now()
            # Locking the open letters first makes a concurrent retry of the same letters skip them.
            letters = {
                dl.job_id: dl
                for dl in selectors.open_dead_letters(user=user)
                .select_for_update(skip_locked=True, of=("self",))
                .filter(job_id__in=chunk)
                .select_related("job__owner")
            }
            specs: list[tuple[DeadLetter, JobSpec]] = []
            for job_id in chunk:
                letter = letters.get(job_id)
                if letter is None:
                    skipped[job_id] = f"job {job_id} is not in the dead-letter queue"
                    continue
                old = letter.job
                spec = JobSpec(
                    type=old.type, payload=old.payload, owner=old.owner, priority=old.priority, queue=old.queue,
                    group_ref=old.group_ref, attempts=old.max_attempts, retry_of=old.id,
                )
                why = intake.skip_reason(spec)
                if why:
                    skipped[job_id] = f"job {job_id} cannot run again: {why}"
                else:
                    specs.append((letter, spec))
            new_jobs = enqueue_many([spec for _, spec in specs])
            for (letter, _), new in zip(specs, new_jobs):
                letter.resolved_at, letter.resolution, letter.retry_job = now, DeadLetter.Resolution.RETRIED, new
                retried[letter.job_id] = new.id
                queues.add(letter.queue)
            DeadLetter.objects.bulk_update([letter for letter, _ in specs], ["resolved_at", "resolution", "retry_job"])
        if progress is not None:
            progress(len(chunk))
    if retried and record:
        audit.record(
            actor=actor or user, action="dlq_retry", queue=queues.pop() if len(queues) == 1 else "",
            job_ids=[i for pair in retried.items() for i in pair], detail={"retried": len(retried), "skipped": len(skipped)}, source=source,
        )
    return retried, skipped


def retry_dead_letter(job_id: str, *, actor: Viewer | None = None, user: Viewer | None = None, source: str = "api") -> Job:
    """Retry one dead letter as a new job (retry_dead_letters for one id); NotFound unless it is an open letter the user may see."""
    retried, skipped = retry_dead_letters([job_id], actor=actor, user=user, source=source)
    if job_id not in retried:
        raise NotFound(skipped.get(job_id) or f"job {job_id} is not in the dead-letter queue")
    return Job.objects.get(pk=retried[job_id])


def discard_dead_letters(job_ids: Iterable[str], *, actor: Viewer | None, source: str = "admin", record: bool = True) -> int:
    """Mark open dead letters as reviewed and discarded, in chunks; the failed jobs stay for the record. Audits once (unless
    `record=False`: the caller audits); returns how many."""
    done: list[str] = []
    for chunk in bulk.chunks(job_ids):
        with transaction.atomic():
            open_ids = list(DeadLetter.objects.select_for_update(skip_locked=True).filter(job_id__in=chunk, resolved_at__isnull=True).values_list("job_id", flat=True))
            DeadLetter.objects.filter(job_id__in=open_ids).update(resolved_at=timezone.now(), resolution=DeadLetter.Resolution.DISCARDED)
        done += open_ids
    if done and record:
        audit.record(actor=actor, action="dlq_discard", job_ids=done, source=source)
    return len(done)


def retry_hook_deliveries(ids: Iterable[int], *, actor: Viewer | None, source: str = "admin") -> int:
    """An operator's retry of hook deliveries (stuck or backing off): due now, attempts counted afresh. Audited."""
    ids = list(ids)
    n = outbox.retry_stuck(ids)
    audit.record(actor=actor, action="hook_retry", detail={"deliveries": ids[:1000], "retried": n}, source=source)
    return n


# -- for other apps -----------------------------------------------------------------------------


def register_hook(name: str, hook: hooks.Hook) -> hooks.Hook:
    """Call `hook(change: JobChange)` after every job change commits, in registration order (apps do this in AppConfig.ready).

    Each change reaches the hook at least once and in order per job, retried while it raises: it
    must be idempotent (`change.event_id` is a key). `name` keys its pending deliveries: keep it stable.
    """
    return hooks.register(name, hook)


def record_action(*, actor: User | Viewer | None, action: str, queue: str = "", job_ids: Iterable[str] = (), detail: dict[str, Any] | None = None, source: str = "admin") -> None:
    """Write one entry of the operator audit log (apps record their own operator actions, e.g. a stage review)."""
    audit.record(actor=actor, action=action, queue=queue, job_ids=job_ids, detail=detail, source=source)


# Recurring jobs: their services live in jobs.schedules (this module's size); callers use them from here.
from jobs.schedules import (  # noqa: E402
    SCHEDULE_FIELDS,
    create_schedule,
    delete_schedule,
    run_schedule_now,
    schedule_problems,
    set_schedule_enabled,
    update_schedule,
)

__all__ += ["SCHEDULE_FIELDS", "create_schedule", "delete_schedule", "run_schedule_now", "schedule_problems", "set_schedule_enabled", "update_schedule"]
