"""Transcriptions in the console: their job's state and a link to the result."""
from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from transcription import selectors
from transcription.models import Transcription


@admin.register(Transcription)
class TranscriptionAdmin(admin.ModelAdmin):
    list_display = ["short_id", "owner", "model", "format", "tier", "job_state", "progress", "duration_seconds", "result", "created_at"]
    list_filter = ["model", "format", "tier", "status", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["owner", "job"]
    search_fields = ["=id", "source_name", "source"]
    readonly_fields = [f.name for f in Transcription._meta.fields] + ["job_state", "result"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created through the API or `manage.py transcribe`, where the audio is stored

    def has_change_permission(self, request: HttpRequest, obj: Transcription | None = None) -> bool:
        return False

    @admin.display(description="id")
    def short_id(self, row: Transcription) -> str:
        return row.id[:8]

    @admin.display(description="job", ordering="status")
    def job_state(self, row: Transcription) -> str:
        if not row.job:
            return f"{row.status} (job removed)"  # the outcome the row recorded; retention removed the job
        url = reverse("admin:jobs_job_change", args=[row.job_id], current_app=self.admin_site.name)
        return format_html('<a href="{}">{}</a>', url, row.job.status)

    @admin.display(description="progress")
    def progress(self, row: Transcription) -> str:
        return f"{row.job.progress}%" if row.job else "-"

    @admin.display(description="result")
    def result(self, row: Transcription) -> str:
        url = selectors.result_url(row)
        return format_html('<a href="{}">{}</a>', url, row.format) if url else "-"
