"""Failures stop a project with the reason; retrying the dead job (in place or from the dead letters) resumes it."""
from __future__ import annotations

from pathlib import Path

import pytest

from jobs import services as job_services
from jobs.models import DeadLetter, Job
from pipelines import services
from pipelines.exceptions import PipelineInputError
from pipelines.models import Project

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.media]


def mt_job(project: Project) -> Job:
    return Job.objects.get(group_ref=project.id, queue="mt")


def failed_at_mt(alice, make_project, drain, settings) -> Project:
    """A project whose MT stage failed for want of a provider (STT ran and was approved)."""
    settings.PIPELINES_PROVIDER_URL = ""
    project = make_project(alice)
    drain()
    services.approve(project_id=project.id, reviewer=alice)
    drain()
    return project


def test_mt_without_a_provider_fails_permanently_with_the_message(alice, make_project, drain, settings) -> None:
    project = failed_at_mt(alice, make_project, drain, settings)

    project.refresh_from_db()
    job = mt_job(project)
    assert (project.status, project.current_stage) == ("failed", "MT")
    assert "set PIPELINES_PROVIDER_URL" in project.failure_reason and project.failure_reason.startswith("MT: ")
    assert (job.status, job.attempts_made, job.error_kind) == ("failed", 1, "PERMANENT")  # no retry wasted
    assert job.error_class == "pipelines.provider.ProviderMissing"
    assert DeadLetter.objects.get(job=job).resolved_at is None


def test_a_dead_letter_retry_resumes_the_failed_project(alice, staff, make_project, drain, settings, provider) -> None:
    project = failed_at_mt(alice, make_project, drain, settings)
    old = mt_job(project)

    # Given a provider now, when an operator retries the dead job
    settings.PIPELINES_PROVIDER_URL = provider.url
    new = job_services.retry_dead_letter(old.id, actor=staff)

    # Then the project runs again with a new stage run for the new job, and reaches review
    project.refresh_from_db()
    assert (project.status, project.failure_reason) == ("running", "")
    run = project.stage_runs.get(job=new)
    assert (run.stage, run.attempt) == ("MT", 2)
    assert run.input == project.stage_runs.get(job=old).input
    drain()
    project.refresh_from_db()
    assert (project.status, project.current_stage) == ("awaiting_review", "MT")
    run.refresh_from_db()
    assert run.output["segments"]


def test_retrying_the_failed_job_in_place_resumes_the_project(alice, make_project, drain, settings, provider) -> None:
    project = failed_at_mt(alice, make_project, drain, settings)
    job = mt_job(project)

    settings.PIPELINES_PROVIDER_URL = provider.url
    job_services.retry(job.id, user=alice, actor=alice)
    project.refresh_from_db()
    assert project.status == "running"
    drain()
    project.refresh_from_db()
    assert (project.status, project.current_stage) == ("awaiting_review", "MT")
    assert project.stage_runs.filter(stage="MT").count() == 1
    assert project.stage_runs.get(stage="MT").output["segments"]


def test_an_upload_that_is_not_media_is_refused(alice, make_project, tmp_path: Path) -> None:
    junk = tmp_path / "notes.mp4"
    junk.write_text("this is not a video")
    with pytest.raises(PipelineInputError) as refused:
        make_project(alice, path=junk)
    assert "file" in refused.value.extra
    assert not Project.objects.exists() and not Job.objects.exists()


def test_stored_media_that_is_not_media_fails_stt_as_validation(alice, make_project, drain, media: Path) -> None:
    project = make_project(alice)
    (media / project.source_key).write_text("this is not a video")  # the stored source went bad after upload
    drain()
    project.refresh_from_db()
    job = Job.objects.get(group_ref=project.id)
    assert (project.status, project.current_stage) == ("failed", "STT")
    assert (job.status, job.error_kind, job.attempts_made) == ("failed", "VALIDATION", 1)
    assert project.failure_reason.startswith("STT: ")


def test_a_provider_server_error_is_retried_with_backoff(alice, make_project, drain, provider, burst) -> None:
    project = make_project(alice)
    drain()
    provider.fail_with = 503
    services.approve(project_id=project.id, reviewer=alice)
    burst("mt")
    job = mt_job(project)
    project.refresh_from_db()
    assert (job.status, job.error_kind, job.attempts_made) == ("delayed", "TRANSIENT", 1)
    assert project.status == "running"  # a retry is coming: the project has not failed


def test_a_stale_stage_job_does_not_move_the_project(alice, staff, make_project, drain, provider) -> None:
    project = make_project(alice)
    first = Job.objects.get(group_ref=project.id)
    services.rerun_from(project_id=project.id, stage="STT", actor=staff)  # cancels the waiting first job
    first.refresh_from_db()
    assert first.status == "cancelled"
    project.refresh_from_db()
    assert project.status == "running"  # the cancelled run was superseded, so it does not fail the project
    drain()
    project.refresh_from_db()
    assert (project.status, project.stage_runs.count()) == ("awaiting_review", 2)


def test_a_project_whose_jobs_retention_removed_still_shows_each_stages_outcome(alice, make_project, drain, settings) -> None:
    """Stage runs record their job's status and error from the hook: the project page tells the truth without the jobs."""
    from rest_framework.test import APIClient

    from jobs.models import Job

    project = failed_at_mt(alice, make_project, drain, settings)
    Job.objects.filter(group_ref=project.id).delete()  # as retention does, long after

    client = APIClient()
    client.force_authenticate(alice)
    runs = {r["stage"]: r for r in client.get(f"/api/projects/{project.id}").json()["stageRuns"]}
    assert (runs["STT"]["status"], runs["STT"]["progress"], runs["STT"]["jobId"]) == ("completed", 100, None)
    assert runs["STT"]["output"]["segments"] and runs["STT"]["endedAt"]
    assert runs["MT"]["status"] == "failed" and "set PIPELINES_PROVIDER_URL" in runs["MT"]["error"] and runs["MT"]["endedAt"]
