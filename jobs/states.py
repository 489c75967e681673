"""The one job state machine: states, allowed moves, and the only code that writes a job's status."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.db import models, transaction
from django.db.models import Field
from django.utils import timezone

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
        row = _move_one(db, job_id, queue, sources[0], target, message, data, only_if, returning, fields, now)
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


def _move_one(
    db: str, job_id: str, queue: str, current: str, target: str, message: str, data: dict[str, Any] | None,
    only_if: dict[str, Any] | None, returning: tuple[str, ...], fields: dict[str, Any], now: Any,
) -> dict[str, Any] | None:
    """PostgreSQL: the conditional UPDATE and the event INSERT as one statement (a data-modifying CTE).

    One round trip and, outside a caller's transaction, one implicit commit instead of
    BEGIN / UPDATE / INSERT / COMMIT; a job worker makes two of these per job. None if no row moved.
    """
    from django.db import connections

    from jobs.models import Job, JobEvent

    conn = connections[db]
    qn = conn.ops.quote_name
    built = _update_sql(conn, {"status": target, **fields}, {"id": job_id, "status": current, **(only_if or {})})
    if built is None:
        from django.db.models.sql import UpdateQuery

        query: Any = Job.objects.filter(pk=job_id, status=current, **(only_if or {})).query.chain(UpdateQuery)
        query.add_update_values({"status": target, **fields})
        built = query.get_compiler(db).as_sql()
    update_sql, update_params = built
    out = [_job_fields()[1][name] for name in returning]
    ev = JobEvent._meta
    columns = ", ".join(["id", *(qn(str(f.column)) for f in out)])
    sql = (
        f"WITH moved AS ({update_sql} RETURNING {columns}), "
        f"ev AS (INSERT INTO {qn(ev.db_table)} (job_id, queue, from_status, to_status, message, data, at) "
        f"SELECT id, %s, %s, %s, %s, %s, %s FROM moved) "
        f"SELECT {columns} FROM moved"
    )
    params = (
        *update_params, queue, current, target, message[:1000],
        ev.get_field("data").get_db_prep_save(data or {}, conn), ev.get_field("at").get_db_prep_save(now, conn),
    )
    # Django's cursor, so the statement shows in assertNumQueries and execute wrappers. Measured and
    # left out: server-side binding with prepared statements (no gain here, and it breaks poolers).
    with transaction.mark_for_rollback_on_error(using=db), conn.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    if found is None:
        return None
    row = {}
    for name, f, value in zip(returning, out, found[1:]):
        for convert in f.get_db_converters(conn):
            value = convert(value, None, conn)
        row[name] = value
    return row


def _update_sql(conn: Any, values: dict[str, Any], where: dict[str, Any]) -> tuple[str, list[Any]] | None:
    """The conditional UPDATE built directly (Django's compiler costs more than the statement itself).

    Handles plain values and `F(name) +/- constant`; None for anything else (the caller then uses Django's).
    """
    from django.db.models import F, Value
    from django.db.models.expressions import CombinedExpression

    from jobs.models import Job

    by_name, qn = _job_fields()[0], conn.ops.quote_name
    sets: list[str] = []
    params: list[Any] = []
    for name, value in values.items():
        f = by_name.get(name)
        if f is None or f.is_relation:
            return None
        if isinstance(value, CombinedExpression):
            lhs, rhs = value.lhs, value.rhs
            source = by_name.get(getattr(lhs, "name", ""))
            if not (isinstance(lhs, F) and source is not None and isinstance(rhs, Value) and value.connector in ("+", "-")):
                return None
            sets.append(f"{qn(f.column)} = {qn(source.column)} {value.connector} %s")
            params.append(rhs.value)
        elif hasattr(value, "resolve_expression"):
            return None
        else:
            sets.append(f"{qn(f.column)} = %s")
            params.append(f.get_db_prep_save(value, conn))
    conditions: list[str] = []
    for name, value in where.items():
        f = by_name.get(name)
        if f is None or f.is_relation or value is None or hasattr(value, "resolve_expression"):
            return None
        conditions.append(f"{qn(f.column)} = %s")
        params.append(f.get_db_prep_save(value, conn))
    return f"UPDATE {qn(Job._meta.db_table)} SET {', '.join(sets)} WHERE {' AND '.join(conditions)}", params


@lru_cache(maxsize=1)
def _job_fields() -> tuple[dict[str, Field[Any, Any]], dict[str, Field[Any, Any]]]:
    """Job's concrete fields by name and by attname (owner -> owner_id)."""
    from jobs.models import Job

    fields = Job._meta.concrete_fields
    return {f.name: f for f in fields}, {f.attname: f for f in fields}


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
