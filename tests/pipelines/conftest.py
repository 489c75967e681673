"""Fixtures for pipelines: temporary media storage, a real HTTP provider on loopback, a generated video."""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from pipelines import services
from pipelines.models import Project
from tests import tools
from tests.jobs.engine_support import drainer
from tests.net import http_server

STAGE_QUEUES = ("stt", "mt", "tts", "muxing", "lip-sync")
SPEECH = "Please send the weekly report to the team."


@dataclass
class Provider:
    """A provider on loopback that 'translates' by uppercasing and lip-syncs by answering the input video's key."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_with: int | None = None


@pytest.fixture
def provider(settings: Any) -> Iterator[Provider]:
    """A real HTTP provider in a thread, configured as PIPELINES_PROVIDER_URL."""
    state = Provider()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(body)
            if state.fail_with:
                self.send_response(state.fail_with)
                self.end_headers()
                return
            if body["task"] == "translate":
                answer: dict[str, Any] = {"segments": [{**s, "text": s["text"].upper()} for s in body["segments"]]}
            else:
                answer = {"videoKey": body["video"]}
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    with http_server(Handler) as base:
        state.url = base + "/provider"
        settings.PIPELINES_PROVIDER_URL = state.url
        yield state


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    """Local filesystem storage in a temporary directory."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    return Path(settings.MEDIA_ROOT)


@pytest.fixture(scope="session")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 s test-pattern video whose audio track is espeak-ng speaking SPEECH."""
    tools.require("ffmpeg", "espeak-ng", why="the pipelines tests make a video with speech")
    folder = tmp_path_factory.mktemp("video")
    speech = folder / "speech.wav"
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(speech), SPEECH], check=True, capture_output=True)
    out = folder / "talk.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=4:size=160x120:rate=10", "-i", str(speech),
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-af", "apad", "-t", "4", str(out)],
        check=True, capture_output=True,
    )
    return out


def upload_of(path: Path) -> SimpleUploadedFile:
    return SimpleUploadedFile(path.name, path.read_bytes(), content_type="video/mp4")


@pytest.fixture
def make_project(media: Path, video: Path) -> Callable[..., Project]:
    """create_project for a user, from the generated video unless told otherwise."""

    def make(owner: Any, *, premium: bool = False, path: Path | None = None, target: str = "fr") -> Project:
        return services.create_project(owner=owner, upload=upload_of(path or video), upload_name=(path or video).name, source_language="en", target_language=target, premium=premium)

    return make


@pytest.fixture
def drain(burst: Callable[..., Any]) -> Callable[[], None]:
    """Run the stage queues in burst mode until no project job is pending (a stage may enqueue the next)."""
    return drainer(burst, tuple(STAGE_QUEUES))


def ffprobe_streams(path: Path) -> list[str]:
    """The codec types of a media file's streams, e.g. ["video", "audio"]."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", str(path)], check=True, capture_output=True, text=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]
