"""The scheduler's duties: promote due delayed jobs, recover stalled ones, reconcile Redis with the
database, apply retention, fold stats, enqueue the periodic jobs (jobs.engine.periodic) and fire the
recurring jobs' schedules (jobs.engine.schedules). `manage.py scheduler` runs `tick()` in a loop;
`manage.py reconcile` runs `reconcile()` once."""
from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.engine import batch, broker, conf, intake, lifecycle, outbox, periodic, retention, rollups, schedules, stats
from jobs.engine.states import Status, transition_many
from jobs.engine.worker import stale_before
from jobs.exceptions import ErrorKind, JobError
from jobs.models import Job, QueueState, WorkerHeartbeat

log = logging.getLogger(__name__)

#: A waiting job younger than this may still be on its way to Redis (after-commit push).
RECONCILE_GRACE = 5.0


def promote_due(*, limit: int = 1000) -> int:
    """Delayed jobs whose time has come become waiting and go to RQ."""
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            Job.objects.select_for_update(skip_locked=True)
            .filter(status=Status.DELAYED, run_at__lte=now)
            .order_by("run_at")
            .values_list("id", "queue", "priority", "owner_id")[:limit]
        )
        moved = set(transition_many([(i, q) for i, q, _, _ in rows], source=Status.DELAYED, target=Status.WAITING, message="due"))
        carried = [broker.Carried(i, q, p, conf.get_queue(q).timeout, o) for i, q, p, o in rows if i in moved]
        if carried:
            transaction.on_commit(lambda: intake.hand_over(carried))
    return len(moved)


def recover_stalled() -> int:
    """Active jobs whose worker stopped sending heartbeats: the attempt counts as failed (STALLED).

    Except the jobs of a batch the worker had not started, or had finished without recording (its
    holding note in Redis says which: jobs.engine.batch): they go back to waiting, the attempt not counted.
    """
    cutoff = stale_before()
    alive = set(WorkerHeartbeat.objects.filter(last_seen__gte=cutoff, stopped_at__isnull=True).values_list("name", flat=True))
    suspects = list(Job.objects.filter(status=Status.ACTIVE, started_at__lt=cutoff).exclude(worker_name__in=alive))
    try:
        notes = broker.holding_notes(sorted({job.worker_name for job in suspects}))
    except Exception:
        notes = {}  # Redis down: every job of theirs counts as stalled, the safe side
    n = 0
    for job in suspects:
        claimed = lifecycle.as_claimed(job)
        back = batch.uncounted(notes.get(job.worker_name), job_id=job.id, started_at=job.started_at)
        if back and not job.cancel_requested_at:
            if lifecycle.requeue(claimed, worker=job.worker_name, reason=f"worker {job.worker_name} stopped responding; {back}"):
                n += 1
                log.warning("put back job %s: %s", job.id, back)
            continue
        if job.cancel_requested_at:
            done = lifecycle.cancelled(claimed, worker=job.worker_name)
        else:
            exc = JobError(f"worker {job.worker_name} stopped responding while running the job", kind=ErrorKind.STALLED)
            done = bool(lifecycle.fail(claimed, worker=job.worker_name, exc=exc, trace=""))
        if done:
            n += 1
            log.warning("recovered stalled job %s from worker %s", job.id, job.worker_name)
    return n


def recover_orphans() -> int:
    """Active jobs whose worker is alive but runs another job, or none: the worker's completion or failure of
    them was lost in a database crash (workers commit asynchronously: sql.commit_asynchronously). Each goes
    back to waiting without counting the attempt, and runs once more.

    A heartbeat says which job its worker runs (`current_job_id`); only one written well after the job's
    claim went through (two heartbeat intervals) counts, so a claim the heartbeat has not seen yet is no orphan.
    Nor is a job claimed in the same statement as the one the heartbeat names (the same `started_at`): the
    worker holds it in its batch, to run next (jobs.engine.batch).
    """
    margin = timedelta(seconds=2 * settings.JOBS_HEARTBEAT_INTERVAL)
    beats = {
        name: (current, seen)
        for name, current, seen in WorkerHeartbeat.objects.filter(last_seen__gte=stale_before(), stopped_at__isnull=True).values_list("name", "current_job_id", "last_seen")
    }
    active = list(Job.objects.filter(status=Status.ACTIVE, worker_name__in=list(beats)))
    batch_of = {job.worker_name: job.started_at for job in active if beats[job.worker_name][0] == job.id}
    n = 0
    for job in active:
        current, seen = beats[job.worker_name]
        if current == job.id or job.started_at is None or seen < job.started_at + margin or batch_of.get(job.worker_name) == job.started_at:
            continue
        reason = f"worker {job.worker_name} no longer runs it: its outcome was lost (a database crash)"
        if lifecycle.requeue(lifecycle.as_claimed(job), worker=job.worker_name, reason=reason):
            n += 1
            log.warning("put back job %s, which worker %s no longer runs", job.id, job.worker_name)
    return n


def prune_workers(*, older_than: float = 24 * 3600) -> int:
    """Forget workers that stopped, or were last seen, more than `older_than` seconds ago."""
    cutoff = timezone.now() - timedelta(seconds=older_than)
    return WorkerHeartbeat.objects.filter(last_seen__lt=cutoff).delete()[0]


@dataclass
class ReconcileReport:
    pushed: int = 0
    paused_synced: int = 0


def reconcile(*, grace: float = RECONCILE_GRACE, queues: list[str] | None = None) -> ReconcileReport:
    """Hand every waiting job that Redis lost back to RQ, and restore the paused set from the database.

    Waiting jobs changed in the last `grace` seconds are left alone: their after-commit push may
    still be on its way (a second copy would be harmless, as claims are conditional, but wasteful).
    `queues` limits the hand-over to some queues.
    """
    report = ReconcileReport()
    paused = set(QueueState.objects.filter(paused=True).values_list("name", flat=True))
    if broker.paused_queues() != paused:
        broker.sync_paused(paused)
        report.paused_synced = len(paused)
    settled = timezone.now() - timedelta(seconds=grace)
    for name, queue in conf.all_queues().items():
        if queues is not None and name not in queues:
            continue
        carried = broker.carried_ids(name)
        missing = [
            broker.Carried(i, name, p, queue.timeout, o)
            for i, p, o in Job.objects.filter(queue=name, status=Status.WAITING, updated_at__lt=settled).values_list("id", "priority", "owner_id").iterator()
            if i not in carried
        ]
        for start in range(0, len(missing), 1000):
            report.pushed += broker.push(missing[start : start + 1000])
    if report.pushed:
        log.warning("reconcile: handed %d waiting jobs back to Redis", report.pushed)
    return report


def hand_over_failed(*, redis_up: bool | None = None) -> int:
    """Queues whose jobs could not be handed to Redis: once Redis answers, hand their waiting jobs over now."""
    failed = dict(QueueState.objects.filter(handoff_failed_at__isnull=False).values_list("name", "handoff_failed_at"))
    if not failed or not (broker.ping() if redis_up is None else redis_up):
        return 0
    pushed = reconcile(grace=0, queues=list(failed)).pushed
    for name, at in failed.items():  # a failure noted meanwhile stays for the next tick
        QueueState.objects.filter(name=name, handoff_failed_at=at).update(handoff_failed_at=None)
    if pushed:
        log.warning("handed %d jobs to Redis after it came back (%s)", pushed, ", ".join(sorted(failed)))
    return pushed


class Scheduler:
    """Runs the duties at their own intervals."""

    def __init__(self, *, tick: float = 0.5, reconcile_every: float = 60.0, retention_every: float = 60.0) -> None:
        self.tick_seconds = tick
        self.every = {"reconcile": reconcile_every, "retention": retention_every, "prune": 3600.0, "compact": 600.0}
        self.last: dict[str, float] = {}
        self.stopping = False
        self.redis_was_up: bool | None = None
        self.periodic_done: dict[str, int] = {}
        #: Who holds the schedules' leadership (jobs.engine.schedules) when this one leads.
        self.name = f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"

    def due(self, name: str) -> bool:
        now = time.monotonic()
        if now - self.last.get(name, 0.0) >= self.every[name]:
            self.last[name] = now
            return True
        return False

    def tick(self) -> None:
        redis_up = broker.ping()
        if redis_up and self.redis_was_up is False:
            reconcile(grace=0)  # Redis is back: what it lost (or never got) goes over now, not at the next reconcile
        self.redis_was_up = redis_up
        hand_over_failed(redis_up=redis_up)  # pinged once per tick
        promote_due()
        recover_stalled()
        recover_orphans()
        outbox.sweep()
        outbox.retry_due()
        stats.fold()
        periodic.enqueue_due(self.periodic_done)
        schedules.fire_due(holder=self.name)
        if self.due("reconcile"):
            reconcile()
        if self.due("retention"):
            retention.apply_retention()
        if self.due("compact"):
            rollups.compact()
            rollups.prune()
        if self.due("prune"):
            stats.prune_events()
            prune_workers()

    def run(self) -> None:
        while not self.stopping:
            started = time.monotonic()
            try:
                self.tick()
            except Exception:
                log.exception("scheduler tick failed")
                from django.db import close_old_connections

                close_old_connections()
            time.sleep(max(0.0, self.tick_seconds - (time.monotonic() - started)))
