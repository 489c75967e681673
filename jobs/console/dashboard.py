"""The console's dashboard (the admin's home) and each queue's own page, with their charts' data.

Reads come from jobs.selectors (live counts), jobs.history (rollups: totals and series) and
jobs.engine.overrides (settings as workers apply them); the one write, a queue's overrides, goes
through jobs.services. The pages draw their charts with uPlot (a static file, no CDN) from the JSON
views, which the pages poll every few seconds.
"""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from jobs import history, selectors, services
from jobs.console.views import COLUMNS, OPERATE_PERM, CleanForm, declared, operate
from jobs.engine import broker, conf, overrides

REFRESH_MS = 5000


def _range(request: HttpRequest) -> str:
    value = request.GET.get("range", "1h")
    return value if value in history.RANGES else "1h"


def overview() -> dict[str, Any]:
    """The dashboard's figures: totals, queues with their oldest waiting job, workers alive, open dead letters."""
    ages = history.oldest_waiting()
    queues = [
        {
            "name": name,
            "is_paused": row["isPaused"],
            "counts": {col: row[col] for col in COLUMNS if col != "total"},
            "oldest_wait": ages.get(name),
        }
        for name, row in selectors.queue_stats_all().items()
    ]
    return {
        "totals": history.totals(),
        "queues": queues,
        "workers_alive": len(selectors.alive_workers()),
        "dead_letters_open": selectors.dead_letter_stats()["total"],
        "redis": broker.ping(),
        "at": timezone.now().isoformat(),
    }


def index_context(request: HttpRequest, *, site: admin.AdminSite) -> dict[str, Any]:
    """What the admin index adds: the dashboard, first drawn from the same data its JSON view serves."""
    return {
        "dashboard": overview(),
        "dashboard_url": reverse("admin:jobs_dashboard", current_app=site.name),
        "refresh_ms": REFRESH_MS,
        "ranges": list(history.RANGES),
    }


def dashboard_json(request: HttpRequest, *, site: admin.AdminSite) -> JsonResponse:
    """The dashboard's live data and its throughput chart over ?range=1h|24h|7d (all queues)."""
    return JsonResponse({**overview(), "series": history.series(_range(request))})


class OverrideForm(forms.Form):
    """A queue's run-time overrides; a blank field clears that override (the declaration applies again)."""

    concurrency = forms.IntegerField(min_value=1, max_value=overrides.MAX_CONCURRENCY, required=False)
    rate_max = forms.IntegerField(min_value=0, required=False, label="Rate limit: jobs", help_text="0: no limit")
    rate_duration = forms.IntegerField(min_value=1, required=False, label="per seconds")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("rate_max") is None) != (data.get("rate_duration") is None):
            raise forms.ValidationError("give both the number of jobs and the seconds of the rate limit, or neither")
        return data


def settings_rows(queue: conf.QueueConfig, effective: overrides.Effective) -> list[tuple[str, str, bool]]:
    """(setting, value as applied, overridden?) for the queue page's settings table."""
    rate = effective.rate_limit
    kept = selectors.queue_settings(queue)
    return [
        ("mode", queue.mode, False),
        ("worker group", queue.group, False),
        ("concurrency", str(effective.concurrency), effective.concurrency_overridden),
        ("rate limit", f"{rate.max} per {rate.duration:g} s" if rate else "none", effective.rate_limit_overridden),
        ("attempts", str(queue.attempts), False),
        ("backoff", f"{queue.backoff.delay:g} s × {queue.backoff.factor:g}", False),
        ("timeout", f"{queue.timeout:g} s", False),
        ("default priority", str(kept["priority"]), False),
        ("keep completed", _kept(kept["removeOnComplete"]), False),
        ("keep failed", _kept(kept["removeOnFail"]), False),
        ("aging", f"a level per {queue.aging:g} s" if queue.aging else "off", False),
        ("per-owner limit", str(queue.per_owner_limit) if queue.per_owner_limit else "off", False),
    ]


def _kept(rule: dict[str, Any] | None) -> str:
    if not rule:
        return "all"
    parts = [f"{rule['count']} newest" if "count" in rule else "", f"{rule['age']:g} s" if "age" in rule else ""]
    return ", ".join(p for p in parts if p)


def queue_page(request: HttpRequest, queue: str, *, site: admin.AdminSite) -> HttpResponse:
    """One queue: settings (overrides marked), live counts, charts over 1 h / 24 h / 7 d, operations."""
    config = declared(queue)
    effective = overrides.effective(config.name, max_age=0)
    rate = effective.rate_limit if effective.rate_limit_overridden else None
    form = OverrideForm(initial={
        "concurrency": effective.concurrency if effective.concurrency_overridden else None,
        "rate_max": rate.max if rate else None,
        "rate_duration": int(rate.duration) if rate else None,
    })
    context = {
        **site.each_context(request),
        "title": f"Queue {config.name}",
        "subtitle": None,
        "queue": config,
        "stats": selectors.queue_stats(config.name),
        "oldest_wait": history.oldest_waiting().get(config.name),
        "totals": history.totals(queue=config.name),
        "settings_rows": settings_rows(config, effective),
        "columns": COLUMNS,
        "override_form": form,
        "clean_form": CleanForm(),
        "can_operate": request.user.has_perm(OPERATE_PERM),
        "data_url": reverse("admin:jobs_queue_data", args=[config.name], current_app=site.name),
        "refresh_ms": REFRESH_MS,
        "ranges": list(history.RANGES),
        "app_label": "jobs",
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/jobs/queue.html", context)


def queue_json(request: HttpRequest, queue: str, *, site: admin.AdminSite) -> JsonResponse:
    """A queue's live counts, totals and charts over ?range=1h|24h|7d."""
    config = declared(queue)
    return JsonResponse({
        "stats": {k: v for k, v in selectors.queue_stats(config.name).items() if k != "settings"},
        "oldest_wait": history.oldest_waiting().get(config.name),
        "totals": history.totals(queue=config.name),
        "series": history.series(_range(request), queue=config.name),
    })


@require_POST
def override(request: HttpRequest, queue: str, *, site: admin.AdminSite) -> HttpResponse:
    """Set or clear a queue's concurrency and rate-limit overrides (services.set_overrides, audited)."""
    config = operate(request, queue)
    back = HttpResponseRedirect(reverse("admin:jobs_queue", args=[config.name], current_app=site.name))
    form = OverrideForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(" ".join(str(e) for e in errs) for errs in form.errors.values())
        messages.error(request, f"Overrides of {config.name} unchanged: {errors}")
        return back
    data = form.cleaned_data
    rate = None if data["rate_max"] is None else {"max": data["rate_max"], "duration": data["rate_duration"]}
    applied = services.set_overrides(config.name, concurrency=data["concurrency"], rate_limit=rate, actor=request.user, source="admin")
    limit = applied.rate_limit
    messages.success(
        request,
        f"Queue {config.name}: concurrency {applied.concurrency}, rate limit "
        f"{f'{limit.max} per {limit.duration:g} s' if limit else 'none'}; running workers apply it within a few seconds.",
    )
    return back
