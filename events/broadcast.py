"""Job changes and other apps' events to Channels groups, sent after commit from any process.

The jobs hook only builds a small record and puts it on an in-process queue; one daemon thread
per process sends them in order over a channel layer bound to its own long-lived event loop.
`async_to_sync(group_send)` per event would open a new loop (and Redis connection) for every
event, and would make the committing thread (a worker's job, `enqueue_many`) wait for Redis.
A channel layer that is down is logged and skipped: sending never breaks a job.

The sender takes what is queued in passes of up to BATCH events. For each pass it asks Redis, in one
pipelined round trip, which of their groups have members (a group's key exists while it has any),
and sends only to those: most groups (a job nobody watches) have none, and `group_send` spends two
round trips to learn that. A member that joins during the pass is missed as it would be by a
`group_send` a moment earlier. The stage comes from the change's payload, read again only when the
change came without it.
"""
from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time
from collections import OrderedDict, defaultdict, deque
from typing import Any, NamedTuple

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
#: The most events the sender takes in one pass (one membership read for their groups).
BATCH = 500
_STAGE_CACHE_SIZE = 4096
#: Seconds the sender keeps its database connection after its last read: one per burst of jobs, not one per job.
IDLE_CLOSE = 1.0


class _Outgoing(NamedTuple):
    """One event for some groups; `stage_of` names the job whose stage the sender reads from its row
    (a job change that came without its payload)."""

    groups: tuple[str, ...]
    event: dict[str, Any]
    stage_of: str | None = None


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
    known = change.payload is not None  # else the sender reads the stage from the job's row
    stage = _stage_in(change.payload) if known else None
    _sender().put(_Outgoing(tuple(groups), job_event(change, at=at, stage=stage), stage_of=None if known else change.job_id))


def _stage_in(payload: Any) -> str | None:
    """A job payload's "stage" (seed 2's pipeline stage), if it has one."""
    return payload.get("stage") if isinstance(payload, dict) and isinstance(payload.get("stage"), str) else None


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
        # A deque and an Event, not a queue.Queue: a put is an append (and a set when the sender sleeps),
        # a take a popleft, where a Queue takes a lock and notifies a condition for every event.
        self.pending: deque[_Outgoing] = deque()
        self.wake = threading.Event()
        self.busy = False  # the sender holds events it took and has not sent yet
        self.stages: OrderedDict[str, str | None] = OrderedDict()
        self.dropped = 0
        self.used_db = False
        self.thread = threading.Thread(target=self._run, name="events-sender", daemon=True)
        self.thread.start()

    def put(self, item: _Outgoing) -> None:
        if len(self.pending) >= MAX_PENDING:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("events: %d events dropped, the sender is behind (channel layer slow or down?)", self.dropped)
            return
        self.pending.append(item)
        if not self.wake.is_set():
            self.wake.set()

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while (self.pending or self.busy) and self.thread.is_alive():
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
            if not self.wake.wait(timeout=IDLE_CLOSE if self.used_db else None):
                connection.close()  # idle a while: hold no database session (tests drop their database)
                self.used_db = False
                continue
            # busy before the wake is cleared and events are taken: flush() never sees neither. An event put
            # after the clear sets the wake again, so none waits for the next one.
            self.busy = True
            self.wake.clear()
            while self.pending:
                items: list[_Outgoing] = []
                while len(items) < BATCH and self.pending:
                    items.append(self.pending.popleft())
                try:
                    outgoing = [(item.groups, self._staged(item)) for item in items]
                    if layer is not None:
                        loop.run_until_complete(self._send(layer, outgoing))
                except Exception:
                    log.warning("events: could not send %d events (%s ...)", len(items), items[0].event.get("type"), exc_info=True)
            self.busy = False

    @staticmethod
    async def _send(layer: Any, outgoing: list[tuple[tuple[str, ...], dict[str, Any]]]) -> None:
        """Send each event, in order, to those of its groups that have members."""
        live = await _with_members(layer, {group for groups, _ in outgoing for group in groups})
        for groups, event in outgoing:
            for group in groups:
                if group in live:
                    try:
                        await layer.group_send(group, {"type": FORWARD, "event": event})
                    except Exception:
                        log.warning("events: could not send %s to %s", event.get("type"), group, exc_info=True)

    def _staged(self, item: _Outgoing) -> dict[str, Any]:
        """The item's event, with the stage read from its job's row when the change came without the payload."""
        stage = self._stage(item.stage_of) if item.stage_of is not None else None
        return {**item.event, "stage": stage} if stage else item.event

    def _stage(self, job_id: str) -> str | None:
        """The job payload's "stage", read from its row once per job (kept in a small LRU cache)."""
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
        stage = _stage_in(payload)
        self.stages[job_id] = stage
        if len(self.stages) > _STAGE_CACHE_SIZE:
            self.stages.popitem(last=False)
        return stage


async def _with_members(layer: Any, groups: set[str]) -> set[str]:
    """Those of `groups` that have members, asked in one pipelined round trip per Redis host; all of
    them for a layer that is not channels_redis's (it is asked by `group_send` itself)."""
    key_of = getattr(layer, "_group_key", None)
    if key_of is None or not hasattr(layer, "consistent_hash") or not hasattr(layer, "connection"):
        return groups
    by_host: defaultdict[int, list[str]] = defaultdict(list)
    for group in groups:
        by_host[layer.consistent_hash(group)].append(group)
    live: set[str] = set()
    for index, names in by_host.items():
        async with layer.connection(index).pipeline(transaction=False) as pipe:
            for name in names:
                pipe.exists(key_of(name))
            found = await pipe.execute()
        live.update(name for name, n in zip(names, found) if n)
    return live


_SENDER: _Sender | None = None
_LOCK = threading.Lock()


def _sender() -> _Sender:
    """This process's sender, started on first use (again in a forked child)."""
    global _SENDER
    sender = _SENDER
    if sender is not None and sender.pid == os.getpid():
        return sender  # the usual case, without the lock
    with _LOCK:
        if _SENDER is None or _SENDER.pid != os.getpid():
            _SENDER = _Sender()
        return _SENDER


atexit.register(flush, 3.0)
