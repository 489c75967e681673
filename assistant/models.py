"""Seed 5's voice assistant: commands and their replies, and what the commands act on (mail, calendar, tasks, notifications)."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


def new_id() -> str:
    return uuid.uuid4().hex


class Command(models.Model):
    """One voice command: its text (or audio, transcribed first), the intent read from it, the jobs it fanned out to, the reply."""

    class Status(models.TextChoices):
        TRANSCRIBING = "TRANSCRIBING"  # audio: waiting for its transcription job
        UNDERSTANDING = "UNDERSTANDING"  # voice-processing (or ai-processing) reads the intent
        WORKING = "WORKING"  # the intent's jobs run on other queues
        SPEAKING = "SPEAKING"  # the reply is known; synthesis turns it into audio
        REPLIED = "REPLIED"  # the reply's audio is in storage
        FAILED = "FAILED"

    class Intent(models.TextChoices):
        NEXT_MEETING = "next_meeting"
        SEND_EMAIL = "send_email"
        CREATE_TASK = "create_task"
        REMIND = "remind"
        ASK = "ask"

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assistant_commands")
    #: The client's own id for its user (seed 5's `userId`): recorded, never used for access.
    user_ref = models.CharField(max_length=200, blank=True, default="")
    conversation_id = models.CharField(max_length=200, db_index=True)
    text = models.TextField(blank=True, default="")
    #: An audio command: the transcription that gives its text.
    transcription = models.ForeignKey("transcription.Transcription", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNDERSTANDING)
    intent = models.CharField(max_length=32, choices=Intent.choices, blank=True, default="")
    #: What the intent needs: recipient, subject, task title, minutes, question...
    entities = models.JSONField(default=dict, blank=True)
    #: How the intent was read: "rules" or "ai" (the ai-processing queue's classifier).
    understood_by = models.CharField(max_length=8, blank=True, default="")
    reply_text = models.TextField(blank=True, default="")
    #: The spoken reply (WAV) in storage.
    reply_audio_key = models.CharField(max_length=1000, blank=True, default="")
    failed_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    replied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.text[:60] or '(audio)'} [{self.status}]"

    @property
    def group_ref(self) -> str:
        """What every job of this command carries as its group_ref (the conversation page lists them by it)."""
        return f"command:{self.id}"


def group_ref_of(command: Command | None) -> str | None:
    """The group_ref of a job that a command caused (None for one the API asked for directly)."""
    return command.group_ref if command is not None else None


class Email(models.Model):
    """A message sent over SMTP by the email-processing queue (seed 5's sendEmail)."""

    class Status(models.TextChoices):
        QUEUED = "QUEUED"
        SENT = "SENT"
        FAILED = "FAILED"

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assistant_emails")
    command = models.ForeignKey(Command, null=True, blank=True, on_delete=models.SET_NULL, related_name="emails")
    to = models.JSONField(default=list)
    subject = models.CharField(max_length=998)
    body = models.TextField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    #: The Message-ID header the message was sent with (the same on a retry, so receivers can drop a duplicate).
    message_id = models.CharField(max_length=250, blank=True, default="")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class CalendarFeed(models.Model):
    """An iCalendar (ICS) URL of a user's; calendar-sync imports its events."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feeds")
    url = models.URLField(max_length=2000)
    name = models.CharField(max_length=200, blank=True, default="")
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "url"], name="assistant_feed_unique_url")]

    def __str__(self) -> str:
        return self.name or self.url


class CalendarEvent(models.Model):
    """One event (or one occurrence of a recurring event) imported from a feed; a re-import updates it by UID."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_events")
    feed = models.ForeignKey(CalendarFeed, on_delete=models.CASCADE, related_name="events")
    uid = models.CharField(max_length=500)
    #: Which occurrence of a recurring event (its RECURRENCE-ID or start, ISO 8601); "" for a single event.
    occurrence = models.CharField(max_length=64, blank=True, default="")
    summary = models.CharField(max_length=1000, blank=True, default="")
    location = models.CharField(max_length=1000, blank=True, default="")
    description = models.TextField(blank=True, default="")
    starts_at = models.DateTimeField(db_index=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    all_day = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at"]
        constraints = [models.UniqueConstraint(fields=["feed", "uid", "occurrence"], name="assistant_event_unique_uid")]

    def __str__(self) -> str:
        return f"{self.summary} @ {self.starts_at:%Y-%m-%d %H:%M}"


class Task(models.Model):
    """A to-do made by a command or the API; synced to an external provider (seed 5's Airtable) when one is configured."""

    class Sync(models.TextChoices):
        PENDING = "PENDING"
        SYNCED = "SYNCED"
        SKIPPED = "SKIPPED"  # no provider configured
        FAILED = "FAILED"

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assistant_tasks")
    command = models.ForeignKey(Command, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks")
    title = models.CharField(max_length=500)
    due_at = models.DateTimeField(null=True, blank=True)
    done = models.BooleanField(default=False)
    sync_status = models.CharField(max_length=8, choices=Sync.choices, default=Sync.PENDING)
    sync_detail = models.TextField(blank=True, default="")
    provider_id = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title


class Notification(models.Model):
    """A message for a user, fanned out to their channels: the WebSocket (events app) and email."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assistant_notifications")
    command = models.ForeignKey(Command, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications")
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True, default="")
    #: Channels asked for: "websocket", "email".
    channels = models.JSONField(default=list)
    #: When each channel was delivered, by channel name (ISO 8601); a retry skips those already done.
    delivered = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
