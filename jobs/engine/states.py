"""The one job state machine: states, allowed moves, and the only code that writes a job's status."""
from __future__ import annotations

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


def transition(
    job_id: str,
    *,
    queue: str,
    source: str | tuple[str, ...] | frozenset[str],
    target: str,
    message: str = "",
    data: dict[str, Any] | None = None,
    only_if: dict[str, Any] | None = None,
    **fields: Any,
) -> str:
    """Move one job from `source` to `target` if it is still there, and record a JobEvent.

    The UPDATE is conditional on the current status (and `only_if`), so of two writers only one
    can win; the other gets InvalidTransition. With several possible sources the row is locked
    and read first so the event records the exact status it left. Returns that status.
    """
    return _transition(job_id, queue, source, target, message, data, only_if, (), fields)[0]


def transition_returning(
    job_id: str,
    *,
    returning: tuple[str, ...],
    queue: str,
    source: str,
    target: str,
    message: str = "",
    data: dict[str, Any] | None = None,
    only_if: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """transition() that also returns the moved row's `returning` fields (attnames), read in the same statement."""
    return _transition(job_id, queue, source, target, message, data, only_if, returning, fields)[1]


def _transition(
    job_id: str,
    queue: str,
    source: str | tuple[str, ...] | frozenset[str],
    target: str,
    message: str,
    data: dict[str, Any] | None,
    only_if: dict[str, Any] | None,
    returning: tuple[str, ...],
    fields: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    from django.db import connections

    from jobs.models import Job, JobEvent

    sources = (source,) if isinstance(source, str) else tuple(source)
    for s in sources:
        if not can_move(s, target):
            raise InvalidTransition(job_id, s, target)
    now = timezone.now()
    fields["updated_at"] = now
    db = Job.objects.db
    if len(sources) == 1 and connections[db].vendor == "postgresql":
        row = sql.move_one(db, job_id, queue, sources[0], target, message, data, only_if, returning, fields, now)
        if row is None:
            actual = Job.objects.filter(pk=job_id).values_list("status", flat=True).first()
            raise InvalidTransition(job_id, actual, target)
        return sources[0], row
    with transaction.atomic():
        if len(sources) == 1:
            current: str | None = sources[0]
        else:
            current = Job.objects.select_for_update().filter(pk=job_id).values_list("status", flat=True).first()
            if current not in sources:
                raise InvalidTransition(job_id, current, target)
        rows = Job.objects.filter(pk=job_id, status=current, **(only_if or {})).update(status=target, **fields)
        if rows != 1:
            actual = Job.objects.filter(pk=job_id).values_list("status", flat=True).first()
            raise InvalidTransition(job_id, actual, target)
        JobEvent.objects.create(
            job_id=job_id,
            queue=queue,
            from_status=current,
            to_status=target,
            message=message[:1000],
            data=data or {},
            at=now,
        )
        row = Job.objects.filter(pk=job_id).values(*returning).get() if returning else {}
    assert current is not None
    return current, row


def transition_many(rows: list[tuple[str, str]], *, source: str, target: str, message: str = "", **fields: Any) -> list[str]:
    """Move many jobs (id, queue) from one status to another in one statement, with their events.

    Only rows still in `source` move; returns the ids that did. Used for bulk moves such as
    promoting due delayed jobs. Must run inside a transaction holding the rows' locks.
    """
    from jobs.models import Job, JobEvent

    if not can_move(source, target):
        raise InvalidTransition(",".join(i for i, _ in rows[:3]), source, target)
    if not rows:
        return []
    now = timezone.now()
    queues = dict(rows)
    moved = list(Job.objects.filter(pk__in=list(queues), status=source).values_list("id", flat=True))
    Job.objects.filter(pk__in=moved, status=source).update(status=target, updated_at=now, **fields)
    JobEvent.objects.bulk_create(
        [JobEvent(job_id=i, queue=queues[i], from_status=source, to_status=target, message=message, at=now) for i in moved]
    )
    return moved
