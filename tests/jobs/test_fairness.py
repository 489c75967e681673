"""Fair scheduling in the one dequeue path (the Lua pop): aging lifts a waiting job one priority level
per N seconds, and a per-owner limit keeps one tenant from taking every worker."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from jobs import services
from jobs.engine import broker
from jobs.engine.threads import ThreadsWorker
from jobs.engine.worker import Listener
from jobs.models import Job
from jobs.services import JobSpec
from tests.jobs.engine_support import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def enqueue(queue: str, priority: str, *, owner: Any = None, seconds: float = 0.0) -> str:
    job, _ = services.enqueue(JobSpec(type="sleep", payload={"seconds": seconds, "steps": 1}, queue=queue, priority=priority, owner=owner))
    return job.id


def age(queue: str, job_id: str, seconds: float) -> None:
    """Make a waiting job look `seconds` older to the dequeue (its meta's waiting-since)."""
    conn = broker.connection()
    since, owner = conn.hget(broker.meta_key(queue), job_id).decode().split("|")
    conn.hset(broker.meta_key(queue), job_id, f"{float(since) - seconds:.3f}|{owner}")


def popped_order(queue: str, n: int) -> list[str]:
    listener = Listener(broker.connection(), [queue])
    out = []
    for _ in range(n):
        taken = listener.pop()
        assert taken is not None
        out.append(taken[0])
    return out


def test_aging_lifts_a_job_one_level_per_period_and_ties_go_to_the_older(queues: Any) -> None:
    queues(aged={"aging": 10})
    free = enqueue("aged", "FREE")  # level rank 1
    payg = enqueue("aged", "PAYG")  # rank 3
    assert popped_order("aged", 2) == [payg, free]  # fresh: strict priority
    free = enqueue("aged", "FREE")
    payg = enqueue("aged", "PAYG")
    age("aged", free, 19)  # one level up: rank 2 < 3
    assert popped_order("aged", 1) == [payg]
    payg2 = enqueue("aged", "PAYG")
    age("aged", free, 1)  # 20 s: two levels, rank 3 like PAYG, and older
    assert popped_order("aged", 2) == [free, payg2]


def test_a_fair_queue_without_aging_keeps_strict_priority_and_fifo(queues: Any) -> None:
    queues(tenants={"per_owner_limit": 5})
    user = get_user_model().objects.create_user("t1")
    low = [enqueue("tenants", "LOW", owner=user) for _ in range(2)]
    high = [enqueue("tenants", "HIGH", owner=user) for _ in range(2)]
    assert popped_order("tenants", 4) == [*high, *low]


def test_a_per_owner_limit_skips_the_owner_at_its_limit_and_frees_on_release(queues: Any) -> None:
    queues(tenants={"per_owner_limit": 2})
    a, b = get_user_model().objects.create_user("a"), get_user_model().objects.create_user("b")
    a_jobs = [enqueue("tenants", "NORMAL", owner=a) for _ in range(4)]
    b_job = enqueue("tenants", "NORMAL", owner=b)
    listener = Listener(broker.connection(), ["tenants"])
    taken = [listener.pop() for _ in range(3)]
    assert [t[0] for t in taken if t] == [a_jobs[0], a_jobs[1], b_job]  # A at its limit: B's job passes A's third
    assert listener.pop() is None  # only A's jobs wait, and A has 2 running
    broker.release("tenants", a.id, a_jobs[0])
    assert listener.pop() == (a_jobs[2], "tenants")
    # A lease that runs out frees the slot too (a worker that died without releasing).
    conn = broker.connection()
    conn.zadd(broker.running_key("tenants", a.id), {a_jobs[1]: time.time() - 1})
    assert listener.pop() == (a_jobs[3], "tenants")


def run_worker(queue: str, threads: int) -> tuple[ThreadsWorker, threading.Thread]:
    worker = ThreadsWorker([queue], threads=threads)
    thread = threading.Thread(target=worker.work, daemon=True)
    thread.start()
    return worker, thread


def flood(queue: str, *, seconds: float, rate: float, job_seconds: float, until: Callable[[], bool] = lambda: False) -> None:
    """PAYG jobs arriving at `rate` a second for `seconds` (or until `until()`)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():
        enqueue(queue, "PAYG", seconds=job_seconds)
        time.sleep(1 / rate)


def started(job_id: str) -> bool:
    return Job.objects.filter(pk=job_id).exclude(status="waiting").exists()


@pytest.mark.parametrize("aging", [0.5, None], ids=["aging", "strict"])
def test_a_free_job_starts_within_its_bound_under_a_payg_flood_only_with_aging(queues: Any, settings: Any, aging: float | None) -> None:
    settings.JOBS_SHUTDOWN_GRACE = 2
    queues(flood={"aging": aging})
    worker, thread = run_worker("flood", 1)
    try:
        flood("flood", seconds=1.0, rate=10, job_seconds=0.2)  # a backlog first: the worker does 5 a second
        free = enqueue("flood", "FREE", seconds=0)
        enqueued = time.monotonic()
        flood("flood", seconds=6.0, rate=10, job_seconds=0.2, until=lambda: started(free))
        waited = time.monotonic() - enqueued
    finally:
        worker.request_stop()
        thread.join(30)
        connection.close()
    if aging:
        # Every waiting job climbs, the FREE one from 2 levels below PAYG's; the heads of a backlog
        # growing at half the arrival rate age half as fast: it passes them within about 3 s.
        assert started(free) and waited < 4.5, waited
    else:
        assert not started(free)  # strict priority: starved while PAYG jobs keep coming


def test_one_owner_holds_at_most_its_limit_of_workers_while_another_owner_waits(queues: Any, settings: Any) -> None:
    settings.JOBS_SHUTDOWN_GRACE = 2
    queues(tenants={"per_owner_limit": 2, "mode": "threads", "concurrency": 5})
    a, b = get_user_model().objects.create_user("a"), get_user_model().objects.create_user("b")
    for _ in range(50):
        enqueue("tenants", "NORMAL", owner=a, seconds=0.3)
    seen: list[int] = []
    worker, thread = run_worker("tenants", 5)
    try:
        wait_for(lambda: Job.objects.filter(owner=a, status="active").exists(), what="A's jobs to start")
        b_job = enqueue("tenants", "NORMAL", owner=b, seconds=0.1)
        enqueued = time.monotonic()
        while Job.objects.filter(pk=b_job, status="completed").count() == 0 and time.monotonic() - enqueued < 10:
            seen.append(Job.objects.filter(owner=a, status="active").count())
            time.sleep(0.02)
        b_took = time.monotonic() - enqueued
        for _ in range(50):  # and on, while A's jobs keep running
            seen.append(Job.objects.filter(owner=a, status="active").count())
            time.sleep(0.02)
    finally:
        worker.request_stop()
        thread.join(30)
        connection.close()
    assert max(seen) == 2  # never more than 2 of A's at once, though 5 slots were free
    assert b_took < 1.5, b_took  # B's job passed A's 45 waiting ones
