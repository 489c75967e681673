"""Queue history: per-minute rollups written by the stats fold from real job events, compaction to hours,
the chart and totals reads, and the latency histograms on /metrics."""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.utils import timezone

from jobs import history, services
from jobs.engine import rollups, stats
from jobs.exceptions import InvalidInput, PermanentError
from jobs.models import Job, JobEvent, QueueLatency, QueueRollup
from jobs.services import JobSpec
from tests.jobs.engine_support import task_type

pytestmark = pytest.mark.django_db(transaction=True)


def test_buckets_bound_every_value_within_a_fifth_and_quantiles_read_them() -> None:
    for seconds in (0.0004, 0.001, 0.0013, 0.05, 0.2, 1.0, 7.5, 3600.0):
        i = rollups.bucket_of(seconds)
        assert rollups.bound(i) >= seconds > (rollups.bound(i - 1) if i else 0)
        assert rollups.bound(i) <= max(seconds, rollups.BASE) * 1.19
    hist: rollups.Histogram = {}
    for value in [0.01] * 90 + [2.0] * 10:
        key = str(rollups.bucket_of(value))
        hist[key] = hist.get(key, 0) + 1
    assert rollups.quantile(hist, 0.5) == pytest.approx(0.01, rel=0.19)
    assert rollups.quantile(hist, 0.95) == pytest.approx(2.0, rel=0.19)
    assert rollups.quantile(hist, 0.95, top=2.0) == 2.0  # capped by the exact max
    assert rollups.quantile({}, 0.5) is None
    cumulative = dict(rollups.prometheus_buckets(hist))
    assert cumulative["0.016"] == 90 and cumulative["1.024"] == 90 and cumulative["4.096"] == 100 and cumulative["+Inf"] == 100


def test_the_fold_counts_each_minute_and_times_waits_and_runs_from_the_events(burst) -> None:
    def slow(ctx: object, payload: dict) -> dict:
        time.sleep(0.2)
        return {}

    def broken(ctx: object, payload: dict) -> dict:
        raise PermanentError("no")

    with task_type("rollup.slow", slow), task_type("rollup.broken", broken):
        ok = [services.enqueue(JobSpec(type="rollup.slow", payload={"i": i}))[0] for i in range(3)]
        bad = services.enqueue(JobSpec(type="rollup.broken", payload={}))[0]
        time.sleep(0.3)  # every job waits at least this long
        burst()
    assert stats.fold(lag=0) >= 12

    rows = list(QueueRollup.objects.filter(queue="default"))
    assert sum(r.started for r in rows) == 4 and sum(r.completed for r in rows) == 3 and sum(r.failed for r in rows) == 1
    assert all(r.width == 60 and r.start.second == 0 for r in rows)
    wait: rollups.Histogram = {}
    run: rollups.Histogram = {}
    for r in rows:
        rollups.merge(wait, r.wait)
        rollups.merge(run, r.run)
    assert sum(wait.values()) == 4 and sum(run.values()) == 4
    # The exact times, from the events the engine wrote: a start minus its creation, an end minus its start.
    for job in [*ok, bad]:
        created, started, ended = [e.at for e in JobEvent.objects.filter(job_id=job.id).order_by("id")]
        assert str(rollups.bucket_of((started - created).total_seconds())) in wait
        assert str(rollups.bucket_of((ended - started).total_seconds())) in run
    assert max(r.wait_max for r in rows) >= 0.3 and max(r.run_max for r in rows) >= 0.2
    assert rollups.quantile(run, 0.5) >= 0.2

    latency = {row.kind: row for row in QueueLatency.objects.filter(queue="default")}
    assert latency["run"].count == 4 and latency["run"].total >= 0.6 and latency["wait"].count == 4

    # Folding again adds nothing: each event is counted once.
    assert stats.fold(lag=0) == 0
    assert sum(r.started for r in QueueRollup.objects.filter(queue="default")) == 4


def test_minutes_a_day_old_become_their_hour_and_a_month_old_go() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=dt_timezone.utc)
    two_days = now - timedelta(days=2)
    for minute, (done, wait_key, wmax) in enumerate([(3, "10", 0.5), (4, "12", 0.9)]):
        QueueRollup.objects.create(queue="q", start=two_days + timedelta(minutes=minute), completed=done, failed=1, wait={wait_key: done}, wait_max=wmax)
    QueueRollup.objects.create(queue="q", start=now - timedelta(hours=2), completed=5)  # younger than a day: stays a minute
    QueueRollup.objects.create(queue="q", start=now - timedelta(days=31), width=3600, completed=9)

    assert rollups.compact(now=now) == 2
    hour = QueueRollup.objects.get(queue="q", width=3600, start=two_days)
    assert (hour.completed, hour.failed, hour.wait, hour.wait_max) == (7, 2, {"10": 3, "12": 4}, 0.9)
    assert QueueRollup.objects.filter(width=60).count() == 1
    assert rollups.compact(now=now) == 0
    assert rollups.prune(now=now) == 1
    assert not QueueRollup.objects.filter(start__lt=now - timedelta(days=30)).exists()


def test_series_has_every_step_and_totals_add_up_by_window() -> None:
    now = timezone.now()
    minute = rollups._minute(now)
    QueueRollup.objects.create(queue="a", start=minute, completed=5, failed=1, run={"31": 6}, run_max=0.2)
    QueueRollup.objects.create(queue="b", start=minute - timedelta(minutes=2), completed=2)
    QueueRollup.objects.create(queue="a", start=minute - timedelta(hours=5), width=60, completed=100, failed=50)

    every = history.series("1h", now=now)
    assert len(every["t"]) == 60 and every["step"] == 60 and every["t"][-1] == int(minute.timestamp())
    assert every["completed"][-1] == 5 and every["completed"][-3] == 2 and sum(every["completed"]) == 7
    one = history.series("1h", queue="a", now=now)
    assert one["completed"][-1] == 5 and one["failure_rate"][-1] == pytest.approx(1 / 6, abs=1e-3)
    assert one["run_p95"][-1] == 0.2 and one["run_p50"][0] is None
    day = history.series("24h", queue="a", now=now)
    assert len(day["t"]) == 144 and sum(day["completed"]) == 105 and sum(day["failed"]) == 51
    assert len(history.series("7d", now=now)["t"]) == 168
    with pytest.raises(InvalidInput):
        history.series("2h")

    totals = history.totals(now=now)
    assert totals["hour"] == {"completed": 7, "failed": 1} and totals["day"] == {"completed": 107, "failed": 51}
    assert history.totals(queue="b", now=now)["week"] == {"completed": 2, "failed": 0}


def test_oldest_waiting_counts_from_creation_or_from_the_end_of_a_delay() -> None:
    now = timezone.now()
    old = services.enqueue(JobSpec(type="echo", payload={}))[0]
    Job.objects.filter(pk=old.pk).update(created_at=now - timedelta(seconds=90))
    promoted = services.enqueue(JobSpec(type="echo", payload={}, queue="transcription"))[0]
    Job.objects.filter(pk=promoted.pk).update(created_at=now - timedelta(hours=3), run_at=now - timedelta(seconds=30))
    ages = history.oldest_waiting(now=now)
    assert ages["default"] == pytest.approx(90, abs=1) and ages["transcription"] == pytest.approx(30, abs=1)


def test_metrics_expose_wait_and_run_histograms_and_the_oldest_waiting_age(client, django_user_model) -> None:
    QueueLatency.objects.create(queue="default", kind="run", buckets={"0": 2, "24": 3}, count=5, total=1.5)
    services.enqueue(JobSpec(type="echo", payload={}))
    staff = django_user_model.objects.create_user("ops", password="x", is_staff=True)
    client.force_login(staff)
    body = client.get("/metrics").content.decode()
    assert 'jobconsole_queue_run_seconds_bucket{le="0.001",queue="default"} 2.0' in body
    assert 'jobconsole_queue_run_seconds_bucket{le="+Inf",queue="default"} 5.0' in body
    assert 'jobconsole_queue_run_seconds_count{queue="default"} 5.0' in body
    assert 'jobconsole_queue_run_seconds_sum{queue="default"} 1.5' in body
    assert 'jobconsole_queue_oldest_waiting_seconds{queue="default"}' in body
