"""Transcriptions in the console: their job's state and a link to the result."""
from __future__ import annotations

import pytest

from tests.transcription.audio import speak
from transcription import services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.media]


def test_the_console_lists_transcriptions_with_job_state_and_result_link(admin_client, admin_user, settings, tmp_path, burst) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    with speak("Hello there.", tmp_path / "h.wav").open("rb") as fh:
        done, _ = services.request_transcription(owner=admin_user, upload=fh, upload_name="h.wav", format="SRT")
    with speak("Second one.", tmp_path / "s.wav").open("rb") as fh:
        waiting, _ = services.request_transcription(owner=admin_user, upload=fh, upload_name="s.wav")
    burst("transcription", max_jobs=1)  # the first (FREE, first in) only

    page = admin_client.get("/admin/transcription/transcription/").content.decode()
    assert f"/api/transcriptions/{done.id}/result" in page  # the result link of the finished one
    assert ">completed</a>" in page and ">waiting</a>" in page  # each links to its job
    assert admin_client.get("/admin/transcription/transcription/?status=waiting").content.decode().count("/admin/jobs/job/") >= 1
    assert admin_client.get(f"/admin/transcription/transcription/{waiting.id}/change/").status_code == 200
    assert admin_client.get("/admin/transcription/transcription/add/").status_code == 403
