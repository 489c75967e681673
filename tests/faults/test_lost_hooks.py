"""A worker killed between a stage job's commit and its hooks: the scheduler's sweep still advances the project and
publishes the events (needs ffmpeg, espeak-ng and Whisper for the dubbing project's first stage).

The events are read as a browser reads them: a WebSocket client of the web server, subscribed to the project."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest
from django.conf import settings
from websockets.sync.client import connect

from jobs.api.auth import create_api_key
from jobs.models import Job, JobEvent
from launcher import web
from pipelines.models import Project
from tests.faults.conftest import ROOT, Fleet, free_port, main_db_url, wait_until
from tests.pipelines.conftest import make_project, media, video  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.media]


def test_a_worker_killed_before_its_hooks_still_advances_the_project_and_publishes_the_events(
    alice: Any, make_project: Callable[..., Project], media: Path, fleet: Callable[..., Fleet]  # noqa: F811
) -> None:
    project = make_project(alice)  # its STT job waits on the stt queue
    stt = Job.objects.get(group_ref=project.id)
    env = {"DATABASE_URL": main_db_url(), "REDIS_URL": settings.REDIS_URL, "MEDIA_ROOT": str(media), "STORAGE": "local"}

    worker = fleet(**env, JOBS_FAULT_POINT="before-hooks:completed").start("worker", "stt")
    assert worker.wait(300) == 137  # it exited at the fault point: the completion is committed, its hooks never ran
    assert Project.objects.get(pk=project.id).status == "running"
    assert not JobEvent.objects.get(job_id=stt.id, to_status="completed").delivered

    # A browser's view: a WebSocket client of the web server, subscribed to the project before the sweep runs.
    port = free_port()
    site = fleet(**env)
    site.procs.append(subprocess.Popen(web.command("127.0.0.1", port, access_log=False), cwd=ROOT, env=site.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    key = create_api_key(user=alice)[1]
    socket = wait_until(lambda: _connect(f"ws://127.0.0.1:{port}/ws/events?api_key={key}"), timeout=30, what="the web server to accept")
    with socket:
        socket.send(json.dumps({"action": "subscribe", "topic": "project", "id": project.id}))
        assert json.loads(socket.recv(timeout=10))["type"] == "subscribed"
        fleet(**env).scheduler()  # its sweep finds the completion that nobody delivered
        events: list[dict[str, Any]] = []
        while not any(e["type"] == "stage_ready_for_review" for e in events):
            events.append(json.loads(socket.recv(timeout=60)))

    completed = JobEvent.objects.get(job_id=stt.id, to_status="completed")
    assert completed.delivered
    assert Job.objects.get(pk=stt.id).status == "completed"
    wait_until(lambda: Project.objects.get(pk=project.id).status == "awaiting_review", timeout=10, what="the project to move")
    types = [e["type"] for e in events]
    assert "job_completed" in types and types.index("job_completed") < types.index("stage_ready_for_review")
    assert [e["eventId"] for e in events if e["type"] == "job_completed"] == [completed.id]


def _connect(url: str) -> Any:
    try:
        return connect(url, open_timeout=2)
    except OSError:
        return None
