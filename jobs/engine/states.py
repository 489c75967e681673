"""The one job state machine: states, allowed moves, and the only code that writes a job's status."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from jobs.engine import sql
from jobs.exceptions import InvalidTransition


class Status(models.TextChoices):
    WAITING = "waiting"
    DELAYED = "delayed"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})
PENDING = frozenset({Status.WAITING, Status.DELAYED})

#: target -> the statuses it may be reached from. A new job starts waiting or delayed.
ALLOWED: dict[Status, frozenset[Status]] = {
    Status.WAITING: frozenset({Status.DELAYED, Status.ACTIVE, Status.FAILED, Status.CANCELLED}),
    Status.DELAYED: frozenset({Status.ACTIVE}),
    Status.ACTIVE: frozenset({Status.WAITING}),
    Status.COMPLETED: frozenset({Status.ACTIVE}),
    Status.FAILED: frozenset({Status.ACTIVE, Status.WAITING, Status.DELAYED}),
    Status.CANCELLED: frozenset({Status.WAITING, Status.DELAYED, Status.ACTIVE}),
}
INITIAL = frozenset({Status.WAITING, Status.DELAYED})


def can_move(current: str | None, target: str) -> bool:
    """Whether the state machine allows `current` -> `target` (None: a job being created)."""
    if current is None:
        return Status(target) in INITIAL
    return Status(current) in ALLOWED[Status(target)]


@dataclass(frozen=True)
class Move:
    """A move that happened: the status it left, its event, whether the job has an earlier change that
    has not reached its hooks yet (`blocked`: the outbox leaves this one to its sweep), and the hooks
    with an open delivery of the job (`held`: for them this change queues behind it)."""

    previous: str
    event_id: int
    blocked: bool
    held: frozenset[str]
    row: dict[str, Any]

    def waits(self, job_id: str) -> tuple[tuple[str, ...], dict[str, set[str]]]:
        """outbox.deliver's `blocked` and `held` for this move's change of `job_id`."""
        return ((job_id,) if self.blocked else ()), {job_id: set(self.held)}


def move(
    job_id: str,
    *,
    queue: str,
    source: str | tuple[str, ...] | frozenset[str],
    target: str,
    message: str = "",
    data: dict[str, Any] | None = None,
    only_if: dict[str, Any] | None = None,
    returning: tuple[str, ...] = (),
    **fields: Any,
) -> Move:
    """Move one job from `source` to `target` if it is still there, and record a JobEvent.

    The UPDATE is conditional on the current status (and `only_if`), so of two writers only one
    can win; the other gets InvalidTransition. With several possible sources the row is locked
    and read first so the event records the exact status it left. `returning` names fields
    (attnames) of the moved row to read back in the same statement. A move that hooks consume
    writes its event undelivered (jobs.engine.outbox); the statement also marks the events whose
    hooks this process has run since its last statement.
    """
    from django.db import connections

    from jobs.engine import outbox
    from jobs.models import Job

    sources = (source,) if isinstance(source, str) else tuple(source)
    for s in sources:
        if not can_move(s, target):
            raise InvalidTransition(job_id, s, target)
    now = timezone.now()
    fields["updated_at"] = now
    db = Job.objects.db
    mark = outbox.take_pending()
    try:
        if len(sources) == 1 and connections[db].vendor == "postgresql":
            hook = outbox.event_name(sources[0], target) is not None
            moved = sql.move_one(db, job_id, queue, sources[0], target, message, data, only_if, returning, fields, now, delivered=not hook, mark=mark)
            if moved is None:
                actual = Job.objects.filter(pk=job_id).values_list("status", flat=True).first()
                raise InvalidTransition(job_id, actual, target)
            return Move(previous=sources[0], event_id=moved.event_id, blocked=moved.blocked, held=moved.held, row=moved.row)
        return _move_orm(job_id, queue, sources, target, message, data, only_if, returning, fields, now, mark)
    except BaseException:
        outbox.give_back(mark)
        raise


@dataclass(frozen=True)
class Step:
    """One move of move_chain: move()'s arguments, from one source."""

    job_id: str
    queue: str
    source: str
    target: str
    message: str = ""
    data: dict[str, Any] | None = None
    only_if: dict[str, Any] | None = None
    returning: tuple[str, ...] = ()
    fields: dict[str, Any] | None = None


def can_chain() -> bool:
    """Whether move_chain can send several moves in one round trip here (PostgreSQL)."""
    from django.db import connections

    from jobs.models import Job

    return connections[Job.objects.db].vendor == "postgresql"


def move_chain(steps: list[Step]) -> list[Move | None]:
    """PostgreSQL: move() for each step, sent in one round trip and committed together; None for a step
    whose job was no longer in its source (where move() raises InvalidTransition). A worker completes
    one job and claims the next this way."""
    from jobs.engine import outbox
    from jobs.models import Job

    for step in steps:
        if not can_move(step.source, step.target):
            raise InvalidTransition(step.job_id, step.source, step.target)
    now = timezone.now()
    mark = outbox.take_pending()
    specs = []
    for step in steps:
        hook = outbox.event_name(step.source, step.target) is not None
        specs.append(sql.MoveSql(
            step.job_id, step.queue, step.source, step.target, step.message, step.data, step.only_if, step.returning,
            {**(step.fields or {}), "updated_at": now}, now, not hook, tuple(mark),  # one marking; every move's waits skip them
        ))
    try:
        moved = sql.move_chain(Job.objects.db, specs)
    except BaseException:
        outbox.give_back(mark)
        raise
    return [
        None if m is None else Move(previous=step.source, event_id=m.event_id, blocked=m.blocked, held=m.held, row=m.row)
        for step, m in zip(steps, moved)
    ]


@dataclass(frozen=True)
class Many:
    """One set of move_sets: jobs each moved from `source` to `target`, in this order; `data` is each job's event
    data, `fields` what every row gets and `per_job` (JSON fields) a value for each job."""

    job_ids: tuple[str, ...]
    source: str
    target: str
    message: str = ""
    data: tuple[dict[str, Any] | None, ...] = ()
    only_if: dict[str, Any] | None = None
    returning: tuple[str, ...] = ()
    fields: dict[str, Any] | None = None
    per_job: dict[str, tuple[Any, ...]] | None = None


def move_sets(sets: list[Many]) -> list[dict[str, Move]]:
    """PostgreSQL (can_chain): move() for every job of every set, in one statement and one commit, set-based.

    For each set, the jobs that moved and their Move; a job no longer in its source is left out (where
    move() raises InvalidTransition). A worker records a batch's completions and claims its next batch so.
    """
    from jobs.engine import outbox, setsql
    from jobs.models import Job

    for m in sets:
        if not can_move(m.source, m.target):
            raise InvalidTransition(",".join(m.job_ids[:3]), m.source, m.target)
    now = timezone.now()
    mark = outbox.take_pending()
    specs = [
        setsql.SetSql(
            m.job_ids, m.source, m.target, m.message, m.data, m.only_if, m.returning, {**(m.fields or {}), "updated_at": now},
            dict(m.per_job or {}), now, outbox.event_name(m.source, m.target) is None,
        )
        for m in sets
    ]
    try:
        answers = setsql.move_sets(Job.objects.db, specs, mark)
    except BaseException:
        outbox.give_back(mark)
        raise
    return [
        {job_id: Move(previous=m.source, event_id=a.event_id, blocked=a.blocked, held=a.held, row=a.row) for job_id, a in moved.items()}
        for m, moved in zip(sets, answers)
    ]


def _move_orm(
    job_id: str, queue: str, sources: tuple[str, ...], target: str, message: str, data: dict[str, Any] | None,
    only_if: dict[str, Any] | None, returning: tuple[str, ...], fields: dict[str, Any], now: Any, mark: list[int],
) -> Move:
    """move() in a few ORM statements: other databases, and moves from several possible sources."""
    from jobs.engine import outbox
    from jobs.models import HookDelivery, Job, JobEvent

    with transaction.atomic():
        found = Job.objects.select_for_update().filter(pk=job_id).values("status", "type", "group_ref", "owner_id").first()
        current = found["status"] if found else None
        if found is None or current not in sources:
            raise InvalidTransition(job_id, current, target)
        if Job.objects.filter(pk=job_id, status=current, **(only_if or {})).update(status=target, **fields) != 1:
            actual = Job.objects.filter(pk=job_id).values_list("status", flat=True).first()
            raise InvalidTransition(job_id, actual, target)
        hook = outbox.event_name(current, target) is not None
        event = JobEvent.objects.create(
            job_id=job_id, queue=queue, type=found["type"], group_ref=found["group_ref"], owner_id=found["owner_id"],
            from_status=current, to_status=target, message=message[:1000], data=data or {}, at=now, delivered=not hook,
        )
        if mark:
            JobEvent.objects.filter(id__in=mark, delivered=False).update(delivered=True)
        blocked = hook and JobEvent.objects.filter(job_id=job_id, delivered=False).exclude(id__in=[event.id, *mark]).exists()
        held = frozenset(HookDelivery.objects.filter(job_id=job_id, done_at__isnull=True).values_list("consumer", flat=True)) if hook else frozenset()
        row = Job.objects.filter(pk=job_id).values(*returning).get() if returning else {}
    return Move(previous=current, event_id=event.id, blocked=blocked, held=held, row=row)


def transition_many(rows: list[tuple[str, str]], *, source: str, target: str, message: str = "", **fields: Any) -> list[str]:
    """Move many jobs (id, queue) from one status to another in one statement, with their events; returns the ids moved."""
    return [e.job_id for e in transition_many_events(rows, source=source, target=target, message=message, **fields)]


def transition_many_events(rows: list[tuple[str, str]], *, source: str, target: str, message: str = "", **fields: Any) -> list[Any]:
    """Move many jobs (id, queue) from one status to another in one statement; returns the events written (with ids).

    Only rows still in `source` move. Used for bulk moves such as promoting due delayed jobs.
    Must run inside a transaction holding the rows' locks.
    """
    from jobs.engine import outbox
    from jobs.models import Job, JobEvent

    if not can_move(source, target):
        raise InvalidTransition(",".join(i for i, _ in rows[:3]), source, target)
    if not rows:
        return []
    now = timezone.now()
    queues = dict(rows)
    moved = list(Job.objects.filter(pk__in=list(queues), status=source).values_list("id", "type", "group_ref", "owner_id"))
    Job.objects.filter(pk__in=[m[0] for m in moved], status=source).update(status=target, updated_at=now, **fields)
    hook = outbox.event_name(source, target) is not None
    return JobEvent.objects.bulk_create(
        [
            JobEvent(job_id=i, queue=queues[i], type=t, group_ref=g, owner_id=o, from_status=source, to_status=target, message=message, at=now, delivered=not hook)
            for i, t, g, o in moved
        ]
    )
