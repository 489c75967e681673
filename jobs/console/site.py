"""The console's admin site: Django's admin, plus the engine's own pages under its login, URLs and look."""
from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import admin
from django.urls import path

from jobs.console import views
from jobs.console.errors import operator_view


class ConsoleSite(admin.AdminSite):
    """`admin.site` of this project (ConsoleAdminConfig): the Queues page at /admin/jobs/queues/ and its operations."""

    def get_urls(self) -> list[Any]:
        page = partial(operator_view, self)
        engine = [
            path("jobs/queues/", page(partial(views.queues_page, site=self)), name="jobs_queues"),
            path("jobs/queues/counts.json", page(partial(views.counts_json, site=self)), name="jobs_queues_counts"),
            path("jobs/queues/<str:queue>/pause/", page(partial(views.pause, site=self)), name="jobs_queues_pause"),
            path("jobs/queues/<str:queue>/resume/", page(partial(views.resume, site=self)), name="jobs_queues_resume"),
            path("jobs/queues/<str:queue>/clean/", page(partial(views.clean, site=self)), name="jobs_queues_clean"),
        ]
        return engine + super().get_urls()
