"""Per-queue history: per-minute rollups of the job events, compacted to hours, and cumulative latencies.

`record()` runs inside the stats fold's transaction (jobs.engine.stats.fold) on the events that fold
marks folded, so each event is counted once however many schedulers fold at once. For each event it
counts what happened (started, completed, failed, retried, cancelled) in the event's minute and, for a
start or an end, a duration: the wait (a start minus the moment the job last became waiting) and the
run (an end minus the start), read from the job's previous event through the jobevent_job index.

Durations go into log-bucket histograms: bucket i holds the values in (B(i-1), B(i)] where
B(i) = 1 ms * 2^(i/4), so a quantile read from the buckets is within 19% of the true value (its
maximum is kept exactly), and histograms add up exactly: `compact()` folds a day-old minute into its
hour, `prune()` drops what is older than KEEP_DAYS. QueueLatency keeps every duration ever seen, for
Prometheus (`prometheus_buckets()`: its bounds are bucket bounds, so those counts are exact).
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any, Iterable, Mapping, Sequence

from django.db import connection, transaction
from django.utils import timezone

from jobs.engine.states import Status
from jobs.models import JobEvent, QueueLatency, QueueRollup

MINUTE = 60
HOUR = 3600
#: Minutes are compacted to hours once older than this.
MINUTES_KEPT = timedelta(days=1)
KEEP_DAYS = 30
#: Bucket bounds: 1 ms * 2^(i/4); 0 holds everything up to 1 ms, the last everything above ~49 days.
BASE = 0.001
PER_OCTAVE = 4
LAST_BUCKET = 4 * 32
#: Prometheus `le` bounds: every other power of two of the base, which are bucket bounds.
PROMETHEUS_BOUNDS = [BASE * 4**k for k in range(12)]  # 1 ms .. 4194 s
COUNTS = ("started", "completed", "failed", "retried", "cancelled")
LOOKUP_CHUNK = 1000

Histogram = dict[str, int]  # bucket index (as a JSON key) -> count


def bucket_of(seconds: float) -> int:
    """The bucket holding a duration of `seconds`."""
    if seconds <= BASE:
        return 0
    return min(LAST_BUCKET, math.ceil(PER_OCTAVE * math.log2(seconds / BASE) - 1e-9))


def bound(index: int) -> float:
    """The upper bound of bucket `index`, in seconds."""
    return BASE * 2 ** (index / PER_OCTAVE)


def merge(into: Histogram, other: Mapping[str, int]) -> Histogram:
    for key, n in other.items():
        into[key] = into.get(key, 0) + int(n)
    return into


def quantile(hist: Mapping[str, int], q: float, *, top: float | None = None) -> float | None:
    """The `q` quantile (0..1) of a histogram, as its bucket's upper bound (capped at `top`, the exact max)."""
    total = sum(hist.values())
    if not total:
        return None
    rank = q * total
    seen = 0
    for key in sorted(hist, key=int):
        seen += hist[key]
        if seen >= rank:
            value = bound(int(key))
            return min(value, top) if top is not None else value
    return top


def prometheus_buckets(hist: Mapping[str, int]) -> list[tuple[str, int]]:
    """Cumulative (le, count) pairs for a Prometheus histogram, ending with +Inf."""
    out: list[tuple[str, int]] = []
    ordered = sorted(((int(k), n) for k, n in hist.items()))
    seen, i = 0, 0
    for le in PROMETHEUS_BOUNDS:
        limit = bucket_of(le)
        while i < len(ordered) and ordered[i][0] <= limit:
            seen += ordered[i][1]
            i += 1
        out.append((repr(round(le, 6)), seen))
    out.append(("+Inf", sum(n for _, n in ordered)))
    return out


@dataclass
class Tally:
    """One queue's minute (or hour) being added up."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    wait: Histogram = field(default_factory=dict)
    run: Histogram = field(default_factory=dict)
    wait_max: float = 0.0
    run_max: float = 0.0

    def add(self, kind: str, seconds: float) -> None:
        hist = self.wait if kind == "wait" else self.run
        key = str(bucket_of(seconds))
        hist[key] = hist.get(key, 0) + 1
        if kind == "wait":
            self.wait_max = max(self.wait_max, seconds)
        else:
            self.run_max = max(self.run_max, seconds)

    def add_row(self, row: QueueRollup) -> None:
        for name in COUNTS:
            self.counts[name] += getattr(row, name)
        merge(self.wait, row.wait)
        merge(self.run, row.run)
        self.wait_max = max(self.wait_max, row.wait_max)
        self.run_max = max(self.run_max, row.run_max)


def _kind(from_status: str | None, to_status: str | None) -> tuple[str | None, str | None]:
    """(count name, duration kind) of an event."""
    if to_status == Status.ACTIVE:
        return "started", "wait"
    if from_status != Status.ACTIVE:
        return ("cancelled", None) if to_status == Status.CANCELLED else (None, None)
    if to_status == Status.COMPLETED:
        return "completed", "run"
    if to_status == Status.FAILED:
        return "failed", "run"
    if to_status in (Status.WAITING, Status.DELAYED):
        return "retried", "run"
    if to_status == Status.CANCELLED:
        return "cancelled", "run"
    return None, None


def _previous_at(ids: Sequence[int]) -> dict[int, datetime]:
    """For each event id: when its job last became waiting (for a start) or last started (for an end)."""
    qn = connection.ops.quote_name
    ev = qn(JobEvent._meta.db_table)
    out: dict[int, datetime] = {}
    for lo in range(0, len(ids), LOOKUP_CHUNK):
        chunk = list(ids[lo : lo + LOOKUP_CHUNK])
        marks = ", ".join(["%s"] * len(chunk))
        sql = (
            f"SELECT e.id, (SELECT p.at FROM {ev} p WHERE p.job_id = e.job_id AND p.id < e.id "
            f"AND p.to_status = CASE WHEN e.to_status = %s THEN %s ELSE %s END ORDER BY p.id DESC LIMIT 1) "
            f"FROM {ev} e WHERE e.id IN ({marks})"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [Status.ACTIVE.value, Status.WAITING.value, Status.ACTIVE.value, *chunk])
            for event_id, at in cursor.fetchall():
                if at is not None:
                    out[event_id] = _aware(at)
    return out


def _aware(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite's raw cursor
        value = datetime.fromisoformat(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, dt_timezone.utc)


def _minute(at: datetime, width: int = MINUTE) -> datetime:
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % width, tz=dt_timezone.utc)


def record(events: Iterable[tuple[int, str, str | None, str | None, Any]]) -> int:
    """Add folded events `(id, queue, from_status, to_status, at)` to their minutes and to the latencies.

    Call inside the fold's transaction. Returns how many durations were recorded.
    """
    tallies: dict[tuple[str, datetime], Tally] = defaultdict(Tally)
    timed: list[tuple[int, str, str, datetime, Tally]] = []
    for event_id, queue, from_status, to_status, at in events:
        name, kind = _kind(from_status, to_status)
        if name is None:
            continue
        at = _aware(at)
        tally = tallies[(queue, _minute(at))]
        tally.counts[name] += 1
        if kind:
            timed.append((event_id, queue, kind, at, tally))
    if not tallies:
        return 0
    previous = _previous_at([t[0] for t in timed]) if timed else {}
    totals: dict[tuple[str, str], Tally] = defaultdict(Tally)
    sums: dict[tuple[str, str], float] = defaultdict(float)
    recorded = 0
    for event_id, queue, kind, at, tally in timed:
        since = previous.get(event_id)
        if since is None:
            continue
        seconds = max(0.0, (at - since).total_seconds())
        tally.add(kind, seconds)
        totals[(queue, kind)].add(kind, seconds)
        sums[(queue, kind)] += seconds
        recorded += 1
    _save_rollups(MINUTE, tallies)
    _save_latencies(totals, sums)
    return recorded


def _save_rollups(width: int, tallies: Mapping[tuple[str, datetime], Tally]) -> None:
    """Add `tallies` to their rows: create the missing ones, then lock and add (safe against a concurrent fold)."""
    QueueRollup.objects.bulk_create([QueueRollup(queue=q, start=s, width=width) for q, s in tallies], ignore_conflicts=True)
    starts = {s for _, s in tallies}
    queues = {q for q, _ in tallies}
    rows = QueueRollup.objects.select_for_update().filter(width=width, start__in=starts, queue__in=queues)
    changed = []
    for row in rows:
        tally = tallies.get((row.queue, row.start))
        if tally is None:
            continue
        for name in COUNTS:
            setattr(row, name, getattr(row, name) + tally.counts[name])
        row.wait = merge(dict(row.wait), tally.wait)
        row.run = merge(dict(row.run), tally.run)
        row.wait_max = max(row.wait_max, tally.wait_max)
        row.run_max = max(row.run_max, tally.run_max)
        changed.append(row)
    QueueRollup.objects.bulk_update(changed, [*COUNTS, "wait", "run", "wait_max", "run_max"])


def _save_latencies(totals: Mapping[tuple[str, str], Tally], sums: Mapping[tuple[str, str], float]) -> None:
    if not totals:
        return
    QueueLatency.objects.bulk_create([QueueLatency(queue=q, kind=k) for q, k in totals], ignore_conflicts=True)
    rows = QueueLatency.objects.select_for_update().filter(queue__in={q for q, _ in totals}, kind__in={k for _, k in totals})
    changed = []
    for row in rows:
        tally = totals.get((row.queue, row.kind))
        if tally is None:
            continue
        hist = tally.wait if row.kind == "wait" else tally.run
        row.buckets = merge(dict(row.buckets), hist)
        row.count += sum(hist.values())
        row.total += sums[(row.queue, row.kind)]
        changed.append(row)
    QueueLatency.objects.bulk_update(changed, ["buckets", "count", "total"])


def compact(*, now: datetime | None = None, batch: int = 5000) -> int:
    """Fold minutes older than MINUTES_KEPT into their hours; returns how many minutes were folded."""
    cutoff = _minute((now or timezone.now()) - MINUTES_KEPT, HOUR)
    with transaction.atomic():
        minutes = list(QueueRollup.objects.select_for_update(skip_locked=True).filter(width=MINUTE, start__lt=cutoff).order_by("start")[:batch])
        if not minutes:
            return 0
        hours: dict[tuple[str, datetime], Tally] = defaultdict(Tally)
        for row in minutes:
            hours[(row.queue, _minute(row.start, HOUR))].add_row(row)
        _save_rollups(HOUR, hours)
        QueueRollup.objects.filter(id__in=[r.id for r in minutes]).delete()
    return len(minutes)


def prune(*, now: datetime | None = None) -> int:
    """Drop rollups older than KEEP_DAYS."""
    cutoff = (now or timezone.now()) - timedelta(days=KEEP_DAYS)
    return QueueRollup.objects.filter(start__lt=cutoff).delete()[0]
