"""The workers as the console's Workers and Queues pages and `manage.py workers` show them: every heartbeat row
seen lately (a process worker, or one slot of a threads worker) with its state and the job it runs.

Two queries whatever the number of workers: the heartbeats (written by jobs.engine.worker and
jobs.engine.threads on each heartbeat), then their current jobs' progress.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypedDict

from django.utils import timezone

from jobs.engine.worker import stale_before
from jobs.models import Job, WorkerHeartbeat

#: Stopped (and silent) workers stay listed this long, so an operator sees what just went away.
STOPPED_SHOWN = timedelta(hours=1)
#: The most heartbeat rows a page lists (a threads worker has one per slot).
ROWS_SHOWN = 200
#: The page's sections, in display order.
STATES = ("alive", "stale", "stopped")


class CurrentJob(TypedDict):
    id: str
    type: str
    queue: str
    status: str
    progress: int
    message: str


class WorkerRow(TypedDict):
    """One heartbeat row: a process worker, or one slot (`<worker>:tNN`) of a threads worker."""

    name: str
    hostname: str
    pid: int
    queues: list[str]
    mode: str
    rss: int | None
    started_at: str
    last_seen: str
    age: float
    current_job: str
    job: CurrentJob | None
    jobs_done: int
    state: str


def worker_state(beat: WorkerHeartbeat, *, stale: datetime) -> str:
    """alive, stale (no heartbeat since `stale`: maybe killed, recovery will take its job) or stopped."""
    if beat.stopped_at is not None:
        return "stopped"
    return "stale" if beat.last_seen < stale else "alive"


def worker_rows(now: datetime | None = None) -> list[WorkerRow]:
    """Workers seen within STOPPED_SHOWN, most recently seen first, each with the job it runs.
    A worker killed long ago is not listed (the scheduler forgets it after a day)."""
    now = now or timezone.now()
    stale = stale_before(now)
    beats = list(WorkerHeartbeat.objects.filter(last_seen__gte=now - STOPPED_SHOWN).order_by("-last_seen", "name")[:ROWS_SHOWN])
    running = {b.current_job_id for b in beats if b.current_job_id}
    fields = ("id", "type", "queue", "status", "progress", "progress_message")
    jobs = {
        r["id"]: CurrentJob(id=r["id"], type=r["type"], queue=r["queue"], status=r["status"], progress=r["progress"], message=r["progress_message"])
        for r in (Job.objects.filter(pk__in=running).values(*fields) if running else [])
    }
    return [
        WorkerRow(
            name=b.name, hostname=b.hostname, pid=b.pid, queues=list(b.queues), mode=b.mode, rss=b.rss,
            started_at=b.started_at.isoformat(), last_seen=b.last_seen.isoformat(), age=max(0.0, round((now - b.last_seen).total_seconds(), 1)),
            current_job=b.current_job_id, job=jobs.get(b.current_job_id), jobs_done=b.jobs_done, state=worker_state(b, stale=stale),
        )
        for b in beats
    ]


def snapshot() -> dict[str, Any]:
    """The page's data: the rows by state (alive, stale, stopped), and when they were read."""
    rows = worker_rows()
    return {**{state: [w for w in rows if w["state"] == state] for state in STATES}, "at": timezone.now().isoformat()}
