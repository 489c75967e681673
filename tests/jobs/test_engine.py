"""The engine end to end on real PostgreSQL, Redis and RQ workers (in-process burst workers here).

Given/When/Then: each test enqueues through services, runs a real EngineWorker in burst mode and
reads the rows and events the engine wrote.
"""
from __future__ import annotations

import gc
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from jobs import services
from jobs.engine import broker, hooks, intake, priority, scheduler
from jobs.exceptions import InvalidInput, InvalidTransition, NotFound, PermanentError
from jobs.models import DeadLetter, Job, JobEvent
from jobs.services import JobSpec
from tests.jobs.engine_support import make_due, moves, task_type, times_started, worker_statements

pytestmark = pytest.mark.django_db(transaction=True)

W, D, A, C, F, X = "waiting", "delayed", "active", "completed", "failed", "cancelled"


def test_enqueue_runs_to_completed_with_result_and_events(burst) -> None:
    job, created = services.enqueue(JobSpec(type="echo", payload={"text": "hi"}, priority="PRO"))
    assert created and job.status == W
    assert broker.carried_ids("default") == {job.id}

    worker = burst()

    job.refresh_from_db()
    assert job.status == C, (job.failed_reason, job.traceback)
    assert job.result == {"echo": {"text": "hi"}}
    assert (job.attempts_made, job.progress, job.worker_name) == (1, 100, worker.name)
    assert job.created_at <= job.started_at <= job.completed_at
    assert moves(job.id) == [(None, W), (W, A), (A, C)]
    assert broker.carried_ids("default") == set()
    # The database holds the outcome: RQ keeps no job hash, result or registry entry for it.
    assert broker.connection().keys("rq:job:*") == []
    assert [k for k in broker.connection().keys("rq:*") if b"registry" in k or b"results" in k] == []


def test_rq_carries_the_id_only_and_only_after_commit() -> None:
    with transaction.atomic():
        job, _ = services.enqueue(JobSpec(type="noop"))
        assert broker.carried_ids("default") == set(), "handed to RQ before the row was committed"
    assert broker.carried_ids("default") == {job.id}
    assert broker.connection().keys("rq:job:*") == []  # the id only: no RQ job hash, the row holds the rest


def test_a_rolled_back_enqueue_leaves_nothing_in_redis() -> None:
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            services.enqueue(JobSpec(type="noop"))
            raise RuntimeError("caller's transaction fails")
    assert not Job.objects.exists()
    assert broker.carried_ids("default") == set()


def test_a_delay_makes_the_job_delayed_until_the_scheduler_promotes_it(burst) -> None:
    job, _ = services.enqueue(JobSpec(type="echo", payload={"n": 1}, delay=30))
    assert job.status == D
    assert timedelta(seconds=29) < job.run_at - timezone.now() <= timedelta(seconds=30)
    assert broker.carried_ids("default") == set()

    burst()  # nothing to take yet
    assert scheduler.promote_due() == 0
    assert Job.objects.get(pk=job.id).status == D

    make_due(job.id)
    assert scheduler.promote_due() == 1
    assert Job.objects.get(pk=job.id).status == W
    burst()

    job.refresh_from_db()
    assert (job.status, job.result) == (C, {"echo": {"n": 1}})
    assert moves(job.id) == [(None, D), (D, W), (W, A), (A, C)]


def test_a_run_at_time_in_the_past_runs_now(burst) -> None:
    job, _ = services.enqueue(JobSpec(type="noop", run_at=timezone.now() - timedelta(seconds=1)))
    assert job.status == W
    burst()
    assert Job.objects.get(pk=job.id).status == C


def test_a_retryable_failure_backs_off_by_the_policy_and_succeeds_later(burst, queues) -> None:
    queues(media={"attempts": 4, "backoff": {"delay": 5, "factor": 3}})
    job, _ = services.enqueue(JobSpec(type="fail", payload={"succeed_on_attempt": 3}, queue="media"))

    for attempt, delay in [(1, 5), (2, 15)]:
        burst("media")
        job.refresh_from_db()
        assert (job.status, job.attempts_made, job.error_kind) == (D, attempt, "TRANSIENT")
        event = JobEvent.objects.filter(job_id=job.id, to_status=D).latest("id")
        assert event.data["delay"] == delay
        waits = (job.run_at - event.at).total_seconds()
        assert delay - 0.5 < waits <= delay, waits
        left = (job.run_at - timezone.now()).total_seconds()
        assert delay - 3 < left <= delay, left
        burst("media")  # backing off: no worker may take it early
        assert Job.objects.get(pk=job.id).status == D
        make_due(job.id)
        assert scheduler.promote_due() == 1

    burst("media")
    job.refresh_from_db()
    assert (job.status, job.attempts_made, job.failed_reason) == (C, 3, "sample TRANSIENT failure")
    assert times_started(job.id) == 3
    assert not DeadLetter.objects.filter(job_id=job.id).exists()


@pytest.mark.parametrize("kind", ["PERMANENT", "VALIDATION"])
def test_a_permanent_error_fails_at_once_into_the_dead_letters(burst, kind) -> None:
    job, _ = services.enqueue(JobSpec(type="fail", payload={"kind": kind, "message": "bad input"}))
    assert job.max_attempts == 3

    burst()

    job.refresh_from_db()
    assert (job.status, job.attempts_made, job.error_kind, job.failed_reason) == (F, 1, kind, "bad input")
    assert job.error_class == "jobs.exceptions.JobError"
    assert "bad input" in job.traceback
    assert moves(job.id) == [(None, W), (W, A), (A, F)]
    letter = DeadLetter.objects.get(job_id=job.id)
    assert (letter.queue, letter.error_kind, letter.reason, letter.resolved_at) == ("default", kind, "bad input", None)


def test_exhausted_attempts_fail_into_the_dead_letters(burst, queues) -> None:
    queues(quick={"attempts": 2, "backoff": {"delay": 0.1}})
    job, _ = services.enqueue(JobSpec(type="crash", payload={"message": "flaky dependency"}, queue="quick"))

    burst("quick")
    job.refresh_from_db()
    assert (job.status, job.attempts_made, job.error_kind) == (D, 1, "TRANSIENT")
    make_due(job.id)
    scheduler.promote_due()
    burst("quick")

    job.refresh_from_db()
    assert (job.status, job.attempts_made, job.error_class) == (F, 2, "builtins.RuntimeError")
    assert "attempts exhausted (2/2)" in JobEvent.objects.filter(job_id=job.id, to_status=F).get().message
    assert DeadLetter.objects.get(job_id=job.id).reason == "flaky dependency"
    assert times_started(job.id) == 2


@pytest.fixture
def switch():
    """A job type that fails permanently until the test flips the switch (in-process workers only)."""
    state = {"ok": False}

    def flaky(ctx, payload):
        if not state["ok"]:
            raise PermanentError("not yet")
        return {"attempt": ctx.attempt, "payload": payload}

    with task_type("test.switch", flaky):
        yield state


def test_retry_runs_a_failed_job_again_with_attempts_counted_afresh(burst, switch) -> None:
    job, _ = services.enqueue(JobSpec(type="test.switch", payload={"x": 1}))
    burst()
    assert Job.objects.get(pk=job.id).status == F
    assert DeadLetter.objects.get(job_id=job.id).resolved_at is None

    switch["ok"] = True
    retried = services.retry(job.id)
    assert (retried.id, retried.status, retried.attempts_made, retried.failed_reason) == (job.id, W, 0, "")
    letter = DeadLetter.objects.get(job_id=job.id)
    assert letter.resolution == "retried" and letter.resolved_at is not None
    burst()

    job.refresh_from_db()
    assert (job.status, job.result, job.error_kind) == (C, {"attempt": 1, "payload": {"x": 1}}, "")
    assert moves(job.id) == [(None, W), (W, A), (A, F), (F, W), (W, A), (A, C)]
    with pytest.raises(InvalidTransition):
        services.retry(job.id)  # a completed job is not retried


def test_retry_dead_letter_makes_a_new_job_with_the_same_input(burst, switch) -> None:
    old, _ = services.enqueue(JobSpec(type="test.switch", payload={"file": "a.wav"}, priority="PAYG"))
    burst()
    assert Job.objects.get(pk=old.id).status == F

    switch["ok"] = True
    new = services.retry_dead_letter(old.id)
    assert new.id != old.id
    assert (new.type, new.payload, new.priority, new.queue) == (old.type, old.payload, old.priority, old.queue)
    letter = DeadLetter.objects.get(job_id=old.id)
    assert (letter.resolution, letter.retry_job_id) == ("retried", new.id)
    assert Job.objects.get(pk=new.id).retry_of_id == old.id
    burst()

    assert Job.objects.get(pk=new.id).status == C
    assert Job.objects.get(pk=old.id).status == F  # the old job stays, for the record
    with pytest.raises(NotFound):
        services.retry_dead_letter(old.id)  # resolved: no second copy


def test_a_higher_priority_starts_before_a_lower_one_within_a_queue(burst) -> None:
    order = ["FREE", "PAYG", "PRO", "CRITICAL", "FREE", "PRO", "CRITICAL", "PAYG", "LOW", "HIGH"]
    jobs = [services.enqueue(JobSpec(type="noop", priority=name))[0] for name in order]

    burst()

    # The start order is the order of the claims' events: a batch's jobs share one started_at (one claim).
    rows = {r[0]: r[1:] for r in Job.objects.filter(pk__in=[j.id for j in jobs]).values_list("id", "priority", "created_at", "status")}
    started = [rows[i] for i in JobEvent.objects.filter(job_id__in=list(rows), to_status="active").order_by("id").values_list("job_id", flat=True)]
    assert {s for *_, s in started} == {C}
    assert [p for p, *_ in started] == sorted((priority.parse(n) for n in order), reverse=True)
    for (p1, c1, _), (p2, c2, _) in zip(started, started[1:]):
        if p1 == p2:
            assert c1 < c2  # same level: first come, first served


def test_idempotency_key_returns_the_first_job(burst) -> None:
    first, created = services.enqueue(JobSpec(type="echo", payload={"v": 1}, idempotency_key="order-42"))
    again, created_again = services.enqueue(JobSpec(type="echo", payload={"v": 2}, idempotency_key="order-42"))
    assert created and not created_again
    assert again.id == first.id and again.payload == {"v": 1}
    assert Job.objects.count() == 1
    assert broker.carried_ids("default") == {first.id}

    burst()
    third, created_third = services.enqueue(JobSpec(type="echo", idempotency_key="order-42"))
    assert (third.id, third.status, created_third) == (first.id, C, False)


def test_enqueue_many_honours_idempotency_keys() -> None:
    first, _ = services.enqueue(JobSpec(type="noop", idempotency_key="k1"))
    out = services.enqueue_many(
        [JobSpec(type="noop", idempotency_key="k1"), JobSpec(type="noop", idempotency_key="k2"), JobSpec(type="noop", idempotency_key="k2"), JobSpec(type="noop")]
    )
    assert out[0].id == first.id
    assert out[1].id == out[2].id != first.id
    assert Job.objects.count() == 3
    assert broker.carried_ids("default") == {j.id for j in out}


def test_enqueue_many_writes_every_row_and_runs_them_all(burst) -> None:
    specs = [JobSpec(type="echo", payload={"i": i}, priority="HIGH" if i % 3 == 0 else None) for i in range(60)]
    specs.append(JobSpec(type="noop", delay=60))
    out = services.enqueue_many(specs)
    assert len(out) == 61 and len({j.id for j in out}) == 61
    assert Job.objects.filter(status=W).count() == 60 and Job.objects.filter(status=D).count() == 1
    assert JobEvent.objects.filter(from_status=None).count() == 61
    assert broker.waiting_count("default") == 60

    burst()

    assert Job.objects.filter(status=C).count() == 60
    assert sorted(r["i"] for r in Job.objects.filter(status=C).values_list("result__echo", flat=True)) == list(range(60))
    assert JobEvent.objects.filter(to_status=A).count() == 60  # each ran once


def test_enqueue_many_pauses_garbage_collection_only_while_it_runs() -> None:
    """Collection is off during the bulk step (a hook sees it off), on again after it, also when a spec is refused;
    a caller that had it off finds it still off."""
    seen: list[bool] = []
    hooks.register("test.gc", lambda change: seen.append(gc.isenabled()))
    try:
        assert gc.isenabled()
        services.enqueue_many([JobSpec(type="noop")])
        assert seen == [False] and gc.isenabled()
        with pytest.raises(InvalidInput):
            services.enqueue_many([JobSpec(type="noop"), JobSpec(type="no-such-type")])
        assert gc.isenabled()
        gc.disable()
        try:
            services.enqueue_many([JobSpec(type="noop")])
            assert not gc.isenabled()
        finally:
            gc.enable()
    finally:
        hooks.unregister("test.gc")
    assert Job.objects.count() == 2


def test_overlapping_pauses_keep_collection_off_until_the_last_ends() -> None:
    """Two threads' pauses overlap: the first to end leaves collection off for the other; the last turns it on."""
    entered, release_first, first_done = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with intake.gc_paused():
            entered.set()
            release_first.wait(5)
        first_done.set()

    thread = threading.Thread(target=first)
    thread.start()
    assert entered.wait(5)
    with intake.gc_paused():
        release_first.set()
        assert first_done.wait(5)
        assert not gc.isenabled()  # the other pause has ended, this one still runs
    thread.join(5)
    assert gc.isenabled()


def test_bad_input_writes_and_enqueues_nothing() -> None:
    for kwargs in [
        {"type": "no-such-type"},
        {"type": "noop", "priority": "URGENTISSIMO"},
        {"type": "noop", "delay": -1},
        {"type": "noop", "payload": ["not", "an", "object"]},
        {"type": "noop", "attempts": 0},
    ]:
        with pytest.raises(InvalidInput):
            services.enqueue(JobSpec(**kwargs))
    with pytest.raises(InvalidInput) as refused:
        services.enqueue(JobSpec(type="noop", queue="no-such-queue", priority="URGENTISSIMO"))
    assert set(refused.value.extra) == {"queue", "priority"}  # every bad field named at once
    with pytest.raises(InvalidInput):
        services.enqueue_many([JobSpec(type="noop"), JobSpec(type="noop", priority=1000)])
    assert not Job.objects.exists() and not JobEvent.objects.exists()
    assert broker.carried_ids("default") == set()


def test_an_unregistered_job_type_fails_permanently(burst) -> None:
    with task_type("test.vanishing", lambda ctx, payload: "never"):
        job, _ = services.enqueue(JobSpec(type="test.vanishing"))
    # The worker no longer knows the type (e.g. code removed in a deploy).
    burst()

    job.refresh_from_db()
    assert (job.status, job.attempts_made, job.error_kind) == (F, 1, "VALIDATION")
    assert "not registered" in job.failed_reason
    assert DeadLetter.objects.filter(job_id=job.id).exists()


@pytest.mark.parametrize("value", [{1, 2}, object(), {"ratio": float("nan")}, float("inf")], ids=["set", "object", "nan", "inf"])
def test_a_result_that_is_not_json_fails_with_validation(burst, value) -> None:
    with task_type("test.opaque", lambda ctx, payload: value):
        job, _ = services.enqueue(JobSpec(type="test.opaque"))
        burst()

    job.refresh_from_db()
    assert (job.status, job.attempts_made, job.error_kind, job.result) == (F, 1, "VALIDATION", None)
    assert "not JSON" in job.failed_reason
    assert DeadLetter.objects.get(job_id=job.id).error_kind == "VALIDATION"


def test_progress_is_recorded_while_the_job_runs(burst) -> None:
    seen: list[tuple[int, str]] = []

    def stepper(ctx, payload):
        for pct in (25, 50, 75):
            ctx.progress(pct, f"at {pct}")
            row = Job.objects.get(pk=ctx.job_id)
            seen.append((row.progress, row.progress_message))
        return "done"

    with task_type("test.stepper", stepper):
        job, _ = services.enqueue(JobSpec(type="test.stepper"))
        burst()
    assert seen == [(25, "at 25"), (50, "at 50"), (75, "at 75")]
    job.refresh_from_db()
    assert (job.status, job.progress, job.result) == (C, 100, "done")


def test_concurrent_enqueues_with_one_idempotency_key_make_one_job() -> None:
    barrier = threading.Barrier(6)
    ids: list[str] = []

    def enqueue() -> None:
        try:
            barrier.wait(5)
            ids.append(services.enqueue(JobSpec(type="noop", idempotency_key="same-click"))[0].id)
        finally:
            connection.close()

    threads = [threading.Thread(target=enqueue) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(ids) == 6 and len(set(ids)) == 1
    assert Job.objects.count() == 1
    assert broker.carried_ids("default") == set(ids)


def test_idempotency_keys_are_scoped_by_owner(django_user_model) -> None:
    ann, bo = django_user_model.objects.create_user("ann"), django_user_model.objects.create_user("bo")
    first, _ = services.enqueue(JobSpec(type="noop", owner=ann, idempotency_key="order-7"))
    again, created = services.enqueue(JobSpec(type="noop", owner=ann, idempotency_key="order-7"))
    other, other_created = services.enqueue(JobSpec(type="noop", owner=bo, idempotency_key="order-7"))
    ownerless, ownerless_created = services.enqueue(JobSpec(type="noop", idempotency_key="order-7"))
    assert again.id == first.id and not created
    assert other_created and other.id != first.id
    assert ownerless_created and ownerless.id not in {first.id, other.id}
    many = services.enqueue_many([JobSpec(type="noop", owner=bo, idempotency_key="order-7"), JobSpec(type="noop", owner=ann, idempotency_key="order-7")])
    assert [j.id for j in many] == [other.id, first.id]


def test_the_workers_hot_path_is_one_round_trip_per_job(burst, settings) -> None:
    """Without batches (JOBS_BATCH_SIZE=1): claim and complete are one statement each on PostgreSQL (UPDATE ...
    RETURNING plus the event INSERT in a CTE), and while jobs wait a completion goes with the next job's claim
    in one round trip; nothing else touches the database per job. Measured as the difference between a run
    of 21 jobs and a run of 1, so the worker's start and stop (its heartbeat row) cancel out; the heartbeat
    thread has its own connection. With batches: tests/jobs/test_batch.py."""
    settings.JOBS_BATCH_SIZE = 1
    one, many = worker_statements(1, burst), worker_statements(21, burst)
    assert (len(many) - len(one)) / 20 == 1, f"{len(one)} statements for 1 job, {len(many)} for 21:\n" + "\n".join(many)
    single = [sql for sql in many if sql.startswith("WITH moved AS (UPDATE")]
    chained = [sql for sql in many if sql.startswith("WITH m0_moved AS (UPDATE") and "m1_moved AS (UPDATE" in sql]
    # The first claim alone, then 20 completions each with the next claim in one statement, then the last completion alone.
    assert (len(single), len(chained)) == (2, 20)


def test_a_chained_claim_is_put_back_when_the_worker_stops_before_running_it(burst) -> None:
    """max_jobs ends the loop: the worker claims no job it will not run (and one claimed goes back uncounted)."""
    jobs = services.enqueue_many([JobSpec(type="noop") for _ in range(3)])
    burst(max_jobs=2)
    statuses = sorted(Job.objects.filter(pk__in=[j.id for j in jobs]).values_list("status", "attempts_made"))
    assert statuses == [(C, 1), (C, 1), (W, 0)]
    assert broker.waiting_count("default") == 1
