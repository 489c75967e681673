"""The events WebSocket through config.asgi.application, on the real Redis channel layer."""
from __future__ import annotations

from typing import Any, Awaitable, Callable

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from config.asgi import application
from events import broadcast, topics
from events.consumers import UNAUTHENTICATED
from events.exceptions import UnknownTopic
from jobs import services
from jobs.api.auth import create_api_key
from jobs.engine.hooks import JobChange
from jobs.services import JobSpec

pytestmark = pytest.mark.django_db(transaction=True)

SEED_KEYS = {
    "job_created": {"type", "projectId", "jobId", "stage", "status"},
    "job_started": {"type", "projectId", "jobId", "stage"},
    "job_progress": {"type", "projectId", "jobId", "stage", "progress"},
    "job_completed": {"type", "projectId", "jobId", "stage"},
    "job_failed": {"type", "projectId", "jobId", "stage", "error"},
}


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    """Run one async scenario to the end in its own event loop."""
    return async_to_sync(scenario)()


def key_for(user: Any) -> str:
    return create_api_key(user=user)[1]


async def connected(query: str = "", headers: list[tuple[bytes, bytes]] | None = None) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, f"/ws/events{query}", headers=headers or [])
    ok, _ = await comm.connect()
    assert ok
    return comm


async def subscribe(comm: WebsocketCommunicator, topic: str, id: str) -> dict[str, Any]:
    await comm.send_json_to({"action": "subscribe", "topic": topic, "id": id})
    return await comm.receive_json_from(timeout=5)


async def events_until(comm: WebsocketCommunicator, last: str, timeout: float = 15) -> list[dict[str, Any]]:
    """Every event received until one of type `last`."""
    out: list[dict[str, Any]] = []
    while not out or out[-1]["type"] != last:
        out.append(await comm.receive_json_from(timeout=timeout))
    return out


def assert_seed_keys(events: list[dict[str, Any]]) -> None:
    for e in events:
        assert SEED_KEYS.get(e["type"], set()) <= set(e), e
        assert isinstance(e["at"], float)


def test_connect_without_credentials_is_closed_4401() -> None:
    async def scenario() -> None:
        for query in ("", "?api_key=jc_not-a-key"):
            comm = await connected(query)
            assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": UNAUTHENTICATED}
            await comm.wait()

    run(scenario)


def test_session_auth_and_foreign_origin(alice: Any) -> None:
    client = Client()
    client.force_login(alice)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    async def scenario() -> None:
        comm = await connected(headers=[(b"cookie", cookie), (b"origin", b"http://localhost:8000")])
        assert (await subscribe(comm, "queue", "default"))["type"] == "error"  # authenticated, not staff
        await comm.disconnect()
        foreign = await connected(headers=[(b"cookie", cookie), (b"origin", b"https://evil.example")])
        assert await foreign.receive_output(timeout=5) == {"type": "websocket.close", "code": UNAUTHENTICATED}

    run(scenario)


def test_api_key_auth_and_bad_messages(alice: Any) -> None:
    raw = key_for(alice)

    async def scenario() -> None:
        comm = await connected(f"?api_key={raw}")
        answer = await subscribe(comm, "nope", "1")
        assert answer["type"] == "error" and "unknown topic" in answer["message"]
        await comm.send_json_to({"action": "dance"})
        assert (await comm.receive_json_from())["type"] == "error"
        await comm.send_json_to({"action": "subscribe", "topic": "job"})
        assert (await comm.receive_json_from())["type"] == "error"
        await comm.disconnect()

    run(scenario)


def test_own_job_events_arrive_in_order(alice: Any, burst: Callable[..., Any]) -> None:
    raw = key_for(alice)
    job, _ = services.enqueue(JobSpec(type="sleep", payload={"seconds": 0.03, "steps": 3, "stage": "stt"}, owner=alice, group_ref="p-1"))

    async def scenario() -> list[dict[str, Any]]:
        comm = await connected(f"?api_key={raw}")
        assert await subscribe(comm, "job", job.id) == {"type": "subscribed", "topic": "job", "id": job.id}
        await sync_to_async(burst)("default")
        events = await events_until(comm, "job_completed")
        await comm.send_json_to({"action": "unsubscribe", "topic": "job", "id": job.id})
        assert (await comm.receive_json_from())["type"] == "unsubscribed"
        await comm.disconnect()
        return events

    events = run(scenario)
    assert [e["type"] for e in events] == ["job_started", "job_progress", "job_progress", "job_progress", "job_completed"]
    assert [e["progress"] for e in events if e["type"] == "job_progress"] == [33, 66, 100]
    assert {(e["jobId"], e["projectId"], e["stage"], e["queue"], e["jobType"]) for e in events} == {(job.id, "p-1", "stt", "default", "sleep")}
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    assert_seed_keys(events)


def test_staff_queue_sees_other_users_jobs_and_failures(alice: Any, staff: Any, burst: Callable[..., Any]) -> None:
    raw = key_for(staff)

    async def scenario() -> list[dict[str, Any]]:
        comm = await connected(f"?api_key={raw}")
        assert (await subscribe(comm, "queue", "default"))["type"] == "subscribed"
        job, _ = await sync_to_async(services.enqueue)(JobSpec(type="fail", payload={"kind": "PERMANENT", "message": "boom"}, owner=alice))
        await sync_to_async(burst)("default")
        events = await events_until(comm, "job_failed")
        await comm.disconnect()
        assert {e["jobId"] for e in events} == {job.id}
        return events

    events = run(scenario)
    assert [e["type"] for e in events] == ["job_created", "job_started", "job_failed"]
    assert events[0]["status"] == "PENDING" and events[0]["projectId"] is None and events[0]["stage"] == "fail"
    assert events[-1]["error"] == "boom"
    assert_seed_keys(events)


def test_non_staff_is_refused_other_users_job_and_queues(alice: Any, bob: Any) -> None:
    raw = key_for(bob)
    job, _ = services.enqueue(JobSpec(type="noop", owner=alice))

    async def scenario() -> None:
        comm = await connected(f"?api_key={raw}")
        for topic, id in (("job", job.id), ("job", "missing"), ("queue", "default")):
            answer = await subscribe(comm, topic, id)
            assert answer["type"] == "error" and "not allowed" in answer["message"], answer
        # Nothing of alice's job reaches bob's socket.
        assert await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()

    run(scenario)


def test_events_from_a_worker_process(alice: Any, worker_process: Callable[..., Any]) -> None:
    raw = key_for(alice)
    job, _ = services.enqueue(JobSpec(type="sleep", payload={"seconds": 0.2, "steps": 4}, owner=alice))
    assert broadcast.flush(10)  # job_created has gone out before we subscribe: the events below are the worker's

    async def scenario() -> list[dict[str, Any]]:
        comm = await connected(f"?api_key={raw}")
        assert (await subscribe(comm, "job", job.id))["type"] == "subscribed"
        await sync_to_async(worker_process)("default", "--burst")
        events = await events_until(comm, "job_completed", timeout=30)
        await comm.disconnect()
        return events

    events = run(scenario)
    assert [e["type"] for e in events] == ["job_started"] + ["job_progress"] * 4 + ["job_completed"]
    assert_seed_keys(events)


def test_publish_to_a_registered_topic(alice: Any, bob: Any) -> None:
    topics.register_topic("test-room", lambda user, id: user.username == "alice" and id == "r/1")
    try:
        raw_a, raw_b = key_for(alice), key_for(bob)

        async def scenario() -> None:
            a = await connected(f"?api_key={raw_a}")
            b = await connected(f"?api_key={raw_b}")
            assert (await subscribe(a, "test-room", "r/1"))["type"] == "subscribed"
            assert (await subscribe(b, "test-room", "r/1"))["type"] == "error"
            await sync_to_async(broadcast.publish)("test-room", "r/1", {"type": "stage_ready_for_review", "projectId": "r/1", "stage": "STT", "message": "review"})
            got = await a.receive_json_from(timeout=5)
            assert got["type"] == "stage_ready_for_review" and got["message"] == "review" and isinstance(got["at"], float)
            assert await b.receive_nothing(timeout=0.3)
            await a.disconnect()
            await b.disconnect()

        run(scenario)
        with pytest.raises(UnknownTopic):
            broadcast.publish("no-such-topic", "1", {"type": "x"})
    finally:
        topics.unregister_topic("test-room")


def test_group_names_are_valid_for_channels() -> None:
    from channels.layers import BaseChannelLayer

    layer = BaseChannelLayer()
    for kind, id in (("job", "abc"), ("project", "a b/ü:1"), ("queue", "lip-sync"), ("job", "x" * 300)):
        name = topics.group_name(kind, id)
        assert layer.require_valid_group_name(name)
    assert topics.group_name("queue", "lip-sync") == "queue.lip-sync"
    assert topics.group_name("job", "x" * 300) != topics.group_name("job", "x" * 299)


def test_job_event_mapping_has_seed_keys() -> None:
    for event, status, data in (("created", "waiting", {}), ("started", "active", {}), ("progress", "active", {}), ("completed", "completed", {}), ("failed", "failed", {"error": "e"})):
        change = JobChange(job_id="j", queue="stt", type="stt", event=event, status=status, group_ref="p", progress=5, data=data)
        e = broadcast.job_event(change, at=1.5)
        assert SEED_KEYS[e["type"]] <= set(e) and e["projectId"] == "p" and e["at"] == 1.5


def test_channel_layer_down_does_not_break_the_job(alice: Any, settings: Any, burst: Callable[..., Any]) -> None:
    """A sender whose layer points at a closed port logs and the job still completes."""
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}}
    channel_layers.backends.pop("default", None)
    old = broadcast._SENDER
    broadcast._SENDER = None
    try:
        job, _ = services.enqueue(JobSpec(type="sleep", payload={"seconds": 0.01, "steps": 2}, owner=alice))
        burst("default")
        job.refresh_from_db()
        assert job.status == "completed"
        assert broadcast.flush(10)
    finally:
        broadcast._SENDER = old
        channel_layers.backends.pop("default", None)
