"""The Queues page of the admin: live counts per declared queue, workers, pause/resume and clean.

These views only read (jobs.selectors over jobs.engine.stats; the workers of jobs.console.workers) and delegate writes to
jobs.services; ConsoleSite wires them into the admin (its login and CSRF) through
jobs.console.errors.operator_view, which shows a refused operation to the operator.
"""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from jobs import selectors, services
from jobs.console.errors import require
from jobs.workers import worker_rows
from jobs.engine import broker, conf
from jobs.engine.states import FINAL, Status

#: Count columns of the Queues page, in display order ("paused": waiting jobs of a paused queue, as API.md).
COLUMNS = ["waiting", "active", "delayed", "completed", "failed", "cancelled", "paused", "total"]
OPERATE_PERM = "jobs.change_queuestate"


class CleanForm(forms.Form):
    """What `services.clean` needs from an operator: which final status, how old, how many."""

    status = forms.ChoiceField(choices=[(s, s) for s in sorted(FINAL)], initial=Status.COMPLETED)
    grace = forms.FloatField(min_value=0, initial=3600, label="Older than (s)")
    limit = forms.IntegerField(min_value=1, max_value=100_000, initial=1000)


def queue_rows() -> list[dict[str, Any]]:
    """One row per declared queue from jobs.selectors (folded stats; a paused queue's waiting jobs count as paused)."""
    rows = []
    for name, stat in selectors.queue_stats_all().items():
        counts = {col: stat[col] for col in COLUMNS}
        rows.append({"name": name, "is_paused": stat["isPaused"], "counts": counts, "cells": list(counts.items())})
    return rows


def _snapshot() -> dict[str, Any]:
    """The page's data: queues, running workers (alive or stale), recently stopped ones apart, Redis."""
    workers = worker_rows()
    return {
        "queues": queue_rows(),
        "workers": [w for w in workers if w["state"] != "stopped"],
        "stopped": [w for w in workers if w["state"] == "stopped"],
        "redis": broker.ping(),
        "at": timezone.now().isoformat(),
    }


def queues_page(request: HttpRequest, *, site: admin.AdminSite) -> HttpResponse:
    """The Queues page: counts, paused state and operations per queue, then the workers."""
    snapshot = _snapshot()
    context = {
        **site.each_context(request),
        "title": "Queues",
        "subtitle": None,
        "columns": COLUMNS,
        "queues": snapshot["queues"],
        "workers": snapshot["workers"],
        "stopped": snapshot["stopped"],
        "redis_ok": snapshot["redis"],
        "clean_form": CleanForm(),
        "can_operate": request.user.has_perm(OPERATE_PERM),
        "counts_url": reverse("admin:jobs_queues_counts", current_app=site.name),
        "app_label": "jobs",
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/jobs/queues.html", context)


def counts_json(request: HttpRequest, *, site: admin.AdminSite) -> JsonResponse:
    """The Queues page's live data, polled by jobs/queues.js."""
    snapshot = _snapshot()
    for row in snapshot["queues"]:
        row.pop("cells")
    return JsonResponse(snapshot)


def declared(queue: str) -> conf.QueueConfig:
    """A declared queue, or the 404 page."""
    if queue not in conf.all_queues():
        raise Http404(f"no queue named {queue!r}")
    return conf.get_queue(queue)


def operate(request: HttpRequest, queue: str) -> conf.QueueConfig:
    """A declared queue that the operator may change (pause, clean, override), or 403 / 404."""
    require(request, OPERATE_PERM, "changing queues")
    return declared(queue)


def _back(site: admin.AdminSite) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("admin:jobs_queues", current_app=site.name))


def _set_paused(request: HttpRequest, queue: str, site: admin.AdminSite, *, paused: bool) -> HttpResponse:
    operate(request, queue)
    services.set_paused(queue, paused=paused, actor=request.user, source="admin")
    done = "paused: workers take nothing from it; running jobs finish." if paused else "resumed."
    messages.success(request, f"Queue {queue} {done}")
    return _back(site)


@require_POST
def pause(request: HttpRequest, queue: str, *, site: admin.AdminSite) -> HttpResponse:
    """Pause a queue through services.set_paused (audited)."""
    return _set_paused(request, queue, site, paused=True)


@require_POST
def resume(request: HttpRequest, queue: str, *, site: admin.AdminSite) -> HttpResponse:
    """Resume a queue through services.set_paused (audited)."""
    return _set_paused(request, queue, site, paused=False)


@require_POST
def clean(request: HttpRequest, queue: str, *, site: admin.AdminSite) -> HttpResponse:
    """Remove old final jobs of a queue through services.clean (audited)."""
    operate(request, queue)
    form = CleanForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(f"{name}: {' '.join(str(e) for e in errs)}" for name, errs in form.errors.items())
        messages.error(request, f"Nothing cleaned from {queue}: {errors}")
        return _back(site)
    data = form.cleaned_data
    removed = services.clean(queue, status=data["status"], grace=data["grace"], limit=data["limit"], actor=request.user, source="admin")
    messages.success(request, f"Removed {removed} {data['status']} job(s) from {queue} older than {data['grace']:g}s.")
    return _back(site)
