"""Helpers for the engine tests: polling with timeouts, reading a job's history, test-only task types."""
from __future__ import annotations

import json
import subprocess
import time
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Callable, Iterator

from django.db.models import Count
from django.utils import timezone

from jobs.engine import registry
from jobs.engine.states import PENDING
from jobs.models import Job, JobEvent, WorkerHeartbeat


def wait_for(predicate: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def status_of(job_id: str) -> str:
    return Job.objects.values_list("status", flat=True).get(pk=job_id)


def wait_status(job_id: str, *statuses: str, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> Job:
    """Wait for the job to reach one of `statuses`; with `proc`, fail early (with its output) if that worker dies."""

    def reached() -> bool:
        if status_of(job_id) in statuses:
            return True
        if proc is not None and proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"worker exited with {proc.returncode} while job {job_id} is {status_of(job_id)}:\n{output[-3000:]}")
        return False

    what = f"job {job_id} to be {'/'.join(statuses)} (now {{}})"
    try:
        wait_for(reached, timeout=timeout, what=what)
    except AssertionError as exc:
        raise AssertionError(str(exc).format(status_of(job_id))) from None
    return Job.objects.get(pk=job_id)


def moves(job_id: str) -> list[tuple[str | None, str | None]]:
    """The job's status changes, oldest first (events that do not change status are left out)."""
    return [(f, t) for f, t in JobEvent.objects.filter(job_id=job_id).order_by("id").values_list("from_status", "to_status") if f != t]


def times_started(job_id: str) -> int:
    return JobEvent.objects.filter(job_id=job_id, to_status="active").count()


def make_due(job_id: str) -> None:
    """Time travel for a delayed job: its run-at moves to now so the scheduler promotes it.

    Only `run_at` is touched, never the status, so the state machine still makes every move.
    """
    assert Job.objects.filter(pk=job_id, status="delayed").update(run_at=timezone.now() - timedelta(milliseconds=1)) == 1


def real_counts() -> dict[tuple[str, str], int]:
    """COUNT(*) grouped by queue and status, the slow way stats must agree with."""
    return {(r["queue"], r["status"]): r["n"] for r in Job.objects.values("queue", "status").annotate(n=Count("id")).order_by()}


def folded_counts(counts: dict[str, dict[str, int]]) -> dict[tuple[str, str], int]:
    return {(q, s): n for q, by_status in counts.items() for s, n in by_status.items() if n}


def wait_worker_ready(proc: subprocess.Popen, name_prefix: str = "") -> None:
    """Wait until a subprocess worker has registered its heartbeat row (it is listening)."""
    wait_for(
        lambda: proc.poll() is not None or WorkerHeartbeat.objects.filter(pid=proc.pid, stopped_at__isnull=True).exists(),
        timeout=20,
        what="the worker process to start",
    )
    assert proc.poll() is None, proc.stdout.read() if proc.stdout else proc.returncode


@contextmanager
def watching_redis(url: str) -> Iterator[Callable[..., None]]:
    """Redis MONITOR on a connection of its own; yields `seen(*words, timeout=)`, which waits until a command
    containing every word (e.g. "SMEMBERS", "jobs:paused") is executed by any client, after the watch began."""
    import redis

    conn = redis.Redis.from_url(url, socket_timeout=0.5)
    monitor = conn.monitor()
    monitor.__enter__()

    def seen(*words: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                command = monitor.next_command()["command"]
            except redis.TimeoutError:
                continue
            if all(w.lower() in command.lower() for w in words):
                return
        raise AssertionError(f"timed out after {timeout}s waiting for Redis to run {' '.join(words)}")

    try:
        yield seen
    finally:
        monitor.__exit__(None, None, None)
        conn.close()


def queues_env(**defs: dict[str, Any]) -> dict[str, str]:
    """Environment for a subprocess worker that declares extra queues (it cannot see pytest's settings)."""
    return {"JOBS_QUEUES": json.dumps(defs)}


@contextmanager
def task_type(name: str, func: Callable[..., Any], *, queue: str = "default") -> Iterator[registry.TaskType]:
    """Register a job type for one test (in-process workers only), and remove it afterwards."""
    registry.task(name, queue=queue)(func)
    try:
        yield registry.get(name)
    finally:
        registry._TYPES.pop(name, None)


def lock_waiters() -> int:
    """Backends of this test database waiting on a lock (to hold one writer while another queues)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
        return cur.fetchone()[0]


def drainer(burst: Callable[..., Any], queues: tuple[str, ...]) -> Callable[[], None]:
    """A function that runs `queues` in burst mode until none of their jobs is pending (a job may enqueue the next)."""
    def run() -> None:
        for _ in range(10):
            burst(*queues)
            if not Job.objects.filter(queue__in=queues, status__in=list(PENDING)).exists():
                return
        raise AssertionError(f"{', '.join(queues)} did not drain")

    return run


def worker_statements(n: int, burst: Callable[..., Any]) -> list[str]:
    """The SQL a burst worker sends to drain `n` fresh no-op jobs (the hot-path tests compare n and 1)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from jobs import services
    from jobs.services import JobSpec

    services.enqueue_many([JobSpec(type="noop") for _ in range(n)])
    with CaptureQueriesContext(connection) as captured:
        burst()
    assert Job.objects.filter(status="completed").count() == Job.objects.count()
    return [q["sql"] for q in captured.captured_queries]
