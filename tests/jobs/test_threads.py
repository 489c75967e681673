"""The threads mode: one process runs up to a queue's concurrency of jobs at once, with the process
worker's promises (timeout, cancel, shutdown; a thread that ignores its stop is recorded and the
process replaced)."""
from __future__ import annotations

import json
import signal
import threading
import time
from typing import Any

import pytest

from jobs import services
from jobs.engine import conf
from jobs.engine.threads import ThreadsWorker
from jobs.models import Job, WorkerHeartbeat
from jobs.services import JobSpec
from tests.jobs.engine_support import wait_for, wait_status

pytestmark = pytest.mark.django_db(transaction=True)

IO = {"mode": "threads", "concurrency": 10, "timeout": 30, "attempts": 2, "backoff": {"delay": 60}}


def active_in(queue: str) -> int:
    return Job.objects.filter(queue=queue, status="active").count()


def test_ten_slow_jobs_run_at_once_in_one_process_and_never_eleven(queues: Any) -> None:
    queues(io=IO)
    jobs = [services.enqueue(JobSpec(type="sleep", payload={"seconds": 1.0, "steps": 4}, queue="io"))[0] for _ in range(25)]
    seen: list[int] = []
    done = threading.Event()

    def sample() -> None:
        from django.db import connection

        while not done.is_set():
            seen.append(active_in("io"))
            time.sleep(0.05)
        connection.close()

    sampler = threading.Thread(target=sample)
    sampler.start()
    worker = ThreadsWorker(["io"], threads=12)  # more threads than the queue's concurrency: the queue's cap holds
    started = time.monotonic()
    try:
        assert worker.work(burst=True) == 0
    finally:
        done.set()
        sampler.join()
    took = time.monotonic() - started
    assert Job.objects.filter(pk__in=[j.id for j in jobs], status="completed").count() == 25
    assert max(seen) == 10 and worker.most_at_once["io"] == 10  # ten at once, never eleven
    assert took < 6, took  # 25 one-second jobs ten at a time: three rounds, not 25 seconds
    names = {Job.objects.get(pk=j.id).worker_name for j in jobs}
    assert len(names) >= 10 and all(n.startswith(f"{worker.name}:t") for n in names)  # each slot its own name
    assert WorkerHeartbeat.objects.filter(name__startswith=worker.name, stopped_at__isnull=False).count() == 12


def test_a_timeout_the_thread_takes_is_a_timeout_and_the_worker_goes_on(queues: Any) -> None:
    queues(io={**IO, "timeout": 0.5})
    slow, _ = services.enqueue(JobSpec(type="sleep", payload={"seconds": 20, "steps": 200, "ignore_cancel": True}, queue="io"))
    after, _ = services.enqueue(JobSpec(type="echo", payload={"n": 1}, queue="io"))
    started = time.monotonic()
    assert ThreadsWorker(["io"], threads=1).work(burst=True) == 0  # one slot: the echo runs after the timeout, on it
    assert time.monotonic() - started < 5
    slow.refresh_from_db()
    assert (slow.status, slow.error_kind, slow.attempts_made) == ("delayed", "TIMEOUT", 1)
    assert Job.objects.get(pk=after.id).status == "completed"


def test_a_database_call_interrupted_by_a_timeout_leaves_the_slot_a_sound_connection(queues: Any) -> None:
    queues(io={**IO, "timeout": 0.5})
    stuck, _ = services.enqueue(JobSpec(type="db_wait", payload={"seconds": 30}, queue="io"))
    after, _ = services.enqueue(JobSpec(type="echo", payload={"n": 2}, queue="io"))
    started = time.monotonic()
    # The stop lands once pg_sleep returns: the worker asks the server to cancel it at once.
    assert ThreadsWorker(["io"], threads=1).work(burst=True) == 0
    assert time.monotonic() - started < 5
    stuck.refresh_from_db()
    assert (stuck.status, stuck.error_kind) == ("delayed", "TIMEOUT")
    assert Job.objects.get(pk=after.id).status == "completed"


def start_threads_worker(worker_process: Any, queue_defs: dict[str, Any], *queues: str, **env: str) -> Any:
    return worker_process(*queues, env={"JOBS_QUEUES": json.dumps(queue_defs), **env})


def test_a_thread_that_ignores_its_timeout_is_recorded_and_the_process_replaced(worker_process: Any, settings: Any) -> None:
    defs = {"io": {**IO, "timeout": 1}}
    queues_setting(settings, defs)
    stuck, _ = services.enqueue(JobSpec(type="sleep", payload={"seconds": 60, "steps": 1}, queue="io"))  # one long sleep in C
    proc = start_threads_worker(worker_process, defs, "io", JOBS_CANCEL_GRACE="1")
    wait_status(stuck.id, "active", timeout=20, proc=proc)
    first = Job.objects.get(pk=stuck.id).worker_name
    wait_status(stuck.id, "delayed", timeout=20, proc=proc)
    stuck.refresh_from_db()
    assert (stuck.error_kind, stuck.attempts_made) == ("TIMEOUT", 1)
    # The process replaced itself (same pid, a new worker) and goes on taking jobs.
    wait_for(lambda: WorkerHeartbeat.objects.filter(pid=proc.pid, stopped_at__isnull=True).exclude(name__startswith=first.split(":")[0]).exists(), what="a new worker in the same process")
    assert WorkerHeartbeat.objects.get(name=first).stopped_at is not None
    after, _ = services.enqueue(JobSpec(type="echo", payload={"n": 3}, queue="io"))
    wait_status(after.id, "completed", timeout=20, proc=proc)
    assert proc.poll() is None


def queues_setting(settings: Any, defs: dict[str, Any]) -> None:
    settings.JOBS_QUEUES = {**settings.JOBS_QUEUES, **defs}
    conf.all_queues.cache_clear()


def test_cancel_in_threads_mode_stops_the_job_and_the_worker_lives_on(worker_process: Any, settings: Any) -> None:
    defs = {"io": IO}
    queues_setting(settings, defs)
    job, _ = services.enqueue(JobSpec(type="sleep", payload={"seconds": 30, "steps": 60}, queue="io"))
    other, _ = services.enqueue(JobSpec(type="sleep", payload={"seconds": 1, "steps": 2}, queue="io"))
    proc = start_threads_worker(worker_process, defs, "io")
    wait_status(job.id, "active", timeout=20, proc=proc)
    services.cancel(job.id)
    wait_status(job.id, "cancelled", timeout=15, proc=proc)
    wait_status(other.id, "completed", timeout=15, proc=proc)
    assert proc.poll() is None


def test_a_cancel_the_thread_ignores_is_enforced(worker_process: Any, settings: Any) -> None:
    defs = {"io": IO}
    queues_setting(settings, defs)
    job, _ = services.enqueue(JobSpec(type="sleep", payload={"seconds": 30, "steps": 30, "ignore_cancel": True}, queue="io"))
    proc = start_threads_worker(worker_process, defs, "io", JOBS_CANCEL_GRACE="1")
    wait_status(job.id, "active", timeout=20, proc=proc)
    services.cancel(job.id)
    wait_status(job.id, "cancelled", timeout=15, proc=proc)  # raised in its thread after the grace, between two sleeps
    assert proc.poll() is None


def test_sigterm_lets_running_jobs_finish_and_puts_back_those_past_the_grace(worker_process: Any, settings: Any) -> None:
    defs = {"io": IO}
    queues_setting(settings, defs)
    short, _ = services.enqueue(JobSpec(type="sleep", payload={"seconds": 1.5, "steps": 3}, queue="io"))
    long, _ = services.enqueue(JobSpec(type="sleep", payload={"seconds": 60, "steps": 60, "ignore_cancel": True}, queue="io"))
    proc = start_threads_worker(worker_process, defs, "io", JOBS_SHUTDOWN_GRACE="3")
    wait_status(short.id, "active", timeout=20, proc=proc)
    wait_status(long.id, "active", timeout=20, proc=proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, proc.stdout.read() if proc.stdout else ""
    short.refresh_from_db()
    long.refresh_from_db()
    assert short.status == "completed"  # finished within the grace
    assert (long.status, long.attempts_made, long.worker_name) == ("waiting", 0, "")  # put back, the attempt not counted


def test_a_group_of_threads_queues_runs_as_one_threads_worker(queues: Any) -> None:
    from jobs import selectors

    queues(mail={"mode": "threads", "concurrency": 10, "group": "io"}, push={"mode": "threads", "concurrency": 20, "group": "io"})
    group = next(g for g in selectors.worker_groups() if g.name == "io")
    assert group.argv == ["worker", "--group", "io", "--threads", "20"]
    queues(bad={"mode": "processes", "group": "io"})
    with pytest.raises(ValueError, match="mixes modes"):
        conf.groups()
    with pytest.raises(ValueError, match="mode must be one of"):
        conf.parse_queue("x", {"mode": "fibers"})


def test_when_a_full_queue_frees_room_its_next_job_starts_without_waiting_out_the_listen(queues: Any) -> None:
    """The popping slot does not listen to a queue at its limit; the room a finished job frees must not wait for
    that slot's BLPOP on the other queues to time out (LISTEN_SECONDS) before the next job of the full queue starts."""
    queues(one={**IO, "concurrency": 1}, other={**IO, "concurrency": 2})
    jobs = [services.enqueue(JobSpec(type="sleep", payload={"seconds": 0.1, "steps": 1}, queue="one"))[0] for _ in range(6)]
    worker = ThreadsWorker(["one", "other"], threads=2)
    runner = threading.Thread(target=worker.work)
    runner.start()
    try:
        wait_for(lambda: Job.objects.filter(queue="one", status="completed").count() == 6, timeout=30, what="the six jobs")
    finally:
        worker.request_stop()
        runner.join(timeout=30)
    rows = sorted(Job.objects.filter(pk__in=[j.id for j in jobs]), key=lambda j: j.started_at)
    gaps = [(b.started_at - a.completed_at).total_seconds() for a, b in zip(rows, rows[1:])]
    assert max(gaps) < 0.3, gaps  # waiting out the listen would leave about LISTEN_SECONDS (0.5 s) between them
