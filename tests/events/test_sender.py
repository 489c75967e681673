"""The events sender's passes: one membership read per pass, sends only to groups with members, the stage from the payload."""
from __future__ import annotations

import asyncio
import secrets
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from events import broadcast, topics
from jobs.engine.hooks import JobChange


def test_only_groups_with_members_are_sent_to() -> None:
    """A group gains a member: the membership read names it and not the empty one; the member gets the event, in order."""
    layer = get_channel_layer()
    watched, empty = topics.group_name("job", secrets.token_hex(4)), topics.group_name("job", secrets.token_hex(4))

    async def scenario() -> tuple[set[str], set[str], list[Any]]:
        channel = await layer.new_channel()
        before = await broadcast._with_members(layer, {watched, empty})
        await layer.group_add(watched, channel)
        try:
            after = await broadcast._with_members(layer, {watched, empty})
            await broadcast._Sender._send(layer, [((watched, empty), {"type": "job_started", "n": 1}), ((empty, watched), {"type": "job_completed", "n": 2})])
            got = [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(2)]
        finally:
            await layer.group_discard(watched, channel)
        return before, after, got

    before, after, got = asyncio.run(scenario())
    assert before == set()
    assert after == {watched}
    assert [m["event"]["n"] for m in got] == [1, 2]


def test_stage_comes_from_the_payload_without_a_read() -> None:
    """A change made with its payload at hand carries its stage; one rebuilt from its event row names the job to read."""
    sent: list[broadcast._Outgoing] = []
    sender = broadcast._sender()
    real_put = sender.put
    sender.put = sent.append  # type: ignore[method-assign]  # capture what the hook queues (the sender is ours, not a service)
    try:
        broadcast.on_job_change(JobChange(job_id="j1", queue="stt", type="stt", event="started", status="active", payload={"stage": "STT"}))
        broadcast.on_job_change(JobChange(job_id="j2", queue="stt", type="stt", event="started", status="active"))
    finally:
        sender.put = real_put  # type: ignore[method-assign]
    assert sent[0].event["stage"] == "STT" and sent[0].stage_of is None
    assert sent[1].event["stage"] == "stt" and sent[1].stage_of == "j2"


def test_flush_returns_once_every_event_put_from_several_threads_is_sent() -> None:
    """Three threads put 900 events (two passes of the sender) while it sends: flush() returns only when all went out,
    and the member gets each thread's events in the order that thread put them."""
    layer = get_channel_layer()
    group = topics.group_name("job", secrets.token_hex(4))
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    sender = broadcast._Sender()  # its own thread, as in a fresh process

    def put(thread: int) -> None:
        for n in range(300):
            sender.put(broadcast._Outgoing((group,), {"type": "job_progress", "thread": thread, "n": n}))

    try:
        threads = [threading.Thread(target=put, args=(t,)) for t in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sender.flush(20)
        assert not sender.pending and not sender.busy

        async def receive_all() -> list[Any]:
            return [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(900)]

        got = [m["event"] for m in async_to_sync(receive_all)()]
    finally:
        async_to_sync(layer.group_discard)(group, channel)
    for thread in range(3):
        assert [e["n"] for e in got if e["thread"] == thread] == list(range(300))
