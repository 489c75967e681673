"""What seed 5's queues run: one job type per step of the assistant's work, on the queue the seed gives it."""
from __future__ import annotations

from typing import Any

from assistant import calendar, mail, notify, services, todo
from jobs.tasks import JobContext, task


@task("assistant.voice_command", queue="voice-processing")
def voice_command(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Read a command's intent by rules and fan out the jobs it needs (or hand it to ai-processing)."""
    return services.understand(ctx, command_id=payload["commandId"])


@task("assistant.understand", queue="ai-processing")
def understand_with_ai(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Read the intent of a command the rules did not understand, with the AI processors, and fan out."""
    return services.understand_with_ai(ctx, command_id=payload["commandId"])


@task("assistant.synthesize", queue="synthesis")
def synthesize(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Speak a command's reply with espeak-ng into a WAV file in storage."""
    return services.synthesize(ctx, command_id=payload["commandId"])


@task("assistant.send_email", queue="email-processing")
def send_email(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Send one email over SMTP (Django's email framework)."""
    return mail.send(ctx, email_id=payload["emailId"])


@task("assistant.sync_email", queue="email-processing")
def sync_email(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Sync the inbox (seed 5's every-30-minutes schedule)."""
    return mail.sync_inbox(ctx)


@task("assistant.sync_calendar", queue="calendar-sync")
def sync_calendar(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Import one ICS feed's events, idempotent by UID."""
    return calendar.sync_feed(ctx, feed_id=int(payload["feedId"]))


@task("assistant.sync_calendars", queue="calendar-sync")
def sync_calendars(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Enqueue a sync of every feed (seed 5's every-15-minutes schedule)."""
    return calendar.sync_all(ctx)


@task("assistant.sync_task", queue="task-processing")
def sync_task(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Send one task to the external provider, or record why it was skipped."""
    return todo.sync_task(ctx, task_id=payload["taskId"])


@task("assistant.sync_tasks", queue="task-processing")
def sync_tasks(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Sync every task not yet synced (seed 5's hourly schedule)."""
    return todo.sync_pending(ctx)


@task("assistant.notify", queue="notification")
def deliver_notification(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Deliver one notification to each of its channels (WebSocket, email)."""
    return notify.deliver(ctx, notification_id=payload["notificationId"])
