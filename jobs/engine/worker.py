"""The engine's worker: RQ's worker loop, registration and signals, with a lean job path.

RQ's own per-job bookkeeping (job hash status, started/finished registries, results) is skipped:
the database row already holds all of it. A busy worker spends one Redis round trip per job (a Lua
pop that checks the paused set) and one PostgreSQL statement (the outcome with the next claim, an UPDATE
plus its event INSERT each); while jobs run fast, one of each per batch of jobs (jobs.engine.batch).
Jobs run in the worker process (no fork per job); a heartbeat thread keeps the worker's row alive,
watches for cancel requests and enforces the cancel and shutdown graces.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any, Callable, Sequence

from django.conf import settings
from django.db import close_old_connections
from django.db import connection as db_connection
from django.utils import timezone
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue as RQQueue
from rq.worker import BaseWorker, WorkerStatus

from jobs.engine import batch, broker, conf, dbretry, lifecycle, outbox, overrides, priority, runner, sql
from jobs.engine.context import JobContext
from jobs.engine.memory import rss_bytes
from jobs.engine.rategate import RateGate
from jobs.exceptions import JobCancelled, WorkerShutdown
from jobs.models import Job, WorkerHeartbeat

log = logging.getLogger(__name__)

PAUSED_REFRESH = 1.0
BLOCK_SECONDS = 1
#: Waits while Redis does not answer: the first, doubled up to the last.
REDIS_FIRST_WAIT = 0.2
REDIS_MAX_WAIT = 5.0


def wait_for_redis(connection: Redis) -> None:
    """Return once Redis answers: a worker started while Redis is down waits for it (0.2 s doubling to 5 s) instead of exiting."""
    wait = REDIS_FIRST_WAIT
    while True:
        try:
            connection.ping()
            return
        except RedisError as exc:
            log.warning("Redis unreachable (%s); the worker starts once it answers, trying again in %.1fs", exc, wait)
            time.sleep(wait)
            wait = min(wait * 2, REDIS_MAX_WAIT)


class Listener:
    """Takes the next job id from a worker's queues: highest priority level first, skipping paused queues.

    One Redis round trip per job while jobs wait (the Lua pop); BLPOP only as the wake-up when idle.
    `allowed`, if given, narrows the queues at each try (a threads worker's queues that have a free slot).
    """

    def __init__(self, connection: Redis, queues: Sequence[str]) -> None:
        self.connection = connection
        self.queues = list(queues)
        self._script = connection.register_script(broker.POP_READY_SCRIPT)
        self._many_script = connection.register_script(broker.POP_MANY_SCRIPT)
        self._fair_script = connection.register_script(broker.FAIR_POP_SCRIPT)
        self._fair = {q for q in self.queues if conf.get_queue(q).fair}
        self._paused: set[str] = set()
        self._paused_read = 0.0

    def forget_paused(self) -> None:
        """Read the paused set again at the next try."""
        self._paused_read = 0.0

    def keys(self, allowed: Sequence[str] | None = None) -> list[str]:
        now = time.monotonic()
        if now - self._paused_read > PAUSED_REFRESH:
            self._paused = broker.paused_queues()
            self._paused_read = now
        names = self.queues if allowed is None else [q for q in self.queues if q in allowed]
        return broker.listen_keys([q for q in names if q not in self._paused])

    def pop(self, allowed: Sequence[str] | None = None) -> tuple[str, str] | None:
        """Without blocking: (job id, queue) of the next waiting job, or None."""
        return self._pop(self.keys(allowed), allowed)

    def _pop(self, keys: list[str], allowed: Sequence[str] | None = None) -> tuple[str, str] | None:
        if not keys:
            return None
        if self._fair and (allowed is None or self._fair.intersection(allowed)):
            return broker.pop_fair(self._fair_script, keys, lease=settings.JOBS_STALL_TIMEOUT)
        return broker.pop_ready(self._script, keys)

    def pop_many(self, count: int) -> list[tuple[str, str]]:
        """Without blocking: up to `count` (job id, queue), as `count` pops would take them (broker.pop_many); one for fair queues."""
        keys = self.keys()
        if count <= 1 or self._fair or not keys:
            popped = self._pop(keys)
            return [popped] if popped is not None else []
        return broker.pop_many(self._many_script, keys, count)

    def wait(self, timeout: float, allowed: Sequence[str] | None = None) -> bool:
        """Block up to `timeout` seconds until one of the lists has an id; True if one came.

        BLPOP is only the wake-up: the id goes back to the front of its list and the caller takes
        it through `pop`, the one path that checks the paused set (a queue paused meanwhile keeps its job).
        """
        keys = self.keys(allowed)
        if not keys:
            time.sleep(timeout)
            return False
        popped = self.connection.blpop(keys, timeout=timeout)
        if popped is None:
            return False
        self.connection.lpush(popped[0], popped[1])
        return True

    def next(
        self, stopping: Callable[[], bool], *, burst: bool, max_idle_time: float | None = None, idle: Callable[[], None] | None = None,
    ) -> tuple[str, str] | None:
        """The next (job id, queue), waiting for one unless `burst`; None once `stopping()` or idle too long."""
        idle_since = time.monotonic()
        woke = False
        while not stopping():
            keys = self.keys()
            if not keys:
                if idle:
                    idle()
                if burst:
                    return None
                time.sleep(BLOCK_SECONDS)
                continue
            ready = self._pop(keys)
            if ready is not None:
                return ready
            if woke:
                # What woke us sits in a queue paused meanwhile: read the paused set again.
                woke = False
                self.forget_paused()
                continue
            if idle:
                idle()  # idle: nothing to ride on
            woke = self.wait(0.01 if burst else BLOCK_SECONDS)
            if not woke and (burst or (max_idle_time is not None and time.monotonic() - idle_since > max_idle_time)):
                return None
        return None


class EngineWorker(BaseWorker):
    """An RQ worker whose jobs are rows in the database."""

    def __init__(self, queues: Sequence[str], *, connection: Redis | None = None, name: str | None = None, **kwargs: Any) -> None:
        self.engine_queues = [conf.get_queue(q).name for q in queues]
        connection = connection or broker.connection()
        rq_queues = [RQQueue(broker.rq_name(q, lv), connection=connection) for lv in reversed(priority.LEVELS) for q in self.engine_queues]
        name = name or f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        super().__init__(rq_queues, connection=connection, name=name, **kwargs)
        self.guard = runner.Guard()
        self.current: tuple[lifecycle.Claimed, JobContext] | None = None
        self._cancel_seen_at: float | None = None
        self._interrupted_at: float | None = None
        self._beat_job_id: str | None = None  # the job the two fields above are about
        self._stop_asked_at: float | None = None
        self._beat_stop = threading.Event()
        self._beat_thread: threading.Thread | None = None
        self._last_rq_beat = 0.0
        self._suspension_read = 0.0
        self.listener = Listener(self.connection, self.engine_queues)
        self.rate_gate = RateGate(self.name)
        self.jobs_done = 0
        # Claim the next job with this one's completion (one round trip), unless a queue's start must
        # first pass a rate limit or a per-owner slot (those claims keep their own path); while jobs
        # run fast, a batch of them (jobs.engine.batch), unless a queue is fair (its pop takes one).
        configs = [conf.get_queue(q) for q in self.engine_queues]
        overrides.current(max_age=0)  # what the console set, as this worker starts; then on each heartbeat
        self._chainable = self._may_chain()
        self._chain = batch.Chain(pop=self._pop_for_chain, limit=1 if any(q.fair for q in configs) else batch.batch_limit())
        self._max_jobs: int | None = None
        self._executed = 0

    # -- RQ hooks -----------------------------------------------------------------------------

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:  # noqa: D102
        # RQ installs its SIGTERM/SIGINT handlers after bootstrap, and the heartbeat written here says the
        # worker is listening: a stop asked in between is noted, and the loop's first check honours it
        # (teardown included), instead of the default action killing the process.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._stop_while_starting)
            signal.signal(signal.SIGINT, self._stop_while_starting)
        super().bootstrap(*args, **kwargs)
        self.guard.install()
        # The hooks' delivery marks ride on this worker's next statement, or go out when it idles.
        outbox.defer_marks = True
        if settings.JOBS_ASYNC_COMMIT:
            sql.commit_asynchronously()  # claims and completions do not wait for the disk; enqueues do
        now = timezone.now()
        WorkerHeartbeat.objects.update_or_create(
            name=self.name,
            defaults=dict(hostname=socket.gethostname(), pid=os.getpid(), queues=self.engine_queues, started_at=now, last_seen=now, stopped_at=None, mode="processes", rss=rss_bytes()),
        )
        self._beat_thread = threading.Thread(target=self._beat_loop, name="jobs-heartbeat", daemon=True)
        self._beat_thread.start()

    def work(self, *args: Any, **kwargs: Any) -> bool:  # noqa: D102
        self._max_jobs = kwargs.get("max_jobs")  # by keyword, as every caller here passes it
        return super().work(*args, **kwargs)

    def teardown(self) -> None:
        # Jobs claimed with the last completion, then the loop stopped: they go back, not counted; finished ones are recorded.
        try:
            self._chain.release(worker=self.name, reason="worker stopped before starting it")
        except Exception:
            log.exception("worker %s: could not record or put back its batch; the scheduler's recovery will", self.name)
        self._chain.forget(worker=self.name)
        self._flush_marks()
        outbox.defer_marks = False
        if sql.asynchronous:
            sql.commit_asynchronously(False)
        self._beat_stop.set()
        if self._beat_thread:
            self._beat_thread.join(timeout=5)
        WorkerHeartbeat.objects.filter(name=self.name).update(stopped_at=timezone.now(), current_job_id="", jobs_done=self.jobs_done)
        super().teardown()

    def set_state(self, state: str, pipeline: Any = None) -> None:
        # Idle/busy flips happen per job; keep them local and let the heartbeat publish them.
        self._state = state
        if state not in (WorkerStatus.IDLE, WorkerStatus.BUSY):
            super().set_state(state, pipeline=pipeline)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is None and timeout is None and time.monotonic() - self._last_rq_beat < 5:
            return
        self._last_rq_beat = time.monotonic()
        super().heartbeat(timeout, pipeline)

    def check_for_suspension(self, burst: bool) -> None:
        # RQ asks Redis before every job; `rq suspend` is an operator's switch, once a second is enough.
        now = time.monotonic()
        if now - self._suspension_read < PAUSED_REFRESH:
            return
        self._suspension_read = now
        try:
            super().check_for_suspension(burst)
        except RedisError:
            pass  # Redis down: the dequeue rides it out and says so

    def run_maintenance_tasks(self) -> None:
        # RQ's registries are not used for engine jobs; recovery is the scheduler's (jobs.engine.scheduler).
        self.last_cleaned_at = timezone.now()  # type: ignore[assignment]  # RQ annotates it None-only

    def request_stop(self, signum: Any, frame: Any) -> None:
        self._stop_asked_at = time.monotonic()
        super().request_stop(signum, frame)

    def _stop_while_starting(self, signum: Any, frame: Any) -> None:
        self._stop_asked_at = time.monotonic()
        self._stop_requested = True

    # Returns (job id, queue name), not RQ objects: RQ's work() only hands them on to execute_job below.
    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> tuple[str, str] | None:  # type: ignore[override]
        """Pop the next job id: highest priority level first, skipping paused queues; rides out a Redis restart."""
        wait = REDIS_FIRST_WAIT
        while not self._stop_requested:
            try:
                return self._dequeue(timeout, max_idle_time)
            except RedisError as exc:
                # Redis restarting or down: the jobs are rows in the database, nothing is lost meanwhile.
                # An id popped just before is handed back by the scheduler's reconcile.
                log.warning("worker %s: Redis unreachable (%s); trying again in %.1fs", self.name, exc, wait)
                self.listener.forget_paused()
                time.sleep(wait)
                wait = min(wait * 2, REDIS_MAX_WAIT)
        return None

    def _dequeue(self, timeout: int | None, max_idle_time: int | None) -> tuple[str, str] | None:
        held = self._chain.next_id()
        if held is not None:
            return held
        return self.listener.next(lambda: self._stop_requested, burst=timeout is None, max_idle_time=max_idle_time, idle=self._flush_marks)

    def execute_job(self, job: Any, queue: Any) -> None:
        job_id, queue_name = job, queue
        self._state = WorkerStatus.BUSY
        chained = self._chain.take(job_id)
        if chained is None:
            self.rate_gate.wait(queue_name)
        self._executed += 1
        try:
            if chained is not None:
                self._chain.note(worker=self.name, running=chained)
                status = runner.run_claimed(chained, worker=self.name, guard=self.guard, on_start=self._on_start, chain=self._chain)
            else:
                status = runner.run(job_id, queue=queue_name, worker=self.name, guard=self.guard, on_start=self._on_start, chain=self._chain)
            if status:
                self.jobs_done += 1
            self._chain.settle(worker=self.name)
        finally:
            self.current = None
            self._cancel_seen_at = self._interrupted_at = None
            self._state = WorkerStatus.IDLE

    # -- helpers ------------------------------------------------------------------------------

    def _flush_marks(self) -> None:
        try:
            outbox.flush()
        except Exception:
            # The marks stay pending (or the outbox sweep delivers those events again: hooks are idempotent).
            log.exception("worker %s: could not mark delivered events", self.name)
            dbretry.drop_connection()

    def _may_chain(self) -> bool:
        """Whether no queue's start must pass a rate limit (declared or overridden) or a per-owner slot."""
        return not any(overrides.effective(q).rate_limit or conf.get_queue(q).per_owner_limit for q in self.engine_queues)

    def _pop_for_chain(self, count: int) -> list[tuple[str, str]]:
        """Up to `count` waiting jobs, to claim with this one's completion; none when the loop is about to stop."""
        if self._max_jobs is not None:
            count = min(count, self._max_jobs - self._executed)  # never claim a job past --max-jobs
        if not self._chainable or self._stop_requested or count < 1:
            return []
        try:
            return self.listener.pop_many(count)
        except RedisError:
            return []  # the dequeue rides it out and says so

    def _on_start(self, claimed: lifecycle.Claimed, ctx: JobContext) -> None:
        self.current = (claimed, ctx)

    def _beat_loop(self) -> None:
        interval = settings.JOBS_HEARTBEAT_INTERVAL
        while not self._beat_stop.wait(interval):
            try:
                self._beat()
            except Exception:
                log.exception("worker %s: heartbeat failed", self.name)
                close_old_connections()
        db_connection.close()

    def _beat(self) -> None:
        current = self.current
        # Between two jobs of a batch, the next held one: recover_orphans leaves alone the jobs claimed with it.
        job_id = current[0].id if current else self._chain.holding()
        WorkerHeartbeat.objects.filter(name=self.name).update(last_seen=timezone.now(), current_job_id=job_id, jobs_done=self.jobs_done, rss=rss_bytes())
        overrides.current(max_age=0)
        self._chainable = self._may_chain()  # a rate limit set from the console stops the chained claims that skip the gate
        try:
            if not self.connection.exists(self.key):
                self.register_birth()  # Redis restarted empty: be seen again (django-rq's pages, `rq info`)
            super().heartbeat(None)
            self._last_rq_beat = time.monotonic()
        except Exception:
            log.warning("worker %s: Redis heartbeat failed", self.name)
        if not current:
            return
        claimed, ctx = current
        renew_leases([claimed])
        self._chain.unload(worker=self.name, running=claimed.id)  # a batch's job runs long: the rest go to other workers
        now = time.monotonic()
        if self._beat_job_id != claimed.id:
            # A new job: drop what a late beat may have written about the previous one after
            # execute_job reset it (else the next job would be hard-stopped for its cancel).
            self._beat_job_id, self._cancel_seen_at, self._interrupted_at = claimed.id, None, None
        if self._cancel_seen_at is None and Job.objects.filter(pk=claimed.id, cancel_requested_at__isnull=False).exists():
            self._cancel_seen_at = now
            ctx._cancel.set()
            log.info("worker %s: cancel requested for job %s", self.name, claimed.id)
        if self._cancel_seen_at is not None and now - self._cancel_seen_at > settings.JOBS_CANCEL_GRACE:
            self._hard_stop(claimed, JobCancelled(f"job {claimed.id} cancelled"))
        elif self._stop_asked_at is not None and now - self._stop_asked_at > settings.JOBS_SHUTDOWN_GRACE:
            self._hard_stop(claimed, WorkerShutdown("shutdown grace passed"))

    def _hard_stop(self, claimed: lifecycle.Claimed, exc: BaseException) -> None:
        now = time.monotonic()
        if self._interrupted_at is None:
            self._interrupted_at = now
            log.warning("worker %s: stopping job %s: %s", self.name, claimed.id, exc)
            self.guard.interrupt(exc, job_id=claimed.id)
        elif now - self._interrupted_at > runner.stuck_grace():
            # The task ignores interrupts (stuck in native code): record the outcome and end the process.
            log.error("worker %s: job %s did not stop; exiting the process", self.name, claimed.id)
            runner.record_unstoppable(claimed, worker=self.name, reason=exc)
            try:
                self._chain.release(worker=self.name, reason="worker exited: a job of its batch did not stop")
            finally:
                os._exit(3)


def renew_leases(running: Sequence[lifecycle.Claimed]) -> None:
    """Extend the per-owner slots of running jobs in per-owner-limited queues (a lease lasts JOBS_STALL_TIMEOUT)."""
    leases = [(c.queue, c.owner_id, c.id) for c in running if c.owner_id is not None and conf.get_queue(c.queue).per_owner_limit]
    if leases:
        try:
            broker.renew(leases, lease=settings.JOBS_STALL_TIMEOUT)
        except RedisError:
            log.warning("could not renew the per-owner slots of %d jobs", len(leases))


def stale_before(now: datetime | None = None) -> datetime:
    """Workers not seen since this moment (before `now`, default now) are presumed dead."""
    return (now or timezone.now()) - timedelta(seconds=settings.JOBS_STALL_TIMEOUT)
