"""A process worker's batch: jobs claimed together, run one after another, their completions recorded together.

While jobs wait, a worker claims its next job in the statement that records the one it ran
(`lifecycle.complete_and_claim`). While they also run fast (under FAST_JOB seconds each), it claims
up to `JOBS_BATCH_SIZE` at once: one Lua pop (`broker.pop_many`, in the order single pops would take
them) and one set-based statement that records the finished batch's completions and claims the next
batch (`lifecycle.complete_and_claim_many`). One PostgreSQL round trip and one Redis round trip per
batch instead of per job. The size starts at 1, doubles after each fast job and falls back to 1
after a slow one, so a queue of long jobs never holds jobs that other workers could start.

What a batch changes, and how each case stays safe:

- A success is recorded with the batch's last job, so at most `size - 1` completions wait in this
  process (its hooks fire then), never past the start of a job of the next batch.
- The held jobs are `active` with this worker's name and the same `started_at` (one claim). The
  heartbeat names the job that runs (or the next held one), and `scheduler.recover_orphans` leaves
  alone every job claimed with it: held jobs are not orphans.
- Before starting each job of a batch the worker writes a holding note to Redis (`note`): the job it
  starts, the ones finished but not recorded, the ones not started. If the process is killed, stalled
  recovery puts the listed unstarted and finished ones back to waiting without counting an attempt
  (`uncounted`) and fails the one that ran as STALLED (counted, as always: a job that kills its
  worker must not come back forever). Without the note (Redis lost it) all are STALLED, as before.
- On SIGTERM, `max_jobs` or a stop, `release` records the finished ones and hands the held ones back
  to the front of their lists, their attempts not counted.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from django.conf import settings

from jobs.engine import broker, lifecycle
from jobs.engine.lifecycle import Claimed

log = logging.getLogger(__name__)

#: A job that ran longer than this (seconds) ends batching until fast jobs come back.
FAST_JOB = 0.05
#: A job of a batch that runs longer than this (seconds) makes the worker let go of the rest (`unload`).
HOLD_LIMIT = 1.0


def batch_limit() -> int:
    """settings.JOBS_BATCH_SIZE (env JOBS_BATCH_SIZE, default 8): the most jobs claimed at once (1: no batches)."""
    return max(1, int(settings.JOBS_BATCH_SIZE))


@dataclass
class Chain:
    """A worker's offer to claim its next jobs in the same round trip as this one's completion, and the batch it holds.

    `pop(n)` takes up to n (job id, queue) without blocking ([] when nothing waits or the worker stops).
    Jobs claimed with a completion wait in `held`, in order, for the worker to run next; a success
    while some are held waits in `finished`. The heartbeat thread reads both (under `lock`).
    """

    pop: Callable[[int], list[tuple[str, str]]]
    limit: int = 1
    size: int = 1
    held: deque[Claimed] = field(default_factory=deque)
    finished: list[tuple[Claimed, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: The held job that runs now, and since when (monotonic).
    running: tuple[str, float] | None = None
    #: Writes the holding notes without waiting for each answer (broker.NoteWriter).
    notes: broker.NoteWriter = field(default_factory=broker.NoteWriter)

    def ran(self, seconds: float) -> None:
        """A job's task took `seconds`: batch more while jobs are fast, not at all after a slow one."""
        self.size = min(self.size * 2, self.limit) if seconds < FAST_JOB else 1

    def take(self, job_id: str) -> Claimed | None:
        """The held job `job_id` if it is the next one (the worker runs it now), else None."""
        with self.lock:
            if self.held and self.held[0].id == job_id:
                self.running = (job_id, time.monotonic())
                return self.held.popleft()
            self.running = None
        return None

    def next_id(self) -> tuple[str, str] | None:
        with self.lock:
            return (self.held[0].id, self.held[0].queue) if self.held else None

    def holding(self) -> str:
        """The job the heartbeat names when none runs: the next held one, or one finished but not recorded."""
        with self.lock:
            if self.held:
                return self.held[0].id
            return self.finished[-1][0].id if self.finished else ""

    def complete(self, claimed: Claimed, *, worker: str, result: Any) -> bool:
        """Record `claimed`'s success; with jobs still held, later, with the batch's last one. False if it was no longer ours."""
        with self.lock:
            self.running = None  # it ended: the heartbeat no longer judges the batch by it
            if self.held:
                self.finished.append((claimed, result))
                return True
            done, self.finished = [*self.finished, (claimed, result)], []
        taken = self.pop(self.size)
        if len(done) == 1 and len(taken) <= 1:
            if not taken:
                return lifecycle.complete(claimed, worker=worker, result=result)
            ok, following = lifecycle.complete_and_claim(claimed, worker=worker, result=result, next_id=taken[0][0], next_queue=taken[0][1])
            if following is not None:
                with self.lock:
                    self.held.append(following)
            return ok
        results, claimed_now = lifecycle.complete_and_claim_many(done, worker=worker, claims=taken)
        with self.lock:
            self.held.extend(claimed_now)
        return results[-1]

    def settle(self, *, worker: str) -> None:
        """Record the finished jobs once none is held (the batch's last job ended otherwise than in success)."""
        with self.lock:
            if self.held or not self.finished:
                return
            done, self.finished = self.finished, []
        lifecycle.complete_and_claim_many(done, worker=worker, claims=[])

    def unload(self, *, worker: str, running: str) -> int:
        """From the heartbeat: the batch's job `running` has run past HOLD_LIMIT, so the finished ones are recorded
        now (their hooks wait no longer) and the held ones go back for other workers; how many went back."""
        with self.lock:
            slow = self.running is not None and self.running[0] == running and time.monotonic() - self.running[1] > HOLD_LIMIT
            if not slow or not (self.held or self.finished):
                return 0
        return self.release(worker=worker, reason="handed back: the job before it in its worker's batch runs long")

    def release(self, *, worker: str, reason: str) -> int:
        """The worker stops: record the finished jobs and hand the held ones back (attempts not counted); how many went back."""
        with self.lock:
            held, self.held = list(self.held), deque()
            done, self.finished = self.finished, []
        if done:
            lifecycle.complete_and_claim_many(done, worker=worker, claims=[])
        back = 0
        for job in reversed(held):  # each goes to the front of its list: the last first, so the first is first again
            try:
                back += lifecycle.requeue(job, worker=worker, reason=reason)
            except Exception:
                log.exception("worker %s: could not put back job %s; the scheduler's recovery will", worker, job.id)
        return back

    def forget(self, *, worker: str) -> None:
        """The worker stops: its holding note goes (else it expires)."""
        try:
            self.notes.flush()
        except Exception:
            pass  # the note's answer is lost with its connection: the delete below settles it
        self.notes.close()
        try:
            broker.forget_holding(worker)
        except Exception:
            log.warning("worker %s: could not remove its holding note; it expires", worker)

    def note(self, *, worker: str, running: Claimed) -> None:
        """Before `running` (a job of a batch) starts: tell stalled recovery which jobs of the batch have not run."""
        if running.batch_at is None:
            return
        with self.lock:
            held = [c.id for c in self.held if c.batch_at == running.batch_at]
            done = [c.id for c, _ in self.finished if c.batch_at == running.batch_at]
        text = json.dumps({"at": running.batch_at.isoformat(), "run": running.id, "held": held, "done": done})
        try:
            self.notes.send(worker, text, ttl=max(3600.0, 10 * settings.JOBS_STALL_TIMEOUT))
        except Exception:
            log.warning("worker %s: could not note its batch in Redis; if it dies, its batch counts as stalled", worker)


def uncounted(note: str | None, *, job_id: str, started_at: datetime | None) -> str:
    """Why a dead worker's active job goes back without counting an attempt, by its holding note ("" if it counts).

    Only a job of the batch the note is about (claimed at the note's time) that the note lists as not
    started, or as finished but not recorded, goes back so; the one it ran counts as stalled.
    """
    if not note or started_at is None:
        return ""
    try:
        parsed = json.loads(note)
        at = datetime.fromisoformat(parsed["at"])
    except (ValueError, KeyError, TypeError):
        return ""
    if at != started_at:
        return ""
    if job_id in parsed.get("held", ()):
        return "its worker died before starting it (held in a batch)"
    if job_id in parsed.get("done", ()):
        return "its worker died before recording its completion (finished in a batch): it runs once more"
    return ""
