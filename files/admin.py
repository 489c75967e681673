"""Files in the console: status, size, type and owner, each linked to its jobs; process and delete as actions."""
from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html

from files import services
from files.models import StoredFile
from jobs import access
from jobs.console.admin import report


@admin.register(StoredFile)
class StoredFileAdmin(admin.ModelAdmin):
    list_display = ["original_name", "status", "human_size", "content_type", "owner", "file_jobs", "created_at"]
    list_filter = ["status", "content_type", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["owner"]
    search_fields = ["=id", "original_name", "sha256", "=memo_id"]
    readonly_fields = [f.name for f in StoredFile._meta.fields] + ["file_jobs", "download"]
    actions = ["analyze", "compress", "transcribe", "delete_files"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # files arrive through the API, where the bytes are checked and stored

    def has_change_permission(self, request: HttpRequest, obj: StoredFile | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: StoredFile | None = None) -> bool:
        return False  # deleting removes the object first: the "Delete through the queue" action

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return access.is_operator(request.user)

    @admin.display(description="size", ordering="size")
    def human_size(self, row: StoredFile) -> str:
        return filesizeformat(row.size)

    @admin.display(description="jobs")
    def file_jobs(self, row: StoredFile) -> str:
        url = reverse("admin:jobs_job_changelist", current_app=self.admin_site.name)
        count = services.jobs_of(row).count()
        if not count:
            return "-"  # stored before answering, or its jobs are past retention
        return format_html('<a href="{}?group_ref={}">{} job(s)</a>', url, row.id, count)

    @admin.display(description="download")
    def download(self, row: StoredFile) -> str:
        return format_html('<a href="{}">{}</a>', services.download_path(row.id), row.original_name)

    def _process(self, request: HttpRequest, queryset: QuerySet[StoredFile], operation: str) -> None:
        done, refused = services.for_each(queryset.values_list("pk", flat=True), services.request_processing, operation=operation, user=request.user)
        report(self, request, f"Queued {operation} for", len(done), refused, noun="file(s)")

    @admin.action(description="Analyze (ffprobe) through the queue", permissions=["operate"])
    def analyze(self, request: HttpRequest, queryset: QuerySet[StoredFile]) -> None:
        self._process(request, queryset, "analyze")

    @admin.action(description="Compress to Opus through the queue", permissions=["operate"])
    def compress(self, request: HttpRequest, queryset: QuerySet[StoredFile]) -> None:
        self._process(request, queryset, "compress")

    @admin.action(description="Transcribe through the queue", permissions=["operate"])
    def transcribe(self, request: HttpRequest, queryset: QuerySet[StoredFile]) -> None:
        self._process(request, queryset, "transcribe")

    @admin.action(description="Delete through the queue (object, then row)", permissions=["operate"])
    def delete_files(self, request: HttpRequest, queryset: QuerySet[StoredFile]) -> None:
        done, refused = services.for_each(queryset.values_list("pk", flat=True), services.request_delete, user=request.user)
        report(self, request, "Queued delete for", len(done), refused, noun="file(s)")
