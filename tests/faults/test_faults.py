"""Faults from outside, counted: workers killed, SIGTERM mid-job, Redis restarted empty or down at enqueue,
PostgreSQL restarted under load. Each test ends with every job completed once: 0 lost, 0 completed twice."""
from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from django.conf import settings as django_settings

from jobs import services
from jobs.engine import broker
from jobs.models import Job, JobEvent
from jobs.services import JobSpec
from tests.faults.conftest import (
    Fleet,
    OwnPostgres,
    OwnRedis,
    executions,
    main_db_url,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)

FAST = {"JOBS_HEARTBEAT_INTERVAL": "0.2", "JOBS_STALL_TIMEOUT": "2", "JOBS_SHUTDOWN_GRACE": "2"}


def outcome(job_ids: list[str]) -> dict[str, int]:
    """Lost (not completed), doubled (completed more than once) and attempts beyond the first, from the test database."""
    done = dict(Job.objects.filter(pk__in=job_ids).values_list("id", "status"))
    completions: dict[str, int] = {}
    for job_id in JobEvent.objects.filter(job_id__in=job_ids, to_status="completed").values_list("job_id", flat=True):
        completions[job_id] = completions.get(job_id, 0) + 1
    return {
        "lost": sum(1 for j in job_ids if done.get(j) != "completed"),
        "doubled": sum(1 for n in completions.values() if n > 1),
    }


def enqueue_records(n: int, marks: Path, seconds: float) -> list[str]:
    jobs = services.enqueue_many([JobSpec(type="record", payload={"file": str(marks), "seconds": seconds}) for _ in range(n)])
    return [j.id for j in jobs]


def all_completed(job_ids: list[str]) -> bool:
    return Job.objects.filter(pk__in=job_ids, status="completed").count() == len(job_ids)


def test_workers_killed_every_second_and_a_half_lose_nothing(fleet: Callable[..., Fleet], tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    ids = enqueue_records(200, marks, 0.02)
    f = fleet(DATABASE_URL=main_db_url(), REDIS_URL=django_settings.REDIS_URL, **FAST)
    f.scheduler()
    workers = [f.worker(), f.worker()]
    kills, deadline = 0, time.monotonic() + 120
    while not all_completed(ids):
        assert time.monotonic() < deadline, outcome(ids)
        time.sleep(1.5)
        if kills >= 12:
            # Twelve kills make the point. Killing on and on, on a slow machine where a worker takes
            # about as long to start, leaves the fleet no time to work, and a job that is killed
            # three times goes to the dead letters.
            continue
        victim = random.choice([w for w in workers if w.poll() is None])
        victim.send_signal(signal.SIGKILL)
        kills += 1
        workers = [w for w in workers if w.poll() is None] + [f.worker()]
    assert kills >= 2
    assert outcome(ids) == {"lost": 0, "doubled": 0}
    ran = executions(marks)
    assert set(ran) == set(ids)  # every job's task ran to its end; a killed one may have run twice, never completed twice


def _running_a_job(workers: list[Any], job_ids: list[str]) -> Any:
    """A live worker process that holds one of these jobs active now (a worker's name carries its pid)."""
    names = list(Job.objects.filter(pk__in=job_ids, status="active").values_list("worker_name", flat=True))
    return next((w for w in workers if w.poll() is None and any(f".{w.pid}." in n for n in names)), None)


def test_sigterm_mid_job_puts_jobs_back_and_loses_no_attempt(fleet: Callable[..., Fleet], tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    ids = enqueue_records(24, marks, 0.8)
    f = fleet(DATABASE_URL=main_db_url(), REDIS_URL=django_settings.REDIS_URL, **{**FAST, "JOBS_SHUTDOWN_GRACE": "0.3"})
    f.scheduler()
    workers = [f.worker(), f.worker()]
    stops, deadline = 0, time.monotonic() + 120
    while not all_completed(ids):
        assert time.monotonic() < deadline, outcome(ids)
        time.sleep(0.2)
        victim = _running_a_job(workers, ids)  # not one still starting up: on a slow machine that stop puts nothing back
        if victim is None or stops >= 8:
            # Eight stops make the point; stopping every worker as soon as it starts a job, on a slow
            # machine (a worker starts in about 1.5 s), can keep the front job from ever finishing.
            continue
        victim.send_signal(signal.SIGTERM)  # warm: the job has 0.3 s, then goes back to waiting
        stops += 1
        workers = [w for w in workers if w is not victim and w.poll() is None] + [f.worker()]
        time.sleep(1.0)
    assert stops >= 2
    assert outcome(ids) == {"lost": 0, "doubled": 0}
    assert set(Job.objects.filter(pk__in=ids).values_list("attempts_made", flat=True)) == {1}  # a job put back keeps its attempt
    assert JobEvent.objects.filter(job_id__in=ids, from_status="active", to_status="waiting").exists()  # some were put back


def test_redis_restarted_empty_with_jobs_waiting_loses_nothing(fleet: Callable[..., Fleet], own_redis: OwnRedis, tmp_path: Path, settings: Any) -> None:
    settings.REDIS_URL = own_redis.url
    broker.reset_connection()
    marks = tmp_path / "marks"
    ids = enqueue_records(300, marks, 0.01)
    f = fleet(DATABASE_URL=main_db_url(), REDIS_URL=own_redis.url, **FAST)
    f.scheduler()
    f.worker()
    f.worker()
    wait_until(lambda: Job.objects.filter(pk__in=ids, status="completed").count() >= 60, timeout=60, what="a fifth of the jobs")
    own_redis.stop()  # a crash: every carried id and the paused set are gone
    own_redis.start()
    started = time.monotonic()
    wait_until(lambda: all_completed(ids), timeout=90, what="every job after Redis came back empty")
    assert outcome(ids) == {"lost": 0, "doubled": 0}
    assert time.monotonic() - started < 60  # handed back when Redis answered, not at the next minute's reconcile


def test_jobs_enqueued_through_the_api_while_redis_is_down_run_once_it_is_back(
    fleet: Callable[..., Fleet], own_redis: OwnRedis, alice: Any, settings: Any
) -> None:
    from tests.clients import key_client

    settings.REDIS_URL = own_redis.url
    broker.reset_connection()
    client = key_client(alice)
    own_redis.stop()
    answers = [client.post("/api/jobs", {"type": "echo", "payload": {"i": i}}, format="json") for i in range(40)]
    assert [a.status_code for a in answers] == [201] * 40  # accepted: the rows are the truth
    ids = [a.json()["id"] for a in answers]
    f = fleet(DATABASE_URL=main_db_url(), REDIS_URL=own_redis.url, **FAST)
    f.worker()
    f.scheduler()
    time.sleep(1)
    own_redis.start()
    back = time.monotonic()
    wait_until(lambda: all_completed(ids), timeout=30, what="the jobs accepted while Redis was down")
    assert time.monotonic() - back < 10  # within a few seconds, not the minute of the regular reconcile
    assert outcome(ids) == {"lost": 0, "doubled": 0}


def test_postgres_restarted_under_load_loses_nothing_and_costs_no_attempt(
    fleet: Callable[..., Fleet], own_postgres: OwnPostgres, own_redis: OwnRedis, tmp_path: Path
) -> None:
    import psycopg

    marks = tmp_path / "marks"
    env = {"DATABASE_URL": own_postgres.url, "REDIS_URL": own_redis.url, **FAST, "JOBS_STALL_TIMEOUT": "15"}
    f = fleet(**env)
    setup = f.start("migrate", "--no-input")
    assert setup.wait(180) == 0
    payload = f'{{"file": "{marks}", "seconds": 0.02}}'
    assert f.start("enqueue", "record", "--count", "400", "--payload", payload).wait(120) == 0
    f.scheduler()
    f.worker()
    f.worker()

    def counts() -> dict[str, int]:
        with psycopg.connect(own_postgres.url.replace("postgres://", "postgresql://"), connect_timeout=2) as conn:
            rows = conn.execute("SELECT status, count(*) FROM jobs_job WHERE type = 'record' GROUP BY status").fetchall()
        return dict(rows)

    wait_until(lambda: counts().get("completed", 0) >= 100, timeout=90, what="a quarter of the jobs")
    own_postgres.restart()  # every connection of every worker breaks
    wait_until(lambda: counts().get("completed", 0) == 400, timeout=120, what="every job after the restart", every=0.5)
    with psycopg.connect(own_postgres.url.replace("postgres://", "postgresql://")) as conn:
        doubled = conn.execute(
            "SELECT count(*) FROM (SELECT job_id FROM jobs_jobevent WHERE to_status = 'completed' GROUP BY job_id HAVING count(*) > 1) t"
        ).fetchone()
        attempts = conn.execute("SELECT attempts_made, count(*) FROM jobs_job WHERE type = 'record' GROUP BY attempts_made").fetchall()
    assert doubled == (0,)
    assert dict(attempts) == {1: 400}  # the workers rode out the restart: no attempt was lost to it
    assert all(p.poll() is None for p in f.procs if "worker" in p.args)  # and no worker died of it


def test_postgres_crash_with_asynchronous_commits_loses_no_accepted_job(
    fleet: Callable[..., Fleet], own_postgres: OwnPostgres, own_redis: OwnRedis, tmp_path: Path
) -> None:
    """An immediate shutdown (a crash: no checkpoint, the WAL not yet flushed is lost) while workers commit claims and
    completions asynchronously: every enqueued job still completes; a job whose completion was lost runs once more."""
    import psycopg

    marks = tmp_path / "marks"
    env = {"DATABASE_URL": own_postgres.url, "REDIS_URL": own_redis.url, **FAST, "JOBS_STALL_TIMEOUT": "4", "JOBS_ASYNC_COMMIT": "true"}
    f = fleet(**env)
    assert f.start("migrate", "--no-input").wait(180) == 0
    payload = f'{{"file": "{marks}", "seconds": 0.01}}'
    assert f.start("enqueue", "record", "--count", "400", "--payload", payload).wait(120) == 0  # accepted: committed and flushed
    f.scheduler()
    f.worker()
    f.worker()
    url = own_postgres.url.replace("postgres://", "postgresql://")

    def completed() -> int:
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                row = conn.execute("SELECT count(*) FROM jobs_job WHERE type = 'record' AND status = 'completed'").fetchone()
                return int(row[0]) if row else 0
        except psycopg.OperationalError:
            return -1

    wait_until(lambda: completed() >= 100, timeout=90, what="a quarter of the jobs")
    own_postgres.stop(mode="immediate")  # what was committed asynchronously and not yet flushed is gone
    own_postgres.start()
    wait_until(lambda: completed() == 400, timeout=120, what=f"every job after the crash\n{f.output()}", every=0.5)
    with psycopg.connect(url) as conn:
        total = conn.execute("SELECT count(*) FROM jobs_job WHERE type = 'record'").fetchone()
    ran = executions(marks)
    assert total == (400,)  # no accepted job lost
    assert len(ran) == 400  # every job ran to its end; one whose completion was lost in the crash ran once more
    print(f"ran twice after the crash: {sum(1 for n in ran.values() if n > 1)} of 400")
