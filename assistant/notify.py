"""Notifications (seed 5's notification queue): one message for a user, fanned out to their channels.

- "websocket": an event on the user's own events topic ("user", str(user.pk)), which only that user
  may subscribe to; sent through `events.broadcast` like every other event.
- "email": a plain message to the owner's address through `assistant.mail.deliver_message`, the one
  SMTP path, with a Message-ID made from the notification's id (the same on every try).

A reminder is a notification enqueued with a delay: its job waits DELAYED until due. Each channel's
delivery time is recorded in `Notification.delivered` as soon as it succeeds, so a retried job (the
email server was down) repeats only the channels not yet done. A WebSocket event is best effort by
nature: a user who is not connected at that moment does not see it (the row stays for the page).
"""
from __future__ import annotations

import math
from typing import Any, Callable

from django.db import transaction
from django.utils import timezone

from assistant import mail
from assistant.exceptions import AssistantInputError
from assistant.models import Command, Notification, group_ref_of
from jobs import services as job_services
from jobs.access import User, Viewer
from jobs.exceptions import ErrorKind, JobError, PermanentError
from jobs.models import Job
from jobs.services import JobSpec
from jobs.tasks import JobContext

NOTIFY = "assistant.notify"
TOPIC = "user"
WEBSOCKET, EMAIL = "websocket", "email"
CHANNELS = (WEBSOCKET, EMAIL)
#: Notification.title's column.
MAX_TITLE = 300
#: How long a job waits for the channel layer to take its WebSocket event.
PUBLISH_TIMEOUT = 5.0


class NotSent(JobError):
    """A channel could not be delivered now (the channel layer is slow or down): retried with backoff."""


def register() -> None:
    """Register the events topic that a user's notifications are published to (called from AppConfig.ready)."""
    from events.topics import register_topic

    register_topic(TOPIC, can_see_own)


def can_see_own(user: Viewer, id: str) -> bool:
    """A user's notification topic is theirs alone: not even an operator reads another's notifications."""
    return str(user.pk) == id


# Queueing ------------------------------------------------------------------------------------------


def queue_notification(
    *, owner: User, title: str, body: str = "", channels: list[str] | None = None, command: Command | None = None, delay: float | None = None,
) -> tuple[Notification, Job]:
    """Write the Notification and enqueue its delivery (after `delay` seconds: a reminder)."""
    title, chosen = _check(owner=owner, title=title, body=body, channels=channels, delay=delay)
    with transaction.atomic():
        note = Notification.objects.create(owner=owner, command=command, title=title, body=body, channels=chosen)
        job, _ = job_services.enqueue(JobSpec(
            type=NOTIFY, payload={"notificationId": note.id}, owner=owner, delay=delay or None,
            group_ref=group_ref_of(command),
        ))
        note.job = job
        note.save(update_fields=["job"])
    return note, job


def _check(*, owner: User, title: str, body: str, channels: list[str] | None, delay: float | None) -> tuple[str, list[str]]:
    """The stripped title and the channels to use; AssistantInputError naming every bad field."""
    errors: dict[str, list[str]] = {}
    title = title.strip() if isinstance(title, str) else ""
    if not title:
        errors["title"] = ["required"]
    elif len(title) > MAX_TITLE or "\x00" in title:
        errors["title"] = [f"at most {MAX_TITLE} characters, no NUL"]
    if not isinstance(body, str) or "\x00" in body or len(body.encode()) > mail.MAX_BODY_BYTES:
        errors["body"] = [f"text of at most {mail.MAX_BODY_BYTES // 1024} KB, no NUL"]
    chosen, problems = _channels(owner, channels)
    if problems:
        errors["channels"] = problems
    if delay is not None and (isinstance(delay, bool) or not isinstance(delay, (int, float)) or not math.isfinite(delay) or delay < 0):
        errors["delay"] = ["a number of seconds, 0 or more"]
    if errors:
        raise AssistantInputError("invalid notification", extra=errors)
    return title, chosen


def _channels(owner: User, channels: list[str] | None) -> tuple[list[str], list[str]]:
    """The default is every channel the owner can receive; an explicit list must name known, reachable ones."""
    has_email = bool(getattr(owner, "email", ""))
    if channels is None:
        return [c for c in CHANNELS if c != EMAIL or has_email], []
    if not isinstance(channels, (list, tuple)) or not channels:
        return [], [f"a non-empty list of {', '.join(CHANNELS)}"]
    unknown = [str(c)[:50] for c in channels if c not in CHANNELS]
    if unknown:
        return [], [f"unknown channel {c!r}; one of {', '.join(CHANNELS)}" for c in unknown]
    if EMAIL in channels and not has_email:
        return [], ["email: the owner has no email address"]
    return [c for c in CHANNELS if c in channels], []


# Delivering ----------------------------------------------------------------------------------------


def deliver(ctx: JobContext, *, notification_id: str) -> dict[str, Any]:
    """Job: deliver one notification to each channel not yet delivered, recording each as it succeeds."""
    note = Notification.objects.select_related("owner").filter(pk=notification_id).first()
    if note is None:
        raise PermanentError(f"notification {notification_id} no longer exists", kind=ErrorKind.VALIDATION)
    done, already = [], [c for c in note.channels if c in note.delivered]
    for channel in note.channels:
        if channel in note.delivered:
            continue
        ctx.check_cancelled()
        sender = _SENDERS.get(channel)
        if sender is None:  # validated when queued: only a row edited by hand gets here
            raise PermanentError(f"unknown channel {channel!r}", kind=ErrorKind.VALIDATION)
        sender(note)
        _record(note, channel)
        done.append(channel)
    return {"notificationId": note.id, "delivered": done, "already": already}


def _to_websocket(note: Notification) -> None:
    """Send the event to the user's topic and know it was taken (else the job retries this channel)."""
    from events import broadcast

    try:
        broadcast.send_now(TOPIC, str(note.owner_id), event(note), timeout=PUBLISH_TIMEOUT)
    except Exception as exc:  # the channel layer (Redis) down or slow: the job retries this channel
        raise NotSent(f"the WebSocket event was not sent: {type(exc).__name__}: {exc}") from exc


def event(note: Notification) -> dict[str, Any]:
    """What a subscribed browser receives."""
    return {
        "type": "notification", "notificationId": note.id, "title": note.title, "body": note.body,
        "createdAt": note.created_at.isoformat(),
    }


def _to_email(note: Notification) -> None:
    """The owner's address, read now: one removed since the notification was made fails this channel for good."""
    address = note.owner.email
    if not address:
        raise PermanentError(f"user {note.owner_id} has no email address", kind=ErrorKind.VALIDATION)
    mail.deliver_message(
        to=[address], subject=note.title, body=note.body or note.title,
        message_id=f"<notification.{note.id}@{mail.sender_domain()}>",
    )


_SENDERS: dict[str, Callable[[Notification], None]] = {WEBSOCKET: _to_websocket, EMAIL: _to_email}


def _record(note: Notification, channel: str) -> None:
    """Add the channel's delivery time under a row lock, so two runs of the job never lose each other's marks."""
    with transaction.atomic():
        row = Notification.objects.select_for_update().only("delivered").get(pk=note.pk)
        row.delivered = {**row.delivered, channel: timezone.now().isoformat()}
        row.save(update_fields=["delivered"])
    note.delivered = row.delivered
