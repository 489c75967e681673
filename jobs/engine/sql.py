"""The engine's hand-built SQL for PostgreSQL: a transition as one statement, and COPY for bulk enqueue.

jobs.engine.states decides what may move; this module only says it to PostgreSQL in fewer round trips.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

from django.db import connection, connections, transaction
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
    return move_chain(db, [MoveSql(job_id, queue, current, target, message, data, only_if, returning, fields, now, delivered, tuple(mark))])[0]


@dataclass(frozen=True)
class MoveSql:
    """One move for move_chain: move_one's arguments."""

    job_id: str
    queue: str
    current: str
    target: str
    message: str
    data: dict[str, Any] | None
    only_if: dict[str, Any] | None
    returning: tuple[str, ...]
    fields: dict[str, Any]
    now: Any
    delivered: bool = True
    mark: tuple[int, ...] = ()


def move_chain(db: str, moves: Sequence[MoveSql]) -> list[Moved | None]:
    """PostgreSQL: several moves (each move_one's UPDATE and event INSERT) in one statement: one round trip
    and one commit. A worker records one job's completion and claims the next this way.

    Each move answers as move_one does (None if its row was not in `current`). The statement is
    prepared on its connection (server-side binding; JOBS_PREPARED_STATEMENTS): planning these
    CTEs costs PostgreSQL more than running them. With several moves the data-modifying CTEs
    share one snapshot, so each move must be of another job.
    """
    from django.conf import settings
    from django.db import connections

    conn = connections[db]
    parts = [_move_parts(conn, db, m, f"m{i}_" if len(moves) > 1 else "") for i, m in enumerate(moves)]
    mark = next((m.mark for m in moves if m.mark), ())
    ctes: list[str] = []
    params: list[Any] = []
    for part in parts:
        for sql_text, values in part.ctes:
            ctes.append(sql_text)
            params += values
    if mark:
        ctes.append(f"marked AS ({mark_statement(conn.ops.quote_name(_event_table()))})")
        params.append(list(mark))
    if len(parts) == 1:
        part = parts[0]
        selects = [f"SELECT (SELECT id FROM {part.p}ins), {part.waits}{', ' + part.picked if part.picked else ''} FROM {part.p}moved"]
    else:
        # One row per move that happened, its returned fields as JSON (claims: JSON-safe fields only).
        selects = [
            f"SELECT {i}, (SELECT id FROM {part.p}ins), {part.waits}, {f'to_jsonb({part.p}moved)' if part.out else 'NULL::jsonb'} FROM {part.p}moved"
            for i, part in enumerate(parts)
        ]
    for part in parts:
        params += part.waits_params
    sql = f"WITH {', '.join(ctes)} {' UNION ALL '.join(selects)}"
    answers: list[Moved | None] = [None] * len(moves)
    prepared = settings.JOBS_PREPARED_STATEMENTS and conn.vendor == "postgresql"
    with transaction.mark_for_rollback_on_error(using=db), statement_cursor(conn, prepared) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if len(parts) == 1:
        if rows:
            answers[0] = _moved(conn, moves[0].returning, parts[0].out, rows[0])
        return answers
    for row in rows:
        i, part, move = row[0], parts[row[0]], moves[row[0]]
        fields = json.loads(row[4]) if isinstance(row[4], str) else (row[4] or {})  # Django's psycopg loads jsonb as text
        picked = {name: fields[str(f.column)] for name, f in zip(move.returning, part.out)}  # already Python: no converters
        answers[i] = Moved(row=picked, event_id=int(row[1]), blocked=bool(row[2]), held=frozenset(row[3] or ()))
    return answers


@lru_cache(maxsize=1)
def _prepared_cursor_class() -> Any:
    """A psycopg cursor that binds server-side and prepares every statement it runs (see move_chain)."""
    import psycopg

    class Prepared(psycopg.Cursor):  # type: ignore[type-arg]
        def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None) -> Any:
            return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)

    return Prepared


def statement_cursor(conn: Any, prepared: bool) -> Any:
    """Django's cursor (so the statement counts in assertNumQueries), on a prepared server-binding psycopg cursor if asked."""
    if not prepared:
        return conn.cursor()
    conn.ensure_connection()
    return conn._prepare_cursor(_prepared_cursor_class()(conn.connection))


def _event_table() -> str:
    from jobs.models import JobEvent

    return str(JobEvent._meta.db_table)


def _moved(conn: Any, returning: tuple[str, ...], out: list[Field[Any, Any]], found: Sequence[Any]) -> Moved:
    row = {}
    for name, f, value in zip(returning, out, found[3:]):
        for convert in f.get_db_converters(conn):
            value = convert(value, None, conn)
        row[name] = value
    return Moved(row=row, event_id=int(found[0]), blocked=bool(found[1]), held=frozenset(found[2] or ()))


@dataclass(frozen=True)
class _Parts:
    """One move's pieces of the chained statement: CTEs named with prefix `p`, its waits and what it reads back."""

    p: str
    ctes: list[tuple[str, list[Any]]]
    waits: str
    waits_params: list[Any]
    picked: str
    out: list[Field[Any, Any]]


def _move_parts(conn: Any, db: str, m: MoveSql, p: str) -> _Parts:
    from jobs.models import HookDelivery, Job, JobEvent

    qn = conn.ops.quote_name
    built = _update_sql(conn, {"status": m.target, **m.fields}, {"id": m.job_id, "status": m.current, **(m.only_if or {})})
    if built is None:
        from django.db.models.sql import UpdateQuery

        query: Any = Job.objects.filter(pk=m.job_id, status=m.current, **(m.only_if or {})).query.chain(UpdateQuery)
        query.add_update_values({"status": m.target, **m.fields})
        built = query.get_compiler(db).as_sql()
    update_sql, update_params = built
    out = [job_fields()[1][name] for name in m.returning]
    carried = ["id", "type", "group_ref", "owner_id"]
    columns = ", ".join(qn(c) for c in dict.fromkeys([*carried, *(str(f.column) for f in out)]))
    picked = ", ".join(f"{p}moved.{qn(str(f.column))}" for f in out)
    ev, hd = qn(JobEvent._meta.db_table), qn(HookDelivery._meta.db_table)
    jsonb = JobEvent._meta.get_field("data").get_db_prep_save(m.data or {}, conn)
    at = JobEvent._meta.get_field("at").get_db_prep_save(m.now, conn)
    ctes = [
        (f"{p}moved AS ({update_sql} RETURNING {columns})", list(update_params)),
        (
            f"{p}ins AS (INSERT INTO {ev} (job_id, queue, type, group_ref, owner_id, from_status, to_status, message, data, at, delivered) "
            f"SELECT id, %s, type, group_ref, owner_id, %s, %s, %s, %s, %s, %s FROM {p}moved RETURNING id)",
            [m.queue, m.current, m.target, m.message[:1000], jsonb, at, m.delivered],
        ),
    ]
    if m.delivered:
        return _Parts(p, ctes, "false, ARRAY[]::varchar[]", [], picked, out)
    waits = (
        f"EXISTS (SELECT 1 FROM {ev} e WHERE e.job_id = {p}moved.id AND NOT e.delivered AND e.id <> ALL(%s)), "
        f"ARRAY(SELECT DISTINCT d.consumer FROM {hd} d WHERE d.job_id = {p}moved.id AND d.done_at IS NULL)"
    )
    return _Parts(p, ctes, waits, [list(m.mark)], picked, out)


def mark_statement(table: str) -> str:
    """PostgreSQL: the UPDATE that marks the events whose ids are its one array parameter delivered.

    `NOT delivered` would let the planner use the partial undelivered index, whose leading column is
    the job: looking ids up in it reads the whole index, with the entries of events delivered since
    the last vacuum (5 ms for 16 ids in a burst of jobs). `IS NOT TRUE` (the same for this NOT NULL
    column) does not match that index's condition, so the ids are looked up by the primary key.
    """
    return f"UPDATE {table} SET delivered = true WHERE id = ANY(%s::bigint[]) AND delivered IS NOT TRUE"


def mark_delivered(ids: Sequence[int]) -> None:
    """Mark events delivered: on PostgreSQL one statement with the ids as one array, not one parameter each."""
    from jobs.models import JobEvent

    if connection.vendor != "postgresql":
        JobEvent.objects.filter(id__in=list(ids), delivered=False).update(delivered=True)
        return
    table = connection.ops.quote_name(JobEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(mark_statement(table), [list(ids)])


def _update_sql(conn: Any, values: dict[str, Any], where: dict[str, Any]) -> tuple[str, list[Any]] | None:
    """The conditional UPDATE built directly (Django's compiler costs more than the statement itself).

    Handles plain values and `F(name) +/- constant`; None for anything else (the caller then uses Django's).
    """
    from jobs.models import Job

    built = set_clause(conn, values)
    if built is None:
        return None
    sets, params = built
    by_name, qn = job_fields()[0], conn.ops.quote_name
    conditions: list[str] = []
    for name, value in where.items():
        f = by_name.get(name)
        if f is None or f.is_relation or value is None or hasattr(value, "resolve_expression"):
            return None
        conditions.append(f"{qn(f.column)} = %s")
        params.append(f.get_db_prep_save(value, conn))
    return f"UPDATE {qn(Job._meta.db_table)} SET {sets} WHERE {' AND '.join(conditions)}", params


def set_clause(conn: Any, values: dict[str, Any]) -> tuple[str, list[Any]] | None:
    """`col = %s, ...` of an UPDATE for plain values and `F(name) +/- constant`; None for anything else."""
    from django.db.models import F, Value
    from django.db.models.expressions import CombinedExpression

    by_name, qn = job_fields()[0], conn.ops.quote_name
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
    return ", ".join(sets), params


@lru_cache(maxsize=1)
def job_fields() -> tuple[dict[str, Field[Any, Any]], dict[str, Field[Any, Any]]]:
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
    conn = connections[connection.alias]  # the connection itself: `connection` is a proxy, looked up on each use
    adapt = [(i, json_fields[a]) for i, a in enumerate(attnames) if a in json_fields]
    conn.ensure_connection()
    with conn.wrap_database_errors, conn.connection.cursor() as cursor, cursor.copy(sql) as copy:
        for obj in objs:
            row = [getattr(obj, a) for a in attnames]
            for i, field in adapt:
                row[i] = field.get_db_prep_save(row[i], conn)
            copy.write_row(row)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
