"""Pipeline writes: create a project, advance it when a stage's job ends (a jobs hook), review, re-run.

Every status change of a Project goes through `_move`, which checks the move and updates the row
conditionally. Stage jobs are enqueued with `group_ref=project.id`; the engine hands them to RQ and
fires the hooks only after the transaction commits.
"""
from __future__ import annotations

import logging
from typing import IO, Any, Iterable

from django.db import transaction
from django.utils import timezone

from events import broadcast
from jobs import services as job_services
from jobs.access import User, Viewer, account
from jobs.exceptions import InvalidTransition, JobsError
from jobs.models import PENDING, Job, Status
from jobs.services import JobChange, JobSpec
from pipelines import definitions, review, selectors
from pipelines.exceptions import PipelineInputError, ProjectStateError
from pipelines.models import Project, StageReview, StageRun
from transcription import languages, sources

log = logging.getLogger(__name__)
P = Project.Status

#: target status -> the statuses a project may reach it from.
ALLOWED: dict[str, frozenset[str]] = {
    P.RUNNING: frozenset({P.CREATED, P.RUNNING, P.AWAITING_REVIEW, P.FAILED, P.COMPLETED}),
    P.AWAITING_REVIEW: frozenset({P.RUNNING}),
    P.FAILED: frozenset({P.CREATED, P.RUNNING}),
    P.COMPLETED: frozenset({P.RUNNING}),
}


def _move(project: Project, target: str, **fields: Any) -> Project:
    """The one place a project's status changes: conditional on its current status being allowed to move."""
    allowed = ALLOWED[target]
    if not Project.objects.filter(pk=project.pk, status__in=list(allowed)).update(status=target, updated_at=timezone.now(), **fields):
        current = Project.objects.filter(pk=project.pk).values_list("status", flat=True).first() or ""
        raise ProjectStateError(f"project {project.pk} cannot move from {current} to {target}", project_id=project.pk, status=current)
    project.refresh_from_db()
    _announce(project, target)
    return project


def _announce(project: Project, target: str) -> None:
    """After commit, tell the project's WebSocket subscribers what seed 2's events say of this move."""
    if target == P.AWAITING_REVIEW:
        event = {"type": "stage_ready_for_review", "projectId": project.pk, "stage": project.current_stage,
                 "message": f"{project.current_stage} is ready for review"}
    elif target == P.COMPLETED:
        event = {"type": "project_completed", "projectId": project.pk, "message": "the project is complete"}
    else:
        return
    transaction.on_commit(lambda: broadcast.publish("project", project.pk, event))


def _locked(project_id: str, *, user: Viewer | None = None) -> Project:
    """The project row, visible to `user` and locked for this transaction."""
    selectors.project_get(project_id, user=user)  # 404 before locking anything
    return Project.objects.select_for_update().get(pk=str(project_id))


def _start(project: Project, stage: definitions.Stage, *, input: Any) -> StageRun:
    """Write a stage run and enqueue its job (handed to RQ after commit); the project is running that stage."""
    attempt = project.stage_runs.filter(stage=stage.name).count() + 1
    run = StageRun.objects.create(project=project, stage=stage.name, attempt=attempt, input=input)
    job, _ = job_services.enqueue(JobSpec(
        type=stage.task_type, queue=stage.queue, owner=project.owner, group_ref=project.id,
        payload={"projectId": project.id, "stage": stage.name, "stageRunId": run.id},
    ))
    StageRun.objects.filter(pk=run.pk).update(job=job)
    run.job = job
    _move(project, P.RUNNING, current_stage=stage.name, failure_reason="", completed_at=None)
    return run


def _language(field: str, value: str) -> str:
    code = (value or "").strip()
    if not languages.is_code(code):
        raise PipelineInputError(f"invalid {field}", extra={field: [languages.MESSAGE]})
    return code


def create_project(
    *, owner: User, upload: IO[bytes], upload_name: str, source_language: str, target_language: str,
    premium: bool = False, pipeline: str = "dubbing",
) -> Project:
    """Store the source media, write the project and enqueue its first stage."""
    definition = definitions.get(pipeline)
    languages = dict(source_language=_language("sourceLanguage", source_language), target_language=_language("targetLanguage", target_language))
    with sources.request_errors(field="file", invalid=PipelineInputError):
        sources.require_audio(upload)  # dubbing needs speech: a video without sound is refused too
        key = sources.save_upload(upload, name=upload_name or "media", prefix="pipelines/")
    with transaction.atomic():
        project = Project.objects.create(owner=owner, pipeline=definition.name, source_key=key, source_name=upload_name[:255], premium=premium, **languages)
        _start(project, definition.first(premium=premium), input=None)
    return project


def _review_run(project: Project) -> tuple[definitions.Stage, StageRun]:
    if project.status != P.AWAITING_REVIEW:
        raise ProjectStateError(f"project {project.pk} is {project.status}, not awaiting review", project_id=project.pk, status=project.status)
    run = selectors.latest_run(project, project.current_stage)
    assert run is not None  # awaiting_review is reached only from a completed run
    return definitions.get(project.pipeline).stage(run.stage), run


def approve(*, project_id: str, reviewer: Viewer, edited_output: Any = None, user: Viewer | None = None, source: str = "api") -> Project:
    """Approve the stage awaiting review (optionally with an edited output) and enqueue the next stage."""
    if edited_output is not None and not isinstance(edited_output, dict):
        raise PipelineInputError("invalid output", extra={"output": ["must be a JSON object like the stage's output"]})
    with transaction.atomic():
        project = _locked(project_id, user=user)
        stage, run = _review_run(project)
        approved = edited_output if edited_output is not None else run.output
        StageReview.objects.create(stage_run=run, reviewer=account(reviewer), decision=StageReview.Decision.APPROVE, approved_output=approved)
        _advance(project, stage, output=approved)
        job_services.record_action(
            actor=reviewer, action="stage_approve", queue=stage.queue, job_ids=[run.job_id] if run.job_id else [],
            detail={"projectId": project.pk, "stage": stage.name, "edited": edited_output is not None}, source=source,
        )
    project.refresh_from_db()
    return project


def approve_edits(
    *, project_id: str, reviewer: Viewer, edits: Any, run_id: int | None = None, user: Viewer | None = None, source: str = "admin",
) -> Project:
    """Approve the stage awaiting review with a reviewer's in-place edits, checked against its output by the stage's
    review kind (pipelines.review); the edited output becomes the next stage's input. Refused edits write nothing.

    `run_id`: the stage run the reviewer edited; a 409 if another run awaits review by now (rejected and run again)."""
    with transaction.atomic():
        project = _locked(project_id, user=user)
        stage, run = _review_run(project)
        if run_id is not None and run.pk != run_id:
            raise ProjectStateError(f"the output under review changed ({run.stage} attempt {run.attempt}); review it again",
                                    project_id=project.pk, status=project.status)
        edited = review.kind(stage.review).edited(run.output, edits)
        # Unchanged text is an approval as it is: the audit then says "edited": false.
        return approve(project_id=project.pk, reviewer=reviewer, edited_output=None if edited == run.output else edited, user=user, source=source)


def reject(*, project_id: str, reviewer: Viewer, notes: str, user: Viewer | None = None, source: str = "api") -> Project:
    """Reject the stage awaiting review with notes and run that stage again (a new stage run)."""
    if not (notes or "").strip():
        raise PipelineInputError("notes are required to reject", extra={"notes": ["say what is wrong"]})
    with transaction.atomic():
        project = _locked(project_id, user=user)
        stage, run = _review_run(project)
        StageReview.objects.create(stage_run=run, reviewer=account(reviewer), decision=StageReview.Decision.REJECT, notes=notes.strip())
        _start(project, stage, input=run.input)
        job_services.record_action(
            actor=reviewer, action="stage_reject", queue=stage.queue, job_ids=[run.job_id] if run.job_id else [],
            detail={"projectId": project.pk, "stage": stage.name, "notes": notes.strip()[:500]}, source=source,
        )
    project.refresh_from_db()
    return project


def review_many(
    project_ids: Iterable[str], *, approved: bool, reviewer: Viewer, notes: str = "", source: str = "admin",
) -> tuple[list[str], dict[str, str]]:
    """Approve, or reject with `notes`, the stage that each project awaits; each project is its own transaction.

    Returns (reviewed project ids, {refused id: why}): a project that awaits no review is refused, not an error.
    """
    done: list[str] = []
    refused: dict[str, str] = {}
    for project_id in project_ids:
        try:
            if approved:
                approve(project_id=project_id, reviewer=reviewer, source=source)
            else:
                reject(project_id=project_id, reviewer=reviewer, notes=notes, source=source)
        except JobsError as exc:  # the project's own state, or its next stage refused by the engine
            refused[project_id] = exc.message
        else:
            done.append(project_id)
    return done, refused


def rerun_from(*, project_id: str, stage: str, actor: Viewer | None, user: Viewer | None = None, source: str = "api") -> Project:
    """Operators: run the project again from `stage`, with the previous stage's approved output as input."""
    with transaction.atomic():
        project = _locked(project_id, user=user)
        definition = definitions.get(project.pipeline)
        chosen = definition.stage(stage)
        if not chosen.applies(premium=project.premium):
            raise PipelineInputError(f"stage {chosen.name} does not apply to this project", extra={"stage": ["premium projects only"]})
        previous = definition.before(chosen.name, premium=project.premium)
        prev_run = selectors.latest_run(project, previous.name) if previous else None
        if previous is not None and (prev_run is None or prev_run.output is None):
            raise ProjectStateError(f"stage {previous.name} has no output to start {chosen.name} from", project_id=project.pk, status=project.status)
        _cancel_pending(project, actor=actor, source=source)
        run = _start(project, chosen, input=selectors.approved_output(prev_run) if prev_run else None)
        job_services.record_action(actor=actor, action="pipeline_rerun", queue=chosen.queue, job_ids=[run.job_id] if run.job_id else [], detail={"projectId": project.pk, "stage": chosen.name}, source=source)
    project.refresh_from_db()
    return project


def _cancel_pending(project: Project, *, actor: Viewer | None, source: str) -> None:
    """Stop the project's unfinished jobs; their runs are superseded, so the hook ignores how they end."""
    for job_id in Job.objects.filter(group_ref=project.pk, status__in=[*PENDING, Status.ACTIVE]).values_list("id", flat=True):
        try:
            job_services.cancel(job_id, actor=actor, source=source, record=False)
        except InvalidTransition:
            pass  # it ended meanwhile


def _advance(project: Project, stage: definitions.Stage, *, output: Any) -> None:
    """After `stage`'s output is accepted: enqueue the next applicable stage, or complete the project."""
    following = definitions.get(project.pipeline).after(stage.name, premium=project.premium)
    if following is not None:
        _start(project, following, input=output)
    else:
        _move(project, P.COMPLETED, completed_at=timezone.now())


# -- the jobs hook ------------------------------------------------------------------------------


def _stage_types() -> frozenset[str]:
    return frozenset(s.task_type for p in definitions.all_pipelines().values() for s in p.stages)


def on_job_change(change: JobChange) -> None:
    """The engine's hook, called after each job change commits (at least once, in order per job): record the
    change on the stage run, then advance, fail or resume the project. Each step is keyed by the stage run."""
    if not change.group_ref or change.type not in _stage_types() or change.event == "progress":
        return  # a progress report moves no stage: nothing to record or advance
    error = str(change.data.get("error") or "") if change.event in ("failed", "retrying", "cancelled") else ""
    StageRun.objects.filter(job_id=change.job_id).update(status=change.status, error=error[:5000])
    if change.event == "completed":
        stage_completed(job_id=change.job_id, output=change.data.get("result"))
    elif change.event in ("failed", "cancelled"):
        stage_failed(job_id=change.job_id, reason=error or change.event)
    elif change.event in ("created", "retried"):
        run_for_job(job_id=change.job_id)


def _current(project: Project, run: StageRun) -> bool:
    """Whether `run` is the project's newest run: an older one (rejected, re-run) no longer moves the project."""
    latest = selectors.latest_run(project)
    return latest is not None and latest.pk == run.pk


def stage_completed(*, job_id: str, output: Any) -> None:
    """Record a stage job's result on its run; then wait for review, enqueue the next stage, or complete.

    Keyed by the stage run: a completion already recorded on it (a change delivered twice) does nothing.
    """
    with transaction.atomic():
        run = StageRun.objects.filter(job_id=job_id).first()
        if run is None:
            return
        project = _locked(run.project_id)
        if not StageRun.objects.filter(pk=run.pk, ended_at__isnull=True).update(output=output, ended_at=timezone.now()):
            return
        if not _current(project, run) or project.status != P.RUNNING:
            return
        stage = definitions.get(project.pipeline).stage(run.stage)
        if stage.needs_review:
            _move(project, P.AWAITING_REVIEW)
        else:
            _advance(project, stage, output=output)


def stage_failed(*, job_id: str, reason: str) -> None:
    """A stage job failed for good (or was cancelled): the project fails with the reason."""
    with transaction.atomic():
        run = StageRun.objects.filter(job_id=job_id).first()
        if run is None:
            return
        project = _locked(run.project_id)
        if not StageRun.objects.filter(pk=run.pk, ended_at__isnull=True).update(ended_at=timezone.now()):
            return  # recorded already: a change delivered twice
        if _current(project, run) and project.status == P.RUNNING:
            _move(project, P.FAILED, failure_reason=f"{run.stage}: {reason}"[:5000])


def run_for_job(*, job_id: str) -> StageRun | None:
    """The stage run of a stage job; a job retried in place or from the dead letters resumes its failed project.

    Called by the hook and by the task itself (a worker may take a dead-letter retry before the hook runs).
    """
    with transaction.atomic():
        job = Job.objects.filter(pk=job_id).first()
        run = StageRun.objects.filter(job_id=job_id).first()
        if job is None or (run is None and job.retry_of_id is None):
            return run
        source = run or StageRun.objects.filter(job_id=job.retry_of_id).first()
        if source is None:
            return None
        project = _locked(source.project_id)
        if run is None:
            run = StageRun.objects.filter(job_id=job_id).first()  # the other caller may have adopted it meanwhile
        if run is None:
            if not _current(project, source):
                return None
            run = StageRun.objects.create(project=project, stage=source.stage, attempt=source.attempt + 1, input=source.input, job=job)
        elif job.status in (*PENDING, Status.ACTIVE):
            StageRun.objects.filter(pk=run.pk).update(ended_at=None, output=None)
        if project.status == P.FAILED and _current(project, run):
            _move(project, P.RUNNING, current_stage=run.stage, failure_reason="")
    return run
