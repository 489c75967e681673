"""Stage review kinds (pipelines.review) and approving with in-place edits (services.approve_edits).

The kinds are pure and tested without a database; the service tests drive a real project: a hand-made
STT run awaiting review for the refusals, and the real STT worker (Whisper) for the edit that MT translates.
"""
from __future__ import annotations

import copy
from typing import Any

import pytest

from jobs.models import AuditEntry, Job
from pipelines import definitions, review, services
from pipelines.exceptions import ProjectStateError, ReviewEditRefused
from pipelines.models import Project, StageReview, StageRun

TRANSCRIPT = {
    "language": "en", "duration": 6.0, "text": "Hello there. Send the report.",
    "segments": [{"start": 0.0, "end": 2.4, "text": " Hello there."}, {"start": 2.4, "end": 5.84, "text": " Send the report."}],
}


def edits_of(output: dict[str, Any], **texts: str) -> dict[str, Any]:
    """The payload the console posts: every segment with its times, some texts changed (t0="..." for segment 0)."""
    segments = [dict(s) for s in output["segments"]]
    for name, text in texts.items():
        segments[int(name[1:])]["text"] = text
    return {"segments": segments}


# -- the kinds, pure -------------------------------------------------------------------------------


def test_stages_declare_how_their_output_is_reviewed() -> None:
    assert (definitions.STT.review, definitions.MT.review, definitions.TTS.review) == ("segments", "translation", "json")
    with pytest.raises(ValueError, match="unknown review kind"):
        definitions.Stage("X", queue="x", task_type="x", needs_review=True, review="waveform")
    assert review.kind("segments").editable and review.kind("segments").playable and not review.kind("json").editable
    assert review.kind("translation").template == "admin/pipelines/review/translation.html"


def test_segment_edits_replace_texts_and_keep_everything_else() -> None:
    edited = review.kind("segments").edited(TRANSCRIPT, edits_of(TRANSCRIPT, t1=" Send the weekly report."))
    assert [s["text"] for s in edited["segments"]] == [" Hello there.", " Send the weekly report."]
    assert [(s["start"], s["end"]) for s in edited["segments"]] == [(0.0, 2.4), (2.4, 5.84)]
    assert edited["text"] == "Hello there. Send the weekly report."  # the whole text follows its segments
    assert (edited["language"], edited["duration"]) == ("en", 6.0)
    assert TRANSCRIPT["segments"][1]["text"] == " Send the report."  # the output itself is not touched


@pytest.mark.parametrize(("edits", "field"), [
    ({"segments": TRANSCRIPT["segments"][:1]}, "segments"),  # a segment fewer
    ({"segments": [*TRANSCRIPT["segments"], {"start": 5.84, "end": 6.0, "text": "x"}]}, "segments"),  # one more
    ([], "segments"),  # not an object
    ({"segments": "text"}, "segments"),
    ({"segments": [{"start": 0.0, "end": 2.5, "text": "a"}, TRANSCRIPT["segments"][1]]}, "segments.0.end"),  # a time moved
    ({"segments": [{"start": True, "end": 2.4, "text": "a"}, TRANSCRIPT["segments"][1]]}, "segments.0.start"),  # not a number
    ({"segments": [{"start": 0.0, "end": 2.4}, TRANSCRIPT["segments"][1]]}, "segments.0.text"),  # no text
    ({"segments": [{"start": 0.0, "end": 2.4, "text": 7}, TRANSCRIPT["segments"][1]]}, "segments.0.text"),
    ({"segments": [TRANSCRIPT["segments"][0], {"start": 2.4, "end": 5.84, "text": "x" * (review.MAX_SEGMENT_CHARS + 1)}]}, "segments.1.text"),
    ({"segments": [TRANSCRIPT["segments"][0], {"start": 2.4, "end": 5.84, "text": "nul\x00"}]}, "segments.1.text"),
    ({"segments": [TRANSCRIPT["segments"][0], "text"]}, "segments.1"),
])
def test_segment_edits_that_do_not_fit_the_output_are_refused(edits: Any, field: str) -> None:
    with pytest.raises(ReviewEditRefused) as refused:
        review.kind("segments").edited(TRANSCRIPT, edits)
    assert field in refused.value.extra and refused.value.status_code == 400


def test_the_json_kind_takes_no_edits_and_raw_edits_are_bounded() -> None:
    assert '"audioKey": "k.wav"' in review.kind("json").context(output={"audioKey": "k.wav"}, input=None)["json"]
    with pytest.raises(ReviewEditRefused, match="takes no edits"):
        review.kind("json").edited({"audioKey": "k"}, {"audioKey": "other"})
    with pytest.raises(ReviewEditRefused, match="not valid JSON"):
        review.parse_edits("{segments: ")
    with pytest.raises(ReviewEditRefused, match="too large"):
        review.parse_edits(" " * (review.MAX_EDITS_CHARS + 1))
    assert review.parse_edits('{"segments": []}') == {"segments": []}


def test_a_translation_shows_source_and_target_side_by_side() -> None:
    translation = {"language": "fr", "source": "en", "duration": 6.0,
                   "segments": [{**s, "text": s["text"].upper()} for s in TRANSCRIPT["segments"]]}
    shown = review.kind("translation").context(output=translation, input=TRANSCRIPT)
    assert [(r["source"], r["text"], r["span"]) for r in shown["rows"]] == [
        (" Hello there.", " HELLO THERE.", "0:00.0–0:02.4"), (" Send the report.", " SEND THE REPORT.", "0:02.4–0:05.8")]
    assert (shown["source_language"], shown["target_language"]) == ("en", "fr")
    assert shown["rows"][1]["start"] == "2.4" and shown["rows"][1]["end"] == "5.84"  # exact, for the edits posted back


# -- the service -----------------------------------------------------------------------------------


def awaiting_stt(owner: Any, output: dict[str, Any] | None = None) -> Project:
    """A project whose STT run ended with `output` and awaits review, as stage_completed leaves it."""
    project = Project.objects.create(owner=owner, source_key="pipelines/x/talk.mp4", source_name="talk.mp4", source_language="en",
                                     target_language="fr", status=Project.Status.AWAITING_REVIEW, current_stage="STT")
    StageRun.objects.create(project=project, stage="STT", output=copy.deepcopy(output or TRANSCRIPT), status="completed")
    return project


@pytest.mark.django_db
def test_approving_with_edits_hands_the_edited_output_to_the_next_stage(alice: Any, staff: Any) -> None:
    project = awaiting_stt(alice)
    project = services.approve_edits(project_id=project.pk, reviewer=staff, edits=edits_of(TRANSCRIPT, t0=" Hello, there!"))

    assert (project.status, project.current_stage) == ("running", "MT")
    mt = project.stage_runs.get(stage="MT")
    assert [s["text"] for s in mt.input["segments"]] == [" Hello, there!", " Send the report."]
    job = Job.objects.get(pk=mt.job_id)
    assert (job.queue, job.payload) == ("mt", {"projectId": project.pk, "stage": "MT", "stageRunId": mt.pk})  # the job reads its run's input
    assert StageReview.objects.get().approved_output == mt.input
    assert project.stage_runs.get(stage="STT").output == TRANSCRIPT  # what the job returned is kept as it was
    assert AuditEntry.objects.get(action="stage_approve").detail["edited"] is True


@pytest.mark.django_db
def test_unchanged_edits_approve_the_output_as_it_is(alice: Any, staff: Any) -> None:
    project = awaiting_stt(alice)
    services.approve_edits(project_id=project.pk, reviewer=staff, edits=edits_of(TRANSCRIPT))
    assert project.stage_runs.get(stage="MT").input == TRANSCRIPT
    assert AuditEntry.objects.get(action="stage_approve").detail["edited"] is False


@pytest.mark.django_db
def test_refused_edits_lose_nothing(alice: Any, staff: Any) -> None:
    project = awaiting_stt(alice)
    moved = edits_of(TRANSCRIPT, t0="edited")
    moved["segments"][1]["start"] = 3.0
    with pytest.raises(ReviewEditRefused) as refused:
        services.approve_edits(project_id=project.pk, reviewer=staff, edits=moved)
    assert list(refused.value.extra) == ["segments.1.start"]

    project.refresh_from_db()
    assert (project.status, project.current_stage) == ("awaiting_review", "STT")
    assert list(project.stage_runs.values_list("stage", "output")) == [("STT", TRANSCRIPT)]
    assert not StageReview.objects.exists() and not Job.objects.exists() and not AuditEntry.objects.filter(action="stage_approve").exists()

    # The reviewer corrects the payload and approves: the same project goes on.
    services.approve_edits(project_id=project.pk, reviewer=staff, edits=edits_of(TRANSCRIPT, t0="edited"))
    assert Project.objects.get(pk=project.pk).current_stage == "MT"


@pytest.mark.django_db(transaction=True)
def test_an_edited_transcript_is_what_mt_translates(alice: Any, staff: Any, make_project: Any, drain: Any, provider: Any) -> None:
    # Given the real STT stage's transcript awaiting review
    project = make_project(alice)
    drain()
    stt = project.stage_runs.get(stage="STT")
    assert Project.objects.get(pk=project.pk).status == "awaiting_review" and stt.output["segments"]

    # When the reviewer corrects the first segment's text and approves
    services.approve_edits(project_id=project.pk, reviewer=staff, edits=edits_of(stt.output, t0="Please send the weekly figures."))
    drain()

    # Then MT's input, the provider's request and MT's output all carry the correction
    mt = Project.objects.get(pk=project.pk).stage_runs.get(stage="MT")
    assert mt.input["segments"][0]["text"] == "Please send the weekly figures."
    assert provider.requests[0]["segments"][0]["text"] == "Please send the weekly figures."
    assert mt.output["segments"][0]["text"] == "PLEASE SEND THE WEEKLY FIGURES."
    assert [(s["start"], s["end"]) for s in mt.output["segments"]] == [(s["start"], s["end"]) for s in stt.output["segments"]]


@pytest.mark.django_db
def test_edits_of_a_run_no_longer_under_review_are_refused(alice: Any, staff: Any) -> None:
    project = awaiting_stt(alice)
    edited_run = project.stage_runs.get()
    newer = StageRun.objects.create(project=project, stage="STT", attempt=2, output=copy.deepcopy(TRANSCRIPT), status="completed")
    with pytest.raises(ProjectStateError, match="changed"):
        services.approve_edits(project_id=project.pk, reviewer=staff, edits=edits_of(TRANSCRIPT, t0="x"), run_id=edited_run.pk)
    assert not StageReview.objects.exists()
    services.approve_edits(project_id=project.pk, reviewer=staff, edits=edits_of(TRANSCRIPT, t0="x"), run_id=newer.pk)
    assert StageReview.objects.get().stage_run == newer
