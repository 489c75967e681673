"""A project through every stage with real workers, ffmpeg, espeak-ng, Whisper and a loopback provider."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from jobs.models import AuditEntry, Job
from pipelines import services
from pipelines.models import Project, StageReview
from tests.pipelines.conftest import ffprobe_streams

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.media]


def runs(project: Project) -> list[tuple[str, int, str | None]]:
    return [(r.stage, r.attempt, r.job.status if r.job else None) for r in project.stage_runs.select_related("job").order_by("id")]


@pytest.mark.parametrize("premium", [False, True])
def test_a_project_runs_every_stage_with_both_reviews(premium, alice, make_project, drain, provider, media) -> None:
    # Given a project from a short video with speech
    project = make_project(alice, premium=premium)
    assert project.status == "running" and project.current_stage == "STT"

    # When STT runs, the project waits for review of the transcript
    drain()
    project.refresh_from_db()
    assert (project.status, project.current_stage) == ("awaiting_review", "STT")
    stt = project.stage_runs.get(stage="STT")
    assert "report" in stt.output["text"].lower()
    assert stt.ended_at is not None

    # Approving it runs MT through the provider, which waits for review too
    services.approve(project_id=project.id, reviewer=alice)
    drain()
    project.refresh_from_db()
    assert (project.status, project.current_stage) == ("awaiting_review", "MT")
    mt = project.stage_runs.get(stage="MT")
    assert mt.input == stt.output
    assert [s["text"] for s in mt.output["segments"]] == [s["text"].upper() for s in stt.output["segments"]]
    assert provider.requests[0]["task"] == "translate" and provider.requests[0]["target"] == "fr"

    # Approving MT runs TTS, MUXING (and LIP_SYNC for premium) to completion without stopping
    services.approve(project_id=project.id, reviewer=alice)
    drain()
    project.refresh_from_db()
    assert project.status == "completed" and project.completed_at is not None
    expected = ["STT", "MT", "TTS", "MUXING"] + (["LIP_SYNC"] if premium else [])
    assert runs(project) == [(s, 1, "completed") for s in expected]

    tts = project.stage_runs.get(stage="TTS")
    assert tts.output["audioKey"].endswith(".wav") and tts.output["segments"] >= 1
    assert ffprobe_streams(Path(default_storage.path(tts.output["audioKey"]))) == ["audio"]
    muxed = project.stage_runs.get(stage="MUXING").output
    assert sorted(ffprobe_streams(Path(default_storage.path(muxed["videoKey"])))) == ["audio", "video"]
    if premium:
        lip = project.stage_runs.get(stage="LIP_SYNC")
        assert lip.output["videoKey"] == muxed["videoKey"]
        assert provider.requests[-1]["task"] == "lip_sync" and provider.requests[-1]["video"] == muxed["videoKey"]
    else:
        assert [r["task"] for r in provider.requests] == ["translate"]

    # Every job carries the project as its group, oldest first; both approvals are audited
    jobs = Job.objects.filter(group_ref=project.id).order_by("created_at")
    assert [j.queue for j in jobs] == [{"STT": "stt", "MT": "mt", "TTS": "tts", "MUXING": "muxing", "LIP_SYNC": "lip-sync"}[s] for s in expected]
    assert all(j.payload["projectId"] == project.id for j in jobs)
    assert AuditEntry.objects.filter(action="stage_approve").count() == 2


def test_rejecting_a_review_runs_the_same_stage_again(alice, make_project, drain, provider) -> None:
    project = make_project(alice)
    drain()
    project = services.reject(project_id=project.id, reviewer=alice, notes="names are misspelt")
    assert (project.status, project.current_stage) == ("running", "STT")
    assert runs(project) == [("STT", 1, "completed"), ("STT", 2, "waiting")]
    review = StageReview.objects.get()
    assert (review.decision, review.notes, review.stage_run.attempt) == ("reject", "names are misspelt", 1)

    drain()
    project.refresh_from_db()
    assert (project.status, project.current_stage) == ("awaiting_review", "STT")
    services.approve(project_id=project.id, reviewer=alice)
    assert project.stage_runs.get(stage="MT").input == project.stage_runs.get(stage="STT", attempt=2).output


def test_an_edited_approval_is_the_next_stages_input(alice, make_project, drain, provider) -> None:
    project = make_project(alice)
    drain()
    edited = {"language": "en", "duration": 4.0, "segments": [{"start": 0.5, "end": 2.0, "text": "corrected words"}]}
    services.approve(project_id=project.id, reviewer=alice, edited_output=edited)
    assert StageReview.objects.get().approved_output == edited
    mt = Project.objects.get(pk=project.id).stage_runs.get(stage="MT")
    assert mt.input == edited

    drain()
    mt.refresh_from_db()
    assert provider.requests[0]["segments"] == [{"start": 0.5, "end": 2.0, "text": "corrected words"}]
    assert mt.output["segments"] == [{"start": 0.5, "end": 2.0, "text": "CORRECTED WORDS"}]
    assert mt.output["duration"] == 4.0


def test_an_operator_reruns_a_completed_project_from_a_stage(alice, staff, make_project, drain, provider) -> None:
    project = make_project(alice)
    drain()
    services.approve(project_id=project.id, reviewer=alice)
    drain()
    services.approve(project_id=project.id, reviewer=alice)
    drain()
    project = services.rerun_from(project_id=project.id, stage="TTS", actor=staff, user=staff)
    assert (project.status, project.current_stage) == ("running", "TTS")
    drain()
    project.refresh_from_db()
    assert project.status == "completed"
    assert [(s, a) for s, a, _ in runs(project)][-2:] == [("TTS", 2), ("MUXING", 2)]
    assert project.stage_runs.get(stage="TTS", attempt=2).input == project.stage_runs.get(stage="MT").output
    assert AuditEntry.objects.filter(action="pipeline_rerun", actor=staff).exists()
