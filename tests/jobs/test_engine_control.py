"""Operators steering the engine: pause/resume, cancel (waiting and active), and queue timeouts."""
from __future__ import annotations

import signal
import threading
import time

import pytest
from django.db import connection, transaction
from django.utils import timezone

from jobs import services
from jobs.engine import broker, lifecycle, scheduler
from jobs.engine.context import JobContext
from jobs.engine.runner import Guard
from jobs.engine.worker import EngineWorker
from jobs.exceptions import InvalidTransition, JobCancelled, NotFound
from jobs.models import Job, QueueState
from jobs.services import JobSpec
from tests.jobs.engine_support import (
    lock_waiters,
    moves,
    queues_env,
    task_type,
    times_started,
    wait_for,
    wait_status,
    wait_worker_ready,
    watching_redis,
)

pytestmark = pytest.mark.django_db(transaction=True)

W, D, A, C, F, X = "waiting", "delayed", "active", "completed", "failed", "cancelled"


# -- pause / resume ---------------------------------------------------------------------------


def test_a_paused_queue_is_not_taken_and_the_pause_survives_a_redis_flush(burst, clean_redis) -> None:
    services.set_paused("default", paused=True)
    assert QueueState.objects.get(name="default").paused
    jobs = [services.enqueue(JobSpec(type="noop"))[0] for _ in range(3)]

    burst()
    assert set(Job.objects.values_list("status", flat=True)) == {W}

    clean_redis.flushdb()  # Redis restarts empty: lists and the paused set are gone
    assert broker.paused_queues() == set()
    report = scheduler.reconcile(grace=0)
    assert (report.paused_synced, report.pushed) == (1, 3)
    assert broker.paused_queues() == {"default"}

    burst()  # a fresh worker after the restart still takes nothing
    assert set(Job.objects.values_list("status", flat=True)) == {W}

    services.set_paused("default", paused=False)
    burst()
    assert set(Job.objects.values_list("status", flat=True)) == {C}
    assert all(times_started(j.id) == 1 for j in jobs)


def test_pausing_lets_the_running_job_finish_but_takes_nothing_more(burst) -> None:
    def pauses_its_queue(ctx, payload):
        services.set_paused(ctx.queue, paused=True)
        return "finished anyway"

    with task_type("test.pauser", pauses_its_queue):
        first, _ = services.enqueue(JobSpec(type="test.pauser", priority="HIGH"))
        second, _ = services.enqueue(JobSpec(type="noop", priority="LOW"))
        burst()
    assert (Job.objects.get(pk=first.id).status, Job.objects.get(pk=first.id).result) == (C, "finished anyway")
    assert Job.objects.get(pk=second.id).status == W
    assert broker.carried_ids("default") == {second.id}  # put back untouched, not lost

    services.set_paused("default", paused=False)
    burst()
    assert Job.objects.get(pk=second.id).status == C


def test_pausing_one_queue_leaves_the_others_running(burst, queues) -> None:
    queues(other={})
    services.set_paused("default", paused=True)
    held, _ = services.enqueue(JobSpec(type="noop"))
    free, _ = services.enqueue(JobSpec(type="noop", queue="other"))
    burst("default", "other")
    assert (Job.objects.get(pk=held.id).status, Job.objects.get(pk=free.id).status) == (W, C)


def test_a_running_worker_process_honours_pause_and_resume(worker_process, settings) -> None:
    services.set_paused("default", paused=True)
    proc = worker_process("default")
    wait_worker_ready(proc)
    with watching_redis(settings.REDIS_URL) as seen:
        job, _ = services.enqueue(JobSpec(type="noop"))
        # Proving a negative: the worker has looked at the paused set twice since the job was in its list.
        seen("SMEMBERS", broker.PAUSED_KEY)
        seen("SMEMBERS", broker.PAUSED_KEY)
    assert Job.objects.get(pk=job.id).status == W

    services.set_paused("default", paused=False)
    wait_status(job.id, C, timeout=10)


# -- cancel -------------------------------------------------------------------------------------


def test_cancelling_a_waiting_or_delayed_job_means_it_never_runs(burst) -> None:
    waiting, _ = services.enqueue(JobSpec(type="echo"))
    delayed, _ = services.enqueue(JobSpec(type="echo", delay=0.01))
    bystander, _ = services.enqueue(JobSpec(type="echo"))

    for job in (waiting, delayed):
        cancelled = services.cancel(job.id)
        assert (cancelled.status, cancelled.error_kind) == (X, "CANCELLED")
        assert cancelled.completed_at is not None
    assert broker.carried_ids("default") == {bystander.id}

    broker.push([broker.Carried(waiting.id, "default", 5, 60)])  # a stale copy left in Redis
    wait_for(lambda: timezone.now() > delayed.run_at, timeout=2, what="the cancelled delayed job to be due")
    assert scheduler.promote_due() == 0  # a cancelled delayed job is not promoted
    burst()

    assert Job.objects.get(pk=bystander.id).status == C
    for job in (waiting, delayed):
        assert Job.objects.get(pk=job.id).status == X
        assert times_started(job.id) == 0
    assert moves(waiting.id) == [(None, W), (W, X)]
    assert moves(delayed.id) == [(None, D), (D, X)]
    with pytest.raises(InvalidTransition):
        services.cancel(bystander.id)  # completed: nothing to cancel


def test_a_cancelled_job_can_be_retried(burst) -> None:
    job, _ = services.enqueue(JobSpec(type="echo", payload={"again": True}))
    services.cancel(job.id)
    services.retry(job.id)
    burst()
    job.refresh_from_db()
    assert (job.status, job.result, job.error_kind) == (C, {"echo": {"again": True}}, "")


def _run_until_active(worker_process, payload: dict, **enqueue) -> tuple[Job, object]:
    job, _ = services.enqueue(JobSpec(type="sleep", payload=payload, **enqueue))
    proc = worker_process(enqueue.get("queue", "default"))
    wait_status(job.id, A, timeout=20, proc=proc)
    return job, proc


def test_cancelling_an_active_job_stops_it_within_seconds(worker_process) -> None:
    job, proc = _run_until_active(worker_process, {"seconds": 30, "steps": 300})

    asked = services.cancel(job.id)
    assert asked.status == A and asked.cancel_requested_at is not None
    ended = wait_status(job.id, X, timeout=5)

    assert ended.error_kind == "CANCELLED" and ended.progress < 100
    assert moves(job.id)[-1] == (A, X)
    # The worker survives and takes the next job.
    after, _ = services.enqueue(JobSpec(type="echo"))
    wait_status(after.id, C, timeout=10, proc=proc)
    assert proc.poll() is None


def test_an_active_job_that_ignores_cancel_is_stopped_hard_after_the_grace(worker_process, settings) -> None:
    job, proc = _run_until_active(worker_process, {"seconds": 30, "steps": 2, "ignore_cancel": True})

    asked_at = time.monotonic()
    services.cancel(job.id)
    wait_status(job.id, X, timeout=8)
    took = time.monotonic() - asked_at

    assert took >= settings.JOBS_CANCEL_GRACE  # it was given its grace first
    assert took < settings.JOBS_CANCEL_GRACE + 4
    after, _ = services.enqueue(JobSpec(type="echo"))
    wait_status(after.id, C, timeout=10, proc=proc)
    assert proc.poll() is None


def test_a_job_deaf_to_interrupts_is_recorded_cancelled_and_its_worker_process_exits(worker_process, settings) -> None:
    job, proc = _run_until_active(worker_process, {"seconds": 60, "block_signals": True})

    services.cancel(job.id)
    ended = wait_status(job.id, X, timeout=settings.JOBS_CANCEL_GRACE + 15)

    assert ended.error_kind == "CANCELLED"
    assert proc.wait(timeout=10) == 3  # the process ended itself; a supervisor starts another


def test_cancel_of_an_unknown_job_is_not_found() -> None:
    with pytest.raises(NotFound):
        services.cancel("no-such-job")


# -- timeout ------------------------------------------------------------------------------------


def test_a_job_past_its_queue_timeout_is_stopped_and_fails_as_timeout(burst, queues) -> None:
    queues(short={"timeout": 1, "attempts": 1})
    job, _ = services.enqueue(JobSpec(type="sleep", payload={"seconds": 20, "steps": 2, "ignore_cancel": True}, queue="short"))

    started = time.monotonic()
    burst("short")
    took = time.monotonic() - started

    job.refresh_from_db()
    assert 1 <= took < 5
    assert (job.status, job.error_kind, job.attempts_made) == (F, "TIMEOUT", 1)
    assert job.error_class == "jobs.exceptions.JobTimedOut"
    assert (job.completed_at - job.started_at).total_seconds() < 3
    assert Job.objects.get(pk=job.id).dead_letter.error_kind == "TIMEOUT"


def test_a_timed_out_job_with_attempts_left_is_retried(burst, queues) -> None:
    queues(short={"timeout": 1, "attempts": 2, "backoff": {"delay": 7}})
    job, _ = services.enqueue(JobSpec(type="sleep", payload={"seconds": 20, "steps": 2}, queue="short"))
    burst("short")
    job.refresh_from_db()
    assert (job.status, job.error_kind, job.attempts_made) == (D, "TIMEOUT", 1)
    assert 5 < (job.run_at - timezone.now()).total_seconds() <= 7


def test_a_subprocess_worker_enforces_the_timeout_declared_in_its_environment(worker_process, queues) -> None:
    defs = {"short": {"timeout": 1, "attempts": 1}}
    queues(**defs)  # for this process (enqueue); the worker reads the same through JOBS_QUEUES
    job, _ = services.enqueue(JobSpec(type="sleep", payload={"seconds": 20, "steps": 2, "ignore_cancel": True}, queue="short"))
    worker_process("short", env=queues_env(**defs))

    ended = wait_status(job.id, F, timeout=20)
    assert ended.error_kind == "TIMEOUT"
    assert (ended.completed_at - ended.started_at).total_seconds() < 3


def test_cancel_racing_a_claim_asks_the_now_active_job_to_stop() -> None:
    """The user saw `waiting`; a worker claims the job before the cancel lands: it must still stop."""
    job, _ = services.enqueue(JobSpec(type="noop"))
    claimed = threading.Event()
    release = threading.Event()

    def worker_claims() -> None:
        try:
            with transaction.atomic():
                assert lifecycle.claim(job.id, queue="default", worker="w-race") is not None
                claimed.set()
                release.wait(10)
        finally:
            connection.close()

    t = threading.Thread(target=worker_claims)
    t.start()
    assert claimed.wait(5)
    outcome: dict = {}

    def user_cancels() -> None:
        try:
            outcome["job"] = services.cancel(job.id)
        except Exception as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc
        finally:
            connection.close()

    c = threading.Thread(target=user_cancels)
    c.start()
    wait_for(lambda: lock_waiters() >= 1, timeout=5, what="the cancel to wait on the claim's row lock")
    release.set()
    t.join(10)
    c.join(10)
    assert "error" not in outcome, outcome.get("error")
    row = Job.objects.get(pk=job.id)
    assert (row.status, row.worker_name) == (A, "w-race")
    assert row.cancel_requested_at is not None


@pytest.fixture
def guard():
    """A Guard installed on this (main) thread, with the previous signal handlers restored after."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGALRM, signal.SIGUSR1)}
    g = Guard()
    g.install()
    yield g
    signal.setitimer(signal.ITIMER_REAL, 0)
    for s, handler in saved.items():
        signal.signal(s, handler)


def test_a_hard_stop_meant_for_one_job_never_reaches_the_next(guard) -> None:
    def from_the_heartbeat(job_id: str) -> bool:
        out = []
        t = threading.Thread(target=lambda: out.append(guard.interrupt(JobCancelled(job_id), job_id=job_id)))
        t.start()
        t.join(5)
        return out[0]

    with guard.running(30, job_id="next-job"):
        assert from_the_heartbeat("previous-job") is False  # decided for a job that has ended
        time.sleep(0.05)  # a signal would have been delivered by now
    assert from_the_heartbeat("next-job") is False  # and none once no job runs

    with pytest.raises(JobCancelled):
        with guard.running(30, job_id="next-job"):
            assert from_the_heartbeat("next-job") is True
            time.sleep(5)  # interrupted at once
    assert guard.pending is None


def test_a_late_heartbeat_about_a_cancelled_job_does_not_stop_the_next_one(settings) -> None:
    """The beat saw job 1's cancel request just after job 1 ended and execute_job had reset the
    worker's cancel state; job 2 must not inherit it and be stopped after the grace."""
    worker = EngineWorker(["default"], name="w-late-beat")
    job, _ = services.enqueue(JobSpec(type="noop"))
    claimed = lifecycle.claim(job.id, queue="default", worker=worker.name)
    ctx = JobContext(job_id=job.id, queue="default", type="noop", attempt=1, max_attempts=3, payload={})
    worker.current = (claimed, ctx)
    worker._beat_job_id = "job-1"  # what the late beat wrote about the previous job
    worker._cancel_seen_at = time.monotonic() - settings.JOBS_CANCEL_GRACE - 5

    worker._beat()

    assert worker.guard.pending is None and not ctx.cancel_requested
    assert Job.objects.get(pk=job.id).status == A


def test_bulk_retry_and_cancel_use_a_few_statements_per_chunk(burst, django_assert_max_num_queries) -> None:
    from jobs.models import AuditEntry, DeadLetter

    failed = [services.enqueue(JobSpec(type="fail", payload={"kind": "PERMANENT"}))[0].id for _ in range(40)]
    burst()
    waiting = [services.enqueue(JobSpec(type="noop"))[0].id for _ in range(30)]
    delayed = [services.enqueue(JobSpec(type="noop", delay=600))[0].id for _ in range(30)]
    # 100 jobs: a fixed number of statements, not a handful per job.
    with django_assert_max_num_queries(20):
        done, skipped = services.cancel_many(waiting + delayed + failed, actor=None)
    assert sorted(done) == sorted(waiting + delayed)
    assert set(skipped) == set(failed) and "is failed" in skipped[failed[0]]
    assert Job.objects.filter(pk__in=waiting + delayed, status="cancelled").count() == 60
    with django_assert_max_num_queries(20):
        done, skipped = services.retry_many(failed + waiting, actor=None)
    assert sorted(done) == sorted(failed + waiting) and not skipped
    assert DeadLetter.objects.filter(resolved_at__isnull=True).count() == 0
    assert Job.objects.filter(pk__in=failed, status="waiting", attempts_made=0, failed_reason="").count() == 40
    burst()
    assert Job.objects.filter(pk__in=waiting, status="completed").count() == 30
    assert list(AuditEntry.objects.order_by("at").values_list("action", "count")) == [("cancel", 60), ("retry", 70)]


def test_a_progress_report_that_repeats_the_last_one_writes_nothing(django_assert_num_queries) -> None:
    job, _ = services.enqueue(JobSpec(type="noop"))
    lifecycle.claim(job.id, queue="default", worker="w-progress")
    ctx = JobContext(job_id=job.id, queue="default", type="noop", attempt=1, max_attempts=3, payload={})
    ctx.progress(40, "copying")
    with django_assert_num_queries(0):
        ctx.progress(40, "copying")
        ctx.progress(40)  # the same value, no new message
    ctx.progress(40, "storing")  # a new message is news
    assert Job.objects.get(pk=job.id).progress_message == "storing"
