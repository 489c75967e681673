"""Set-based moves on PostgreSQL: many jobs from one status to another as one UPDATE and one event INSERT,
and several such sets in one statement. A process worker records a batch's completions and claims its
next batch this way (jobs.engine.lifecycle.complete_and_claim_many).

jobs.engine.states decides what may move (`states.move_sets`); each moved job gets the row change and
the JobEvent that jobs.engine.sql.move_one would write for it, with the same answers for the outbox.
The statement's text depends only on which sets it carries, not on how many jobs: the ids and
per-job values travel as arrays, so one prepared statement serves every batch size.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from django.db import transaction

from jobs.engine import sql
from jobs.engine.sql import Moved


@dataclass(frozen=True)
class SetSql:
    """One set of move_sets: jobs moved from `current` to `target`, `fields` written to each and `per_job`
    (JSON fields only) a value for each, in the order of `job_ids`; `data` is each job's event data."""

    job_ids: tuple[str, ...]
    current: str
    target: str
    message: str
    data: tuple[dict[str, Any] | None, ...]
    only_if: dict[str, Any] | None
    returning: tuple[str, ...]
    fields: dict[str, Any]
    per_job: dict[str, tuple[Any, ...]]
    now: Any
    delivered: bool = True


class UnsupportedSet(ValueError):
    """A set whose fields the set-based statement cannot write (an expression other than `F(name) +/- constant`)."""


def move_sets(db: str, sets: Sequence[SetSql], mark: Sequence[int] = ()) -> list[dict[str, Moved]]:
    """PostgreSQL: every set's moves in one statement and one commit; for each set, the ids that moved and their Move.

    A job not in its set's `current` status (or failing `only_if`) is left out, as move_one answers None.
    Events are inserted in the order of `job_ids`, so their ids keep the order the worker runs the jobs.
    `mark` (events whose hooks ran) is marked delivered by the same statement.
    """
    from django.conf import settings
    from django.db import connections

    from jobs.models import HookDelivery, Job, JobEvent

    conn = connections[db]
    qn = conn.ops.quote_name
    job_table, ev, hd = qn(Job._meta.db_table), qn(JobEvent._meta.db_table), qn(HookDelivery._meta.db_table)
    by_name, by_attname = sql.job_fields()
    at_field = JobEvent._meta.get_field("at")
    ctes: list[str] = []
    params: list[Any] = []
    selects: list[str] = []
    select_params: list[Any] = []
    outs = []
    for i, s in enumerate(sets):
        p = f"s{i}_"
        built = sql.set_clause(conn, {"status": s.target, **s.fields})
        if built is None:
            raise UnsupportedSet(f"cannot write {sorted(s.fields)} set-based")
        sets_sql, set_params = built
        per = list(s.per_job)
        for name in per:
            if by_name[name].get_internal_type() != "JSONField":
                raise UnsupportedSet(f"per-job values of {name!r}: only JSON fields travel as arrays")
        assigns = "".join(f", {qn(str(by_name[name].column))} = v.v{k}::jsonb" for k, name in enumerate(per))
        # `id = ANY(ids)` beside the join: a generic plan (the statement is prepared) knows neither the ids'
        # count nor the status's share of the table, and with the join alone it may scan the table for
        # the status and join every waiting row; this condition always has the primary key's index path.
        where = [f"j.{qn('id')} = v.v_id", f"j.{qn('id')} = ANY(%s::varchar[])", f"j.{qn('status')} = %s"]
        where_params: list[Any] = [list(s.job_ids), s.current]
        for name, value in (s.only_if or {}).items():
            where.append(f"j.{qn(str(by_name[name].column))} = %s")
            where_params.append(by_name[name].get_db_prep_save(value, conn))
        out = [by_attname[name] for name in s.returning]
        outs.append(out)
        columns: dict[str, None] = dict.fromkeys(["id", "queue", "type", "group_ref", "owner_id", *(str(f.column) for f in out)])
        arrays = ", ".join(["%s::varchar[]", "%s::text[]", *("%s::text[]" for _ in per)])
        names = ", ".join(["v_id", "v_data", *(f"v{k}" for k in range(len(per))), "v_ord"])
        ctes.append(
            f"{p}moved AS (UPDATE {job_table} AS j SET {sets_sql}{assigns} FROM unnest({arrays}) WITH ORDINALITY AS v({names}) "
            f"WHERE {' AND '.join(where)} RETURNING {', '.join(f'j.{qn(c)}' for c in columns)}, v.v_data, v.v_ord)"
        )
        params += [*set_params, list(s.job_ids), [json.dumps(d or {}) for d in s.data] if s.data else ["{}"] * len(s.job_ids)]
        params += [[None if v is None else json.dumps(v) for v in s.per_job[name]] for name in per]
        params += where_params
        ctes.append(
            f"{p}ins AS (INSERT INTO {ev} (job_id, queue, type, group_ref, owner_id, from_status, to_status, message, data, at, delivered) "
            f"SELECT id, queue, type, group_ref, owner_id, %s, %s, %s, v_data::jsonb, %s, %s FROM {p}moved ORDER BY v_ord RETURNING id, job_id)"
        )
        params += [s.current, s.target, s.message[:1000], at_field.get_db_prep_save(s.now, conn), s.delivered]
        if s.delivered:
            waits = "false, ARRAY[]::varchar[]"
        else:
            waits = (
                f"EXISTS (SELECT 1 FROM {ev} x WHERE x.job_id = m.id AND NOT x.delivered AND x.id <> ALL(%s)), "
                f"ARRAY(SELECT DISTINCT d.consumer FROM {hd} d WHERE d.job_id = m.id AND d.done_at IS NULL)::varchar[]"
            )
            select_params.append(list(mark))
        selects.append(f"SELECT {i}, m.id, e.id, {waits}, to_jsonb(m) FROM {p}moved m JOIN {p}ins e ON e.job_id = m.id")
    if mark:
        ctes.append(f"marked AS ({sql.mark_statement(ev)})")
        params.append(list(mark))
    statement = f"WITH {', '.join(ctes)} {' UNION ALL '.join(selects)}"
    prepared = settings.JOBS_PREPARED_STATEMENTS and conn.vendor == "postgresql"
    with transaction.mark_for_rollback_on_error(using=db), sql.statement_cursor(conn, prepared) as cursor:
        cursor.execute(statement, params + select_params)
        rows = cursor.fetchall()
    answers: list[dict[str, Moved]] = [{} for _ in sets]
    for i, job_id, event_id, blocked, held, found in rows:
        found = json.loads(found) if isinstance(found, str) else found  # Django's psycopg loads jsonb as text
        row = {name: found[str(f.column)] for name, f in zip(sets[i].returning, outs[i])}  # JSON-safe fields only
        answers[i][job_id] = Moved(row=row, event_id=int(event_id), blocked=bool(blocked), held=frozenset(held or ()))
    return answers
