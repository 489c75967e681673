"""The assistant's reads: a user's commands (with the jobs they fanned out to), conversations, emails, feeds, tasks."""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from assistant.models import CalendarEvent, CalendarFeed, Command, Email, Notification, Task
from jobs import access
from jobs.access import Viewer
from jobs.exceptions import NotFound
from jobs.models import Job


def _get(queryset: QuerySet[Any], pk: object, *, user: Viewer, what: str) -> Any:
    """A row the user may see, or NotFound (the same answer for "not yours" and "does not exist")."""
    try:
        return access.visible(queryset, user).get(pk=pk)
    except (queryset.model.DoesNotExist, ValueError):
        raise NotFound(f"{what} {pk} not found") from None


def command_get(command_id: str, *, user: Viewer) -> Command:
    return _get(Command.objects.select_related("transcription"), command_id, user=user, what="command")


def conversation(conversation_id: str, *, user: Viewer) -> list[Command]:
    """A conversation's commands, oldest first; NotFound when the user has none in it."""
    rows = list(access.visible(Command.objects.filter(conversation_id=conversation_id), user).order_by("created_at", "id"))
    if not rows:
        raise NotFound(f"conversation {conversation_id} not found")
    return rows


def command_jobs(command: Command) -> list[Job]:
    """Every job of the command, oldest first: its transcription, voice-processing, the fan-out, synthesis."""
    return list(Job.objects.filter(group_ref=command.group_ref).order_by("created_at", "id"))


def reply_audio_url(command: Command) -> str | None:
    """Where a client gets the spoken reply once synthesis stored it: a presigned URL on S3, else this API's path."""
    if not command.reply_audio_key:
        return None
    from django.core.files.storage import default_storage
    from django.urls import reverse

    from transcription import s3, sources

    if s3.is_s3(default_storage):
        return sources.url_for(command.reply_audio_key)
    return reverse("assistant-command-reply", args=[command.id])


def email_get(email_id: str, *, user: Viewer) -> Email:
    return _get(Email.objects.all(), email_id, user=user, what="email")


def feeds(*, user: Viewer) -> QuerySet[CalendarFeed]:
    return access.visible(CalendarFeed.objects.all(), user).order_by("id")


def feed_get(feed_id: int, *, user: Viewer) -> CalendarFeed:
    return _get(CalendarFeed.objects.all(), feed_id, user=user, what="calendar")


def events(*, user: Viewer, since: Any = None) -> QuerySet[CalendarEvent]:
    qs = access.visible(CalendarEvent.objects.select_related("feed"), user)
    return qs.filter(starts_at__gte=since) if since is not None else qs


def tasks(*, user: Viewer) -> QuerySet[Task]:
    return access.visible(Task.objects.all(), user)


def notifications(*, user: Viewer) -> QuerySet[Notification]:
    return access.visible(Notification.objects.all(), user)
