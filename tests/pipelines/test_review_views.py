"""The console's review panel, who may review, and the source media the panel plays (HTTP Range)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import AsyncClient, Client
from django.urls import reverse

from transcription import ranged
from pipelines.models import Project, StageReview, StageRun
from tests.pipelines.test_review import TRANSCRIPT, awaiting_stt, edits_of

pytestmark = pytest.mark.django_db

MEDIA = bytes(range(256)) * 40  # 10,240 bytes standing in for the source video


def url(name: str, project: Project) -> str:
    return reverse(f"admin:pipelines_project_{name}", args=[project.pk])


def console(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def reviewer(staff: Any) -> Any:
    """An operator holding the review permission (not a superuser)."""
    staff.user_permissions.add(Permission.objects.get(codename="review_project", content_type__app_label="pipelines"))
    return staff


@pytest.fixture
def reader(django_user_model: Any) -> Any:
    """An operator without the review permission."""
    return django_user_model.objects.create_user("reader", is_staff=True)


@pytest.fixture
def stored(media: Path, alice: Any) -> Project:
    """A project awaiting STT review whose source media is in (temporary) storage."""
    project = awaiting_stt(alice)
    Project.objects.filter(pk=project.pk).update(source_key=default_storage.save("pipelines/abc/talk.mp4", ContentFile(MEDIA)))
    project.refresh_from_db()
    return project


# -- the panel and who may review ------------------------------------------------------------------


def test_a_reviewer_sees_the_segments_to_play_and_edit(reviewer: Any, stored: Project) -> None:
    html = console(reviewer).get(url("live", stored)).content.decode()
    assert 'class="jc-review-panel" data-stage="STT"' in html and 'data-kind="segments"' in html
    assert f'<audio id="jc-source-audio" controls preload="metadata" src="{url("source", stored)}">' in html
    assert 'data-start="2.4" data-end="5.84"' in html and "0:02.4–0:05.8" in html
    assert '<textarea data-field="text" rows="2" readonly aria-label="text of segment 2"> Send the report.</textarea>' in html
    assert 'data-op="approve"' in html and 'data-op="reject"' in html


def test_a_reader_sees_the_output_but_no_controls_and_the_server_refuses_the_review(reader: Any, stored: Project) -> None:
    client = console(reader)
    html = client.get(url("live", stored)).content.decode()
    assert '<span data-field="text"> Send the report.</span>' in html and "jc-source-audio" in html
    assert "<textarea data-field" not in html and 'data-op="approve"' not in html and 'id="jc-review-readonly"' in html
    assert 'data-op="approve"' not in client.get(url("live_review", stored)).content.decode()

    edits = json.dumps(edits_of(TRANSCRIPT, t0="mine"))
    assert client.post(url("live_approve", stored), {"output": edits}, HTTP_ACCEPT="application/json").status_code == 403
    assert client.post(url("live_approve", stored)).status_code == 403
    assert client.post(url("live_reject", stored), {"notes": "no"}).status_code == 403
    stored.refresh_from_db()
    assert (stored.status, stored.current_stage, StageReview.objects.count()) == ("awaiting_review", "STT", 0)
    # Neither may a reader use the change list's bulk actions.
    client.post(reverse("admin:pipelines_project_changelist"), {"action": "approve_stage", "_selected_action": [stored.pk]})
    assert not StageReview.objects.exists()


def test_approve_with_edits_from_the_page_and_a_clear_refusal(reviewer: Any, stored: Project) -> None:
    client = console(reviewer)
    moved = edits_of(TRANSCRIPT, t1="edited")
    moved["segments"][1]["end"] = 9.0
    answer = client.post(url("live_approve", stored), {"output": json.dumps(moved)}, HTTP_ACCEPT="application/json")
    assert answer.status_code == 400
    assert answer.json() == {"message": "1 segment field(s) refused", "extra": {"segments.1.end": ["must stay 5.84: times are not edited"]}}
    answer = client.post(url("live_approve", stored), {"output": "{not json"}, HTTP_ACCEPT="application/json")
    assert answer.status_code == 400 and "output" in answer.json()["extra"]
    assert not StageReview.objects.exists() and Project.objects.get(pk=stored.pk).status == "awaiting_review"

    good = json.dumps(edits_of(TRANSCRIPT, t1=" Send the weekly report."))
    stale = client.post(url("live_approve", stored), {"output": good, "run": "999999"}, HTTP_ACCEPT="application/json")
    assert stale.status_code == 409 and "review it again" in stale.json()["message"]  # not the run the reviewer saw
    run = StageRun.objects.get(project=stored).pk
    answer = client.post(url("live_approve", stored), {"output": good, "run": str(run)}, follow=True)
    assert "stage STT approved with edits" in answer.content.decode()
    mt = StageRun.objects.get(project=stored, stage="MT")
    assert mt.input["segments"][1]["text"] == " Send the weekly report."


def test_reject_takes_the_notes_from_the_textarea(reviewer: Any, stored: Project) -> None:
    console(reviewer).post(url("live_reject", stored), {"notes": "  the names are wrong  "}, HTTP_ACCEPT="application/json")
    assert StageReview.objects.get().notes == "the names are wrong"
    assert list(StageRun.objects.filter(project=stored).values_list("stage", "attempt")) == [("STT", 1), ("STT", 2)]


def test_the_panel_follows_the_stage_and_its_review_kind(reviewer: Any, stored: Project) -> None:
    client = console(reviewer)
    translation = {"language": "fr", "source": "en", "duration": 6.0, "segments": [{**s, "text": s["text"].upper()} for s in TRANSCRIPT["segments"]]}
    StageRun.objects.create(project=stored, stage="MT", input=TRANSCRIPT, output=translation, status="completed")
    Project.objects.filter(pk=stored.pk).update(current_stage="MT")
    html = client.get(url("live_review", stored)).content.decode()
    assert 'data-stage="MT"' in html and 'data-kind="translation"' in html and "Source (en)" in html and "Target (fr)" in html
    assert '<td class="jc-source" data-field="source"> Send the report.</td>' in html and "> SEND THE REPORT.</textarea>" in html

    StageRun.objects.create(project=stored, stage="TTS", output={"audioKey": "pipelines/abc/tts.wav"}, status="completed")
    Project.objects.filter(pk=stored.pk).update(current_stage="TTS")  # a stage without a kind of its own: JSON, read-only
    html = client.get(url("live_review", stored)).content.decode()
    assert 'data-kind="json"' in html and "&quot;audioKey&quot;: &quot;pipelines/abc/tts.wav&quot;" in html and "<textarea data-field" not in html

    Project.objects.filter(pk=stored.pk).update(status="running")
    assert client.get(url("live_review", stored)).content.decode().strip() == ""


# -- the source media, with Range ------------------------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [
    ("", None), ("bytes=0-", (0, 99)), ("bytes=10-19", (10, 19)), ("bytes=90-500", (90, 99)), ("bytes=-5", (95, 99)),
    ("bytes=-500", (0, 99)), ("bytes=0-1,5-6", None), ("items=0-1", None), ("bytes=20-10", None),
])
def test_byte_ranges(header: str, expected: tuple[int, int] | None) -> None:
    assert ranged.byte_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(ranged.Unsatisfiable):
        ranged.byte_range(header, 100)


def test_the_source_is_served_by_ranges_so_a_browser_can_seek(reviewer: Any, stored: Project) -> None:
    client, size = console(reviewer), len(MEDIA)
    whole = client.get(url("source", stored))
    assert (whole.status_code, whole["Content-Type"], whole["Accept-Ranges"], whole["Content-Length"]) == (200, "video/mp4", "bytes", str(size))
    assert b"".join(whole.streaming_content) == MEDIA

    part = client.get(url("source", stored), HTTP_RANGE="bytes=1000-1999")
    assert (part.status_code, part["Content-Range"], part["Content-Length"]) == (206, f"bytes 1000-1999/{size}", "1000")
    assert b"".join(part.streaming_content) == MEDIA[1000:2000]
    open_ended = client.get(url("source", stored), HTTP_RANGE="bytes=10000-")
    assert (open_ended["Content-Range"], b"".join(open_ended.streaming_content)) == (f"bytes 10000-{size - 1}/{size}", MEDIA[10000:])
    suffix = client.get(url("source", stored), HTTP_RANGE="bytes=-16")
    assert (suffix.status_code, suffix["Content-Range"], b"".join(suffix.streaming_content)) == (206, f"bytes {size - 16}-{size - 1}/{size}", MEDIA[-16:])
    outside = client.get(url("source", stored), HTTP_RANGE=f"bytes={size}-")
    assert (outside.status_code, outside["Content-Range"]) == (416, f"bytes */{size}")


def test_the_source_is_streamed_in_chunks_under_asgi_too(reviewer: Any, stored: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranged, "CHUNK", 1000)

    async def fetch() -> tuple[int, str, list[bytes]]:
        client = AsyncClient()
        await client.aforce_login(reviewer)
        answer = await client.get(url("source", stored), headers={"Range": "bytes=500-3499"})
        return answer.status_code, answer["Content-Range"], [chunk async for chunk in answer.streaming_content]

    status, content_range, chunks = async_to_sync(fetch)()
    assert (status, content_range) == (206, f"bytes 500-3499/{len(MEDIA)}")
    assert [len(c) for c in chunks] == [1000, 1000, 1000] and b"".join(chunks) == MEDIA[500:3500]


def test_the_source_needs_a_console_login_and_a_visible_project(alice: Any, reader: Any, stored: Project) -> None:
    assert Client().get(url("source", stored)).status_code == 302  # to the admin's login
    assert console(alice).get(url("source", stored)).status_code == 302  # not staff: the console is not theirs
    assert console(reader).get(url("source", stored), HTTP_RANGE="bytes=0-1").status_code == 206  # reading needs no review permission
    default_storage.delete(stored.source_key)
    assert console(reader).get(url("source", stored)).status_code == 404
