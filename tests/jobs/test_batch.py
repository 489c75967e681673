"""Batches (jobs.engine.batch): a process worker claims fast jobs several at a time and records their completions
together. Real workers on the real PostgreSQL and Redis: the order of starts, what each job records, the
statements per job, and what a killed or stopped worker's batch becomes."""
from __future__ import annotations

import json
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from jobs import services
from jobs.engine import batch, broker, hooks, lifecycle, priority, scheduler
from jobs.engine.worker import Listener
from jobs.models import Job, JobEvent, WorkerHeartbeat
from jobs.services import JobSpec
from tests.faults.conftest import executions
from tests.jobs.engine_support import make_due, moves, wait_for, wait_worker_ready, worker_statements

pytestmark = pytest.mark.django_db(transaction=True)

W, D, A, C = "waiting", "delayed", "active", "completed"


def start_order(job_ids: list[str]) -> list[str]:
    """The jobs in the order their claims were written (a batch's claims share one started_at, not one event)."""
    return list(JobEvent.objects.filter(job_id__in=job_ids, to_status=A).order_by("id").values_list("job_id", flat=True))


def claims_per_statement(job_ids: list[str]) -> list[int]:
    """How many claims each claiming statement wrote, in order (claims of one statement share their time)."""
    counts: dict[Any, int] = {}
    for at in JobEvent.objects.filter(job_id__in=job_ids, to_status=A).order_by("id").values_list("at", flat=True):
        counts[at] = counts.get(at, 0) + 1
    return list(counts.values())


def test_pop_many_takes_what_as_many_single_pops_would(settings) -> None:
    """Highest level first, first in first out within a level, the rest from the next level in order, paused queues skipped."""
    listener = Listener(broker.connection(), ["default", "mt"])
    layout = [("default", 1, "f1"), ("default", 10, "h1"), ("mt", 10, "b1"), ("default", 10, "h2"), ("default", 5, "p1"), ("default", 1, "f2"), ("mt", 20, "c1")]

    def fill() -> None:
        broker.push([broker.Carried(i, q, p, 60.0) for q, p, i in layout])

    fill()
    singles = [listener.pop() for _ in range(len(layout))]
    fill()
    many = listener.pop_many(3) + listener.pop_many(8) + listener.pop_many(8) + listener.pop_many(8)
    assert many == singles == [("c1", "mt"), ("h1", "default"), ("h2", "default"), ("b1", "mt"), ("p1", "default"), ("f1", "default"), ("f2", "default")]
    fill()
    assert len(listener.pop_many(8)) == 3  # never more than half of what waits: other workers share a short backlog
    broker.set_paused("mt", True)
    listener.forget_paused()
    assert listener.pop_many(8) == [("p1", "default")]  # mt's b1 stays; one is half of the 3 default ids left


def test_a_batch_claim_never_reorders_priorities_across_the_batch(burst, settings) -> None:
    settings.JOBS_BATCH_SIZE = 8
    names = ["FREE", "PAYG", "PRO", "CRITICAL", "LOW", "HIGH", "NORMAL"]
    jobs = [services.enqueue(JobSpec(type="noop", priority=names[(i * 5) % len(names)]))[0] for i in range(70)]
    ids = [j.id for j in jobs]

    burst()

    assert set(Job.objects.filter(pk__in=ids).values_list("status", flat=True)) == {C}
    sizes = claims_per_statement(ids)
    assert max(sizes) > 2 and sum(sizes) == len(ids)  # batches happened: otherwise this proves nothing
    expected = sorted(jobs, key=lambda j: (-priority.level(j.priority), ids.index(j.id)))  # level first, then first in first out
    assert start_order(ids) == [j.id for j in expected]


def test_each_job_of_a_batch_records_and_tells_what_a_single_claim_and_completion_do(burst, settings) -> None:
    settings.JOBS_BATCH_SIZE = 8
    seen: list[tuple[str, str]] = []
    hooks.register("test.batch", lambda change: seen.append((change.job_id, change.event)))
    try:
        jobs = services.enqueue_many([JobSpec(type="echo", payload={"n": i}) for i in range(30)])
        worker = burst()
    finally:
        hooks.unregister("test.batch")
    ids = [j.id for j in jobs]
    assert max(claims_per_statement(ids)) > 2
    rows = Job.objects.in_bulk(ids)
    for n, job in enumerate(rows[i] for i in ids):
        assert (job.status, job.attempts_made, job.worker_name, job.progress, job.result) == (C, 1, worker.name, 100, {"echo": {"n": n}})
        assert job.started_at is not None and job.started_at <= job.completed_at
        assert moves(job.id) == [(None, W), (W, A), (A, C)]
        done = JobEvent.objects.get(job_id=job.id, to_status=C)
        assert (done.data, done.type, done.queue) == ({"result": {"echo": {"n": n}}, "attempt": 1}, "echo", "default")
        assert [e for j, e in seen if j == job.id] == ["created", "started", "completed"]  # every hook effect, in order
    assert not JobEvent.objects.filter(job_id__in=ids, delivered=False).exists()  # every mark went out


def test_batches_take_fewer_statements_per_job(burst, settings) -> None:
    """The hot-path count of tests/jobs/test_engine.py with batches: one set-based statement records a batch's
    completions and claims the next batch, so 40 jobs cost far fewer than 40 transition statements."""
    settings.JOBS_BATCH_SIZE = 8
    one, many = worker_statements(1, burst), worker_statements(41, burst)
    per_job = (len(many) - len(one)) / 40
    assert per_job <= 0.5, f"{per_job:.2f} statements per job:\n" + "\n".join(many)
    assert any(s.startswith("WITH s0_moved AS (UPDATE") and "s1_moved AS (UPDATE" in s for s in many)  # completions with claims


def test_slow_jobs_are_not_batched(burst, settings) -> None:
    settings.JOBS_BATCH_SIZE = 8
    jobs = services.enqueue_many([JobSpec(type="sleep", payload={"seconds": batch.FAST_JOB * 1.5, "steps": 1}) for _ in range(6)])
    burst()
    assert claims_per_statement([j.id for j in jobs]) == [1] * 6


def test_held_jobs_of_a_live_worker_are_no_orphans(settings) -> None:
    """Jobs claimed in one statement with the job a live worker's heartbeat names are held, not lost."""
    jobs = services.enqueue_many([JobSpec(type="noop") for _ in range(4)])
    _, held = lifecycle.complete_and_claim_many([], worker="w-busy", claims=[(j.id, "default") for j in jobs[:3]])
    assert [c.id for c in held] == [j.id for j in jobs[:3]]
    lone = lifecycle.claim(jobs[3].id, queue="default", worker="w-busy")  # a claim of its own: its outcome was lost
    assert lone is not None
    later = timezone.now() + timedelta(seconds=2 * settings.JOBS_HEARTBEAT_INTERVAL + 0.1)
    WorkerHeartbeat.objects.create(name="w-busy", hostname="h", pid=1, started_at=later, last_seen=later, current_job_id=jobs[1].id)
    assert scheduler.recover_orphans() == 1
    assert [Job.objects.get(pk=j.id).status for j in jobs] == [A, A, A, W]


def test_a_dead_workers_batch_counts_only_the_job_it_ran(settings) -> None:
    """The holding note: held and finished-but-unrecorded jobs go back uncounted, the running one is STALLED."""
    jobs = services.enqueue_many([JobSpec(type="noop") for _ in range(4)])
    _, held = lifecycle.complete_and_claim_many([], worker="w-dead", claims=[(j.id, "default") for j in jobs])
    chain = batch.Chain(pop=lambda n: [], limit=8)
    chain.held.extend(held[2:])
    chain.finished.append((held[0], None))
    chain.note(worker="w-dead", running=held[1])
    chain.notes.flush()  # the note's answer read: it is in Redis
    note = broker.holding_notes(["w-dead"])["w-dead"]
    assert batch.uncounted(note, job_id=jobs[2].id, started_at=held[0].batch_at)
    assert not batch.uncounted(note, job_id=jobs[2].id, started_at=timezone.now())  # a later claim of it: the note is not about it
    assert not batch.uncounted(note, job_id=jobs[1].id, started_at=held[0].batch_at)  # the one it ran counts
    # The batch outlasts the stall timeout (its claim time moved back, and the note's with it).
    stale = timezone.now() - timedelta(seconds=settings.JOBS_STALL_TIMEOUT + 1)
    WorkerHeartbeat.objects.create(name="w-dead", hostname="h", pid=1, started_at=stale, last_seen=stale)
    Job.objects.filter(pk__in=[j.id for j in jobs]).update(started_at=stale)
    chain.notes.send("w-dead", json.dumps({**json.loads(note), "at": stale.isoformat()}), ttl=60)
    chain.notes.flush()
    assert scheduler.recover_stalled() == 4
    rows = {j.id: Job.objects.get(pk=j.id) for j in jobs}
    assert [(rows[j.id].status, rows[j.id].attempts_made) for j in jobs] == [(W, 0), (D, 1), (W, 0), (W, 0)]
    assert rows[jobs[1].id].error_kind == "STALLED"


def _holding(proc: Any) -> dict[str, Any] | None:
    """The worker process's holding note once it holds a batch with jobs not started yet."""
    name = WorkerHeartbeat.objects.filter(pid=proc.pid).values_list("name", flat=True).first()
    note = broker.holding_notes([name]).get(name) if name else None
    parsed = json.loads(note) if note else None
    return parsed if parsed and len(parsed["held"]) >= 2 else None


def test_a_worker_killed_holding_a_batch_loses_no_job_and_completes_none_twice(worker_process, burst, settings, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    jobs = services.enqueue_many([JobSpec(type="record", payload={"file": str(marks), "seconds": 0.03}) for _ in range(120)])
    ids = [j.id for j in jobs]
    proc = worker_process("default")
    wait_worker_ready(proc)
    wait_for(lambda: _holding(proc), timeout=30, interval=0.01, what="the worker to hold a batch")
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    note = json.loads(broker.holding_notes([WorkerHeartbeat.objects.get(pid=proc.pid).name]).popitem()[1])
    held = [i for i in note["held"] if Job.objects.get(pk=i).status == A]
    assert held, note

    wait_for(lambda: scheduler.recover_stalled(), timeout=settings.JOBS_STALL_TIMEOUT + 5, what="stall recovery")
    assert not Job.objects.filter(pk__in=ids, status=A).exists()
    for job_id in held:  # never started: back to waiting, the attempt not counted
        assert (Job.objects.get(pk=job_id).status, Job.objects.get(pk=job_id).attempts_made) == (W, 0)
    for job_id in Job.objects.filter(pk__in=ids, status=D).values_list("id", flat=True):
        make_due(job_id)  # the one it ran: STALLED, retried after its backoff
    scheduler.promote_due()
    scheduler.reconcile(grace=0)  # ids the killed worker had popped but not claimed
    for _ in range(5):
        burst()
    assert Job.objects.filter(pk__in=ids, status=C).count() == len(ids)  # none lost
    completions = list(JobEvent.objects.filter(job_id__in=ids, to_status=C).values_list("job_id", flat=True))
    assert len(completions) == len(set(completions)) == len(ids)  # none completed twice
    ran = executions(marks)
    assert set(ran) == set(ids)
    twice = {i for i, n in ran.items() if n > 1}
    assert twice <= {note["run"], *note["done"]}  # only the job it ran, or finished without recording, ran again
    assert not twice & set(note["held"])


def test_sigterm_hands_held_jobs_back_without_counting_their_attempts(worker_process, burst, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    jobs = services.enqueue_many([JobSpec(type="record", payload={"file": str(marks), "seconds": 0.03}) for _ in range(120)])
    ids = [j.id for j in jobs]
    proc = worker_process("default")
    wait_worker_ready(proc)
    note = wait_for(lambda: _holding(proc), timeout=30, interval=0.01, what="the worker to hold a batch")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0

    assert note and not Job.objects.filter(pk__in=ids, status=A).exists()  # finished ones recorded, held ones back
    back = list(JobEvent.objects.filter(job_id__in=ids, from_status=A, to_status=W).values_list("job_id", flat=True))
    assert back
    assert set(Job.objects.filter(pk__in=back).values_list("status", "attempts_made")) == {(W, 0)}
    waiting = [i.decode() for i in broker.connection().lrange(broker.rq_key("default", 5), 0, -1)]
    assert waiting[: len(back)] == start_order(back)  # at the front of the list, in the order they were to run
    burst()
    assert Job.objects.filter(pk__in=ids, status=C).count() == len(ids)
    assert set(Job.objects.filter(pk__in=ids).values_list("attempts_made", flat=True)) == {1}
    assert set(executions(marks).values()) == {1}  # nothing ran twice
