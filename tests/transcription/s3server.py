"""Pytest fixtures: moto's real S3-compatible HTTP server on loopback, and settings that point storage at it.

The server is `moto.server.ThreadedMotoServer`, a WSGI server speaking the S3 REST API over HTTP on
127.0.0.1 and a free port: boto3 and django-storages talk to it exactly as to S3 (no in-process patch).
Import the fixtures into a test module: `from tests.transcription.s3server import s3_server, s3_storage`.
"""
from __future__ import annotations

import dataclasses
import uuid
from typing import Any, Iterator

import pytest
from django.core.files.storage import default_storage
from moto.server import ThreadedMotoServer

from tests.net import free_port
from config.env import Env
from config.settings import ENV, build_storages
from transcription import s3


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The endpoint URL of a moto S3 server on 127.0.0.1 (port chosen by the OS), for the whole session."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_env(*, endpoint: str, bucket: str, timeout: float = 5.0) -> Env:
    """The environment of a deployment that stores in `bucket` at `endpoint` (moto takes any credentials)."""
    return dataclasses.replace(
        ENV,
        storage="s3",
        s3_bucket=bucket,
        s3_endpoint_url=endpoint,
        s3_region="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        storage_timeout=timeout,
    )


def use_s3(settings: Any, *, endpoint: str, bucket: str, timeout: float = 5.0) -> None:
    """Point settings.STORAGES at S3 through config.settings.build_storages, as a deployment would."""
    settings.STORAGES = build_storages(s3_env(endpoint=endpoint, bucket=bucket, timeout=timeout))
    settings.STORAGE_TIMEOUT = timeout


@pytest.fixture
def s3_storage(settings: Any, s3_server: str) -> str:
    """Default storage on the moto server, in a new bucket of this test's own; returns the bucket name."""
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    use_s3(settings, endpoint=s3_server, bucket=bucket)
    s3.create_bucket(default_storage)  # type: ignore[arg-type]
    return bucket


@pytest.fixture
def s3_settings(settings: Any, s3_server: str) -> str:
    """Settings that store on the moto server in a bucket that is never created: for policy checks that send no request."""
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    use_s3(settings, endpoint=s3_server, bucket=bucket)
    return bucket


closed_port = free_port
