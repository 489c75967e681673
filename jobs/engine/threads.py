"""The threads worker: one process runs up to `concurrency` jobs at once, each in its own thread with
its own database connection (I/O-bound queues: email, notifications, webhooks, calendar).

It keeps the process worker's promises (jobs.engine.worker):
- claims and outcomes go through jobs.engine.runner, conditional on the slot owning the row;
- a queue's `concurrency` caps its running jobs in the process: a slot takes a job only from a
  queue with room, and one slot at a time pops (the Lua pop stays the one dequeue path);
- a heartbeat row per slot (`<worker>:tNN`) names the job it runs, so stalled and orphan recovery
  (jobs.engine.scheduler) see every running job as they do a process worker's;
- a timeout, a cancel past its grace or a shutdown past its grace raises the exception inside the
  job's thread (between two Python bytecodes). A thread that does not take it (blocked in native
  code) within runner.stuck_grace() has its outcome recorded for it, and the process is recycled: it takes no more jobs, lets
  the other slots finish, and replaces itself (`manage.py worker` execs itself again), so the
  stuck thread never runs on beside new work.
"""
from __future__ import annotations

import ctypes
import logging
import math
import os
import signal
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from django.conf import settings
from django.db import connection as db_connection
from django.utils import timezone
from redis.exceptions import RedisError

from jobs.engine import broker, conf, dbretry, lifecycle, outbox, overrides, runner, sql
from jobs.engine.context import JobContext
from jobs.engine.memory import rss_bytes
from jobs.engine.rategate import RateGate
from jobs.engine.worker import REDIS_FIRST_WAIT, REDIS_MAX_WAIT, Listener, renew_leases
from jobs.exceptions import JobCancelled, JobTimedOut, WorkerShutdown
from jobs.models import Job, WorkerHeartbeat

log = logging.getLogger(__name__)

#: work()'s answer when the process must be replaced: a job's thread did not stop.
RECYCLE = 3
#: How often the watchdog looks at the slots (timeouts are enforced to about this).
WATCH_EVERY = 0.1
#: How long one slot blocks on Redis for all of them while the queues are empty.
LISTEN_SECONDS = 0.5
#: How long the popping slot listens while a queue of this process is at its concurrency limit.
FULL_LISTEN_SECONDS = 0.02


class _Interrupt(BaseException):
    """Raised inside a job's thread by the watchdog; ThreadGuard.running turns it into the reason (timeout, cancel, shutdown)."""


def _raise_in(ident: int, exc: type[BaseException] | None) -> int:
    """CPython: raise `exc` in thread `ident` at its next bytecode (None: drop one not raised yet)."""
    return int(ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc) if exc else ctypes.c_void_p(0)))


class ThreadGuard:
    """runner.Guard's counterpart for a job in a thread: the interrupt is an exception raised in that thread."""

    def __init__(self) -> None:
        self.in_task = False
        self.fired = False
        self.pending: BaseException | None = None
        self.job_id: str | None = None
        self.deadline = math.inf
        self.ident: int | None = None
        self._lock = threading.Lock()

    @contextmanager
    def running(self, timeout: float, *, job_id: str | None = None) -> Iterator[None]:
        with self._lock:
            self.pending, self.job_id, self.fired = None, job_id, False
            self.ident, self.deadline, self.in_task = threading.get_ident(), time.monotonic() + timeout, True
        try:
            yield
        except _Interrupt:
            raise (self.pending or JobTimedOut("job exceeded its queue's timeout")) from None
        finally:
            with self._lock:
                self.in_task, self.job_id = False, None
                sent = self.fired
            if sent and self.ident is not None:
                _raise_in(self.ident, None)  # sent but not landed: it never will

    def interrupt(self, exc: BaseException, *, job_id: str | None = None) -> bool:
        """From another thread: raise `exc` in the task; with `job_id`, only if that job still runs."""
        with self._lock:
            if not self.in_task or self.ident is None or (job_id is not None and job_id != self.job_id):
                return False
            self.pending, self.fired = exc, True
            _raise_in(self.ident, _Interrupt)
        return True


@dataclass
class Slot:
    """One thread of the worker and the job it runs."""

    name: str
    guard: ThreadGuard = field(default_factory=ThreadGuard)
    current: tuple[lifecycle.Claimed, JobContext] | None = None
    jobs_done: int = 0
    thread: threading.Thread | None = None
    # What the watchdog knows of the current job:
    seen_job: str | None = None
    cancel_seen_at: float | None = None
    interrupted_at: float | None = None
    reason: BaseException | None = None
    abandoned: bool = False
    db: Any = None  # the thread's own database connection (Django's are per thread)

    def start(self, claimed: lifecycle.Claimed, ctx: JobContext) -> None:
        self.current = (claimed, ctx)

    def cancel_query(self) -> None:
        """Ask the server to stop the statement the job's thread waits on: an exception raised in the thread lands only once it returns."""
        dbretry.cancel_query(self.db)


class ThreadsWorker:
    """Runs `threads` slots over `queues`; `work()` returns 0, or RECYCLE when the process must be replaced."""

    def __init__(self, queues: Sequence[str], *, threads: int | None = None, name: str | None = None) -> None:
        self.queues = [conf.get_queue(q).name for q in queues]
        count = threads or max(conf.get_queue(q).concurrency for q in self.queues)
        overrides.current(max_age=0)
        self.limits = self._limits(count)
        self.name = name or f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        self.slots = [Slot(name=f"{self.name}:t{i:02d}") for i in range(1, count + 1)]
        self.active = {q: 0 for q in self.queues}
        self.listener = Listener(broker.connection(), self.queues)
        self._pop_lock = threading.Lock()
        self._room = threading.Condition()
        self.stopping = False
        self.recycle = False
        self.burst = False
        self.max_jobs: int | None = None
        self.jobs_done = 0
        self.stop_asked_at: float | None = None
        self.most_at_once = {q: 0 for q in self.queues}

    # -- lifecycle ----------------------------------------------------------------------------

    def work(self, *, burst: bool = False, max_jobs: int | None = None) -> int:
        self.burst, self.max_jobs = burst, max_jobs
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        outbox.defer_marks = True
        if settings.JOBS_ASYNC_COMMIT:
            sql.commit_asynchronously()
        self._register()
        for slot in self.slots:
            slot.thread = threading.Thread(target=self._run_slot, args=(slot,), name=slot.name, daemon=True)
            slot.thread.start()
        interval = settings.JOBS_HEARTBEAT_INTERVAL
        next_beat = time.monotonic() + interval
        try:
            while any(s.thread and s.thread.is_alive() and not s.abandoned for s in self.slots):
                time.sleep(WATCH_EVERY)
                self._watch()
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + interval
                    self._beat()
        finally:
            self._teardown()
        return RECYCLE if self.recycle else 0

    def request_stop(self, signum: Any = None, frame: Any = None) -> None:
        """Take no more jobs; running ones get the shutdown grace (a second request ends it)."""
        if self.stop_asked_at is None:
            log.info("worker %s: stopping once its %d slots are done", self.name, len(self.slots))
            self.stop_asked_at = time.monotonic()
        elif signum is not None:  # a second signal: the grace is over
            log.warning("worker %s: second stop request, stopping running jobs now", self.name)
            self.stop_asked_at = -math.inf
        self.stopping = True
        with self._room:
            self._room.notify_all()

    def _limits(self, count: int) -> dict[str, int]:
        """How many jobs of each queue may run here at once: a threads queue its concurrency (declared, or overridden
        from the console) up to the thread count; a processes queue run in threads (`--threads`), up to every slot."""
        return {q: min(overrides.effective(q).concurrency, count) if conf.get_queue(q).mode == "threads" else count for q in self.queues}

    def _apply_overrides(self) -> None:
        """Take a concurrency override on the heartbeat: a slot waiting for room wakes if the limit rose."""
        overrides.current(max_age=0)
        limits = self._limits(len(self.slots))
        if limits != self.limits:
            with self._room:
                self.limits = limits
                self._room.notify_all()
            log.info("worker %s: concurrency now %s", self.name, limits)

    def _register(self) -> None:
        now = timezone.now()
        common = dict(hostname=socket.gethostname(), pid=os.getpid(), queues=self.queues, started_at=now, last_seen=now, stopped_at=None, mode="threads", rss=rss_bytes())
        for slot in self.slots:
            WorkerHeartbeat.objects.update_or_create(name=slot.name, defaults=common)

    def _teardown(self) -> None:
        self.stopping = True
        try:
            outbox.flush()
        except Exception:
            log.exception("worker %s: could not mark delivered events", self.name)
        for slot in self.slots:
            if slot.thread and not slot.abandoned:
                slot.thread.join(timeout=5)
        now = timezone.now()
        WorkerHeartbeat.objects.bulk_update(
            [WorkerHeartbeat(name=s.name, stopped_at=now, current_job_id="", jobs_done=s.jobs_done) for s in self.slots], ["stopped_at", "current_job_id", "jobs_done"],
        )
        outbox.defer_marks = False
        if sql.asynchronous:
            sql.commit_asynchronously(False)
        db_connection.close()

    # -- a slot's thread ----------------------------------------------------------------------

    def _run_slot(self, slot: Slot) -> None:
        from django.db import connections

        gate = RateGate(slot.name)
        slot.db = connections["default"]
        try:
            while not self.stopping:
                taken = self._take()
                if taken is None:
                    if self.burst and not self._anything_running():
                        return
                    continue
                job_id, queue = taken
                try:
                    gate.wait(queue)
                    status = runner.run(job_id, queue=queue, worker=slot.name, guard=slot.guard, on_start=slot.start)
                    if status:
                        slot.jobs_done += 1
                        self._count_done()
                except _Interrupt:
                    # Landed after its job had ended (a race with the watchdog): the outcome may be unwritten;
                    # then the job stays active for this slot and the scheduler's orphan recovery puts it back.
                    log.warning("worker %s: a stop for job %s landed after the job ended", slot.name, job_id)
                    dbretry.drop_connection(cancel=True)
                except Exception:
                    log.exception("worker %s: job %s could not be run or recorded; the scheduler's recovery will hand it back", slot.name, job_id)
                    dbretry.drop_connection()
                finally:
                    slot.current = None
                    self._release(queue)
        finally:
            if not slot.abandoned:
                db_connection.close()

    def _take(self) -> tuple[str, str] | None:
        """The next (job id, queue) from a queue with room in this process; one slot pops (and listens) at a time."""
        wait = REDIS_FIRST_WAIT
        with self._pop_lock:
            while not self.stopping:
                with self._room:
                    allowed = [q for q in self.queues if self.active[q] < self.limits[q]]
                    if not allowed:
                        self._room.wait(LISTEN_SECONDS)
                        continue
                try:
                    taken = self.listener.pop(allowed)
                    if taken is None:
                        if self.burst:
                            return None
                        # A queue at its limit is not listened to, and a slot that frees room cannot wake
                        # this BLPOP: while one is full, listen briefly so its next job starts soon after.
                        full = len(allowed) < len(self.queues)
                        self.listener.wait(FULL_LISTEN_SECONDS if full else LISTEN_SECONDS, allowed)
                        continue
                except RedisError as exc:
                    log.warning("worker %s: Redis unreachable (%s); trying again in %.1fs", self.name, exc, wait)
                    self.listener.forget_paused()
                    time.sleep(wait)
                    wait = min(wait * 2, REDIS_MAX_WAIT)
                    continue
                with self._room:
                    self.active[taken[1]] += 1
                    self.most_at_once[taken[1]] = max(self.most_at_once[taken[1]], self.active[taken[1]])
                return taken
        return None

    def _release(self, queue: str) -> None:
        with self._room:
            self.active[queue] -= 1
            self._room.notify()

    def _anything_running(self) -> bool:
        return any(s.current is not None for s in self.slots)

    def _count_done(self) -> None:
        with self._room:
            self.jobs_done += 1
            if self.max_jobs is not None and self.jobs_done >= self.max_jobs:
                self.stopping = True

    # -- the watchdog (main thread) -----------------------------------------------------------

    def _watch(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            current = slot.current
            if current is None or slot.abandoned:
                continue
            claimed, ctx = current
            if slot.seen_job != claimed.id:
                slot.seen_job, slot.cancel_seen_at, slot.interrupted_at, slot.reason = claimed.id, None, None, None
            if slot.interrupted_at is None:
                reason = self._reason(slot, claimed, now)
                if reason is not None and slot.guard.interrupt(reason, job_id=claimed.id):
                    log.warning("worker %s: stopping job %s: %s", slot.name, claimed.id, reason)
                    slot.interrupted_at, slot.reason = now, reason
                    slot.cancel_query()
            elif now - slot.interrupted_at > runner.stuck_grace() and slot.current is current:
                self._abandon(slot, claimed)

    def _reason(self, slot: Slot, claimed: lifecycle.Claimed, now: float) -> BaseException | None:
        guard = slot.guard
        if guard.in_task and guard.job_id == claimed.id and now > guard.deadline:
            return JobTimedOut(f"job exceeded its queue's timeout of {conf.get_queue(claimed.queue).timeout:g}s")
        if slot.cancel_seen_at is not None and now - slot.cancel_seen_at > settings.JOBS_CANCEL_GRACE:
            return JobCancelled(f"job {claimed.id} cancelled")
        if self.stop_asked_at is not None and now - self.stop_asked_at > settings.JOBS_SHUTDOWN_GRACE:
            return WorkerShutdown("shutdown grace passed")
        return None

    def _abandon(self, slot: Slot, claimed: lifecycle.Claimed) -> None:
        """The job's thread ignored its stop: record the outcome for it, and replace the process once the others are done."""
        reason = slot.reason
        log.error("worker %s: job %s did not stop (%s); recording it and recycling the process", slot.name, claimed.id, reason)
        try:
            runner.record_unstoppable(claimed, worker=slot.name, reason=reason or JobTimedOut("timed out"))
        except Exception:
            log.exception("worker %s: could not record job %s; the scheduler's recovery will", slot.name, claimed.id)
        slot.abandoned = True
        self.recycle = True
        self.request_stop()

    def _beat(self) -> None:
        """Every slot's heartbeat in one statement; cancel requests for the running jobs in one query; idle marks out."""
        now, rss = timezone.now(), rss_bytes()  # one process: every slot's row carries its memory
        self._apply_overrides()
        running = {s.current[0].id: s for s in self.slots if s.current is not None and not s.abandoned}
        try:
            WorkerHeartbeat.objects.bulk_update(
                [WorkerHeartbeat(name=s.name, last_seen=now, current_job_id=s.current[0].id if s.current else "", jobs_done=s.jobs_done, rss=rss) for s in self.slots if not s.abandoned],
                ["last_seen", "current_job_id", "jobs_done", "rss"],
            )
            if running:
                renew_leases([s.current[0] for s in running.values() if s.current is not None])
                for job_id in Job.objects.filter(pk__in=list(running), cancel_requested_at__isnull=False).values_list("pk", flat=True):
                    slot = running[job_id]
                    current = slot.current
                    if slot.cancel_seen_at is None and current is not None and current[0].id == job_id:
                        slot.cancel_seen_at = time.monotonic()
                        current[1]._cancel.set()
                        log.info("worker %s: cancel requested for job %s", slot.name, job_id)
            else:
                outbox.flush()
        except Exception:
            log.exception("worker %s: heartbeat failed", self.name)
            dbretry.drop_connection()
