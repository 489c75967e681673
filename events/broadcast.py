"""Job changes and other apps' events to Channels groups, sent after commit from any process.

The jobs hook only builds a small record and puts it on an in-process queue; one daemon thread
per process sends them in order over a channel layer bound to its own long-lived event loop.
`async_to_sync(group_send)` per event would open a new loop (and Redis connection) for every
event, and would make the committing thread (a worker's job, `enqueue_many`) wait for Redis.
A channel layer that is down is logged and skipped: sending never breaks a job.
"""
from __future__ import annotations

import asyncio
import atexit
import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from events import topics
from jobs.services import JobChange

log = logging.getLogger(__name__)

#: JobChange.event -> the event type clients receive (seed 2's five, and two extras).
EVENT_TYPES = {
    "created": "job_created",
    "started": "job_started",
    "progress": "job_progress",
    "completed": "job_completed",
    "failed": "job_failed",
    "retrying": "job_retrying",
    "cancelled": "job_cancelled",
}
#: The Channels message type a consumer maps to its `event_forward` handler.
FORWARD = "event.forward"
#: Events waiting to be sent in one process; beyond this new ones are dropped (and logged).
MAX_PENDING = 10_000
_STAGE_CACHE_SIZE = 4096
#: Seconds the sender keeps its database connection after its last read: one per burst of jobs, not one per job.
IDLE_CLOSE = 1.0


@dataclass(frozen=True)
class _Outgoing:
    """One event for some groups; `change` is set for job events (stage resolved in the sender)."""

    groups: tuple[str, ...]
    event: dict[str, Any]
    change: JobChange | None = None


def on_job_change(change: JobChange) -> None:
    """Jobs hook: queue the change's event for the job's, the queue's and the project's groups."""
    if change.event not in EVENT_TYPES:
        return
    # A job's own subscribers learn its id from its creation, so its `created` goes to its queue and
    # group only (a bulk enqueue of 10,000 jobs sends 10,000 messages fewer).
    groups = [topics.group_name("queue", change.queue)]
    if change.event != "created":
        groups.insert(0, topics.group_name("job", change.job_id))
    if change.group_ref:
        groups.append(topics.group_name(*topics.of_group_ref(change.group_ref)))
    at = change.at.timestamp() if change.at is not None else time.time()
    _sender().put(_Outgoing(tuple(groups), job_event(change, at=at), change))


def job_event(change: JobChange, *, at: float, stage: str | None = None) -> dict[str, Any]:
    """Seed 2's event dict for a change, with queue, jobType, status, "at" (epoch seconds of the change) and
    "eventId" added. The engine delivers a change at least once: a client may see an eventId twice, never
    a gap; progress (no eventId) is a level that the next progress or outcome supersedes."""
    event: dict[str, Any] = {
        "type": EVENT_TYPES[change.event],
        "eventId": change.event_id,
        "jobId": change.job_id,
        "stage": stage or change.type,
        "queue": change.queue,
        "jobType": change.type,
        "status": change.status,
        "at": at,
    }
    if change.group_ref:
        kind, ref = topics.of_group_ref(change.group_ref)
        event[f"{kind}Id"] = ref  # seed 2's projectId; another app's kind, e.g. the assistant's commandId
    else:
        event["projectId"] = None
    if change.event == "created":
        event["status"] = "PENDING"
    elif change.event == "progress":
        event["progress"] = change.progress
        if change.data.get("message"):
            event["message"] = change.data["message"]
    elif change.event in ("failed", "retrying"):
        event["error"] = str(change.data.get("error", ""))
        if change.data.get("kind"):
            event["errorKind"] = change.data["kind"]
    return event


def publish(kind: str, id: str, event: dict[str, Any]) -> None:
    """Send another app's event (it must have a "type") to subscribers of topic `kind` `id`; "at" is added if missing."""
    _known(kind)
    if not isinstance(event.get("type"), str):
        raise ValueError("an event needs a string 'type'")
    _sender().put(_Outgoing((topics.group_name(kind, id),), {**event, "at": event.get("at", time.time())}))


def _known(kind: str) -> None:
    if kind not in topics.kinds():
        from events.exceptions import UnknownTopic

        raise UnknownTopic(kind)


def send_now(kind: str, id: str, event: dict[str, Any], *, timeout: float = 5.0) -> None:
    """Send another app's event to topic `kind` `id` from this thread, past the queue: returns once the
    channel layer took it, raises (TimeoutError, the layer's error) when it did not. For a caller
    that records the event as delivered (a notification); `publish` is fire-and-forget."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    _known(kind)
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured (CHANNEL_LAYERS)")
    message = {"type": FORWARD, "event": {**event, "at": event.get("at", time.time())}}

    async def send() -> None:
        await asyncio.wait_for(layer.group_send(topics.group_name(kind, id), message), timeout)

    async_to_sync(send)()


def flush(timeout: float = 5.0) -> bool:
    """Wait until every queued event of this process was sent (or dropped); False on timeout."""
    sender = _SENDER
    return sender.flush(timeout) if sender is not None and sender.pid == os.getpid() else True


class _Sender:
    """A daemon thread with its own event loop that sends queued events in order."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.pending: queue.Queue[_Outgoing] = queue.Queue(MAX_PENDING)
        self.stages: OrderedDict[str, str | None] = OrderedDict()
        self.dropped = 0
        self.used_db = False
        self.thread = threading.Thread(target=self._run, name="events-sender", daemon=True)
        self.thread.start()

    def put(self, item: _Outgoing) -> None:
        try:
            self.pending.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("events: %d events dropped, the sender is behind (channel layer slow or down?)", self.dropped)

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.pending.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def _run(self) -> None:
        from channels.layers import get_channel_layer
        from django.db import connection

        loop = asyncio.new_event_loop()
        layer = get_channel_layer()
        while True:
            try:
                item = self.pending.get(timeout=IDLE_CLOSE if self.used_db else None)
            except queue.Empty:
                connection.close()  # idle a while: hold no database session (tests drop their database)
                self.used_db = False
                continue
            try:
                event = item.event
                if item.change is not None:
                    stage = self._stage(item.change.job_id)
                    if stage:
                        event = {**event, "stage": stage}
                if layer is not None:
                    loop.run_until_complete(self._send(layer, item.groups, event))
            except Exception:
                log.warning("events: could not send %s to %s", item.event.get("type"), ", ".join(item.groups), exc_info=True)
            finally:
                self.pending.task_done()

    @staticmethod
    async def _send(layer: Any, groups: tuple[str, ...], event: dict[str, Any]) -> None:
        for group in groups:
            await layer.group_send(group, {"type": FORWARD, "event": event})

    def _stage(self, job_id: str) -> str | None:
        """The job payload's "stage", read once per job and kept in a small LRU cache."""
        if job_id in self.stages:
            self.stages.move_to_end(job_id)
            return self.stages[job_id]
        from jobs.models import Job

        self.used_db = True
        try:
            payload = Job.objects.filter(pk=job_id).values_list("payload", flat=True).first()
        except Exception:
            log.warning("events: could not read job %s's payload", job_id, exc_info=True)
            return None
        stage = payload.get("stage") if isinstance(payload, dict) and isinstance(payload.get("stage"), str) else None
        self.stages[job_id] = stage
        if len(self.stages) > _STAGE_CACHE_SIZE:
            self.stages.popitem(last=False)
        return stage


_SENDER: _Sender | None = None
_LOCK = threading.Lock()


def _sender() -> _Sender:
    """This process's sender, started on first use (again in a forked child)."""
    global _SENDER
    with _LOCK:
        if _SENDER is None or _SENDER.pid != os.getpid():
            _SENDER = _Sender()
        return _SENDER


atexit.register(flush, 3.0)
