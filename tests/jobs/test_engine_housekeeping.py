"""Keeping the tables in shape and the numbers right: clean, retention, folded stats, rate limits."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from jobs import services
from jobs.engine import lifecycle, retention, scheduler, stats
from jobs.engine.conf import parse_queue
from jobs.exceptions import InvalidInput, NotFound
from jobs.models import AuditEntry, DeadLetter, Job, JobEvent, QueueCount
from jobs.services import JobSpec
from tests.jobs.engine_support import folded_counts, make_due, queues_env, real_counts, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

W, D, A, C, F, X = "waiting", "delayed", "active", "completed", "failed", "cancelled"


def _completed(n: int, burst, queue: str = "default") -> list[Job]:
    jobs = [services.enqueue(JobSpec(type="echo", payload={"i": i}, queue=queue))[0] for i in range(n)]
    burst(queue)
    assert Job.objects.filter(pk__in=[j.id for j in jobs], status=C).count() == n
    return jobs


def test_clean_removes_final_jobs_older_than_the_grace_up_to_the_limit(burst) -> None:
    _completed(4, burst)
    failed, _ = services.enqueue(JobSpec(type="fail", payload={"kind": "PERMANENT"}))
    burst()
    waiting, _ = services.enqueue(JobSpec(type="noop"))

    assert services.clean("default", status=C, grace=3600) == 0  # all too recent
    assert services.clean("default", status=C, grace=0, limit=3) == 3
    assert Job.objects.filter(status=C).count() == 1
    assert services.clean("default", status=C, grace=0) == 1
    assert services.clean("default", status=C, grace=0) == 0

    assert services.clean("default", status=F, grace=0) == 1
    assert not Job.objects.filter(pk=failed.id).exists()
    assert not DeadLetter.objects.filter(job_id=failed.id).exists()
    assert Job.objects.get(pk=waiting.id).status == W  # never touches a live job
    audited = list(AuditEntry.objects.filter(action="clean", queue="default").order_by("id").values_list("count", flat=True))
    assert audited == [0, 3, 1, 0, 1]  # every clean is recorded, with what it removed


def test_clean_removes_the_oldest_first(burst) -> None:
    done = _completed(3, burst)
    by_age = list(Job.objects.filter(pk__in=[j.id for j in done]).order_by("completed_at").values_list("id", flat=True))
    services.clean("default", status=C, grace=0, limit=2)
    assert list(Job.objects.values_list("id", flat=True)) == [by_age[-1]]


def test_clean_refuses_live_statuses_and_unknown_queues() -> None:
    for bad in [{"status": W}, {"status": A}, {"grace": -1}, {"limit": 0}]:
        with pytest.raises(InvalidInput):
            services.clean("default", **bad)
    with pytest.raises(NotFound):
        services.clean("nope")


def test_retention_keeps_the_declared_count_and_age(burst, queues) -> None:
    queues(kept={"retention": {"completed": {"count": 2}, "failed": {"age": 60}}})
    done = _completed(5, burst, queue="kept")
    failed = [services.enqueue(JobSpec(type="fail", payload={"kind": "PERMANENT"}, queue="kept"))[0] for _ in range(2)]
    burst("kept")
    elsewhere = _completed(1, burst)  # the default queue keeps 1000: untouched
    newest = list(Job.objects.filter(queue="kept", status=C).order_by("-completed_at").values_list("id", flat=True)[:2])

    assert retention.apply_retention() == 3
    assert sorted(Job.objects.filter(queue="kept", status=C).values_list("id", flat=True)) == sorted(newest)
    assert Job.objects.filter(queue="kept", status=F).count() == 2  # younger than 60 s
    assert retention.apply_retention() == 0

    assert retention.apply_retention(now=timezone.now() + timedelta(seconds=61)) == 2
    assert not Job.objects.filter(queue="kept", status=F).exists()
    assert Job.objects.filter(pk=elsewhere[0].id).exists()
    assert len(done) == 5


def test_the_scheduler_applies_retention_by_itself(burst, queues) -> None:
    queues(kept={"retention": {"completed": {"count": 1}}})
    _completed(3, burst, queue="kept")
    scheduler.Scheduler(retention_every=0).tick()
    assert Job.objects.filter(queue="kept").count() == 1


def _assert_stats_match() -> None:
    assert folded_counts(stats.counts()) == real_counts()


def test_stats_equal_a_real_count_through_a_mix_of_operations(burst, queues) -> None:
    queues(quick={"attempts": 2, "backoff": {"delay": 30}})
    _completed(4, burst)
    permanent, _ = services.enqueue(JobSpec(type="fail", payload={"kind": "PERMANENT"}))
    burst()
    retrying, _ = services.enqueue(JobSpec(type="crash", queue="quick"))
    burst("quick")
    services.enqueue(JobSpec(type="noop", delay=600))
    cancelled, _ = services.enqueue(JobSpec(type="noop", queue="quick"))
    services.cancel(cancelled.id)
    services.enqueue_many([services.JobSpec(type="noop", queue="quick") for _ in range(3)])
    active_job, _ = services.enqueue(JobSpec(type="noop"))
    lifecycle.claim(active_job.id, queue="default", worker="w-stats")
    _assert_stats_match()
    assert stats.counts()["default"][A] == 1 and stats.counts()["quick"][D] == 1

    assert stats.fold(lag=0) > 0
    assert QueueCount.objects.exists()
    _assert_stats_match()
    assert stats.fold(lag=0) == 0  # nothing new to fold

    services.retry(permanent.id)
    make_due(retrying.id)
    scheduler.promote_due()
    burst("default", "quick")
    _assert_stats_match()

    services.clean("default", status=C, grace=0, limit=2)
    _assert_stats_match()
    stats.fold(lag=0)
    _assert_stats_match()
    services.clean("default", status=C, grace=0)
    services.clean("quick", status=F, grace=0)
    _assert_stats_match()
    stats.fold(lag=0)
    kept = set(Job.objects.values_list("id", flat=True))
    assert stats.prune_events() > 0
    _assert_stats_match()
    # Only removed jobs' events go; every remaining job keeps its whole history.
    assert set(JobEvent.objects.values_list("job_id", flat=True)) == kept
    assert all(JobEvent.objects.filter(job_id=j, from_status__isnull=True).exists() for j in kept)


def test_a_fold_with_lag_leaves_recent_events_for_the_read_to_add() -> None:
    services.enqueue_many([services.JobSpec(type="noop") for _ in range(5)])
    assert stats.fold() == 0  # younger than FOLD_LAG
    _assert_stats_match()
    assert stats.counts()["default"][W] == 5


@pytest.mark.slow  # waits out real time (windows, soak, stall timeout)
def test_a_rate_limited_queue_starts_no_more_than_its_limit_per_window(burst, queues) -> None:
    queues(limited={"rate_limit": {"max": 2, "duration": 1}})
    jobs = [services.enqueue(JobSpec(type="noop", queue="limited"))[0] for _ in range(6)]

    burst("limited")

    starts = sorted(Job.objects.filter(pk__in=[j.id for j in jobs], status=C).values_list("started_at", flat=True))
    assert len(starts) == 6
    span = (starts[-1] - starts[0]).total_seconds()
    assert 1.9 <= span < 4, span  # 6 jobs at 2 per second: three windows
    for earlier, later in zip(starts, starts[2:]):
        assert (later - earlier).total_seconds() >= 0.9  # never a third start within one window


@pytest.mark.slow  # waits out real time (windows, soak, stall timeout)
def test_stats_read_while_the_scheduler_folds_never_double_counts() -> None:
    """Jobs are only added here, so a correct total lies between COUNT(*) before and after the read."""
    stop = threading.Event()

    def enqueue_and_fold() -> None:
        try:
            while not stop.is_set():
                services.enqueue(JobSpec(type="noop"))
                stats.fold(lag=0)
        finally:
            connection.close()

    folder = threading.Thread(target=enqueue_and_fold)
    folder.start()
    wrong, reads = [], 0
    deadline = time.monotonic() + 2
    try:
        while time.monotonic() < deadline:
            before = Job.objects.count()
            total = sum(sum(by_status.values()) for by_status in stats.counts().values())
            after = Job.objects.count()
            reads += 1
            if not before <= total <= after:
                wrong.append((before, total, after))
    finally:
        stop.set()
        folder.join(10)
    assert reads > 50
    assert not wrong, f"{len(wrong)} of {reads} reads were off, e.g. {wrong[:3]}"


def test_stats_count_a_job_enqueued_in_a_transaction_longer_than_the_fold_lag() -> None:
    lag = 0.3
    inserted, release = threading.Event(), threading.Event()

    def slow_caller() -> None:
        try:
            with transaction.atomic():
                services.enqueue(JobSpec(type="noop"))
                inserted.set()
                release.wait(10)
        finally:
            connection.close()

    t = threading.Thread(target=slow_caller)
    t.start()
    assert inserted.wait(5)
    later, _ = services.enqueue(JobSpec(type="noop"))  # committed, with a later event id
    wait_for(lambda: JobEvent.objects.get(job_id=later.id).at < timezone.now() - timedelta(seconds=lag), timeout=5, what="the event to pass the fold lag")
    stats.fold(lag=lag)  # the scheduler's regular fold
    release.set()
    t.join(10)
    stats.fold(lag=0)
    _assert_stats_match()


def test_the_rate_limit_holds_across_worker_processes(worker_process, queues) -> None:
    defs = {"limited": {"rate_limit": {"max": 2, "duration": 1}}}
    queues(**defs)
    jobs = [services.enqueue(JobSpec(type="noop", queue="limited"))[0] for _ in range(6)]
    procs = [worker_process("limited", env=queues_env(**defs)) for _ in range(2)]

    wait_for(lambda: Job.objects.filter(pk__in=[j.id for j in jobs], status=C).count() == 6, timeout=20, what="all six jobs")

    rows = list(Job.objects.filter(pk__in=[j.id for j in jobs]).order_by("started_at").values_list("started_at", "worker_name"))
    assert len({w for _, w in rows}) == 2, "both workers should have taken jobs"
    starts = [s for s, _ in rows]
    assert (starts[-1] - starts[0]).total_seconds() >= 1.9
    for earlier, later in zip(starts, starts[2:]):
        assert (later - earlier).total_seconds() >= 0.9
    assert all(p.poll() is None for p in procs)


@pytest.mark.parametrize(
    "rate",
    [{"max": 2, "duration": 1.5}, {"max": 2, "duration": 0.5}, {"max": 2}, {"duration": 1}, {"max": 0, "duration": 1}, [2, 1]],
    ids=["fractional", "sub-second", "no-duration", "no-max", "zero-max", "not-a-dict"],
)
def test_a_rate_limit_the_limiter_cannot_enforce_exactly_is_refused(rate) -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        parse_queue("q", {"rate_limit": rate})
    assert parse_queue("q", {"rate_limit": {"max": 10, "duration": 60}}).rate_limit.duration == 60


def test_prune_workers_forgets_only_long_gone_workers() -> None:
    from jobs.models import WorkerHeartbeat

    now = timezone.now()
    for name, seen in (("gone", now - timedelta(days=2)), ("recent", now - timedelta(minutes=5))):
        WorkerHeartbeat.objects.create(name=name, hostname="h", pid=1, started_at=seen, last_seen=seen)
    assert scheduler.prune_workers() == 1
    assert list(WorkerHeartbeat.objects.values_list("name", flat=True)) == ["recent"]
