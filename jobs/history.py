"""The engine's reads of queue history (jobs.engine.rollups) for the console's charts and for /metrics.

`series()` gives a chart's points over 1 h (per minute), 24 h (per 10 minutes) or 7 d (per hour),
every step present (zeros where nothing ran); `totals()` the processed and failed jobs of the last
hour, day and week; `oldest_waiting()` how long each queue's oldest waiting job has waited.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Min, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs.engine import rollups
from jobs.engine.states import Status
from jobs.exceptions import InvalidInput
from jobs.models import Job, QueueRollup

#: range name -> (span, step) in seconds.
RANGES: dict[str, tuple[int, int]] = {"1h": (3600, 60), "24h": (86400, 600), "7d": (7 * 86400, 3600)}
TOTAL_WINDOWS: dict[str, timedelta] = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}


def _window(range_name: str, now: datetime | None) -> tuple[int, int, int]:
    if range_name not in RANGES:
        raise InvalidInput(f"range must be one of {', '.join(RANGES)}", extra={"range": range_name})
    span, step = RANGES[range_name]
    end = int((now or timezone.now()).timestamp())
    end = end - end % step + step  # the step holding `now` is the last point
    return end - span, end, step


def series(range_name: str = "1h", *, queue: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Points of one queue (with wait/run quantiles and failure rate) or of all queues (counts only)."""
    start, end, step = _window(range_name, now)
    points = list(range(start, end, step))
    index = {t: i for i, t in enumerate(points)}
    rows = QueueRollup.objects.filter(start__gte=datetime.fromtimestamp(start, tz=timezone.get_current_timezone()))
    counts: dict[str, list[int]] = {name: [0] * len(points) for name in rollups.COUNTS}
    out: dict[str, Any] = {"range": range_name, "step": step, "queue": queue, "t": points}
    if queue is None:
        for at, *values in rows.values("start").annotate(*[Sum(n) for n in rollups.COUNTS]).values_list("start", *[f"{n}__sum" for n in rollups.COUNTS]):
            i = index.get(_step_of(at, step))
            if i is not None:
                for name, value in zip(rollups.COUNTS, values):
                    counts[name][i] += int(value or 0)
        return {**out, **counts}
    tallies: dict[int, rollups.Tally] = defaultdict(rollups.Tally)
    for row in rows.filter(queue=queue):
        i = index.get(_step_of(row.start, step))
        if i is not None:
            tallies[i].add_row(row)
    for i, tally in tallies.items():
        for name in rollups.COUNTS:
            counts[name][i] = tally.counts[name]
    out.update(counts)
    for kind in ("wait", "run"):
        for q in (50, 95):
            out[f"{kind}_p{q}"] = [_quantile(tallies.get(i), kind, q / 100) for i in range(len(points))]
        out[f"{kind}_max"] = [round(getattr(tallies[i], f"{kind}_max"), 4) if i in tallies else None for i in range(len(points))]
    ended = [c + f for c, f in zip(counts["completed"], counts["failed"])]
    out["failure_rate"] = [round(f / e, 4) if e else None for f, e in zip(counts["failed"], ended)]
    return out


def _step_of(at: datetime, step: int) -> int:
    epoch = int(at.timestamp())
    return epoch - epoch % step


def _quantile(tally: rollups.Tally | None, kind: str, q: float) -> float | None:
    if tally is None:
        return None
    hist = tally.wait if kind == "wait" else tally.run
    value = rollups.quantile(hist, q, top=tally.wait_max if kind == "wait" else tally.run_max)
    return None if value is None else round(value, 4)


def totals(*, queue: str | None = None, now: datetime | None = None) -> dict[str, dict[str, int]]:
    """Jobs completed and failed over the last hour, day and week (by the minute or hour they ended in)."""
    now = now or timezone.now()
    rows = QueueRollup.objects.filter(start__gte=now - TOTAL_WINDOWS["week"])
    if queue is not None:
        rows = rows.filter(queue=queue)
    sums = rows.aggregate(
        **{f"{name}_{w}": Sum(name, filter=Q(start__gte=now - span)) for w, span in TOTAL_WINDOWS.items() for name in ("completed", "failed")}
    )
    return {w: {name: int(sums[f"{name}_{w}"] or 0) for name in ("completed", "failed")} for w in TOTAL_WINDOWS}


def oldest_waiting(*, now: datetime | None = None) -> dict[str, float]:
    """Queue -> seconds its oldest waiting job has waited (since it was created, or since its delay ended)."""
    now = now or timezone.now()
    rows = Job.objects.filter(status=Status.WAITING).values("queue").annotate(since=Min(Coalesce("run_at", "created_at")))
    return {row["queue"]: max(0.0, round((now - row["since"]).total_seconds(), 3)) for row in rows}
