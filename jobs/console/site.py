"""The console's admin site: Django's admin, plus the engine's own pages under its login, URLs and look."""
from __future__ import annotations

from functools import partial, wraps
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import path

from jobs.console import dashboard, deadletters, views, workers
from jobs.console.errors import operator_view, require

#: Methods that only read: django-rq's pages answer them to any staff account.
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
#: What the engine's own pages (dashboard data, queues, workers, dead-letter groups) need, as the jobs list does.
VIEW_PERM = "jobs.view_job"


def viewing(view: Any) -> Any:
    """An engine page: staff without the jobs app's view permission see it no more than they see the jobs list."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        require(request, VIEW_PERM, "the console's engine pages")
        return view(request, *args, **kwargs)

    return guarded


def carrier_guard(view: Any) -> Any:
    """django-rq's pages let any staff account empty, requeue or delete what Redis carries; here a POST there needs the
    permission that operating queues needs (views.OPERATE_PERM), as the Queues page's own operations do."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in SAFE_METHODS:
            require(request, views.OPERATE_PERM, "changing what Redis carries")
        return view(request, *args, **kwargs)

    return guarded


class ConsoleSite(admin.AdminSite):
    """`admin.site` of this project (ConsoleAdminConfig): the dashboard on the index, the Queues page at
    /admin/jobs/queues/, each queue's page at /admin/jobs/queues/<queue>/, and their operations."""

    def index(self, request: Any, extra_context: dict[str, Any] | None = None) -> Any:
        """The admin's home with the dashboard above the apps (for staff who may view jobs)."""
        if request.user.is_active and request.user.has_perm(VIEW_PERM):
            extra_context = {**dashboard.index_context(request, site=self), **(extra_context or {})}
        return super().index(request, extra_context)

    def admin_view(self, view: Any, cacheable: bool = False) -> Any:
        """The admin's login and CSRF checks; past them, django-rq's own views also pass carrier_guard."""
        if getattr(view, "__module__", "").startswith("django_rq"):
            view = carrier_guard(view)
        return super().admin_view(view, cacheable)

    def get_urls(self) -> list[Any]:
        def page(view: Any) -> Any:
            return operator_view(self, viewing(view))

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
        engine += deadletters.urls(page, site=self)  # dead letters by error: before the admin's jobs/deadletter/<id>/
        return engine + super().get_urls()
