"""The live project page of the console: stage rows with progress bars fed by the events WebSocket, and the
review panel of the stage awaiting review (its output shown and edited as the stage's review kind declares).

Reads go through pipelines.selectors; approve and reject delegate to pipelines.services (audited there).
ProjectAdmin.get_urls wires these views under the admin site's login (staff) and CSRF protection, through
jobs.console.errors.operator_view: a refused review is shown there, as a message or as JSON for fetch().
Reviewing needs the review permission (selectors.can_review); other operators see the panel read-only.
"""
from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from pipelines import definitions, playback, review, selectors, services
from pipelines.models import Project, StageRun

AWAITING_REVIEW = "awaiting review"  # the state label of the stage a person must review


def stage_rows(project: Project) -> list[dict[str, Any]]:
    """One row per applicable stage of the project's pipeline: its latest run's state and progress."""
    latest: dict[str, StageRun] = {}
    for each in selectors.stage_runs(project):
        latest[each.stage] = each  # ordered by id: the last one wins
    rows = []
    for stage in definitions.get(project.pipeline).applicable(premium=project.premium):
        run = latest.get(stage.name)
        job = run.job if run is not None else None
        if job is not None:
            state, progress = str(job.status), int(job.progress or 0)
        elif run is not None:  # its job was removed by retention: what the run recorded
            state, progress = run.status, 100 if run.status == "completed" else 0
        else:
            state, progress = "not started", 0
        if stage.name == project.current_stage and project.status == Project.Status.AWAITING_REVIEW:
            state = AWAITING_REVIEW
        rows.append({"name": stage.name, "queue": stage.queue, "review": stage.needs_review, "state": state, "progress": progress,
                     "job_id": job.pk if job is not None else ""})
    return rows


def snapshot(project: Project) -> dict[str, Any]:
    """What the page shows, as JSON (the page reloads it after (re)subscribing, so no event is missed)."""
    return {"id": project.pk, "status": project.status, "currentStage": project.current_stage, "stages": stage_rows(project)}


def _project(request: HttpRequest, project_id: str) -> Project:
    return selectors.project_get(project_id, user=request.user)


def _can_review(request: HttpRequest) -> bool:
    return selectors.can_review(request.user)


def review_panel(project: Project) -> dict[str, Any] | None:
    """What the review panel shows of the stage awaiting review (by its review kind), or None when none awaits."""
    if project.status != Project.Status.AWAITING_REVIEW:
        return None
    run = selectors.latest_run(project, project.current_stage)
    if run is None:
        return None
    kind = review.kind(definitions.get(project.pipeline).stage(run.stage).review)
    return {"stage": run.stage, "run_id": run.pk, "attempt": run.attempt, "kind": kind.name, "template": kind.template,
            "editable": kind.editable, "playable": kind.playable, **kind.context(output=run.output, input=run.input)}


def _panel_context(request: HttpRequest, project: Project) -> dict[str, Any]:
    return {"project": project, "panel": review_panel(project), "can_review": _can_review(request)}


def live_page(request: HttpRequest, project_id: str, *, site: admin.AdminSite) -> HttpResponse:
    """The project's stages with live progress bars, and Approve / Reject while it awaits review."""
    project = _project(request, project_id)
    context = {
        **site.each_context(request),
        "title": f"Project {project.pk[:8]} live",
        "subtitle": None,
        **_panel_context(request, project),
        "stages": stage_rows(project),
        "opts": Project._meta,
        "app_label": "pipelines",
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/pipelines/project_live.html", context)


def live_state(request: HttpRequest, project_id: str, *, site: admin.AdminSite) -> JsonResponse:
    """The page's data as JSON."""
    return JsonResponse(snapshot(_project(request, project_id)))


def live_review(request: HttpRequest, project_id: str, *, site: admin.AdminSite) -> HttpResponse:
    """The review panel alone (HTML), which the page loads when the project comes to await review."""
    request.current_app = site.name
    return TemplateResponse(request, "admin/pipelines/review_panel.html", _panel_context(request, _project(request, project_id)))


def source_media(request: HttpRequest, project_id: str, *, site: admin.AdminSite) -> HttpResponse:
    """The project's stored source media, with HTTP Range, for the panel's <audio> (pipelines.playback)."""
    answer: HttpResponseBase = playback.media_response(request, _project(request, project_id).source_key)
    return cast(HttpResponse, answer)  # operator_view is typed for HttpResponse; a streaming answer passes through it as is


def _review(request: HttpRequest, project_id: str, site: admin.AdminSite, verb: str, call: Any) -> HttpResponse:
    if not _can_review(request):
        raise PermissionDenied(f"reviewing needs the {selectors.REVIEW_PERMISSION} permission")
    project = _project(request, project_id)
    call(project)
    messages.success(request, f"Project {project.pk[:8]}: stage {project.current_stage} {verb}.")
    return HttpResponseRedirect(reverse("admin:pipelines_project_live", args=[project.pk], current_app=site.name))


@require_POST
def approve(request: HttpRequest, project_id: str, *, site: admin.AdminSite) -> HttpResponse:
    """Approve the stage awaiting review: as it is (services.approve), or with the reviewer's edits posted as JSON in
    `output` (services.approve_edits checks them against the output)."""
    raw = request.POST.get("output", "").strip()
    if not raw:
        return _review(request, project_id, site, "approved", lambda p: services.approve(project_id=p.pk, reviewer=request.user, source="admin"))

    run = request.POST.get("run", "")

    def with_edits(project: Project) -> Project:
        return services.approve_edits(project_id=project.pk, reviewer=request.user, edits=review.parse_edits(raw),
                                      run_id=int(run) if run.isdigit() else None, source="admin")

    return _review(request, project_id, site, "approved with edits", with_edits)


@require_POST
def reject(request: HttpRequest, project_id: str, *, site: admin.AdminSite) -> HttpResponse:
    """Reject the stage awaiting review through services.reject (notes from the form, or a default); it runs again."""
    notes = (request.POST.get("notes") or "").strip() or f"rejected in the console by {request.user.get_username()}"
    return _review(request, project_id, site, "rejected", lambda p: services.reject(project_id=p.pk, reviewer=request.user, notes=notes, source="admin"))
