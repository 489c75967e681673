"""The console's admin site: Django's admin, plus the engine's own pages under its login, URLs and look."""
from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import admin
from django.urls import path

from jobs.console import dashboard, views, workers
from jobs.console.errors import operator_view


class ConsoleSite(admin.AdminSite):
    """`admin.site` of this project (ConsoleAdminConfig): the dashboard on the index, the Queues page at
    /admin/jobs/queues/, each queue's page at /admin/jobs/queues/<queue>/, and their operations."""

    def index(self, request: Any, extra_context: dict[str, Any] | None = None) -> Any:
        """The admin's home with the dashboard above the apps (for staff who may view jobs)."""
        if request.user.is_active and request.user.has_perm("jobs.view_job"):
            extra_context = {**dashboard.index_context(request, site=self), **(extra_context or {})}
        return super().index(request, extra_context)

    def get_urls(self) -> list[Any]:
        page = partial(operator_view, self)
        engine = [
            path("jobs/queues/", page(partial(views.queues_page, site=self)), name="jobs_queues"),
            path("jobs/queues/counts.json", page(partial(views.counts_json, site=self)), name="jobs_queues_counts"),
            path("jobs/dashboard.json", page(partial(dashboard.dashboard_json, site=self)), name="jobs_dashboard"),
            path("jobs/queues/<str:queue>/", page(partial(dashboard.queue_page, site=self)), name="jobs_queue"),
            path("jobs/queues/<str:queue>/data.json", page(partial(dashboard.queue_json, site=self)), name="jobs_queue_data"),
            path("jobs/queues/<str:queue>/override/", page(partial(dashboard.override, site=self)), name="jobs_queue_override"),
            path("jobs/queues/<str:queue>/pause/", page(partial(views.pause, site=self)), name="jobs_queues_pause"),
            path("jobs/queues/<str:queue>/resume/", page(partial(views.resume, site=self)), name="jobs_queues_resume"),
            path("jobs/queues/<str:queue>/clean/", page(partial(views.clean, site=self)), name="jobs_queues_clean"),
            path("jobs/workers/", page(partial(workers.workers_page, site=self)), name="jobs_workers"),
            path("jobs/workers/data.json", page(partial(workers.workers_json, site=self)), name="jobs_workers_data"),
        ]
        return engine + super().get_urls()
