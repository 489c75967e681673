"""Notifications on real services: the events WebSocket (config.asgi through Channels' communicator, the Redis
channel layer), a loopback SMTP server, and a real worker in burst mode."""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Awaitable, Callable

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from assistant import notify
from assistant.exceptions import AssistantInputError
from assistant.models import Command, Notification
from config.asgi import application
from jobs.api.auth import create_api_key
from jobs.engine import scheduler
from jobs.models import Job
from tests.assistant.smtp import Mailbox, point_django_at, smtp_server
from tests.jobs.engine_support import make_due
from tests.net import free_port

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE = "notification"



@pytest.fixture
def alice_with_mail(alice: Any) -> Any:
    alice.email = "alice@example.org"
    alice.save()
    return alice


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return async_to_sync(scenario)()


async def socket_of(user: Any) -> WebsocketCommunicator:
    """A WebSocket of `user`'s (API key), connected."""
    raw = await sync_to_async(lambda: create_api_key(user=user)[1])()
    comm = WebsocketCommunicator(application, f"/ws/events?api_key={raw}")
    ok, _ = await comm.connect()
    assert ok
    return comm


async def subscribe(comm: WebsocketCommunicator, user_id: Any) -> dict[str, Any]:
    await comm.send_json_to({"action": "subscribe", "topic": "user", "id": str(user_id)})
    return dict(await comm.receive_json_from(timeout=5))


def test_a_user_subscribes_to_their_own_notifications_only(alice: Any, bob: Any, staff: Any) -> None:
    async def scenario() -> None:
        mine = await socket_of(alice)
        assert await subscribe(mine, alice.pk) == {"type": "subscribed", "topic": "user", "id": str(alice.pk)}
        for other in (bob, staff):  # not another user, not even an operator
            theirs = await socket_of(other)
            answer = await subscribe(theirs, alice.pk)
            assert answer["type"] == "error" and "not allowed" in answer["message"]
            await theirs.disconnect()
        await mine.disconnect()

    run(scenario)


def test_a_notification_reaches_the_users_websocket_and_their_mailbox(
    alice_with_mail: Any, bob: Any, smtp: Mailbox, burst: Callable[..., Any],
) -> None:
    alice = alice_with_mail

    async def scenario() -> tuple[dict[str, Any], Notification, WebsocketCommunicator]:
        comm = await socket_of(alice)
        bobs = await socket_of(bob)
        await subscribe(comm, alice.pk)
        await subscribe(bobs, bob.pk)
        note, job = await sync_to_async(notify.queue_notification)(owner=alice, title="Reminder", body="Call Ana")
        assert (job.queue, job.type, job.payload, note.channels) == (QUEUE, notify.NOTIFY, {"notificationId": note.id}, ["websocket", "email"])
        await sync_to_async(burst)(QUEUE)
        got = await comm.receive_json_from(timeout=5)
        assert await bobs.receive_nothing(timeout=0.5)  # bob's topic hears nothing of alice's
        await comm.disconnect()
        await bobs.disconnect()
        return got, note, comm

    got, note, _ = run(scenario)
    note.refresh_from_db()
    assert {k: got[k] for k in ("type", "notificationId", "title", "body", "createdAt")} == {
        "type": "notification", "notificationId": note.id, "title": "Reminder", "body": "Call Ana", "createdAt": note.created_at.isoformat(),
    }
    (message,) = smtp.received
    assert message.rcpt_tos == ["alice@example.org"] and message.message["Subject"] == "Reminder"
    assert message.message.get_content().strip() == "Call Ana"
    assert message.message["Message-ID"] == f"<notification.{note.id}@jobconsole.test>"
    assert set(note.delivered) == {"websocket", "email"}
    assert Job.objects.get(pk=note.job_id).result == {"notificationId": note.id, "delivered": ["websocket", "email"], "already": []}


def test_with_the_mail_server_down_the_retry_sends_only_the_email(alice_with_mail: Any, settings: Any, burst: Callable[..., Any]) -> None:
    alice = alice_with_mail
    port = free_port()
    point_django_at(settings, port)  # nothing listens yet

    async def scenario() -> tuple[Notification, Job, int]:
        comm = await socket_of(alice)
        await subscribe(comm, alice.pk)
        note, job = await sync_to_async(notify.queue_notification)(owner=alice, title="Standup in 5 minutes")
        await sync_to_async(burst)(QUEUE)
        assert (await comm.receive_json_from(timeout=5))["type"] == "notification"
        await sync_to_async(job.refresh_from_db)()
        assert (job.status, job.attempts_made) == ("delayed", 1)
        with smtp_server(port) as (_, box):
            await sync_to_async(make_due)(job.id)
            await sync_to_async(scheduler.promote_due)()
            await sync_to_async(burst)(QUEUE)
            assert await comm.receive_nothing(timeout=0.5)  # the WebSocket was done: not sent again
            received = len(box.received)
        await comm.disconnect()
        return note, job, received

    note, job, received = run(scenario)
    job.refresh_from_db()
    note.refresh_from_db()
    assert (job.status, job.attempts_made, received) == ("completed", 2, 1)
    assert job.result == {"notificationId": note.id, "delivered": ["email"], "already": ["websocket"]}
    assert set(note.delivered) == {"websocket", "email"}


def test_a_reminder_waits_delayed_until_it_is_due(alice: Any, burst: Callable[..., Any]) -> None:
    command = Command.objects.create(owner=alice, conversation_id="c1", text="remind me to stretch in ten minutes")
    note, job = notify.queue_notification(owner=alice, title="Reminder", body="stretch", command=command, delay=600)
    assert job.group_ref == command.group_ref and note.channels == ["websocket"]  # alice has no email address
    assert job.status == "delayed" and job.run_at is not None and job.run_at - timezone.now() > timedelta(seconds=590)
    burst(QUEUE)
    scheduler.promote_due()  # not yet due: nothing moves
    job.refresh_from_db()
    note.refresh_from_db()
    assert (job.status, note.delivered) == ("delayed", {})
    make_due(job.id)
    assert scheduler.promote_due() == 1
    burst(QUEUE)
    job.refresh_from_db()
    note.refresh_from_db()
    assert job.status == "completed" and set(note.delivered) == {"websocket"}


@pytest.mark.parametrize(
    ("title", "channels", "delay", "fields"),
    [
        ("", ["websocket"], None, {"title"}),
        ("Hi", ["sms"], None, {"channels"}),
        ("Hi", [], -1, {"channels", "delay"}),
        ("x" * 301, ["email"], float("nan"), {"title", "channels", "delay"}),  # email: bob has no address
    ],
)
def test_bad_input_names_every_bad_field_and_writes_nothing(bob: Any, title: str, channels: list[str], delay: float | None, fields: set[str]) -> None:
    with pytest.raises(AssistantInputError) as caught:
        notify.queue_notification(owner=bob, title=title, channels=channels, delay=delay)
    assert set(caught.value.extra) == fields, caught.value.extra
    assert (Notification.objects.count(), Job.objects.count()) == (0, 0)
