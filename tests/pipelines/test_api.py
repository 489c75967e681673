"""The pipelines REST API: project job paths (seed 2), /api/projects/, owners only, errors via the jobs handler."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.urls import resolve
from rest_framework.test import APIClient

from jobs.models import Job
from pipelines import apis, selectors

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.media]


def client_for(user: Any) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def create(client: APIClient, video: Path, **fields: Any) -> Any:
    with video.open("rb") as fh:
        return client.post("/api/projects/", {"file": fh, "sourceLanguage": "en", "targetLanguage": "fr", **fields}, format="multipart")


@pytest.mark.parametrize("path, view", [
    ("/api/jobs/project/0123456789abcdef0123456789abcdef", apis.ProjectJobsApi),
    ("/api/jobs/project/0123456789abcdef0123456789abcdef/current", apis.ProjectCurrentJobApi),
    ("/api/jobs/project/retry", apis.ProjectJobsApi),  # a project id never reaches the engine's /api/jobs/<id>/retry
    ("/api/jobs/project/cancel", apis.ProjectJobsApi),
])
def test_project_job_paths_resolve_to_the_pipeline_views(path, view) -> None:
    assert resolve(path).func.view_class is view


def test_create_show_and_the_project_job_endpoints(alice, bob, media, video, drain, provider) -> None:
    client = client_for(alice)
    r = create(client, video, premium="true")
    assert r.status_code == 201, r.json()
    body = r.json()
    pid = body["id"]
    assert (body["status"], body["currentStage"], body["premium"]) == ("running", "STT", True)
    assert [(s["stage"], s["status"]) for s in body["stageRuns"]] == [("STT", "waiting")]

    current = client.get(f"/api/jobs/project/{pid}/current")
    assert current.status_code == 200 and current.json()["queue"] == "stt"
    drain()
    assert client.get(f"/api/jobs/project/{pid}/current").status_code == 404

    r = client.post(f"/api/projects/{pid}/approve", {}, format="json")
    assert r.status_code == 200 and r.json()["currentStage"] == "MT"
    assert client.get(f"/api/jobs/project/{pid}/current").json()["queue"] == "mt"
    jobs = client.get(f"/api/jobs/project/{pid}").json()
    assert [j["queue"] for j in jobs] == ["stt", "mt"]  # oldest first
    assert [j["status"] for j in jobs] == ["completed", "waiting"]

    shown = client.get(f"/api/projects/{pid}").json()
    assert [s["stage"] for s in shown["stageRuns"]] == ["STT", "MT"]
    assert shown["stageRuns"][0]["reviews"][0]["decision"] == "approve"
    assert client.get("/api/projects/").json()["results"][0]["id"] == pid

    # Another user sees none of it: 404, never 403
    other = client_for(bob)
    for path in (f"/api/jobs/project/{pid}", f"/api/jobs/project/{pid}/current", f"/api/projects/{pid}"):
        r = other.get(path)
        assert r.status_code == 404 and set(r.json()) == {"message", "extra"}
    assert other.post(f"/api/projects/{pid}/approve", {}, format="json").status_code == 404
    assert other.get("/api/projects/").json()["results"] == []
    assert selectors.can_see(alice, pid) and not selectors.can_see(bob, pid)


def test_review_errors_and_an_edited_approval_over_http(alice, media, video, drain, provider) -> None:
    client = client_for(alice)
    pid = create(client, video).json()["id"]

    # Nothing awaits review yet: 409 with the project's status
    r = client.post(f"/api/projects/{pid}/approve", {}, format="json")
    assert r.status_code == 409 and r.json()["extra"] == {"projectId": pid, "status": "running"}
    drain()

    r = client.post(f"/api/projects/{pid}/reject", {}, format="json")
    assert r.status_code == 400 and "notes" in r.json()["extra"]
    r = client.post(f"/api/projects/{pid}/approve", {"output": ["not", "an", "object"]}, format="json")
    assert r.status_code == 400 and "output" in r.json()["extra"]

    edited = {"language": "en", "duration": 4.0, "segments": [{"start": 0.0, "end": 1.5, "text": "hello there"}]}
    r = client.post(f"/api/projects/{pid}/approve", {"output": edited}, format="json")
    assert r.status_code == 200
    assert r.json()["stageRuns"][1]["input"] == edited
    assert Job.objects.get(group_ref=pid, queue="mt").payload["stage"] == "MT"


def test_create_and_rerun_refuse_bad_input(alice, media, video) -> None:
    client = client_for(alice)
    r = create(client, video, sourceLanguage="english!")
    assert r.status_code == 400 and "sourceLanguage" in r.json()["extra"]
    assert not Job.objects.exists()

    pid = create(client, video).json()["id"]
    r = client.post(f"/api/projects/{pid}/rerun", {"stage": "LIP_SYNC"}, format="json")
    assert r.status_code == 400 and "stage" in r.json()["extra"]  # not a premium project
    r = client.post(f"/api/projects/{pid}/rerun", {"stage": "TTS"}, format="json")
    assert r.status_code == 409  # MT has no output to start from
    r = client.post(f"/api/projects/{pid}/rerun", {"stage": "NOPE"}, format="json")
    assert r.status_code == 400


def test_the_schema_documents_the_pipeline_paths(staff) -> None:
    schema = client_for(staff).get("/api/schema/", {"format": "json"}).json()
    for path in ("/api/jobs/project/{project_id}", "/api/jobs/project/{project_id}/current", "/api/projects/", "/api/projects/{project_id}/approve"):
        assert path in schema["paths"], path
