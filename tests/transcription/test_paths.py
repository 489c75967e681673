"""Transcription over S3 storage, a storage that does not answer, and `manage.py transcribe`."""
from __future__ import annotations

import urllib.request
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from jobs.api.auth import create_api_key
from jobs.models import Job
from tests.transcription.audio import SENTENCE, speak, words_back
from tests.transcription.s3server import closed_port, s3_server, s3_storage, use_s3  # noqa: F401 (fixtures)
from transcription import services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.media]


def test_s3_storage_end_to_end_with_a_presigned_result_url(s3_storage, alice, burst, tmp_path) -> None:
    _, raw = create_api_key(user=alice)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    with speak(SENTENCE, tmp_path / "a.mp3").open("rb") as fh:
        tid = api.post("/api/transcriptions", {"file": fh, "format": "TXT"}, format="multipart").json()["transcriptionId"]
    burst("transcription")
    shown = api.get(f"/api/transcriptions/{tid}").json()
    assert shown["status"] == "completed"
    assert shown["resultUrl"].startswith("http://127.0.0.1:")  # presigned, on the S3 server itself
    with urllib.request.urlopen(shown["resultUrl"], timeout=10) as response:
        assert words_back(SENTENCE, response.read().decode()) >= 0.7


def test_a_storage_that_does_not_answer_is_transient_and_retried(settings, alice, burst) -> None:
    use_s3(settings, endpoint=f"http://127.0.0.1:{closed_port()}", bucket="audio-bucket", timeout=1.0)
    row, job = services.request_transcription(owner=alice, audio_url="audio/meeting.wav")
    burst("transcription")
    job.refresh_from_db()
    assert (job.status, job.error_kind, job.attempts_made) == ("delayed", "TRANSIENT", 1)
    assert "not readable now" in job.failed_reason


def test_transcribe_command_enqueues_and_with_wait_prints_the_transcript(settings, tmp_path, alice, worker_process) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    clip = speak(SENTENCE, tmp_path / "clip.wav")
    err = StringIO()
    call_command("transcribe", str(clip), "--owner", "alice", stdout=StringIO(), stderr=err)
    assert "transcription " in err.getvalue()
    assert Job.objects.filter(queue="transcription", status="waiting").count() == 1

    worker_process("transcription", env={"MEDIA_ROOT": settings.MEDIA_ROOT})
    out = StringIO()
    call_command("transcribe", str(clip), "--owner", "alice", "--tier", "PAYG", "--wait", "--timeout", "120", stdout=out, stderr=StringIO())
    assert words_back(SENTENCE, out.getvalue()) >= 0.7

