"""Reads of the pipelines app: projects a user may see, their stage runs and their jobs."""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from jobs import access
from jobs.access import Viewer
from jobs.models import PENDING, Job, Status
from pipelines.exceptions import ProjectNotFound
from pipelines.models import Project, StageReview, StageRun


def visible_projects(user: Viewer) -> QuerySet[Project]:
    """The projects `user` may see (jobs.access: their own, or every project for an operator)."""
    return access.visible(Project.objects.all(), user)


def can_see(user: Viewer, project_id: str) -> bool:
    """Whether `user` may see project `project_id`; the events app subscribes through this."""
    return access.can_see(user, Project.objects.all(), str(project_id))


#: The Django permission that lets an operator approve or reject stage outputs in the console (superusers hold it).
REVIEW_PERMISSION = "pipelines.review_project"


def can_review(user: Viewer | None) -> bool:
    """Whether `user` may review stage outputs in the console: an operator holding REVIEW_PERMISSION; other operators read only."""
    return user is not None and access.is_operator(user) and user.has_perm(REVIEW_PERMISSION)


def project_get(project_id: str, *, user: Viewer | None = None) -> Project:
    """A project the user may see (no user: any); ProjectNotFound otherwise, so ids cannot be probed."""
    qs = Project.objects.all() if user is None else visible_projects(user)
    try:
        return qs.select_related("owner").get(pk=str(project_id))
    except Project.DoesNotExist:
        raise ProjectNotFound(f"project {project_id} not found") from None


def stage_runs(project: Project) -> QuerySet[StageRun]:
    """The project's stage runs in the order they started, with their jobs and reviews."""
    return project.stage_runs.select_related("job").prefetch_related("reviews").order_by("id")


def latest_run(project: Project, stage: str | None = None) -> StageRun | None:
    """The project's newest stage run (of `stage` if given)."""
    qs = project.stage_runs.all()
    if stage is not None:
        qs = qs.filter(stage=stage)
    return qs.order_by("-id").first()


def approved_output(run: StageRun) -> Any:
    """What the next stage takes from this run: the output as last approved (maybe edited), else as the job returned it."""
    review = run.reviews.filter(decision=StageReview.Decision.APPROVE).order_by("-id").first()
    return review.approved_output if review is not None else run.output


def project_jobs(project_id: str, *, user: Viewer) -> QuerySet[Job]:
    """Every job of a project the user may see, oldest first."""
    project = project_get(project_id, user=user)
    return Job.objects.filter(group_ref=project.id).order_by("created_at", "id")


def current_job(project_id: str, *, user: Viewer) -> Job:
    """The project's job in progress (waiting, delayed or active); ProjectNotFound when none is."""
    job = project_jobs(project_id, user=user).filter(status__in=[*PENDING, Status.ACTIVE]).order_by("-created_at").first()
    if job is None:
        raise ProjectNotFound(f"project {project_id} has no job in progress")
    return job
