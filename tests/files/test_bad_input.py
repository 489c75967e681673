"""Bad input to the file endpoints: a 4xx with {message, extra}, nothing stored and nothing enqueued."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from files import services
from files.models import StoredFile
from jobs.models import Job
from tests.api.test_bad_input import refused

pytestmark = pytest.mark.django_db


def nothing_kept() -> None:
    assert not StoredFile.objects.exists() and not Job.objects.exists()
    assert list(services.storage.keys_under()) == []


@pytest.mark.parametrize("path", ["/api/files/upload", "/api/files/upload-async"])
def test_no_file_an_empty_file_or_a_bad_memo_id_is_a_400(as_alice: APIClient, local_storage: Path, path: str) -> None:
    assert "file" in refused(as_alice.post(path, {"memoId": ""}, format="multipart"))["extra"]
    assert "file" in refused(as_alice.post(path, {"file": SimpleUploadedFile("empty.txt", b"")}, format="multipart"))["extra"]
    bad_memo = {"file": SimpleUploadedFile("a.txt", b"a"), "memoId": "not-a-uuid"}
    assert "memoId" in refused(as_alice.post(path, bad_memo, format="multipart"))["extra"]
    nothing_kept()


@pytest.mark.parametrize("path", ["/api/files/upload", "/api/files/upload-async"])
def test_a_body_without_its_content_type_is_a_documented_415(as_alice: APIClient, local_storage: Path, path: str) -> None:
    assert "media type" in refused(as_alice.generic("POST", path, b"--x\r\nfile\r\n--x--\r\n", content_type=""), 415)["message"]
    nothing_kept()


@pytest.mark.parametrize("path", ["/api/files/upload", "/api/files/upload-async"])
def test_a_file_over_the_limit_is_a_413(as_alice: APIClient, local_storage: Path, settings: Any, path: str) -> None:
    settings.FILES_MAX_BYTES = 1000
    body = refused(as_alice.post(path, {"file": SimpleUploadedFile("big.bin", b"x" * 1001)}, format="multipart"), 413)
    assert body["extra"]["limit"] == 1000
    body = refused(as_alice.post(path, {"file": SimpleUploadedFile("huge.bin", b"x" * 200_000)}, format="multipart"), 413)  # by Content-Length
    nothing_kept()


def test_names_lose_path_components_and_control_characters(as_alice: APIClient, local_storage: Path) -> None:
    name = "..\\..\\evil\x00\x1b[31m" + "é" * 300 + ".txt"
    body = as_alice.post("/api/files/upload", {"file": SimpleUploadedFile(name, b"text")}, format="multipart").json()
    row = StoredFile.objects.get(pk=body["fileId"])
    assert "/" not in row.original_name and "\\" not in row.original_name and "\x00" not in row.original_name and "\x1b" not in row.original_name
    assert len(row.original_name) <= 255
    assert row.key == f"files/{row.id}/{row.safe_name}" and row.safe_name.isascii() and len(row.safe_name) <= 120


def test_an_operation_that_does_not_fit_the_file_is_a_400(as_alice: APIClient, local_storage: Path) -> None:
    file_id = as_alice.post("/api/files/upload", {"file": SimpleUploadedFile("doc.pdf", b"%PDF-1.7\n...")}, format="multipart").json()["fileId"]
    for operation in ("compress", "transcribe", "analyze"):
        assert "operation" in refused(as_alice.post(f"/api/files/{file_id}/process", {"operation": operation}))["extra"]
    assert "operation" in refused(as_alice.post(f"/api/files/{file_id}/process", {"operation": "shred"}))["extra"]
    assert "operation" in refused(as_alice.post(f"/api/files/{file_id}/process", {}))["extra"]
    assert not Job.objects.exists() and StoredFile.objects.get(pk=file_id).status == "stored"


def test_an_unknown_file_is_a_404_everywhere(as_alice: APIClient, local_storage: Path) -> None:
    for method, path in (("get", ""), ("get", "/download"), ("post", "/process"), ("delete", "")):
        refused(getattr(as_alice, method)(f"/api/files/0b7e2a52-1d7e-4f61-9a43-6c3c7e0c7a11{path}", {"operation": "analyze"} if method == "post" else None), 404)
