"""The engine's writes, as callers outside the worker see them: enqueue, cancel, retry, pause, clean."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Iterator, Sequence

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from redis.exceptions import RedisError

from jobs.engine import audit, broker, conf, hooks, priority, registry, retention, sql
from jobs.engine.lifecycle import _change
from jobs.engine.states import FINAL, PENDING, Status, transition, transition_many
from jobs.exceptions import InvalidInput, InvalidTransition, NotFound
from jobs.models import DeadLetter, Job, JobEvent, QueueState

log = logging.getLogger(__name__)


@dataclass
class JobSpec:
    """One job to enqueue."""

    type: str
    payload: dict[str, Any] = field(default_factory=dict)
    owner: Any = None
    priority: int | str | None = None
    delay: float | None = None
    run_at: datetime | None = None
    idempotency_key: str | None = None
    group_ref: str | None = None
    queue: str | None = None
    attempts: int | None = None


#: Longest idempotency key a caller may send; the stored key adds the owner's id in front.
IDEMPOTENCY_KEY_MAX = 150


def scoped_key(spec: JobSpec) -> str | None:
    """The stored idempotency key: scoped by owner, so one caller's key can never return another's job."""
    if not spec.idempotency_key:
        return None
    owner_pk = getattr(spec.owner, "pk", None)
    return f"{owner_pk if owner_pk is not None else '-'}:{spec.idempotency_key}"


def _build(spec: JobSpec, now: datetime) -> Job:
    task = registry.get(spec.type)
    queue = conf.get_queue(spec.queue or task.queue)
    errors: dict[str, list[str]] = {}
    if not isinstance(spec.payload, dict):
        errors["payload"] = ["must be a JSON object"]
    try:
        prio = priority.parse(spec.priority)
    except ValueError as exc:
        errors["priority"] = [str(exc)]
        prio = priority.DEFAULT
    if spec.delay is not None and (not isinstance(spec.delay, (int, float)) or isinstance(spec.delay, bool) or spec.delay < 0):
        errors["delay"] = ["must be a number of seconds >= 0"]
    if spec.attempts is not None and (not isinstance(spec.attempts, int) or not 1 <= spec.attempts <= 100):
        errors["attempts"] = ["must be an integer from 1 to 100"]
    if spec.idempotency_key is not None and not (0 < len(spec.idempotency_key) <= IDEMPOTENCY_KEY_MAX):
        errors["idempotencyKey"] = [f"must be 1-{IDEMPOTENCY_KEY_MAX} characters"]
    if errors:
        raise InvalidInput("invalid job", extra=errors)
    run_at = spec.run_at or (now + timedelta(seconds=spec.delay) if spec.delay else None)
    delayed = run_at is not None and run_at > now
    return Job(
        queue=queue.name,
        type=task.name,
        payload=spec.payload,
        owner=spec.owner if getattr(spec.owner, "pk", None) else None,
        priority=prio,
        status=Status.DELAYED if delayed else Status.WAITING,
        run_at=run_at if delayed else None,
        max_attempts=spec.attempts or queue.attempts,
        idempotency_key=scoped_key(spec),
        group_ref=spec.group_ref,
        created_at=now,
        updated_at=now,
    )


def _carry(jobs: Sequence[Job], event: str = "created") -> None:
    """After commit: hand the waiting ones to RQ and tell the hooks."""
    waiting = [j for j in jobs if j.status == Status.WAITING]

    def after_commit() -> None:
        if waiting:
            try:
                broker.push(broker.Carried(j.id, j.queue, j.priority, conf.get_queue(j.queue).timeout) for j in waiting)
            except Exception:
                # The rows are committed; reconcile hands them to RQ once Redis answers again.
                log.exception("could not hand %d jobs to Redis; reconcile will", len(waiting))
        for j in jobs:
            hooks.fire(_change(j, event, j.status))

    transaction.on_commit(after_commit)


def enqueue(**kwargs: Any) -> tuple[Job, bool]:
    """Write a job and hand it to RQ after commit. Returns (job, created); an idempotency key seen before returns the first job."""
    spec = JobSpec(**kwargs)
    key = scoped_key(spec)
    if key:
        existing = Job.objects.filter(idempotency_key=key).first()
        if existing:
            return existing, False
    now = timezone.now()
    job = _build(spec, now)
    try:
        with transaction.atomic():
            job.save(force_insert=True)
            JobEvent.objects.create(job_id=job.id, queue=job.queue, from_status=None, to_status=job.status, message="created", at=now)
            _carry([job])
    except IntegrityError:
        if key:
            return Job.objects.get(idempotency_key=key), False
        raise
    return job, True


def enqueue_many(specs: Iterable[JobSpec], *, batch_size: int = 2000) -> list[Job]:
    """Enqueue many jobs in one transaction with bulk inserts; jobs whose idempotency key exists are returned as they are."""
    specs = list(specs)
    now = timezone.now()
    keys = [scoped_key(s) for s in specs]
    wanted = [k for k in keys if k]
    existing = {j.idempotency_key: j for j in Job.objects.filter(idempotency_key__in=wanted)} if wanted else {}
    out: list[Job] = []
    new: list[Job] = []
    for spec, key in zip(specs, keys):
        if key and key in existing:
            out.append(existing[key])
            continue
        job = _build(spec, now)
        if key:
            existing[key] = job
        new.append(job)
        out.append(job)
    events = [JobEvent(job_id=j.id, queue=j.queue, from_status=None, to_status=j.status, message="created", at=now) for j in new]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            sql.copy_rows(Job, new)
            sql.copy_rows(JobEvent, events)
        else:
            Job.objects.bulk_create(new, batch_size=batch_size)
            JobEvent.objects.bulk_create(events, batch_size=batch_size)
        _carry(new)
    return out


def get_job(job_id: str, *, user: Any = None) -> Job:
    """A job the user may see (staff: any); NotFound otherwise, so ids cannot be probed."""
    qs = Job.objects.all() if user is None else Job.objects.visible_to(user)
    try:
        return qs.get(pk=job_id)
    except Job.DoesNotExist:
        raise NotFound(f"job {job_id} not found") from None


def cancel(job_id: str, *, actor: Any = None, user: Any = None, source: str = "api", record: bool = True) -> Job:
    """Cancel a waiting or delayed job at once; ask an active one to stop (the worker stops it hard after a grace)."""
    job = get_job(job_id, user=user)
    if job.status in PENDING:
        try:
            transition(job.id, queue=job.queue, source=tuple(PENDING), target=Status.CANCELLED, message="cancelled", completed_at=timezone.now(), error_kind="CANCELLED", failed_reason="cancelled before it ran")
        except InvalidTransition as exc:
            if exc.current != Status.ACTIVE:
                raise
            job.status = Status.ACTIVE  # a worker claimed it meanwhile: ask it to stop instead
        else:
            transaction.on_commit(lambda: broker.remove_from_lists(job.id, job.queue, job.priority))
            transaction.on_commit(lambda: hooks.fire(_change(job, "cancelled", Status.CANCELLED)))
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


#: What a retry clears, so the job runs as if new (with its attempts counted afresh).
RETRY_RESET: dict[str, Any] = dict(
    attempts_made=0, progress=0, progress_message="", error_kind="", error_class="", failed_reason="", traceback="",
    result=None, started_at=None, completed_at=None, worker_name="", cancel_requested_at=None, run_at=None,
)
#: Bulk operations work through ids in chunks of this size, one short transaction each.
BULK_CHUNK = 500


def retry(job_id: str, *, actor: Any = None, user: Any = None, source: str = "api", record: bool = True) -> Job:
    """Run a failed or cancelled job again, with its attempts counted afresh."""
    job = get_job(job_id, user=user)
    with transaction.atomic():
        transition(
            job.id, queue=job.queue, source=(Status.FAILED, Status.CANCELLED), target=Status.WAITING, message="retried", **RETRY_RESET
        )
        DeadLetter.objects.filter(job_id=job.id, resolved_at__isnull=True).update(resolved_at=timezone.now(), resolution=DeadLetter.Resolution.RETRIED, retry_job_id=job.id)
        job.refresh_from_db()
        _carry([job], event="retried")
        if record:
            audit.record(actor=actor, action="retry", queue=job.queue, job_ids=[job.id], source=source)
    return job


def _chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    for job_id in ids:
        chunk.append(job_id)
        if len(chunk) == BULK_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _locked(chunk: list[str]) -> dict[str, tuple[str, str]]:
    """id -> (queue, status) of the chunk's rows, locked; rows another writer holds are left out."""
    rows = Job.objects.select_for_update(skip_locked=True).filter(pk__in=chunk).values_list("id", "queue", "status")
    return {i: (q, st) for i, q, st in rows}


def _skipped(chunk: list[str], moved: set[str], found: dict[str, tuple[str, str]], wanted: str) -> dict[str, str]:
    return {
        i: f"job {i} is {found[i][1]}, not {wanted}" if i in found else f"job {i} not found or being changed"
        for i in chunk
        if i not in moved
    }


def _move(found: dict[str, tuple[str, str]], sources: Iterable[str], target: str, message: str, **fields: Any) -> list[str]:
    moved: list[str] = []
    for source in sources:
        rows = [(i, q) for i, (q, st) in found.items() if st == source]
        if rows:
            moved += transition_many(rows, source=source, target=target, message=message, **fields)
    return moved


def _tell(jobs: list[Job], event: str, *, unlist: bool = False) -> None:
    """After commit, fire the hooks for each job (and with `unlist`, take them out of Redis's lists first)."""

    def fire() -> None:
        if unlist and jobs:
            broker.remove_many((j.id, j.queue, j.priority) for j in jobs)
        for j in jobs:
            hooks.fire(_change(j, event, j.status))

    transaction.on_commit(fire)


def retry_many(ids: Iterable[str], *, actor: Any, source: str = "admin") -> tuple[list[str], dict[str, str]]:
    """Retry every failed or cancelled job among `ids` with bulk statements; returns (retried, {skipped id: why}) and audits once."""
    done: list[str] = []
    skipped: dict[str, str] = {}
    for chunk in _chunks(ids):
        with transaction.atomic():
            found = _locked(chunk)
            moved = _move(found, (Status.FAILED, Status.CANCELLED), Status.WAITING, "retried", **RETRY_RESET)
            DeadLetter.objects.filter(job_id__in=moved, resolved_at__isnull=True).update(
                resolved_at=timezone.now(), resolution=DeadLetter.Resolution.RETRIED, retry_job_id=F("job_id")
            )
            _carry(list(Job.objects.filter(pk__in=moved)), event="retried")
        done += moved
        skipped.update(_skipped(chunk, set(moved), found, "failed or cancelled"))
    audit.record(actor=actor, action="retry", job_ids=done, detail={"skipped": len(skipped)}, source=source)
    return done, skipped


def cancel_many(ids: Iterable[str], *, actor: Any, source: str = "admin") -> tuple[list[str], dict[str, str]]:
    """Cancel every waiting or delayed job among `ids` and ask every active one to stop, with bulk statements.

    Returns (cancelled or asked-to-stop ids, {skipped id: why}) and audits once.
    """
    done: list[str] = []
    skipped: dict[str, str] = {}
    for chunk in _chunks(ids):
        now = timezone.now()
        with transaction.atomic():
            found = _locked(chunk)
            moved = _move(
                found, (Status.WAITING, Status.DELAYED), Status.CANCELLED, "cancelled",
                completed_at=now, error_kind="CANCELLED", failed_reason="cancelled before it ran",
            )
            active = [(i, q) for i, (q, st) in found.items() if st == Status.ACTIVE]
            Job.objects.filter(pk__in=[i for i, _ in active], status=Status.ACTIVE).update(cancel_requested_at=now)
            JobEvent.objects.bulk_create(
                [JobEvent(job_id=i, queue=q, from_status=Status.ACTIVE, to_status=Status.ACTIVE, message="cancel requested", at=now) for i, q in active]
            )
            cancelled = list(Job.objects.filter(pk__in=moved))
            _tell(cancelled, "cancelled", unlist=True)
        touched = moved + [i for i, _ in active]
        done += touched
        skipped.update(_skipped(chunk, set(touched), found, "waiting, delayed or active"))
    audit.record(actor=actor, action="cancel", job_ids=done, detail={"skipped": len(skipped)}, source=source)
    return done, skipped


def update_progress(job_id: str, *, progress: int, message: str = "", user: Any = None) -> Job:
    """Record an active job's progress (0-100) and tell the hooks."""
    if isinstance(progress, bool) or not isinstance(progress, (int, float)) or not 0 <= progress <= 100:
        raise InvalidInput("invalid progress", extra={"progress": ["must be a number from 0 to 100"]})
    job = get_job(job_id, user=user)
    if not Job.objects.filter(pk=job.id, status=Status.ACTIVE).update(progress=int(progress), progress_message=message[:500], updated_at=timezone.now()):
        raise InvalidTransition(job.id, job.status, "progress")
    job.progress = int(progress)
    hooks.fire(_change(job, "progress", Status.ACTIVE, progress=int(progress), message=message))
    return job


def set_paused(queue: str, *, paused: bool, actor: Any = None, source: str = "api") -> QueueState:
    """Pause or resume a queue: workers take nothing from a paused queue; running jobs finish."""
    conf.get_queue(queue)
    with transaction.atomic():
        state, _ = QueueState.objects.update_or_create(name=queue, defaults={"paused": paused, "changed_by": actor if getattr(actor, "pk", None) else None})
        audit.record(actor=actor, action="pause" if paused else "resume", queue=queue, source=source)
    try:
        broker.set_paused(queue, paused)
    except RedisError:
        # The database holds the pause; reconcile copies it to Redis once Redis answers.
        log.warning("queue %s %s in the database; Redis not reachable, reconcile will sync it", queue, "paused" if paused else "resumed")
    return state


def clean(queue: str, *, status: str = Status.COMPLETED, grace: float = 0, limit: int = 1000, actor: Any = None, source: str = "api", record: bool = True) -> int:
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


def retry_dead_letter(job_id: str, *, actor: Any = None, user: Any = None, source: str = "api") -> Job:
    """A new job with the dead job's input; the dead letter is resolved as retried (once, even if two operators click)."""
    old = get_job(job_id, user=user)
    with transaction.atomic():
        # Resolving first, conditionally, makes a concurrent second retry find nothing open.
        if not DeadLetter.objects.filter(job_id=old.id, resolved_at__isnull=True).update(resolved_at=timezone.now(), resolution=DeadLetter.Resolution.RETRIED):
            raise NotFound(f"job {job_id} is not in the dead-letter queue")
        new, _ = enqueue(type=old.type, payload=old.payload, owner=old.owner, priority=old.priority, queue=old.queue, group_ref=old.group_ref, attempts=old.max_attempts)
        Job.objects.filter(pk=new.id).update(retry_of=old)
        DeadLetter.objects.filter(job_id=old.id).update(retry_job=new)
        audit.record(actor=actor or user, action="dlq_retry", queue=old.queue, job_ids=[old.id, new.id], source=source)
    return new


def discard_dead_letters(job_ids: Sequence[str], *, actor: Any, source: str = "admin") -> int:
    """Mark dead letters as reviewed and discarded; the failed jobs stay for the record."""
    with transaction.atomic():
        n = DeadLetter.objects.filter(job_id__in=list(job_ids), resolved_at__isnull=True).update(resolved_at=timezone.now(), resolution=DeadLetter.Resolution.DISCARDED)
        audit.record(actor=actor, action="dlq_discard", job_ids=job_ids, source=source)
    return n

