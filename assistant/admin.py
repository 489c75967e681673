"""The assistant in the console: commands as conversations (each with the jobs it fanned out to and its
spoken reply), emails, calendars and their events, tasks and notifications. Rows are written by the
services and workers; the console reads them and links to each job's page."""
from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from assistant import selectors
from assistant.models import CalendarEvent, CalendarFeed, Command, Email, Notification, Task
from jobs.console.readonly import ReadOnlyAdmin as ReadOnly


@admin.register(Command)
class CommandAdmin(ReadOnly):
    """A conversation page: the list filters by conversation; a command's page shows its jobs and reply."""

    list_display = ("created_at", "conversation", "owner", "said", "intent", "status", "reply_text")
    list_filter = ("status", "intent", "understood_by", ("created_at", admin.DateFieldListFilter))
    list_select_related = ("owner",)
    search_fields = ("=id", "=conversation_id", "text", "reply_text", "owner__username")
    fields = (
        "conversation", "owner", "user_ref", "said", "status", "intent", "entities", "understood_by", "reply_text", "reply_audio",
        "fanned_out", "failed_reason", "created_at", "replied_at",
    )
    readonly_fields = fields

    @admin.display(description="conversation", ordering="conversation_id")
    def conversation(self, row: Command) -> SafeString:
        url = reverse("admin:assistant_command_changelist") + f"?conversation_id={row.conversation_id}"
        return format_html('<a href="{}">{}</a>', url, row.conversation_id)

    @admin.display(description="said")
    def said(self, row: Command) -> SafeString:
        if row.transcription_id:
            url = reverse("admin:transcription_transcription_change", args=[row.transcription_id])
            return format_html('{} <a href="{}">(transcribed audio)</a>', row.text or "…", url)
        return format_html("{}", row.text)

    @admin.display(description="spoken reply")
    def reply_audio(self, row: Command) -> SafeString:
        url = selectors.reply_audio_url(row)
        if not url:
            return format_html("<span>{}</span>", "not spoken yet" if row.status != Command.Status.FAILED else "none")
        return format_html('<audio controls preload="none" src="{}" data-reply-audio></audio>', url)

    @admin.display(description="jobs")
    def fanned_out(self, row: Command) -> SafeString:
        jobs = selectors.command_jobs(row)
        if not jobs:
            return format_html("<span>{}</span>", "none")
        cells = format_html_join(
            "", '<tr data-job-queue="{}"><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}%</td><td>{}</td></tr>',
            (
                (j.queue, reverse("admin:jobs_job_change", args=[j.id]), j.id[:12], j.queue, j.type, j.status, j.progress,
                 j.completed_at.strftime("%H:%M:%S") if j.completed_at else "")
                for j in jobs
            ),
        )
        head = "<tr><th>job</th><th>queue</th><th>type</th><th>status</th><th>progress</th><th>done at</th></tr>"
        return format_html('<table class="command-jobs">{}{}</table>', SafeString(head), cells)


@admin.register(Email)
class EmailAdmin(ReadOnly):
    list_display = ("created_at", "owner", "recipients", "subject", "status", "sent_at")
    list_filter = ("status", ("created_at", admin.DateFieldListFilter))
    list_select_related = ("owner",)
    search_fields = ("=id", "subject", "owner__username", "message_id")

    @admin.display(description="to")
    def recipients(self, row: Email) -> str:
        return ", ".join(row.to)


@admin.register(CalendarFeed)
class CalendarFeedAdmin(ReadOnly):
    list_display = ("url", "name", "owner", "last_synced_at", "last_error")
    list_select_related = ("owner",)
    search_fields = ("url", "name", "owner__username")
    actions = ["sync_now"]

    @admin.action(description="Sync the selected calendars now")
    def sync_now(self, request: HttpRequest, queryset: Any) -> None:
        from assistant import calendar

        for feed in queryset:
            calendar.enqueue_sync(feed)
        self.message_user(request, f"{queryset.count()} calendar sync(s) enqueued on calendar-sync.")


@admin.register(CalendarEvent)
class CalendarEventAdmin(ReadOnly):
    list_display = ("starts_at", "ends_at", "summary", "location", "owner", "feed")
    list_filter = ("feed", "all_day")
    list_select_related = ("owner", "feed")
    search_fields = ("summary", "uid", "location")
    date_hierarchy = "starts_at"


@admin.register(Task)
class TaskAdmin(ReadOnly):
    list_display = ("created_at", "title", "owner", "due_at", "done", "sync_status", "sync_detail")
    list_filter = ("sync_status", "done")
    list_select_related = ("owner",)
    search_fields = ("=id", "title", "owner__username")


@admin.register(Notification)
class NotificationAdmin(ReadOnly):
    list_display = ("created_at", "title", "owner", "channels", "delivered")
    list_select_related = ("owner",)
    search_fields = ("=id", "title", "owner__username")
