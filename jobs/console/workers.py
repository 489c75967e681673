"""The Workers page of the admin (/admin/jobs/workers/): every worker's host, pid, queues, mode, the job it
runs with its progress, jobs done, memory and heartbeats; alive ones first, stale and stopped ones apart.

Read-only: the rows come from jobs.workers (as for the Queues page and `manage.py workers`). ConsoleSite
wires it into the admin (its login and look) through jobs.console.errors.operator_view; jobs/workers.js
polls `workers_json` every 2 s.
"""
from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from jobs.workers import STATES, snapshot


def workers_page(request: HttpRequest, *, site: admin.AdminSite) -> HttpResponse:
    """The Workers page: alive workers, then stale and recently stopped ones apart."""
    data = snapshot()
    context = {
        **site.each_context(request),
        "title": "Workers",
        "subtitle": None,
        "sections": [(state, data[state]) for state in STATES],
        "stall_timeout": settings.JOBS_STALL_TIMEOUT,
        "data_url": reverse("admin:jobs_workers_data", current_app=site.name),
        "app_label": "jobs",
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/jobs/workers.html", context)


def workers_json(request: HttpRequest, *, site: admin.AdminSite) -> JsonResponse:
    """The Workers page's live data, polled by jobs/workers.js."""
    return JsonResponse(snapshot())
