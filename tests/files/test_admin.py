"""Files in the console: listed with status, size, type and owner, linked to their jobs; process and delete as actions."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from files import services
from files.models import StoredFile
from jobs.models import Job
from tests.transcription.audio import silence

pytestmark = pytest.mark.django_db


def test_the_console_lists_files_links_their_jobs_and_queues_actions(admin_client: Any, admin_user: Any, local_storage: Path, tmp_path: Path) -> None:
    with silence(tmp_path / "quiet.wav").open("rb") as fh:
        audio = services.upload(owner=admin_user, upload=SimpleUploadedFile("quiet.wav", fh.read()))
    text, _ = services.upload_async(owner=admin_user, upload=SimpleUploadedFile("notes.txt", b"notes"))

    page = admin_client.get("/admin/files/storedfile/").content.decode()
    assert "quiet.wav" in page and "notes.txt" in page and "staged" in page and "audio/" in page
    assert f"/admin/jobs/job/?group_ref={text.id}" in page and "1 job(s)" in page and ">-<" in page
    assert f"Jobs of {text.id}" in admin_client.get(f"/admin/jobs/job/?group_ref={text.id}").content.decode()

    answer = admin_client.post("/admin/files/storedfile/", {"action": "analyze", "_selected_action": [audio.id, text.id]}, follow=True)
    assert "Queued analyze for 1 file(s)." in answer.content.decode() and "Skipped 1" in answer.content.decode()  # text is not media
    assert Job.objects.filter(group_ref=audio.id, type="file-process").exists()
    assert StoredFile.objects.get(pk=audio.id).status == "processing"

    admin_client.post("/admin/files/storedfile/", {"action": "delete_files", "_selected_action": [text.id]}, follow=True)
    assert StoredFile.objects.get(pk=text.id).status == "deleting"
    assert admin_client.get("/admin/files/storedfile/add/").status_code == 403
