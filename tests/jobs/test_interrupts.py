"""Where an interrupt lands does not change what it means: a timeout, a cancel or a shutdown inside one of the task's
database calls still ends as TIMEOUT, cancelled or back to waiting, recorded on a sound connection; a broken
connection (the database restarted) is ridden out by the worker's writes."""
from __future__ import annotations

import signal
import time
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from jobs import services
from jobs.engine import broker, dbretry, lifecycle, scheduler
from jobs.management.commands.worker import MAX_BACKOFF, Slot
from jobs.models import Job, QueueState
from jobs.services import JobSpec
from tests.jobs.engine_support import wait_for, wait_status

pytestmark = pytest.mark.django_db(transaction=True)


def backend_state(job_id: str) -> list[str]:
    """What the server is doing for connections that run the task's pg_sleep (a cancelled one is gone)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT state FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%%' AND pid <> pg_backend_pid()")
        return [r[0] for r in cursor.fetchall()]


def test_a_timeout_inside_a_database_call_is_a_timeout_and_the_worker_goes_on(burst: Any, queues: Any) -> None:
    queues(short={"timeout": 0.5, "attempts": 2, "backoff": {"delay": 60}})
    stuck, _ = services.enqueue(JobSpec(type="db_wait", payload={"seconds": 30}, queue="short"))
    after, _ = services.enqueue(JobSpec(type="echo", payload={"n": 1}, queue="short"))
    started = time.monotonic()
    burst("short")
    assert time.monotonic() - started < 10  # the server's pg_sleep was cancelled, not waited out
    stuck.refresh_from_db()
    assert (stuck.status, stuck.error_kind, stuck.attempts_made) == ("delayed", "TIMEOUT", 1)  # not STALLED
    assert Job.objects.get(pk=after.id).status == "completed"  # the same worker, on a new connection
    assert backend_state(stuck.id) == []


def inside_pg_sleep(worker_process: Any) -> tuple[Job, Any]:
    """A job whose task is inside a 60-second database call, and the worker process running it."""
    job, _ = services.enqueue(JobSpec(type="db_wait", payload={"seconds": 60}))
    proc = worker_process("default")
    wait_status(job.id, "active", timeout=20, proc=proc)
    wait_for(lambda: backend_state(job.id) == ["active"], what="the task to be inside pg_sleep")
    return job, proc


def test_a_shutdown_inside_a_database_call_puts_the_job_back_without_counting_the_attempt(worker_process: Any, settings: Any) -> None:
    job, proc = inside_pg_sleep(worker_process)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(settings.JOBS_SHUTDOWN_GRACE + 20) == 0, proc.stdout.read() if proc.stdout else ""
    job.refresh_from_db()
    assert (job.status, job.attempts_made, job.worker_name) == ("waiting", 0, "")
    assert job.id in broker.carried_ids("default")  # back in its list, at the front


def test_a_cancel_inside_a_database_call_cancels(worker_process: Any, settings: Any) -> None:
    job, proc = inside_pg_sleep(worker_process)
    services.cancel(job.id)
    wait_status(job.id, "cancelled", timeout=settings.JOBS_CANCEL_GRACE + 15, proc=proc)
    assert proc.poll() is None  # the worker lives on
    wait_for(lambda: backend_state(job.id) == [], what="the server to stop the cancelled query")


def test_a_write_rides_out_a_broken_connection(settings: Any) -> None:
    """The server ends the worker's connection (as a restart does): the next write reconnects and goes through."""
    job, _ = services.enqueue(JobSpec(type="noop"))
    claimed = lifecycle.claim(job.id, queue="default", worker="w1")
    assert claimed is not None
    connection.ensure_connection()
    mine = connection.connection.info.backend_pid
    from django.db import connections

    other = connections.create_connection("default")
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [mine])
    other.close()
    assert lifecycle.complete(claimed, worker="w1", result={"ok": True}) is True
    job.refresh_from_db()
    assert (job.status, job.result) == ("completed", {"ok": True})


def test_a_claim_whose_answer_was_lost_is_still_ours(settings: Any) -> None:
    """A claim that committed but whose connection broke before the answer: on the retry the row is the worker's."""
    job, _ = services.enqueue(JobSpec(type="noop"))
    calls = {"n": 0}
    real = lifecycle.move

    def commit_then_break(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        moved = real(*args, **kwargs)
        if calls["n"] == 1:
            from django.db import OperationalError

            raise OperationalError("server closed the connection unexpectedly")  # after the commit
        return moved

    lifecycle.move = commit_then_break  # type: ignore[assignment]
    try:
        claimed = lifecycle.claim(job.id, queue="default", worker="w1")
    finally:
        lifecycle.move = real  # type: ignore[assignment]
    assert claimed is not None and claimed.attempt == 1 and calls["n"] == 2
    assert Job.objects.get(pk=job.id).worker_name == "w1"


def test_jobs_accepted_while_redis_was_down_are_handed_over_as_soon_as_it_answers(settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/15"  # nothing listens: Redis is down
    broker.reset_connection()
    job, _ = services.enqueue(JobSpec(type="noop"))
    assert QueueState.objects.get(name="default").handoff_failed_at is not None
    assert scheduler.hand_over_failed() == 0  # still down: nothing yet

    settings.REDIS_URL = "redis://127.0.0.1:6379/15"
    broker.reset_connection()
    assert scheduler.hand_over_failed() == 1  # the next tick, not the next reconcile
    assert broker.carried_ids("default") == {job.id}
    assert QueueState.objects.get(name="default").handoff_failed_at is None


def test_a_worker_process_that_keeps_exiting_is_restarted_with_backoff() -> None:
    slot = Slot(["true"])
    slot.started = 100.0
    waits = [slot.exited(101.0)]
    for _ in range(7):
        slot.started = 200.0
        waits.append(slot.exited(201.0))
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF]
    slot.started = 300.0
    assert slot.exited(300.0 + 61) == 0.0  # it ran a while: healthy, restarted at once


def test_drop_connection_cancels_the_running_query() -> None:
    assert dbretry.drop_connection(cancel=True) is None
    assert connection.connection is None
    assert Job.objects.count() == 0  # and the next query reconnects
    _ = timezone.now()
