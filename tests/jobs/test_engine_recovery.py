"""Nothing accepted is lost: dead workers, an emptied Redis, shutdowns, and workers back from the dead."""
from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from jobs import services
from jobs.engine import broker, lifecycle, scheduler
from jobs.exceptions import ErrorKind, JobError
from jobs.models import Job, JobEvent, WorkerHeartbeat
from jobs.services import JobSpec
from jobs.engine.worker import stale_before
from tests.jobs.engine_support import make_due, moves, times_started, wait_for, wait_status, wait_worker_ready, watching_redis

pytestmark = pytest.mark.django_db(transaction=True)

W, D, A, C, F, X = "waiting", "delayed", "active", "completed", "failed", "cancelled"
LONG_FIRST_ATTEMPT = {"seconds": 30, "steps": 300, "slow_attempts": 1}


def test_a_job_whose_worker_is_killed_is_recovered_as_a_counted_attempt_and_completed(worker_process, burst, settings) -> None:
    job, _ = services.enqueue(JobSpec(type="sleep", payload=LONG_FIRST_ATTEMPT))
    proc = worker_process("default")
    running = wait_status(job.id, A, timeout=20, proc=proc)

    # A live worker's long job is not mistaken for a stalled one, once it has run longer than the stall timeout.
    wait_for(lambda: Job.objects.get(pk=job.id).started_at < stale_before(), timeout=settings.JOBS_STALL_TIMEOUT + 5, what="the job to outlast the stall timeout")
    assert scheduler.recover_stalled() == 0
    assert Job.objects.get(pk=job.id).status == A

    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    assert scheduler.recover_stalled() == 0  # its heartbeat is still fresh
    wait_for(lambda: scheduler.recover_stalled() == 1, timeout=settings.JOBS_STALL_TIMEOUT + 3, what="stall detection")

    job.refresh_from_db()
    assert (job.status, job.attempts_made, job.error_kind) == (D, 1, "STALLED")
    assert running.worker_name in job.failed_reason
    assert scheduler.recover_stalled() == 0  # recovered once only

    make_due(job.id)
    assert scheduler.promote_due() == 1
    other = burst()

    job.refresh_from_db()
    assert (job.status, job.attempts_made, job.worker_name, job.result) == (C, 2, other.name, {"slept": 0.0})
    assert moves(job.id) == [(None, W), (W, A), (A, D), (D, W), (W, A), (A, C)]


def test_a_killed_workers_job_with_no_attempts_left_fails_into_the_dead_letters(worker_process, settings) -> None:
    job, _ = services.enqueue(JobSpec(type="sleep", payload=LONG_FIRST_ATTEMPT, attempts=1))
    proc = worker_process("default")
    wait_status(job.id, A, timeout=20, proc=proc)
    proc.kill()
    proc.wait(5)
    wait_for(lambda: scheduler.recover_stalled() == 1, timeout=settings.JOBS_STALL_TIMEOUT + 3, what="stall detection")
    job.refresh_from_db()
    assert (job.status, job.error_kind) == (F, "STALLED")
    assert job.dead_letter.error_kind == "STALLED"


def test_a_killed_workers_job_that_was_being_cancelled_ends_cancelled(worker_process, settings) -> None:
    job, _ = services.enqueue(JobSpec(type="sleep", payload={**LONG_FIRST_ATTEMPT, "ignore_cancel": True}))
    proc = worker_process("default")
    wait_status(job.id, A, timeout=20, proc=proc)
    proc.send_signal(signal.SIGSTOP)  # frozen before it can act on the cancel
    try:
        services.cancel(job.id)
        wait_for(lambda: scheduler.recover_stalled() == 1, timeout=settings.JOBS_STALL_TIMEOUT + 3, what="stall detection")
    finally:
        proc.kill()
    assert Job.objects.get(pk=job.id).status == X


def test_after_redis_restarts_empty_reconcile_hands_every_waiting_job_back(burst, clean_redis) -> None:
    waiting = [services.enqueue(JobSpec(type="echo", payload={"i": i}, priority=i % 20))[0] for i in range(25)]
    delayed, _ = services.enqueue(JobSpec(type="noop", delay=60))
    assert broker.waiting_count("default") == 25
    assert scheduler.reconcile().pushed == 0  # fresh jobs are left to their own after-commit push

    clean_redis.flushdb()
    assert broker.waiting_count("default") == 0
    report = scheduler.reconcile(grace=0)
    assert report.pushed == 25
    assert scheduler.reconcile(grace=0).pushed == 0  # already carried: no second copy
    assert broker.carried_ids("default") == {j.id for j in waiting}

    burst()

    assert Job.objects.filter(pk__in=[j.id for j in waiting], status=C).count() == 25
    assert all(times_started(j.id) == 1 for j in waiting), "a job ran twice"
    assert Job.objects.get(pk=delayed.id).status == D  # the database, not Redis, keeps delayed jobs
    make_due(delayed.id)
    scheduler.promote_due()
    burst()
    assert Job.objects.get(pk=delayed.id).status == C


def test_redis_flushed_under_a_running_worker_loses_nothing(worker_process, clean_redis, settings) -> None:
    proc = worker_process("default")
    first = [services.enqueue(JobSpec(type="echo", payload={"i": i}))[0] for i in range(5)]
    wait_for(lambda: Job.objects.filter(pk__in=[j.id for j in first], status=C).count() == 5, timeout=20, what="first batch")

    with watching_redis(settings.REDIS_URL) as seen:
        services.set_paused("default", paused=True)
        seen("SMEMBERS", broker.PAUSED_KEY)  # the worker has read the paused set again: it listens no more on default
    second = [services.enqueue(JobSpec(type="echo", payload={"i": i}))[0] for i in range(5, 15)]
    clean_redis.flushdb()  # Redis restarts empty: the paused set and the carried ids are gone
    report = scheduler.reconcile(grace=0)
    assert (report.paused_synced, report.pushed) == (1, 10)
    services.set_paused("default", paused=False)

    wait_for(lambda: Job.objects.filter(pk__in=[j.id for j in second], status=C).count() == 10, timeout=20, what="second batch")
    assert proc.poll() is None
    assert all(times_started(j.id) == 1 for j in first + second), "a job ran twice"


def test_sigterm_lets_the_running_job_finish_within_the_grace(worker_process) -> None:
    job, _ = services.enqueue(JobSpec(type="sleep", payload={"seconds": 1, "steps": 10}))
    proc = worker_process("default")
    wait_status(job.id, A, timeout=20, proc=proc)
    queued_after, _ = services.enqueue(JobSpec(type="noop", priority="LOW"))

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0

    job.refresh_from_db()
    assert (job.status, job.result, job.attempts_made) == (C, {"slept": 1.0}, 1)
    assert Job.objects.get(pk=queued_after.id).status == W  # a stopping worker takes nothing new
    assert broker.carried_ids("default") == {queued_after.id}
    assert WorkerHeartbeat.objects.get(pid=proc.pid).stopped_at is not None


def test_sigterm_hands_a_job_longer_than_the_grace_back_without_counting_the_attempt(worker_process, settings) -> None:
    job, _ = services.enqueue(JobSpec(type="sleep", payload={"seconds": 30, "steps": 300}))
    proc = worker_process("default")
    wait_status(job.id, A, timeout=20, proc=proc)

    asked_at = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(settings.JOBS_SHUTDOWN_GRACE + 5) == 0
    assert time.monotonic() - asked_at >= settings.JOBS_SHUTDOWN_GRACE

    job.refresh_from_db()
    assert (job.status, job.attempts_made, job.worker_name, job.started_at) == (W, 0, "", None)
    assert moves(job.id) == [(None, W), (W, A), (A, W)]
    assert broker.carried_ids("default") == {job.id}

    again = worker_process("default")  # the next worker takes it as attempt 1 again
    resumed = wait_status(job.id, A, timeout=20, proc=again)
    assert resumed.attempts_made == 1
    services.cancel(job.id)
    wait_status(job.id, X, timeout=5)
    assert again.poll() is None


def test_completing_twice_is_impossible() -> None:
    job, _ = services.enqueue(JobSpec(type="noop"))
    claimed = lifecycle.claim(job.id, queue="default", worker="w1")
    assert claimed is not None and claimed.attempt == 1
    assert lifecycle.claim(job.id, queue="default", worker="w2") is None  # already taken

    assert lifecycle.complete(claimed, worker="w1", result={"n": 1}) is True
    assert lifecycle.complete(claimed, worker="w1", result={"n": 2}) is False
    assert lifecycle.fail(claimed, worker="w1", exc=RuntimeError("late")) == ""
    assert lifecycle.cancelled(claimed, worker="w1") is False
    assert lifecycle.requeue(claimed, worker="w1", reason="late") is False

    job.refresh_from_db()
    assert (job.status, job.result, job.failed_reason) == (C, {"n": 1}, "")
    assert JobEvent.objects.filter(job_id=job.id, to_status=C).count() == 1


@pytest.mark.slow  # waits out real time (windows, soak, stall timeout)
def test_a_worker_back_from_the_dead_cannot_complete_a_recovered_job(settings) -> None:
    job, _ = services.enqueue(JobSpec(type="noop"))
    zombie = lifecycle.claim(job.id, queue="default", worker="zombie")  # a worker that then hangs
    wait_for(lambda: scheduler.recover_stalled() == 1, timeout=settings.JOBS_STALL_TIMEOUT + 3, what="stall detection")
    assert lifecycle.complete(zombie, worker="zombie", result="too late") is False  # backing off now

    make_due(job.id)
    scheduler.promote_due()
    rescuer = lifecycle.claim(job.id, queue="default", worker="rescuer")
    assert rescuer is not None and rescuer.attempt == 2
    assert lifecycle.complete(zombie, worker="zombie", result="too late") is False  # active, but not its job
    assert lifecycle.fail(zombie, worker="zombie", exc=JobError("late", kind=ErrorKind.PERMANENT)) == ""
    assert lifecycle.complete(rescuer, worker="rescuer", result="rescued") is True

    job.refresh_from_db()
    assert (job.status, job.result, job.worker_name) == (C, "rescued", "rescuer")
    assert JobEvent.objects.filter(job_id=job.id, to_status=C).count() == 1
    assert not hasattr(job, "dead_letter") or job.dead_letter is None


def test_a_frozen_worker_process_that_wakes_up_after_recovery_changes_nothing(worker_process, burst, settings) -> None:
    job, _ = services.enqueue(JobSpec(type="sleep", payload=LONG_FIRST_ATTEMPT))
    frozen = worker_process("default")
    first = wait_status(job.id, A, timeout=20, proc=frozen)
    frozen.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: scheduler.recover_stalled() == 1, timeout=settings.JOBS_STALL_TIMEOUT + 3, what="stall detection")
        make_due(job.id)
        scheduler.promote_due()
        rescuer = burst()
        done = Job.objects.get(pk=job.id)
        assert (done.status, done.worker_name) == (C, rescuer.name)
    finally:
        frozen.send_signal(signal.SIGCONT)

    # The old worker resumes mid-task; every write it tries is refused.
    wait_for(lambda: WorkerHeartbeat.objects.filter(name=first.worker_name, current_job_id="").exists() or frozen.poll() is not None, timeout=10, what="the old worker to drop the job")
    job.refresh_from_db()
    assert (job.status, job.worker_name, job.result, job.attempts_made) == (C, rescuer.name, {"slept": 0.0}, 2)
    assert JobEvent.objects.filter(job_id=job.id, to_status=C).count() == 1
    assert frozen.poll() is None  # and it carries on as a healthy worker


def test_a_job_accepted_while_redis_is_down_runs_once_redis_is_back(burst, settings) -> None:
    up = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there: Redis is down
    broker.reset_connection()
    job, created = services.enqueue(JobSpec(type="echo", payload={"kept": True}))
    assert created and Job.objects.get(pk=job.id).status == W  # accepted: the row is the truth

    settings.REDIS_URL = up
    broker.reset_connection()
    assert broker.carried_ids("default") == set()
    assert scheduler.reconcile(grace=0).pushed == 1
    burst()
    job.refresh_from_db()
    assert (job.status, job.result) == (C, {"echo": {"kept": True}})


def test_sigterm_to_an_idle_worker_stops_it_at_once(worker_process) -> None:
    proc = worker_process("default")
    wait_worker_ready(proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(5) == 0
    assert WorkerHeartbeat.objects.get(pid=proc.pid).stopped_at is not None


def test_a_stop_asked_while_the_worker_starts_stops_it_before_its_first_job() -> None:
    """SIGTERM after the heartbeat says the worker listens, before RQ installs its own handlers: the worker
    notes it (the process's previous handler never sees it) and stops at its loop's first check, cleanly."""
    from jobs.engine.worker import EngineWorker

    job, _ = services.enqueue(JobSpec(type="noop"))  # waiting: a worker that missed the stop would run it
    missed: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: missed.append(signum))

    class SignalledAtStart(EngineWorker):
        def bootstrap(self, *args: Any, **kwargs: Any) -> None:
            super().bootstrap(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGTERM)  # the heartbeat row is written; RQ's handlers are not yet

    try:
        SignalledAtStart(["default"], name="w-stop-at-start").work(burst=True, logging_level="WARNING")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert missed == []
    assert Job.objects.get(pk=job.id).status == W
    assert WorkerHeartbeat.objects.get(name="w-stop-at-start").stopped_at is not None


def test_a_job_its_live_worker_no_longer_runs_goes_back_once_its_heartbeat_says_so(settings) -> None:
    """What a database crash leaves when workers commit asynchronously: a completion lost, the job still active
    for a worker alive and busy with another job (or none). A heartbeat written soon after the claim proves nothing."""
    from datetime import timedelta

    from django.utils import timezone

    running, orphan = (services.enqueue(JobSpec(type="noop"))[0] for _ in range(2))
    claims = [lifecycle.claim(j.id, queue="default", worker="w-alive") for j in (running, orphan)]
    assert all(claims)
    now = timezone.now()
    WorkerHeartbeat.objects.create(name="w-alive", hostname="h", pid=1, started_at=now, last_seen=now, current_job_id=running.id)
    assert scheduler.recover_orphans() == 0  # the heartbeat is not later than the claims by two intervals yet
    later = now + timedelta(seconds=2 * settings.JOBS_HEARTBEAT_INTERVAL + 0.1)
    WorkerHeartbeat.objects.filter(name="w-alive").update(last_seen=later)
    assert scheduler.recover_orphans() == 1
    assert [Job.objects.get(pk=j.id).status for j in (running, orphan)] == [A, W]
    orphan.refresh_from_db()
    assert (orphan.attempts_made, orphan.worker_name) == (0, "")  # the lost attempt is not counted
    assert broker.connection().lrange(broker.rq_key("default", 5), 0, -1)[0] == orphan.id.encode()  # handed over again, first in line
    assert scheduler.recover_orphans() == 0
