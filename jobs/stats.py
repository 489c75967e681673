"""Per-queue counts without counting the jobs table: folded counts plus the events since the fold.

Every status change writes a JobEvent (from -> to) in its own transaction, so the count of jobs in a
status is the folded count plus the net of the newer events. The scheduler folds events older than
FOLD_LAG seconds, leaving a short tail that a read sums by primary-key range.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Max, QuerySet
from django.utils import timezone

from jobs.models import JobEvent, QueueCount, StatsWatermark
from jobs.states import Status

#: Events younger than this are left unfolded, so a transaction still in flight is never skipped.
FOLD_LAG = 5.0
STATUSES = [s.value for s in Status]


def _net(events: QuerySet[JobEvent]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in events.values("queue", "from_status", "to_status").annotate(n=Count("id")).order_by():
        if row["from_status"]:
            out[row["queue"]][row["from_status"]] -= row["n"]
        if row["to_status"]:
            out[row["queue"]][row["to_status"]] += row["n"]
    return out



def _watermark() -> int:
    return StatsWatermark.objects.filter(pk=1).values_list("event_id", flat=True).first() or 0


def counts() -> dict[str, dict[str, int]]:
    """queue -> status -> number of jobs.

    The watermark, the folded counts and the newer events are three statements with three
    snapshots: a fold committing between them would count its events twice. A fold always moves
    the watermark, so the read is repeated until the watermark is the same before and after.
    """
    mark = _watermark()
    for _ in range(10):
        out: dict[str, dict[str, int]] = defaultdict(lambda: {s: 0 for s in STATUSES})
        for qc in QueueCount.objects.all():
            out[qc.queue][qc.status] = out[qc.queue].get(qc.status, 0) + qc.count
        for queue, deltas in _net(JobEvent.objects.filter(id__gt=mark)).items():
            for status, n in deltas.items():
                out[queue][status] = out[queue].get(status, 0) + n
        again = _watermark()
        if again == mark:
            break
        mark = again
    return {q: dict(v) for q, v in out.items()}


def fold(*, lag: float = FOLD_LAG) -> int:
    """Fold events older than `lag` seconds into QueueCount; returns how many events were folded."""
    with transaction.atomic():
        mark, _ = StatsWatermark.objects.select_for_update().get_or_create(pk=1)
        upto = JobEvent.objects.filter(id__gt=mark.event_id, at__lt=timezone.now() - timedelta(seconds=lag)).aggregate(m=Max("id"))["m"]
        if not upto:
            return 0
        batch = JobEvent.objects.filter(id__gt=mark.event_id, id__lte=upto)
        n = batch.count()
        for queue, deltas in _net(batch).items():
            for status, delta in deltas.items():
                if delta:
                    row, _ = QueueCount.objects.select_for_update().get_or_create(queue=queue, status=status)
                    row.count += delta
                    row.save(update_fields=["count"])
        mark.event_id = upto
        mark.save(update_fields=["event_id"])
    return n


def prune_events(*, older_than: float = 7 * 24 * 3600, batch: int = 10000) -> int:
    """Delete folded events of removed jobs and folded events older than `older_than` seconds."""
    mark = StatsWatermark.objects.filter(pk=1).values_list("event_id", flat=True).first() or 0
    cutoff = timezone.now() - timedelta(seconds=older_than)
    ids = list(JobEvent.objects.filter(id__lte=mark, to_status__isnull=True).values_list("job_id", flat=True)[:batch])
    n = JobEvent.objects.filter(job_id__in=ids, id__lte=mark).delete()[0] if ids else 0
    old = list(JobEvent.objects.filter(id__lte=mark, at__lt=cutoff).values_list("id", flat=True)[:batch])
    if old:
        n += JobEvent.objects.filter(id__in=old).delete()[0]
    return n
