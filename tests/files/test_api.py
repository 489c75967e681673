"""Seed 3's file endpoints through the API and real workers, on local storage."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from files import services
from files.models import StoredFile
from jobs.models import Job
from tests.transcription.audio import SENTENCE, speak, words_back
from transcription.models import Transcription

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.media]


def upload(client: APIClient, path: str, data: bytes, name: str = "note.txt", **fields: Any) -> Any:
    return client.post(path, {"file": SimpleUploadedFile(name, data), **fields}, format="multipart")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def poll(client: APIClient, job_id: str) -> dict[str, Any]:
    body = client.get(f"/api/queue/job/{job_id}").json()
    return dict(body)


def test_upload_async_stages_then_the_job_stores_with_the_same_checksum(as_alice: APIClient, local_storage: Path, drain_files: Callable[[], None]) -> None:
    data = b"hello files " * 50_000  # 600 kB
    answer = upload(as_alice, "/api/files/upload-async", data, name="../../etc/notes.txt", memoId="0b7e2a52-1d7e-4f61-9a43-6c3c7e0c7a11")
    assert answer.status_code == 202, answer.content
    body = answer.json()
    assert (body["success"], body["message"]) == (True, "File upload queued successfully")
    row = StoredFile.objects.get(pk=body["fileId"])
    assert (row.status, row.key, row.original_name, row.content_type) == ("staged", f"files/staging/{row.id}", "notes.txt", "text/plain")
    assert poll(as_alice, body["jobId"])["state"] == "waiting"

    drain_files()
    state = poll(as_alice, body["jobId"])
    assert (state["state"], state["progress"]) == ("completed", 100)
    assert state["result"] == {"success": True, "fileId": row.id, "filename": "notes.txt", "url": f"/api/files/{row.id}/download"}
    row.refresh_from_db()
    assert (row.status, row.key, row.sha256, row.size) == ("stored", f"files/{row.id}/notes.txt", sha(data), len(data))
    with default_storage.open(row.key, "rb") as fh:
        assert sha(fh.read()) == sha(data)  # what storage holds is what was uploaded
    assert not default_storage.exists(f"files/staging/{row.id}")
    download = as_alice.get(state["result"]["url"])
    assert download.status_code == 200 and b"".join(download.streaming_content) == data
    assert download["Content-Disposition"] == 'attachment; filename="notes.txt"'


def test_sync_upload_answers_seed_3s_body_and_the_file_is_listed(as_alice: APIClient, as_bob: APIClient, local_storage: Path) -> None:
    answer = upload(as_alice, "/api/files/upload", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", name="report.pdf")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert set(body) == {"success", "fileId", "filename", "url"} and body["filename"] == "report.pdf"
    listed = as_alice.get("/api/files").json()
    assert [f["id"] for f in listed["results"]] == [body["fileId"]]
    assert listed["results"][0]["contentType"] == "application/pdf"  # sniffed from the bytes
    assert as_bob.get("/api/files").json()["results"] == []
    for method, path in (("get", ""), ("get", "/download"), ("post", "/process"), ("delete", "")):
        other = getattr(as_bob, method)(f"/api/files/{body['fileId']}{path}", {"operation": "analyze"} if method == "post" else None)
        assert other.status_code == 404, (method, path, other.content)
        assert getattr(APIClient(), method)(f"/api/files/{body['fileId']}{path}").status_code == 401


def test_download_with_a_range(as_alice: APIClient, local_storage: Path) -> None:
    data = bytes(range(256)) * 10
    file_id = upload(as_alice, "/api/files/upload", data, name="blob.bin").json()["fileId"]
    part = as_alice.get(f"/api/files/{file_id}/download", HTTP_RANGE="bytes=10-19")
    assert part.status_code == 206
    assert b"".join(part.streaming_content) == data[10:20]
    assert (part["Content-Range"], part["Content-Length"]) == (f"bytes 10-19/{len(data)}", "10")
    tail = as_alice.get(f"/api/files/{file_id}/download", HTTP_RANGE="bytes=-5")
    assert b"".join(tail.streaming_content) == data[-5:]
    assert as_alice.get(f"/api/files/{file_id}/download", HTTP_RANGE=f"bytes={len(data)}-").status_code == 416


def test_analyze_and_compress_real_audio(as_alice: APIClient, local_storage: Path, drain_files: Callable[[], None], tmp_path: Path) -> None:
    wav = speak(SENTENCE, tmp_path / "speech.wav").read_bytes()
    file_id = upload(as_alice, "/api/files/upload", wav, name="speech.wav").json()["fileId"]
    assert StoredFile.objects.get(pk=file_id).content_type.startswith("audio/")

    job = as_alice.post(f"/api/files/{file_id}/process", {"operation": "analyze"})
    assert job.status_code == 202, job.content
    assert as_alice.post(f"/api/files/{file_id}/process", {"operation": "compress"}).status_code == 409  # one at a time
    drain_files()
    analysis = as_alice.get(f"/api/files/{file_id}").json()["results"]["analyze"]
    assert analysis["codec"] == "pcm_s16le" and analysis["channels"] == 1 and analysis["sampleRate"] == 22050
    assert 5 < analysis["durationSeconds"] < 15 and analysis["bitRate"] > 0

    original = StoredFile.objects.get(pk=file_id)
    assert as_alice.post(f"/api/files/{file_id}/process", {"operation": "compress"}).status_code == 202
    drain_files()
    row = StoredFile.objects.get(pk=file_id)
    compressed = row.results["compress"]
    assert (row.status, row.content_type, compressed["codec"]) == ("stored", "audio/ogg", "opus")
    assert row.size < original.size / 4 and compressed["originalSha256"] == original.sha256
    assert row.key.endswith(".opus") and default_storage.exists(row.key)
    assert not default_storage.exists(original.key)  # removed once the new object was stored and verified
    with default_storage.open(row.key, "rb") as fh:
        assert sha(fh.read()) == row.sha256


def test_transcribe_returns_the_spoken_words(as_alice: APIClient, local_storage: Path, drain_files: Callable[[], None], tmp_path: Path) -> None:
    mp3 = speak(SENTENCE, tmp_path / "speech.mp3").read_bytes()
    file_id = upload(as_alice, "/api/files/upload", mp3, name="speech.mp3").json()["fileId"]
    job_id = as_alice.post(f"/api/files/{file_id}/process", {"operation": "transcribe"}).json()["jobId"]
    drain_files()
    result = poll(as_alice, job_id)["result"]["result"]
    row = StoredFile.objects.get(pk=file_id)
    assert row.transcription_id == result["transcriptionId"] and row.status == "stored"
    transcript = as_alice.get(f"/api/transcriptions/{result['transcriptionId']}/result").json()
    assert words_back(SENTENCE, transcript["text"]) >= 0.8
    assert Transcription.objects.get(pk=result["transcriptionId"]).source_name == "speech.mp3"


def test_delete_hides_at_once_then_removes_object_and_row(as_alice: APIClient, local_storage: Path, drain_files: Callable[[], None]) -> None:
    file_id = upload(as_alice, "/api/files/upload", b"bye", name="bye.txt").json()["fileId"]
    key = StoredFile.objects.get(pk=file_id).key
    answer = as_alice.delete(f"/api/files/{file_id}")
    assert answer.status_code == 202, answer.content
    assert as_alice.get(f"/api/files/{file_id}").status_code == 404
    assert as_alice.get("/api/files").json()["results"] == []
    assert default_storage.exists(key)
    drain_files()
    assert not StoredFile.objects.filter(pk=file_id).exists() and not default_storage.exists(key)
    assert not (local_storage / "files" / file_id).exists()  # no empty folder left behind
    assert poll(as_alice, answer.json()["jobId"])["state"] == "completed"


def test_a_file_deleted_while_staged_leaves_nothing(as_alice: APIClient, local_storage: Path, drain_files: Callable[[], None]) -> None:
    body = upload(as_alice, "/api/files/upload-async", b"short-lived").json()
    assert as_alice.delete(f"/api/files/{body['fileId']}").status_code == 202
    drain_files()
    assert not StoredFile.objects.filter(pk=body["fileId"]).exists()
    assert list(services.storage.keys_under()) == []
    assert Job.objects.get(pk=body["jobId"]).status == "failed"  # the upload found its file deleted: nothing to store


def test_the_sweep_removes_orphans_and_reports_rows_without_an_object(as_alice: APIClient, local_storage: Path) -> None:
    kept = upload(as_alice, "/api/files/upload", b"kept", name="kept.txt").json()["fileId"]
    lost = upload(as_alice, "/api/files/upload", b"lost", name="lost.txt").json()["fileId"]
    default_storage.delete(StoredFile.objects.get(pk=lost).key)
    orphan = default_storage.save("files/orphan-id/stray.bin", SimpleUploadedFile("stray.bin", b"stray"))
    report = services.sweep(remove=True, grace=0)
    assert (report.orphans, report.removed, report.missing) == ([orphan], 1, [lost])
    assert not default_storage.exists(orphan)
    assert StoredFile.objects.get(pk=lost).status == "failed" and StoredFile.objects.get(pk=kept).status == "stored"
    assert services.sweep(remove=True, grace=0).orphans == []


def test_health_shows_the_three_file_queues_under_seed_3s_keys(as_alice: APIClient, local_storage: Path) -> None:
    upload(as_alice, "/api/files/upload-async", b"queued")
    queues = as_alice.get("/api/queue/health").json()["queues"]
    assert queues["fileUpload"] == queues["file-upload"] and queues["fileUpload"]["waiting"] == 1
    assert {"fileProcess", "fileDelete", "lipSync", "default"} <= set(queues)


def test_the_sweep_command_reports_then_removes(as_alice: APIClient, local_storage: Path) -> None:
    import json
    from io import StringIO

    from django.core.management import call_command

    stray = default_storage.save("files/x/stray.bin", SimpleUploadedFile("stray.bin", b"s"))
    out = StringIO()
    call_command("files_sweep", "--grace", "0", stdout=out)
    assert json.loads(out.getvalue()) == {"orphans": [stray], "missing": [], "removed": 0} and default_storage.exists(stray)
    call_command("files_sweep", "--grace", "0", "--remove", stdout=StringIO())
    assert not default_storage.exists(stray)


def test_the_scheduler_enqueues_the_sweep_once_per_period(local_storage: Path, settings: Any) -> None:
    from datetime import datetime, timezone

    from jobs.engine import periodic

    settings.JOBS_PERIODIC = {"files-sweep": {"type": "file-sweep", "every": 3600, "payload": {"remove": True}}}
    at = datetime(2026, 11, 30, 10, 15, tzinfo=timezone.utc)
    assert periodic.enqueue_due({}, now=at) == 1
    assert periodic.enqueue_due({}, now=at.replace(minute=59)) == 0  # another scheduler, the same hour: the same job
    assert periodic.enqueue_due({}, now=at.replace(hour=11)) == 1
    jobs = Job.objects.filter(type="file-sweep")
    assert jobs.count() == 2 and {j.queue for j in jobs} == {"file-delete"} and all(j.payload == {"remove": True} for j in jobs)


def test_upload_async_staged_in_a_local_folder(
    as_alice: APIClient, local_storage: Path, drain_files: Callable[[], None], settings: Any, tmp_path: Path,
) -> None:
    settings.FILES_STAGING_DIR = tmp_path / "staging"
    data = b"staged on this machine " * 10_000
    body = upload(as_alice, "/api/files/upload-async", data, name="local.txt").json()
    row = StoredFile.objects.get(pk=body["fileId"])
    assert row.key == f"local-staging:{row.id}" and (tmp_path / "staging" / row.id).read_bytes() == data
    assert list(services.storage.keys_under()) == []  # nothing in storage until the job stores it
    drain_files()
    row.refresh_from_db()
    assert (row.status, row.key) == ("stored", f"files/{row.id}/local.txt")
    with default_storage.open(row.key, "rb") as fh:
        assert sha(fh.read()) == row.sha256 == sha(data)
    assert not (tmp_path / "staging" / row.id).exists()

    doomed = upload(as_alice, "/api/files/upload-async", b"never stored", name="gone.txt").json()
    assert as_alice.delete(f"/api/files/{doomed['fileId']}").status_code == 202
    drain_files()
    assert not StoredFile.objects.filter(pk=doomed["fileId"]).exists() and list((tmp_path / "staging").iterdir()) == []

    (tmp_path / "staging" / "stray").write_bytes(b"left by a crash")
    report = services.sweep(remove=True, grace=0)
    assert report.orphans == ["local-staging:stray"] and not (tmp_path / "staging" / "stray").exists()
