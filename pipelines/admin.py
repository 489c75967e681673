"""Projects in the console: a timeline of their stage runs and review actions that delegate to services."""
from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from jobs.console.errors import operator_view
from pipelines import admin_views, selectors, services
from pipelines.models import Project, StageRun

OUTPUT_PREVIEW = 300  # characters of a stage output shown in the timeline


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["short_id", "owner", "status", "current_stage", "premium", "source_language", "target_language", "created_at"]
    list_filter = ["status", "current_stage", "premium", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["owner"]
    search_fields = ["=id", "source_name", "owner__username"]
    readonly_fields = [f.name for f in Project._meta.fields] + ["live_page", "timeline"]
    actions = ["approve_stage", "reject_stage"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created through the API, where the media is stored

    def has_change_permission(self, request: HttpRequest, obj: Project | None = None) -> bool:
        return False  # status moves only through the services (the actions below)

    def has_review_permission(self, request: HttpRequest) -> bool:
        return selectors.can_review(request.user)  # pipelines.review_project; other operators read only

    @admin.display(description="id")
    def short_id(self, project: Project) -> str:
        return project.id[:8]

    def get_urls(self) -> list[Any]:
        site = self.admin_site
        wrap = partial(operator_view, site)
        return [
            path("<str:project_id>/live/", wrap(partial(admin_views.live_page, site=site)), name="pipelines_project_live"),
            path("<str:project_id>/live/state.json", wrap(partial(admin_views.live_state, site=site)), name="pipelines_project_live_state"),
            path("<str:project_id>/live/approve/", wrap(partial(admin_views.approve, site=site)), name="pipelines_project_live_approve"),
            path("<str:project_id>/live/reject/", wrap(partial(admin_views.reject, site=site)), name="pipelines_project_live_reject"),
            path("<str:project_id>/live/review/", wrap(partial(admin_views.live_review, site=site)), name="pipelines_project_live_review"),
            path("<str:project_id>/live/source/", wrap(partial(admin_views.source_media, site=site)), name="pipelines_project_source"),
        ] + super().get_urls()

    @admin.display(description="live")
    def live_page(self, project: Project) -> SafeString:
        url = reverse("admin:pipelines_project_live", args=[project.pk], current_app=self.admin_site.name)
        return format_html('<a href="{}" id="project-live-link">Live stages and review</a>', url)

    @admin.display(description="stages")
    def timeline(self, project: Project) -> SafeString:
        runs = list(selectors.stage_runs(project))
        if not runs:
            return format_html("{}", "-")
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>", ((r.stage, r.attempt, self._job_link(r), self._duration(r), self._reviews(r), self._output(r)) for r in runs))
        return format_html("<table><tr><th>stage</th><th>attempt</th><th>job</th><th>duration</th><th>reviews</th><th>output</th></tr>{}</table>", rows)

    def _job_link(self, run: StageRun) -> SafeString | str:
        if not run.job_id or run.job is None:
            return f"{run.status} (job removed)"
        url = reverse("admin:jobs_job_change", args=[run.job_id], current_app=self.admin_site.name)
        return format_html('<a href="{}">{} {}%</a>', url, run.job.status, run.job.progress)

    @staticmethod
    def _duration(run: StageRun) -> str:
        return f"{(run.ended_at - run.started_at).total_seconds():.1f} s" if run.ended_at else "running"

    @staticmethod
    def _reviews(run: StageRun) -> str:
        return ", ".join(f"{r.decision}{': ' + r.notes if r.notes else ''}" for r in run.reviews.all()) or "-"

    @staticmethod
    def _output(run: StageRun) -> str:
        text = "" if run.output is None else str(run.output)
        return text[:OUTPUT_PREVIEW] + ("…" if len(text) > OUTPUT_PREVIEW else "")

    @admin.action(description="Approve the stage awaiting review", permissions=["review"])
    def approve_stage(self, request: HttpRequest, queryset: QuerySet[Project]) -> None:
        done, refused = services.review_many(queryset.values_list("pk", flat=True), approved=True, reviewer=request.user, source="admin")
        self._report(request, "approved", done, refused)

    @admin.action(description="Reject the stage awaiting review (it runs again)", permissions=["review"])
    def reject_stage(self, request: HttpRequest, queryset: QuerySet[Project]) -> None:
        notes = f"rejected in the console by {request.user.get_username()}"
        done, refused = services.review_many(queryset.values_list("pk", flat=True), approved=False, reviewer=request.user, notes=notes, source="admin")
        self._report(request, "rejected", done, refused)

    def _report(self, request: HttpRequest, verb: str, done: list[str], refused: dict[str, str]) -> None:
        if done:
            self.message_user(request, f"{len(done)} project(s) {verb}.", messages.SUCCESS)
        for message in list(refused.values())[:10]:
            self.message_user(request, message, messages.WARNING)
