"""The live project page of the console: stage rows with progress bars fed by the events WebSocket, and review buttons.

Reads go through pipelines.selectors; approve and reject delegate to pipelines.services (audited there).
ProjectAdmin.get_urls wires these views under the admin site's login (staff) and CSRF protection, through
jobs.console.errors.operator_view: a refused review is shown there, as a message or as JSON for fetch().
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from jobs import access
from pipelines import definitions, selectors, services
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
    return access.is_operator(request.user)


def live_page(request: HttpRequest, project_id: str, *, site: admin.AdminSite) -> HttpResponse:
    """The project's stages with live progress bars, and Approve / Reject while it awaits review."""
    project = _project(request, project_id)
    context = {
        **site.each_context(request),
        "title": f"Project {project.pk[:8]} live",
        "subtitle": None,
        "project": project,
        "stages": stage_rows(project),
        "awaiting": project.status == Project.Status.AWAITING_REVIEW,
        "can_review": _can_review(request),
        "opts": Project._meta,
        "app_label": "pipelines",
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/pipelines/project_live.html", context)


def live_state(request: HttpRequest, project_id: str, *, site: admin.AdminSite) -> JsonResponse:
    """The page's data as JSON."""
    return JsonResponse(snapshot(_project(request, project_id)))


def _review(request: HttpRequest, project_id: str, site: admin.AdminSite, verb: str, call: Any) -> HttpResponse:
    if not _can_review(request):
        raise PermissionDenied("reviewing needs a staff account")
    project = _project(request, project_id)
    call(project)
    messages.success(request, f"Project {project.pk[:8]}: stage {project.current_stage} {verb}.")
    return HttpResponseRedirect(reverse("admin:pipelines_project_live", args=[project.pk], current_app=site.name))


@require_POST
def approve(request: HttpRequest, project_id: str, *, site: admin.AdminSite) -> HttpResponse:
    """Approve the stage awaiting review through services.approve."""
    return _review(request, project_id, site, "approved", lambda p: services.approve(project_id=p.pk, reviewer=request.user, source="admin"))


@require_POST
def reject(request: HttpRequest, project_id: str, *, site: admin.AdminSite) -> HttpResponse:
    """Reject the stage awaiting review through services.reject (notes from the form, or a default); it runs again."""
    notes = (request.POST.get("notes") or "").strip() or f"rejected in the console by {request.user.get_username()}"
    return _review(request, project_id, site, "rejected", lambda p: services.reject(project_id=p.pk, reviewer=request.user, notes=notes, source="admin"))
