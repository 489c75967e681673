"""Files on a real S3-compatible server (SeaweedFS on loopback): store, download, delete through an outage, sweep."""
from __future__ import annotations

import hashlib
import time
import urllib.request
from typing import Any, Callable

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from files import services
from files.models import StoredFile
from jobs.engine import scheduler
from jobs.models import Job
from tests.files.weed import WeedS3, on_weed, own_weed, weed_server  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def s3_object(key: str) -> bytes:
    obj = default_storage.bucket.Object(default_storage._normalize_name(key)).get()  # type: ignore[attr-defined]
    return bytes(obj["Body"].read())


def test_upload_async_on_s3_stores_the_same_bytes_and_download_redirects_to_a_presigned_url(
    as_alice: APIClient, settings: Any, weed_server: WeedS3, drain_files: Callable[[], None],  # noqa: F811
) -> None:
    on_weed(settings, weed_server)
    data = bytes(range(256)) * 4096  # 1 MB
    body = as_alice.post("/api/files/upload-async", {"file": SimpleUploadedFile("blob.bin", data)}, format="multipart").json()
    assert s3_object(f"files/staging/{body['fileId']}") == data
    drain_files()
    row = StoredFile.objects.get(pk=body["fileId"])
    assert row.status == "stored" and hashlib.sha256(s3_object(row.key)).hexdigest() == hashlib.sha256(data).hexdigest() == row.sha256
    assert list(services.storage.keys_under()) == [row.key]  # the staged object is gone

    answer = as_alice.get(f"/api/files/{row.id}/download")
    assert answer.status_code == 302 and answer["Location"].startswith(weed_server.endpoint)
    with urllib.request.urlopen(answer["Location"], timeout=10) as fetched:
        assert fetched.read() == data
        assert 'filename="blob.bin"' in fetched.headers["Content-Disposition"]
        assert fetched.headers["Content-Type"] == "application/octet-stream"


def test_a_delete_rides_out_a_storage_outage_and_leaves_no_orphan(
    as_alice: APIClient, settings: Any, own_weed: WeedS3, burst: Callable[..., Any],  # noqa: F811
) -> None:
    on_weed(settings, own_weed, timeout=2.0)
    file_id = as_alice.post("/api/files/upload", {"file": SimpleUploadedFile("gone.txt", b"delete me")}, format="multipart").json()["fileId"]
    key = StoredFile.objects.get(pk=file_id).key
    own_weed.stop()
    job_id = as_alice.delete(f"/api/files/{file_id}").json()["jobId"]
    burst("file-delete")
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.error_kind, job.attempts_made) == ("delayed", "TRANSIENT", 1), job.failed_reason  # retried with backoff
    assert StoredFile.objects.get(pk=file_id).status == "deleting"

    own_weed.start()
    time.sleep(2.1)  # the first backoff (2 s)
    scheduler.promote_due()
    burst("file-delete")
    assert Job.objects.get(pk=job_id).status == "completed"
    assert not StoredFile.objects.filter(pk=file_id).exists()
    assert key not in set(services.storage.keys_under()) and services.sweep(grace=0).orphans == []


def test_the_sweep_finds_orphans_on_s3(as_alice: APIClient, settings: Any, weed_server: WeedS3) -> None:  # noqa: F811
    on_weed(settings, weed_server)
    kept = as_alice.post("/api/files/upload", {"file": SimpleUploadedFile("k.txt", b"k")}, format="multipart").json()["fileId"]
    stray = default_storage.save("files/no-row/stray.txt", SimpleUploadedFile("stray.txt", b"stray"))
    assert services.sweep(grace=3600).orphans == []  # too young: an upload may be in flight
    report = services.sweep(remove=True, grace=0)
    assert (report.orphans, report.removed, report.missing) == ([stray], 1, [])
    assert list(services.storage.keys_under()) == [StoredFile.objects.get(pk=kept).key]


@pytest.mark.media
def test_compress_on_s3_replaces_the_object_only_after_the_new_one_is_stored(
    as_alice: APIClient, settings: Any, weed_server: WeedS3, drain_files: Callable[[], None], tmp_path: Any,  # noqa: F811
) -> None:
    from tests.transcription.audio import SENTENCE, speak

    on_weed(settings, weed_server)
    wav = speak(SENTENCE, tmp_path / "speech.wav").read_bytes()
    file_id = as_alice.post("/api/files/upload", {"file": SimpleUploadedFile("speech.wav", wav)}, format="multipart").json()["fileId"]
    original = StoredFile.objects.get(pk=file_id).key
    assert as_alice.post(f"/api/files/{file_id}/process", {"operation": "compress"}).status_code == 202
    drain_files()
    row = StoredFile.objects.get(pk=file_id)
    assert (row.status, row.content_type, row.results["compress"]["codec"]) == ("stored", "audio/ogg", "opus")
    assert hashlib.sha256(s3_object(row.key)).hexdigest() == row.sha256 and row.size < len(wav) / 4
    assert list(services.storage.keys_under()) == [row.key] and original != row.key  # the original is gone, nothing else left
    answer = as_alice.get(f"/api/files/{file_id}/download")
    with urllib.request.urlopen(answer["Location"], timeout=10) as fetched:
        assert fetched.headers["Content-Type"] == "audio/ogg" and fetched.read()[:4] == b"OggS"
