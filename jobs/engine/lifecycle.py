"""What a worker (and the scheduler's recovery) does to a job row: claim, complete, fail, requeue.

Every write goes through states.move and is conditional on the worker still owning the row,
so a job can never complete twice and a recovered job cannot be completed by a worker back from the dead.
Each move's event carries what the hooks need (the result, the error); the hooks get it through
jobs.engine.outbox once the move has committed.
"""
from __future__ import annotations

import logging
import traceback as tb
from dataclasses import dataclass, field
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Sequence

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from jobs.engine import broker, conf, dbretry, intake, outbox, retry
from jobs.engine.fingerprint import fingerprint
from jobs.engine.hooks import JobChange
from jobs.engine.states import Many, Move, Status, Step, can_chain, move, move_chain, move_sets
from jobs.exceptions import ErrorKind, InvalidTransition, JobError
from jobs.models import DeadLetter, Job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    """The row a worker has claimed, as plain data."""

    id: str
    queue: str
    type: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    priority: int
    owner_id: int | None
    group_ref: str | None
    data: dict[str, Any] = field(default_factory=dict)
    #: When a batch claim went through (its jobs' started_at), for the worker's holding note; None for a claim alone.
    batch_at: datetime | None = None


_CLAIMED_FIELDS = ("queue", "type", "payload", "attempts_made", "max_attempts", "priority", "owner_id", "group_ref")


def _tell(job: Claimed, moved: Move, event: str, status: str, *, progress: int = 0, **data: Any) -> None:
    """After the move commits, the hooks get it (or, when the job has an earlier change still in flight, the sweep does)."""
    change = JobChange.of(job, event, status, progress=progress, event_id=moved.event_id, **data)
    blocked, held = moved.waits(job.id)
    transaction.on_commit(lambda: outbox.deliver([change], blocked=blocked, held=held))


def claim(job_id: str, *, queue: str, worker: str) -> Claimed | None:
    """Move a waiting job to active for `worker`; None if it is no longer waiting (cancelled, taken)."""
    tries = 0

    def write() -> Move | None:
        nonlocal tries
        tries += 1
        now = timezone.now()  # of this try: started_at is when the claim went through (scheduler.recover_orphans)
        try:
            # The row comes back from the claiming statement itself: no SELECT after the claim.
            return move(job_id, returning=_CLAIMED_FIELDS, queue=queue, source=Status.WAITING, target=Status.ACTIVE, **_claim_fields(worker, now))
        except InvalidTransition:
            return None

    moved = dbretry.retrying(write, what=f"claim of job {job_id}")
    return _claim_outcome(job_id, moved, worker=worker, retried=tries > 1)


def _claim_fields(worker: str, now: Any) -> dict[str, Any]:
    """What a claim writes: the worker, the start of this try, one more attempt, progress afresh."""
    return dict(started_at=now, worker_name=worker, attempts_made=F("attempts_made") + 1, progress=0, progress_message="", cancel_requested_at=None)


def _claim_outcome(job_id: str, moved: Move | None, *, worker: str, retried: bool) -> Claimed | None:
    """The claim a move made (its hooks told), or, when the move found nothing after a retry, a claim whose commit
    reached the database but whose answer was lost (the connection broke): the row is ours, its hooks the sweep's."""
    if moved is None:
        row = Job.objects.filter(pk=job_id, status=Status.ACTIVE, worker_name=worker).values(*_CLAIMED_FIELDS).first() if retried else None
        return _claimed(job_id, row) if row is not None else None
    claimed = _claimed(job_id, moved.row)
    _tell(claimed, moved, "started", Status.ACTIVE)
    return claimed


def _claimed(job_id: str, j: dict[str, Any]) -> Claimed:
    return Claimed(
        id=job_id, queue=j["queue"], type=j["type"], payload=j["payload"], attempt=j["attempts_made"],
        max_attempts=j["max_attempts"], priority=j["priority"], owner_id=j["owner_id"], group_ref=j["group_ref"],
    )


def complete(job: Claimed, *, worker: str, result: Any) -> bool:
    """Record success; False if the worker no longer owns the job (recovered or cancelled meanwhile)."""
    try:
        moved = dbretry.retrying(lambda: move(
            job.id, queue=job.queue, source=Status.ACTIVE, target=Status.COMPLETED, only_if={"worker_name": worker},
            data={"result": result, "attempt": job.attempt}, result=result, progress=100, completed_at=timezone.now(),
        ), what=f"completion of job {job.id}")
    except InvalidTransition:
        log.warning("job %s finished on %s but is no longer its job; result dropped", job.id, worker)
        return False
    _tell(job, moved, "completed", Status.COMPLETED, progress=100, result=result, attempt=job.attempt)
    return True


def complete_and_claim(job: Claimed, *, worker: str, result: Any, next_id: str, next_queue: str) -> tuple[bool, Claimed | None]:
    """complete(job) and claim(next_id) in one round trip and one commit (PostgreSQL; elsewhere one after the other).

    Returns whether the completion went through and the next job claimed (None if it was no longer
    waiting). A lost connection is ridden out as each write alone would: the pair is sent again,
    and a claim that had committed is found to be ours.
    """
    if not can_chain():
        return complete(job, worker=worker, result=result), claim(next_id, queue=next_queue, worker=worker)
    tries = 0

    def write() -> list[Move | None]:
        nonlocal tries
        tries += 1
        now = timezone.now()
        return move_chain([
            Step(job.id, job.queue, Status.ACTIVE, Status.COMPLETED, only_if={"worker_name": worker},
                 data={"result": result, "attempt": job.attempt}, fields=dict(result=result, progress=100, completed_at=now)),
            Step(next_id, next_queue, Status.WAITING, Status.ACTIVE, returning=_CLAIMED_FIELDS, fields=_claim_fields(worker, now)),
        ])

    done, claimed_move = dbretry.retrying(write, what=f"completion of job {job.id} and claim of job {next_id}")
    completed = done is not None
    if done is not None:
        _tell(job, done, "completed", Status.COMPLETED, progress=100, result=result, attempt=job.attempt)
    elif tries > 1 and Job.objects.filter(pk=job.id, status=Status.COMPLETED, worker_name=worker).exists():
        completed = True  # committed on an earlier try whose answer was lost; its hooks are the sweep's
    else:
        log.warning("job %s finished on %s but is no longer its job; result dropped", job.id, worker)
    return completed, _claim_outcome(next_id, claimed_move, worker=worker, retried=tries > 1)


def complete_and_claim_many(
    done: Sequence[tuple[Claimed, Any]], *, worker: str, claims: Sequence[tuple[str, str]],
) -> tuple[list[bool], list[Claimed]]:
    """complete() each (job, result) of `done` and claim() each (id, queue) of `claims`, in one statement and one commit.

    A batch's completions and the next batch's claims (PostgreSQL, set-based; elsewhere one write after
    another). Each job gets what complete() or claim() alone would write: the row, its event and its
    hooks. Returns whether each completion went through, and the jobs claimed in the order asked (those
    no longer waiting left out). A lost connection is ridden out as complete_and_claim rides it out.
    """
    if not can_chain():
        claimed = [claim(i, queue=q, worker=worker) for i, q in claims]
        return [complete(j, worker=worker, result=r) for j, r in done], [c for c in claimed if c is not None]
    tries = 0
    stamp = timezone.now()

    def write() -> list[dict[str, Move]]:
        nonlocal tries, stamp
        tries += 1
        stamp = now = timezone.now()
        sets = [
            Many(tuple(j.id for j, _ in done), Status.ACTIVE, Status.COMPLETED, only_if={"worker_name": worker},
                 data=tuple({"result": r, "attempt": j.attempt} for j, r in done), fields=dict(progress=100, completed_at=now),
                 per_job={"result": tuple(r for _, r in done)}),
            Many(tuple(i for i, _ in claims), Status.WAITING, Status.ACTIVE, returning=_CLAIMED_FIELDS, fields=_claim_fields(worker, now)),
        ]
        return move_sets([m for m in sets if m.job_ids])

    answers = dbretry.retrying(write, what=f"completion of {len(done)} jobs and claim of {len(claims)}")
    completions, claim_moves = (answers[0] if done else {}), (answers[-1] if claims else {})
    results = []
    for job, result in done:
        moved = completions.get(job.id)
        if moved is not None:
            _tell(job, moved, "completed", Status.COMPLETED, progress=100, result=result, attempt=job.attempt)
            results.append(True)
            continue
        # Committed on an earlier try whose answer was lost (its hooks are the sweep's), or no longer ours.
        ok = tries > 1 and Job.objects.filter(pk=job.id, status=Status.COMPLETED, worker_name=worker).exists()
        if not ok:
            log.warning("job %s finished on %s but is no longer its job; result dropped", job.id, worker)
        results.append(ok)
    found = (_claim_outcome(job_id, claim_moves.get(job_id), worker=worker, retried=tries > 1) for job_id, _ in claims)
    return results, [replace(c, batch_at=stamp) for c in found if c is not None]


def describe(exc: BaseException) -> tuple[ErrorKind, bool, str, str]:
    """An exception's error kind, retryability, class path and message."""
    if isinstance(exc, JobError):
        kind, retryable = exc.kind, exc.retryable
    else:
        kind, retryable = ErrorKind.TRANSIENT, True
    cls = type(exc)
    return kind, retryable, f"{cls.__module__}.{cls.__qualname__}", str(exc) or cls.__name__


def fail(job: Claimed, *, worker: str | None, exc: BaseException, kind: ErrorKind | None = None, retryable: bool | None = None, trace: str | None = None) -> str:
    """Record a failed attempt: back off and retry if the policy says so, else fail into the dead letters.

    Returns the new status ("delayed" or "failed"), or "" if the worker no longer owned the job.
    """
    k, r, cls_path, message = describe(exc)
    kind = kind or k
    retryable = r if retryable is None else retryable
    queue = conf.get_queue(job.queue)
    decision = retry.decide(
        attempts_made=job.attempt, max_attempts=job.max_attempts, kind=kind, retryable=retryable, backoff=queue.backoff,
        at_least=exc.retry_after if isinstance(exc, JobError) else None,
    )
    trace = trace if trace is not None else "".join(tb.format_exception(exc))
    only_if = {"worker_name": worker} if worker is not None else None
    common: dict[str, Any] = dict(error_kind=kind.value, error_class=cls_path, failed_reason=message, traceback=trace[-20000:])
    now = timezone.now()
    told: dict[str, Any] = {"error": message, "kind": kind.value, "delay": decision.delay, "attempt": job.attempt}

    def write() -> Move:
        if decision.retry:
            return move(
                job.id, queue=job.queue, source=Status.ACTIVE, target=Status.DELAYED, only_if=only_if,
                message=f"attempt {job.attempt} failed ({kind.value}): {message}; retry in {decision.delay:g}s",
                data=told, run_at=now + timedelta(seconds=decision.delay), **common,
            )
        with transaction.atomic():
            moved = move(
                job.id, queue=job.queue, source=Status.ACTIVE, target=Status.FAILED, only_if=only_if,
                message=f"{kind.value}: {message} ({decision.reason})", data=told, completed_at=now, **common,
            )
            put_in_dead_letters(job.id, queue=job.queue, kind=kind.value, reason=message, owner_id=job.owner_id, error_class=cls_path, trace=common["traceback"])
        return moved

    try:
        moved = dbretry.retrying(write, what=f"failure of job {job.id}")
    except InvalidTransition:
        log.warning("job %s failed on %s but is no longer its job", job.id, worker)
        return ""
    status = Status.DELAYED if decision.retry else Status.FAILED
    _tell(job, moved, "retrying" if decision.retry else "failed", status, **told)
    return status


def put_in_dead_letters(job_id: str, *, queue: str, kind: str, reason: str, owner_id: int | None, error_class: str = "", trace: str = "") -> None:
    """Open (or reopen) the job's dead letter, with the fingerprint that groups it with the same error's letters."""
    found = fingerprint(error_class=error_class, message=reason, traceback=trace)
    DeadLetter.objects.update_or_create(
        job_id=job_id,
        defaults=dict(
            queue=queue, error_kind=kind, reason=reason[:5000], owner_id=owner_id, resolved_at=None, resolution="", retry_job=None,
            fingerprint=found.digest, signature=found.signature,
        ),
    )


def cancelled(job: Claimed, *, worker: str | None) -> bool:
    """An active job stopped on an operator's request."""
    only_if = {"worker_name": worker} if worker is not None else None
    try:
        moved = dbretry.retrying(lambda: move(
            job.id, queue=job.queue, source=Status.ACTIVE, target=Status.CANCELLED, only_if=only_if,
            message="stopped on request", data={"error": "cancelled while running", "attempt": job.attempt}, completed_at=timezone.now(),
            error_kind=ErrorKind.CANCELLED.value, failed_reason="cancelled while running",
        ), what=f"cancellation of job {job.id}")
    except InvalidTransition:
        return False
    _tell(job, moved, "cancelled", Status.CANCELLED, error="cancelled while running", attempt=job.attempt)
    return True


def requeue(job: Claimed, *, worker: str, reason: str) -> bool:
    """Give an active job back to the queue without counting the attempt (worker shutting down)."""
    try:
        moved = dbretry.retrying(lambda: move(
            job.id, queue=job.queue, source=Status.ACTIVE, target=Status.WAITING, only_if={"worker_name": worker},
            message=reason, data={"reason": reason}, attempts_made=F("attempts_made") - 1, worker_name="", started_at=None,
        ), what=f"requeue of job {job.id}")
    except InvalidTransition:
        return False
    queue = conf.get_queue(job.queue)
    _tell(job, moved, "waiting", Status.WAITING, reason=reason)
    transaction.on_commit(lambda: intake.hand_over([broker.Carried(job.id, job.queue, job.priority, queue.timeout, job.owner_id)], at_front=True))
    return True


def as_claimed(row: Job) -> Claimed:
    return Claimed(
        id=row.id, queue=row.queue, type=row.type, payload=row.payload, attempt=row.attempts_made,
        max_attempts=row.max_attempts, priority=row.priority, owner_id=row.owner_id, group_ref=row.group_ref,
    )
