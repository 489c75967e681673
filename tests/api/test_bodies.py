"""Request bodies through the real web server (uvicorn + config.asgi): limits before reading, memory while streaming.

The server is a subprocess on a free loopback port, on the test database, Redis and a temporary
MEDIA_ROOT; its memory is read from /proc (VmRSS now, VmHWM the peak).
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import struct
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from django.conf import settings

from jobs.api.auth import create_api_key
from launcher import web
from tests.faults.conftest import ROOT, free_port, main_db_url, wait_until
from transcription.models import Transcription

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MB = 1024 * 1024


class Server:
    def __init__(self, port: int, proc: subprocess.Popen[bytes], media: Path) -> None:
        self.port, self.proc, self.media = port, proc, media

    def memory_kb(self, field: str) -> int:
        """VmRSS or VmHWM of the server process, in kB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} for the server")

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    env = {
        **os.environ, "DATABASE_URL": main_db_url(), "REDIS_URL": settings.REDIS_URL, "MEDIA_ROOT": str(tmp_path / "media"),
        "STORAGE": "local",
    }
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(web.command("127.0.0.1", port, access_log=False), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    srv = Server(port, proc, tmp_path / "media")

    def answers() -> bool:
        assert proc.poll() is None, f"the web server exited: {log.read_text()[-2000:]}"
        try:
            conn = srv.connection()
            conn.request("GET", "/api/queue/health")
            return conn.getresponse().status in (200, 401, 503)
        except OSError:
            return False

    try:
        wait_until(answers, timeout=60, what="the web server to answer")
        yield srv
    finally:
        proc.terminate()
        proc.wait(30)


def _raw(port: int, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send a request by hand and read the answer (status, body) without sending more than `body`."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower()
    return int(head.split(b" ", 2)[1]), rest


def test_an_anonymous_oversize_body_is_refused_from_its_content_length_without_being_read(server: Server) -> None:
    before = server.memory_kb("VmRSS")
    # 500 MB announced, none of it sent: the answer comes at once, so nothing was waited for or read.
    started = time.monotonic()
    status, body = _raw(server.port, b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 524288000\r\n\r\n")
    assert status == 413 and time.monotonic() - started < 5
    assert b'"message": "request body too large"' in body
    status, body = _raw(server.port, b"POST /api/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 10737418240\r\n\r\n")
    assert status == 413 and b'"limit": ' in body
    assert server.memory_kb("VmRSS") - before < 20 * 1024


def test_a_10_mb_json_body_is_a_json_413_not_an_html_page(server: Server) -> None:
    # The answer comes after the first 64 KB; the server closes the connection rather than read 10 MB.
    head = f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {10 * MB}\r\n\r\n".encode()
    status, body = _raw(server.port, head, b"[" + b"0," * 32768)
    assert status == 413
    assert set(json.loads(body)) == {"message", "extra"} and json.loads(body)["extra"]["limit"] == settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def test_a_chunked_body_without_length_is_refused(server: Server) -> None:
    status, body = _raw(
        server.port, b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", b"2\r\n{}\r\n0\r\n\r\n",
    )
    assert status == 411 and b"Content-Length" in body


def _wav_header(data_bytes: int, rate: int = 16000) -> bytes:
    return b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", data_bytes)


def _multipart(boundary: str, name: str, size: int) -> tuple[bytes, Iterator[bytes], bytes, int]:
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: audio/wav\r\n\r\n").encode()
    tail = f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"format\"\r\n\r\nTXT\r\n--{boundary}--\r\n".encode()
    header = _wav_header(size - 44)

    def chunks() -> Iterator[bytes]:
        yield header
        zeros = bytes(MB)
        left = size - len(header)
        while left > 0:
            yield zeros[: min(MB, left)]
            left -= MB

    return head, chunks(), tail, len(head) + size + len(tail)


def test_a_200_mb_upload_streams_to_disk_with_the_servers_memory_flat(server: Server, alice: Any) -> None:
    key = create_api_key(user=alice)[1]
    conn = server.connection()  # warm: one authenticated request, so the baseline includes Django and the API
    conn.request("GET", "/api/transcriptions/none", headers={"Authorization": f"Bearer {key}"})
    assert conn.getresponse().status == 404
    baseline = server.memory_kb("VmHWM")

    head, chunks, tail, length = _multipart("b0undary", "silence.wav", 200 * MB)
    conn = server.connection()
    conn.putrequest("POST", "/api/transcriptions")
    conn.putheader("Authorization", f"Bearer {key}")
    conn.putheader("Content-Type", "multipart/form-data; boundary=b0undary")
    conn.putheader("Content-Length", str(length))
    conn.endheaders()
    conn.send(head)
    for chunk in chunks:
        conn.send(chunk)
    conn.send(tail)
    response = conn.getresponse()
    answer = response.read()
    assert response.status == 201, answer

    peak = server.memory_kb("VmHWM")
    print(f"200 MB upload: server peak {peak // 1024} MB, {(peak - baseline) // 1024} MB above its baseline {baseline // 1024} MB")
    assert (peak - baseline) < 200 * 1024, f"peak {peak // 1024} MB, baseline {baseline // 1024} MB"
    row = Transcription.objects.get(pk=json.loads(answer)["transcriptionId"])
    assert (server.media / row.source).stat().st_size == 200 * MB  # stored whole, from the temporary file
