"""The engine's hand-built SQL for PostgreSQL: a transition as one statement, and COPY for bulk enqueue.

jobs.engine.states decides what may move; this module only says it to PostgreSQL in fewer round trips.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

from django.db import connection, transaction
from django.db.models import Field


#: Whether this process's commits skip the wait for the disk (a worker's, between its bootstrap and
#: teardown: `commit_asynchronously`); its enqueues still wait (`durable`).
asynchronous = False
_ASYNC_OPTION = "-c synchronous_commit=off"


def commit_asynchronously(on: bool = True) -> None:
    """PostgreSQL: this process's commits stop (or start again) waiting for their WAL to reach the disk.

    For a worker's claims, completions, failures and heartbeats. A PostgreSQL crash (not a restart:
    a clean shutdown flushes the WAL) loses the latest of them, never one before a commit that
    survives (WAL is replayed in order), and at-least-once puts each right: a lost claim leaves the
    job waiting, and the scheduler's reconcile hands it over again; a lost completion or failure
    leaves it active for a worker that has moved on, and the scheduler puts it back
    (scheduler.recover_orphans), so it runs once more. Every enqueue still waits (`durable`).
    """
    global asynchronous
    from django.db import connections

    conn = connections["default"]
    if conn.vendor != "postgresql":
        return
    options = conn.settings_dict.setdefault("OPTIONS", {})
    rest = options.get("options", "").replace(_ASYNC_OPTION, "").strip()
    if on:
        options["options"] = f"{rest} {_ASYNC_OPTION}".strip()  # the connections this process makes from now on
    elif rest:
        options["options"] = rest
    else:
        options.pop("options", None)
    asynchronous = on
    if conn.connection is not None and conn.is_usable():  # and the one it has
        with conn.cursor() as cursor:
            cursor.execute(f"SET synchronous_commit TO {'off' if on else 'on'}")


def durable() -> None:
    """In a process that commits asynchronously, make the current transaction's commit wait for the disk (an enqueue's)."""
    if asynchronous and connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO on")


@dataclass(frozen=True)
class Moved:
    """A move that happened: the moved row's `returning` fields, its event's id, and what hooks must wait for it."""

    row: dict[str, Any]
    event_id: int
    blocked: bool
    held: frozenset[str]


def move_one(
    db: str, job_id: str, queue: str, current: str, target: str, message: str, data: dict[str, Any] | None,
    only_if: dict[str, Any] | None, returning: tuple[str, ...], fields: dict[str, Any], now: Any,
    *, delivered: bool = True, mark: Sequence[int] = (),
) -> Moved | None:
    """PostgreSQL: the conditional UPDATE and the event INSERT as one statement (a data-modifying CTE).

    One round trip and, outside a caller's transaction, one implicit commit instead of
    BEGIN / UPDATE / INSERT / COMMIT; a job worker makes two of these per job. None if no row moved.
    The same statement marks `mark` (events whose hooks ran) delivered and, for an event that hooks
    consume (`delivered=False`), tells whether an earlier change of the job has not reached its
    hooks yet (`blocked`: the outbox leaves this one to its sweep, to keep hooks in order) and which
    hooks have an open delivery of the job (`held`: this change queues behind it for them).
    """
    from django.db import connections

    from jobs.models import HookDelivery, Job, JobEvent

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
    carried = ["id", "type", "group_ref", "owner_id"]
    columns = ", ".join(qn(c) for c in dict.fromkeys([*carried, *(str(f.column) for f in out)]))
    picked = ", ".join(f"moved.{qn(str(f.column))}" for f in out)
    ev, hd = qn(JobEvent._meta.db_table), qn(HookDelivery._meta.db_table)
    ctes = [
        f"moved AS ({update_sql} RETURNING {columns})",
        f"ins AS (INSERT INTO {ev} (job_id, queue, type, group_ref, owner_id, from_status, to_status, message, data, at, delivered) "
        f"SELECT id, %s, type, group_ref, owner_id, %s, %s, %s, %s, %s, %s FROM moved RETURNING id)",
    ]
    if mark:
        ctes.append(f"marked AS (UPDATE {ev} SET delivered = true WHERE id = ANY(%s) AND NOT delivered)")
    waits = (
        f"EXISTS (SELECT 1 FROM {ev} e WHERE e.job_id = moved.id AND NOT e.delivered AND e.id <> ALL(%s)), "
        f"ARRAY(SELECT DISTINCT d.consumer FROM {hd} d WHERE d.job_id = moved.id AND d.done_at IS NULL)"
        if not delivered else "false, ARRAY[]::varchar[]"
    )
    sql = f"WITH {', '.join(ctes)} SELECT (SELECT id FROM ins), {waits}{', ' + picked if picked else ''} FROM moved"
    jsonb = JobEvent._meta.get_field("data").get_db_prep_save(data or {}, conn)
    at = JobEvent._meta.get_field("at").get_db_prep_save(now, conn)
    params: list[Any] = [*update_params, queue, current, target, message[:1000], jsonb, at, delivered]
    if mark:
        params.append(list(mark))
    if not delivered:
        params.append(list(mark))
    # Django's cursor, so the statement shows in assertNumQueries and execute wrappers. Measured and
    # left out: server-side binding with prepared statements (no gain here, and it breaks poolers).
    with transaction.mark_for_rollback_on_error(using=db), conn.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    if found is None:
        return None
    row = {}
    for name, f, value in zip(returning, out, found[3:]):
        for convert in f.get_db_converters(conn):
            value = convert(value, None, conn)
        row[name] = value
    return Moved(row=row, event_id=int(found[0]), blocked=bool(found[1]), held=frozenset(found[2] or ()))


def mark_delivered(ids: Sequence[int]) -> None:
    """Mark events delivered: on PostgreSQL one statement with the ids as one array, not one parameter each."""
    from jobs.models import JobEvent

    if connection.vendor != "postgresql":
        JobEvent.objects.filter(id__in=list(ids), delivered=False).update(delivered=True)
        return
    table = connection.ops.quote_name(JobEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET delivered = true WHERE id = ANY(%s) AND NOT delivered", [list(ids)])


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


def copy_rows(model: Any, objs: Sequence[Any]) -> None:
    """PostgreSQL COPY of fully built instances; an auto id is taken from its sequence first and set on them.

    bulk_create prepares every value of every row in Python and sends them as arrays; COPY streams
    the rows, which makes a 10,000-job enqueue_many about twice as fast. The values are the
    instances' own, with JSON fields adapted as Django adapts them.
    """
    if not objs:
        return
    pk = model._meta.pk
    if pk.get_internal_type() in ("AutoField", "BigAutoField") and any(obj.pk is None for obj in objs):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)", [model._meta.db_table, pk.column, len(objs)]
            )
            for obj, (value,) in zip(objs, cursor.fetchall()):
                obj.pk = value
    fields = list(model._meta.concrete_fields)
    json_fields = {f.attname: f for f in fields if f.get_internal_type() == "JSONField"}
    qn = connection.ops.quote_name
    sql = f"COPY {qn(model._meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) FROM STDIN"
    attnames = [f.attname for f in fields]
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.cursor() as cursor, cursor.copy(sql) as copy:
        for obj in objs:
            row = [getattr(obj, a) for a in attnames]
            for i, a in enumerate(attnames):
                if a in json_fields:
                    row[i] = json_fields[a].get_db_prep_save(row[i], connection)
            copy.write_row(row)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
