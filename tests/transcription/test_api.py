"""Transcription through the API, the queue and a real worker with the bundled tiny.en model."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from tests.clients import key_client
from jobs.engine import broker, hooks
from jobs.models import Job
from tests.transcription.audio import SENTENCE, speak, words_back
from transcription.models import Transcription

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.media]


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    """Local filesystem storage in a temporary directory."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    return tmp_path




def upload(client: APIClient, path: Path, **fields: str) -> Any:
    with path.open("rb") as fh:
        return client.post("/api/transcriptions", {"file": fh, **fields}, format="multipart")


def test_a_spoken_wav_comes_back_as_text_with_rising_progress(media, alice, burst, tmp_path) -> None:
    progress: list[int] = []

    def watch(change: hooks.JobChange) -> None:
        if change.event == "progress":
            progress.append(change.progress)

    hooks.register("test.watch", watch)
    try:
        api = key_client(alice)
        created = upload(api, speak(SENTENCE, tmp_path / "a.wav"), format="TXT")
        assert created.status_code == 201, created.content
        body = created.json()
        assert Job.objects.get(pk=body["jobId"]).queue == "transcription"
        burst("transcription")
    finally:
        hooks.unregister("test.watch")

    shown = api.get(f"/api/transcriptions/{body['transcriptionId']}").json()
    assert (shown["status"], shown["progress"], shown["attemptsMade"]) == ("completed", 100, 1)
    assert shown["resultUrl"] and shown["durationSeconds"] > 1
    text = api.get(f"/api/transcriptions/{body['transcriptionId']}/result").content.decode()
    assert words_back(SENTENCE, text) >= 0.7, text
    assert progress == sorted(progress) and progress[-1] == 100 and len(set(progress)) >= 3


@pytest.mark.parametrize(
    ("fmt", "pattern"),
    [
        ("SRT", r"^1\n\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}\n"),
        ("VTT", r"^WEBVTT\n\n(.*\n)?\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3}"),
    ],
)
def test_subtitle_formats_from_an_mp3(media, alice, burst, tmp_path, fmt, pattern) -> None:
    api = key_client(alice)
    mp3 = speak(SENTENCE, tmp_path / "a.mp3")
    tid = upload(api, mp3, format=fmt).json()["transcriptionId"]
    burst("transcription")
    result = api.get(f"/api/transcriptions/{tid}/result")
    assert result.status_code == 200
    assert re.search(pattern, result.content.decode()), result.content.decode()[:200]
    assert words_back(SENTENCE, result.content.decode()) >= 0.7


def test_a_payg_job_queued_after_free_jobs_starts_first(media, alice, burst, tmp_path) -> None:
    api = key_client(alice)
    clip = speak("One two three.", tmp_path / "short.wav")
    free = [upload(api, clip, tier="FREE").json()["jobId"] for _ in range(2)]
    payg = upload(api, clip, tier="PAYG").json()["jobId"]
    burst("transcription")
    order = list(Job.objects.filter(pk__in=[*free, payg]).order_by("started_at").values_list("id", flat=True))
    assert order[0] == payg
    assert Job.objects.get(pk=payg).priority == 10


def test_a_missing_model_fails_at_once_without_retry(media, alice, burst, tmp_path, settings) -> None:
    settings.TRANSCRIPTION_MODEL_DIR = str(tmp_path / "no-models")
    api = key_client(alice)
    tid = upload(api, speak("Hello.", tmp_path / "h.wav"), model="BASE").json()["transcriptionId"]
    burst("transcription")
    shown = api.get(f"/api/transcriptions/{tid}").json()
    job = Transcription.objects.get(pk=tid).job
    assert shown["status"] == "failed" and shown["attemptsMade"] == 1
    assert job is not None and job.error_kind == "VALIDATION"
    assert "BASE" in shown["failedReason"]


def test_a_file_that_is_not_audio_is_refused_at_upload(media, alice, tmp_path) -> None:
    fake = tmp_path / "notes.wav"
    fake.write_text("this is not audio at all\n" * 50)
    response = upload(key_client(alice), fake)
    assert response.status_code == 400 and "file" in response.json()["extra"]
    assert not Transcription.objects.exists()


def test_stored_audio_that_is_not_audio_fails_permanently(media, alice, burst) -> None:
    # An upload is sniffed at the door; a stored key named by audioUrl is read only by the worker.
    key = default_storage.save("audio/notes.wav", ContentFile(b"this is not audio at all\n" * 50))
    api = key_client(alice)
    tid = api.post("/api/transcriptions", {"audioUrl": key}).json()["transcriptionId"]
    burst("transcription")
    shown = api.get(f"/api/transcriptions/{tid}").json()
    assert (shown["status"], shown["attemptsMade"]) == ("failed", 1)
    assert Transcription.objects.get(pk=tid).job.error_kind == "VALIDATION"  # type: ignore[union-attr]


def test_another_users_transcription_is_not_found(media, alice, bob, burst, tmp_path) -> None:
    tid = upload(key_client(alice), speak("Hello.", tmp_path / "h.wav")).json()["transcriptionId"]
    other = key_client(bob)
    assert other.get(f"/api/transcriptions/{tid}").status_code == 404
    assert other.get(f"/api/transcriptions/{tid}/result").status_code == 404


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({}, "file"),
        ({"audioUrl": "http://example.com/a.wav"}, "audioUrl"),
        ({"audioUrl": "https://169.254.169.254/latest/meta-data"}, "audioUrl"),
        ({"audioUrl": "s3://someone-elses-bucket/a.wav"}, "audioUrl"),
        ({"audioUrl": "audio/a.wav", "format": "DOCX"}, "format"),
        ({"audioUrl": "audio/a.wav", "tier": "GOLD"}, "tier"),
        ({"audioUrl": "audio/a.wav", "model": "HUGE"}, "model"),
    ],
)
def test_bad_input_is_400_and_enqueues_nothing(media, alice, fields, field) -> None:
    response = key_client(alice).post("/api/transcriptions", fields, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["extra"], response.json()
    assert not Job.objects.exists() and not Transcription.objects.exists()
    assert broker.waiting_count("transcription") == 0


def test_no_credentials_is_401(media) -> None:
    assert APIClient().post("/api/transcriptions", {}, format="json").status_code == 401


def test_cancel_stops_a_running_transcription_between_segments(media, alice, burst, tmp_path) -> None:
    import threading
    import time

    from django.db import connection

    from jobs import services as job_services

    # About 90 s of speech: three 30-second windows, so a stop between segments lands before the end.
    long_text = " ".join(f"Sentence number {i} is spoken here so that the model decodes many segments." for i in range(18))
    api = key_client(alice)
    body = upload(api, speak(long_text, tmp_path / "long.wav")).json()
    asked: list[float] = []

    def cancel_when_running() -> None:
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                job = Job.objects.get(pk=body["jobId"])
                if job.status == "active" and job.progress >= 10:  # transcribing
                    job_services.cancel(job.id)
                    asked.append(time.monotonic())
                    return
                time.sleep(0.05)
        finally:
            connection.close()

    t = threading.Thread(target=cancel_when_running)
    t.start()
    burst("transcription")
    t.join(5)
    job = Job.objects.get(pk=body["jobId"])
    assert asked, "the transcription never became active"
    assert job.status == "cancelled" and job.progress < 90, (job.status, job.progress)
    assert api.get(f"/api/transcriptions/{body['transcriptionId']}/result").status_code == 404


def test_the_queue_timeout_stops_a_transcription_hard(media, alice, burst, tmp_path, queues) -> None:
    from jobs.models import DeadLetter

    queues(transcription={"attempts": 1, "timeout": 1, "group": "transcription"})
    long_text = " ".join(f"Sentence number {i} is spoken here so that the model decodes many segments." for i in range(18))
    tid = upload(key_client(alice), speak(long_text, tmp_path / "long.wav")).json()["transcriptionId"]
    burst("transcription")
    job = Transcription.objects.get(pk=tid).job
    assert job is not None
    assert (job.status, job.error_kind) == ("failed", "TIMEOUT")
    assert (job.completed_at - job.started_at).total_seconds() < 15  # not the whole 90 s clip's transcription
    assert DeadLetter.objects.filter(job=job, error_kind="TIMEOUT").exists()
