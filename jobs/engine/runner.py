"""Run one claimed job: call its task under a time limit and record how it ended."""
from __future__ import annotations

import json
import logging
import signal
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, ContextManager, Iterator, Protocol

from jobs.engine import broker, conf, dbretry, lifecycle, registry
from jobs.engine.batch import Chain
from jobs.engine.context import JobContext
from jobs.exceptions import ErrorKind, JobCancelled, JobError, JobTimedOut, PermanentError, WorkerShutdown

log = logging.getLogger(__name__)


def stuck_grace() -> float:
    """How long a task may ignore an interrupt before the worker records its outcome for it and the process goes."""
    from django.conf import settings

    return max(settings.JOBS_CANCEL_GRACE, 5.0)


def record_unstoppable(claimed: lifecycle.Claimed, *, worker: str, reason: BaseException) -> None:
    """The outcome of a job whose task ignored its stop (stuck in native code), written for it before its
    process goes: cancelled, back to waiting (a shutdown, the attempt not counted), or a TIMEOUT failure."""
    if isinstance(reason, JobCancelled):
        lifecycle.cancelled(claimed, worker=worker)
    elif isinstance(reason, WorkerShutdown):
        lifecycle.requeue(claimed, worker=worker, reason="worker exited: job did not stop")
    else:
        lifecycle.fail(claimed, worker=worker, exc=reason, kind=ErrorKind.TIMEOUT, retryable=True)
    if conf.get_queue(claimed.queue).per_owner_limit:
        release_owner_slot(claimed.queue, claimed.id, claimed.owner_id)


class Interrupts(Protocol):
    """What runs a task under its time limit and may stop it from outside: Guard (a process's main
    thread, by signals) or jobs.engine.threads.ThreadGuard (a job thread, by an exception raised in it)."""

    #: An interrupt was raised inside the task: it may have landed in the middle of a database call.
    fired: bool

    def running(self, timeout: float, *, job_id: str | None = None) -> ContextManager[None]: ...


class Guard:
    """Turns a timeout, a cancel past its grace or a shutdown past its grace into an exception
    raised inside the running task (main thread), and only while the task runs."""

    def __init__(self) -> None:
        self.in_task = False
        #: An interrupt was raised inside the task: it may have landed in the middle of a database call.
        self.fired = False
        self.pending: BaseException | None = None
        self.job_id: str | None = None
        self._lock = threading.Lock()
        self._main = threading.main_thread().ident
        self._installed = False

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGALRM, self._on_alarm)
            signal.signal(signal.SIGUSR1, self._on_interrupt)
            self._installed = True

    def _on_alarm(self, signum: int, frame: Any) -> None:
        if self.in_task:
            self.fired = True
            raise JobTimedOut("job exceeded its queue's timeout")

    def _on_interrupt(self, signum: int, frame: Any) -> None:
        if self.in_task and self.pending is not None:
            exc, self.pending = self.pending, None
            self.fired = True
            raise exc

    def interrupt(self, exc: BaseException, *, job_id: str | None = None) -> bool:
        """From another thread: raise `exc` in the task now; with `job_id`, only if that job still runs.

        The heartbeat decides to stop a job and then calls this: meanwhile the job may have ended
        and the next one started, which must not receive the previous job's stop.
        """
        with self._lock:
            if job_id is not None and job_id != self.job_id:
                return False
            self.pending = exc
        if self._installed and self._main is not None:
            signal.pthread_kill(self._main, signal.SIGUSR1)
        return True

    @contextmanager
    def running(self, timeout: float, *, job_id: str | None = None) -> Iterator[None]:
        with self._lock:
            self.pending = None
            self.job_id = job_id
            self.in_task = True
            self.fired = False
        if self._installed:
            signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            yield
        finally:
            if self._installed:
                signal.setitimer(signal.ITIMER_REAL, 0)
            with self._lock:
                self.in_task = False
                self.job_id = None


def _jsonable(value: Any) -> Any:
    try:
        # allow_nan=False: PostgreSQL's jsonb refuses NaN and Infinity, which would otherwise fail
        # the complete() write and be retried as if the error were transient.
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PermanentError(f"task returned a value that is not JSON: {exc}", kind=ErrorKind.VALIDATION) from exc
    return value


def run(
    job_id: str,
    *,
    queue: str,
    worker: str,
    guard: Interrupts | None = None,
    on_start: Callable[[lifecycle.Claimed, JobContext], None] | None = None,
    chain: Chain | None = None,
) -> str:
    """Claim `job_id` and run it; returns the status it ended in ("" if it was not ours to run).

    The outcome is written after the task has left its time limit, on a connection known to be
    sound: an interrupt (timeout, cancel, shutdown) may land in the middle of one of the task's
    database calls, and then the connection is dropped (its query cancelled) before the outcome is
    written on a new one. Outcome writes ride out a database restart (jobs.engine.dbretry).
    With `chain`, a completion also claims the worker's next job (run_claimed runs it).
    """
    claimed = lifecycle.claim(job_id, queue=queue, worker=worker)
    if claimed is None:
        if conf.get_queue(queue).per_owner_limit:  # not ours (cancelled or taken meanwhile): free the slot the pop gave it
            from jobs.models import Job

            release_owner_slot(queue, job_id, Job.objects.filter(pk=job_id).values_list("owner_id", flat=True).first())
        return ""
    return run_claimed(claimed, worker=worker, guard=guard, on_start=on_start, chain=chain)


def run_claimed(
    claimed: lifecycle.Claimed,
    *,
    worker: str,
    guard: Interrupts | None = None,
    on_start: Callable[[lifecycle.Claimed, JobContext], None] | None = None,
    chain: Chain | None = None,
) -> str:
    """Run a job this worker has claimed (run(), or the claim that came with its previous job's completion)."""
    try:
        return _run(claimed, worker=worker, guard=guard, on_start=on_start, chain=chain)
    finally:
        if conf.get_queue(claimed.queue).per_owner_limit:
            release_owner_slot(claimed.queue, claimed.id, claimed.owner_id)


def _complete(claimed: lifecycle.Claimed, *, worker: str, result: Any, chain: Chain | None) -> str:
    if chain is None:
        return "completed" if lifecycle.complete(claimed, worker=worker, result=result) else ""
    return "completed" if chain.complete(claimed, worker=worker, result=result) else ""


def release_owner_slot(queue: str, job_id: str, owner: int | None) -> None:
    """Free the per-owner slot the dequeue gave `job_id` (its lease would free it after JOBS_STALL_TIMEOUT)."""
    try:
        broker.release(queue, owner, job_id)
    except Exception:
        log.warning("job %s: its owner's slot in %s was not freed; its lease frees it", job_id, queue)


def _run(
    claimed: lifecycle.Claimed, *, worker: str, guard: Interrupts | None,
    on_start: Callable[[lifecycle.Claimed, JobContext], None] | None, chain: Chain | None,
) -> str:
    guard = guard if guard is not None else Guard()
    ctx = JobContext(
        job_id=claimed.id, queue=claimed.queue, type=claimed.type, attempt=claimed.attempt,
        max_attempts=claimed.max_attempts, payload=claimed.payload, owner_id=claimed.owner_id, group_ref=claimed.group_ref,
    )
    if on_start:
        on_start(claimed, ctx)
    timeout = conf.get_queue(claimed.queue).timeout
    outcome: Callable[[], str]
    cold_stop: BaseException | None = None
    began = time.monotonic()
    try:
        try:
            task = registry.get(claimed.type)
        except Exception as exc:
            raise PermanentError(f"job type {claimed.type!r} is not registered on this worker", kind=ErrorKind.VALIDATION) from exc
        with guard.running(timeout, job_id=claimed.id):
            result = task.func(ctx, claimed.payload)
        value = _jsonable(result)
        outcome = lambda: _complete(claimed, worker=worker, result=value, chain=chain)  # noqa: E731
    except JobCancelled:
        outcome = lambda: "cancelled" if lifecycle.cancelled(claimed, worker=worker) else ""  # noqa: E731
    except WorkerShutdown:
        outcome = lambda: "waiting" if lifecycle.requeue(claimed, worker=worker, reason="worker shut down before the job finished") else ""  # noqa: E731
    except JobTimedOut as exc:
        timed_out = exc  # the except clause's name is unbound when it ends
        outcome = lambda: lifecycle.fail(claimed, worker=worker, exc=timed_out, kind=ErrorKind.TIMEOUT, retryable=True)  # noqa: E731
    except (SystemExit, KeyboardInterrupt) as exc:
        cold_stop = exc
        outcome = lambda: "waiting" if lifecycle.requeue(claimed, worker=worker, reason="worker stopped cold") else ""  # noqa: E731
    except Exception as exc:
        failure = exc
        if isinstance(exc, JobError) or not ctx.cancel_requested:
            outcome = lambda: lifecycle.fail(claimed, worker=worker, exc=failure)  # noqa: E731
        else:
            outcome = lambda: "cancelled" if lifecycle.cancelled(claimed, worker=worker) else ""  # noqa: E731
    if chain is not None:
        chain.ran(time.monotonic() - began)
    if guard.fired:
        dbretry.drop_connection(cancel=True)
    status = outcome()
    if cold_stop is not None:
        raise cold_stop
    return status
