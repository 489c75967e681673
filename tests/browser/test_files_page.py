"""The files console in a real browser: the list's columns, a file's jobs link, and the delete and analyze actions.

pytest-django's live server runs in a thread of this process, so the `local_storage` settings (media in tmp_path)
are the ones it serves with.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from files import services
from files.models import StoredFile
from tests.files.conftest import local_storage  # noqa: F401 (fixture)
from tests.transcription.audio import silence

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

SCREENSHOT = Path(tempfile.gettempdir()) / "files-console.png"


def test_operator_sees_files_follows_jobs_and_queues_delete_and_analyze(
    logged_in: Any, live_server: Any, operator: Any, local_storage: Path, tmp_path: Path,  # noqa: F811 (fixture)
) -> None:
    from playwright.sync_api import expect

    wav = services.upload(owner=operator, upload=SimpleUploadedFile("quiet.wav", silence(tmp_path / "quiet.wav").read_bytes()))
    text = services.upload(owner=operator, upload=SimpleUploadedFile("notes.txt", b"meeting notes\n" * 100))
    staged, upload_job = services.upload_async(owner=operator, upload=SimpleUploadedFile("later.txt", b"stored by the queue"))
    Status = StoredFile.Status  # the list shows each status's label ("Stored")
    expected = {wav: (Status.STORED, "62.5\xa0KB", "audio/"), text: (Status.STORED, "1.4\xa0KB", "text/plain"),
                staged: (Status.STAGED, "19\xa0bytes", "text/plain")}

    page = logged_in
    changelist = live_server.url + reverse("admin:files_storedfile_changelist")
    page.goto(changelist)
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(3)
    for row_file, (status, size, content_type) in expected.items():
        row = rows.filter(has_text=row_file.original_name)
        expect(row.locator("td.field-status")).to_have_text(status.label)
        expect(row.locator("td.field-human_size")).to_have_text(size)
        expect(row.locator("td.field-content_type")).to_contain_text(content_type)
        expect(row.locator("td.field-file_jobs")).to_have_text("1 job(s)" if row_file is staged else "-")  # no link to an empty list
    # No "Add" (files arrive through the API only): neither above the list nor beside Files in the sidebar.
    expect(page.locator(".object-tools .addlink")).to_have_count(0)
    expect(page.locator("#nav-sidebar .model-storedfile")).to_contain_text("Files")
    expect(page.locator("#nav-sidebar .model-storedfile .addlink")).to_have_count(0)
    page.screenshot(path=SCREENSHOT, full_page=True)

    # The staged file's jobs link opens the jobs list filtered to its file-upload job.
    rows.filter(has_text="later.txt").locator("td.field-file_jobs a").click()
    page.wait_for_url(f"**{reverse('admin:jobs_job_changelist')}?group_ref={staged.id}")
    job_rows = page.locator("#result_list tbody tr")
    expect(job_rows).to_have_count(1)
    expect(job_rows).to_contain_text("file-upload")
    expect(job_rows).to_contain_text(upload_job.pk[:8])
    page.go_back()
    page.wait_for_url(changelist)

    # Delete the text file through the queue: it stays listed as `deleting` until its job runs.
    rows.filter(has_text="notes.txt").locator("input.action-select").check()
    page.select_option("select[name=action]", label="Delete through the queue (object, then row)")
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist")).to_contain_text("Queued delete for 1 file(s).")
    expect(page.locator("ul.messagelist li.success")).to_have_count(1)
    expect(rows.filter(has_text="notes.txt").locator("td.field-status")).to_have_text(Status.DELETING.label)
    assert StoredFile.objects.get(pk=text.pk).status == "deleting"

    # Analyze the WAV through the queue: `processing` until its file-process job runs.
    rows.filter(has_text="quiet.wav").locator("input.action-select").check()
    page.select_option("select[name=action]", label="Analyze (ffprobe) through the queue")
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist")).to_contain_text("Queued analyze for 1 file(s).")
    expect(rows.filter(has_text="quiet.wav").locator("td.field-status")).to_have_text(Status.PROCESSING.label)
    expect(rows.filter(has_text="quiet.wav").locator("td.field-file_jobs a")).to_have_text("1 job(s)")
    assert StoredFile.objects.get(pk=wav.pk).status == "processing"
