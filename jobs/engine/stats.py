"""Per-queue counts without counting the jobs table: folded counts plus the events not yet folded.

Every status change writes a JobEvent (from -> to), so the number of jobs in a status is the
folded count (QueueCount) plus the net of the unfolded events. `fold()` marks events folded and adds
them to QueueCount, and to the per-minute history (jobs.engine.rollups), in one transaction; an event whose transaction has not committed yet is not
visible to it and stays unfolded until a later fold, however long that transaction stays open.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Iterable

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from jobs.engine import rollups
from jobs.engine.states import Status
from jobs.models import HookDelivery, JobEvent, QueueCount

#: Events younger than this are left for the next fold: reads sum a short tail, folds touch fewer rows twice.
FOLD_LAG = 5.0
FOLD_BATCH = 20000
STATUSES = [s.value for s in Status]


def _net(rows: Iterable[tuple[str, str | None, str | None]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for queue, from_status, to_status in rows:
        if from_status:
            out[queue][from_status] -= 1
        if to_status:
            out[queue][to_status] += 1
    return out


def counts() -> dict[str, dict[str, int]]:
    """queue -> status -> number of jobs, read in one statement (one snapshot, so a fold never counts twice)."""
    qn = connection.ops.quote_name
    ev, qc = qn(JobEvent._meta.db_table), qn(QueueCount._meta.db_table)
    sql = (
        f"SELECT queue, status, SUM(n) FROM ("
        f"SELECT queue, status, {qn('count')} AS n FROM {qc} "
        f"UNION ALL SELECT queue, to_status, COUNT(*) FROM {ev} WHERE folded = %s AND to_status IS NOT NULL GROUP BY queue, to_status "
        f"UNION ALL SELECT queue, from_status, -COUNT(*) FROM {ev} WHERE folded = %s AND from_status IS NOT NULL GROUP BY queue, from_status"
        f") t GROUP BY queue, status"
    )
    out: dict[str, dict[str, int]] = defaultdict(lambda: {s: 0 for s in STATUSES})
    with connection.cursor() as cursor:
        cursor.execute(sql, [False, False])
        for queue, status, n in cursor.fetchall():
            out[queue][status] = int(n)
    return {q: dict(v) for q, v in out.items()}


def fold(*, lag: float = FOLD_LAG, batch: int = FOLD_BATCH) -> int:
    """Add unfolded events older than `lag` seconds to QueueCount and mark them folded; returns how many."""
    qn = connection.ops.quote_name
    ev = qn(JobEvent._meta.db_table)
    lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    sql = (
        f"UPDATE {ev} SET folded = %s WHERE id IN ("
        f"SELECT id FROM {ev} WHERE folded = %s AND at < %s ORDER BY id LIMIT %s{lock}"
        f") RETURNING id, queue, from_status, to_status, at"
    )
    cutoff = timezone.now() - timedelta(seconds=lag)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [True, False, JobEvent._meta.get_field("at").get_db_prep_save(cutoff, connection), batch])
        rows = cursor.fetchall()
        for queue, deltas in _net((q, f, t) for _, q, f, t, _ in rows).items():
            for status, delta in deltas.items():
                if delta:
                    QueueCount.objects.get_or_create(queue=queue, status=status)
                    QueueCount.objects.filter(queue=queue, status=status).update(count=F("count") + delta)
        rollups.record(rows)
    return len(rows)


def prune_events(*, batch: int = 10000) -> int:
    """Delete the events of removed jobs once the fold has counted them and their hooks have had them.

    A job's events are its history and live as long as the job; nothing else is pruned.
    """
    removed = list(JobEvent.objects.filter(folded=True, to_status__isnull=True).values_list("job_id", flat=True)[:batch])
    if not removed:
        return 0
    held = set(HookDelivery.objects.filter(job_id__in=removed, done_at__isnull=True).values_list("job_id", flat=True))
    held |= set(JobEvent.objects.filter(job_id__in=removed).filter(Q(folded=False) | Q(delivered=False)).values_list("job_id", flat=True))
    gone = [j for j in removed if j not in held]
    return JobEvent.objects.filter(job_id__in=gone).delete()[0] if gone else 0
