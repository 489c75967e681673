"""Who may call what (API.md): owners, other users (404), non-staff on queue operations (403), no credentials (401), API keys."""
from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.clients import bearer, key_client
from jobs import services
from jobs.api.auth import create_api_key
from jobs.engine import broker, lifecycle
from jobs.exceptions import PermanentError
from jobs.models import ApiKey, AuditEntry, Job, QueueState
from jobs.services import JobSpec

# Nothing here needs a job to reach a worker, so each test runs in one rolled-back transaction (fast).
pytestmark = pytest.mark.django_db

# Every endpoint of this issue; {job} is a job owned by alice (a failed, dead-lettered one where that matters).
JOB_ENDPOINTS = [
    ("get", "/api/jobs/{job}", None),
    ("post", "/api/jobs/{job}/retry", None),
    ("post", "/api/jobs/{job}/cancel", None),
    ("put", "/api/jobs/{job}/progress", {"progress": 50}),
    ("get", "/api/queue/job/{job}", None),
    ("post", "/api/queue/dead-letter/{job}/retry", None),
]
STAFF_ENDPOINTS = [
    ("post", "/api/queue/default/pause", None),
    ("post", "/api/queue/default/resume", None),
    ("post", "/api/queue/default/clean", {"status": "completed"}),
    ("post", "/api/queue/pause/default", None),
    ("post", "/api/queue/resume/default", None),
    ("post", "/api/queue/clean/default", {"status": "completed"}),
    ("get", "/v1/admin/queue/metrics?queue=default", None),
    ("get", "/v1/admin/queue/metrics/all", None),
    ("post", "/v1/admin/queue/pause?queue=default", None),
    ("post", "/v1/admin/queue/resume?queue=default", None),
    ("post", "/v1/admin/queue/clean?queue=default", None),
    ("get", "/api/queue/dead-letter/stats", None),
    ("get", "/metrics", None),
]
USER_ENDPOINTS = [
    ("get", "/api/queue/stats", None),
    ("get", "/api/queue/stats/default", None),
    ("get", "/api/queue/status", None),
    ("get", "/api/queue/status/default", None),
    ("get", "/api/queue/default/jobs", None),
    ("get", "/api/queue/health", None),
    ("get", "/api/jobs", None),
    ("post", "/api/jobs", {"type": "echo"}),
    ("get", "/api/queue/dead-letter/jobs", None),
]
ALL_ENDPOINTS = JOB_ENDPOINTS + STAFF_ENDPOINTS + USER_ENDPOINTS


def _id(endpoint: tuple[str, str, Any]) -> str:
    return f"{endpoint[0].upper()} {endpoint[1]}"


def session_client(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def dead_job(alice: Any) -> str:
    """A job of alice's that failed for good and sits in the dead letters (run by hand: no worker needed)."""
    job, _ = services.enqueue(JobSpec(type="fail", payload={"kind": "PERMANENT"}, owner=alice))
    claimed = lifecycle.claim(job.id, queue="default", worker="external-1")
    assert claimed is not None
    assert lifecycle.fail(claimed, worker="external-1", exc=PermanentError("bad input file")) == "failed"
    return job.id


def call(client: APIClient, endpoint: tuple[str, str, Any], job: str = "") -> Any:
    method, path, body = endpoint
    return getattr(client, method)(path.format(job=job), body, format="json")


@pytest.mark.parametrize("endpoint", ALL_ENDPOINTS, ids=_id)
def test_no_credentials_is_401(endpoint: tuple[str, str, Any], dead_job: str) -> None:
    response = call(APIClient(), endpoint, dead_job)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert set(response.json()) == {"message", "extra"}


@pytest.mark.parametrize("endpoint", ALL_ENDPOINTS, ids=_id)
def test_an_unknown_or_revoked_api_key_is_401(endpoint: tuple[str, str, Any], alice: Any, dead_job: str) -> None:
    key, raw = create_api_key(user=alice)
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    assert call(bearer(raw), endpoint, dead_job).status_code == 401
    assert call(bearer("jc_not-a-key"), endpoint, dead_job).status_code == 401


def test_an_inactive_users_key_is_401(alice: Any) -> None:
    client = key_client(alice)
    alice.is_active = False
    alice.save()
    assert client.get("/api/jobs").status_code == 401


@pytest.mark.parametrize("endpoint", STAFF_ENDPOINTS, ids=_id)
def test_non_staff_on_queue_operations_is_403_and_changes_nothing(endpoint: tuple[str, str, Any], alice: Any) -> None:
    for client in (key_client(alice), session_client(alice)):
        response = call(client, endpoint)
        assert response.status_code == 403
        assert set(response.json()) == {"message", "extra"}
    assert not QueueState.objects.exists() and not AuditEntry.objects.exists()
    assert not broker.paused_queues()


@pytest.mark.parametrize("endpoint", STAFF_ENDPOINTS, ids=_id)
def test_staff_may_run_queue_operations_by_session_or_api_key(endpoint: tuple[str, str, Any], staff: Any) -> None:
    for client in (session_client(staff), key_client(staff)):
        assert call(client, endpoint).status_code == 200


@pytest.mark.parametrize("endpoint", JOB_ENDPOINTS, ids=_id)
def test_another_users_job_is_404_never_403(endpoint: tuple[str, str, Any], bob: Any, dead_job: str) -> None:
    before = Job.objects.get(pk=dead_job)
    for client in (key_client(bob), session_client(bob)):
        response = call(client, endpoint, dead_job)
        assert response.status_code == 404
        assert set(response.json()) == {"message", "extra"}
    after = Job.objects.get(pk=dead_job)
    assert (after.status, after.progress, after.updated_at) == (before.status, before.progress, before.updated_at)
    assert Job.objects.count() == 1 and not AuditEntry.objects.exists()


@pytest.mark.parametrize("endpoint", JOB_ENDPOINTS, ids=_id)
def test_a_missing_job_is_404_like_another_users(endpoint: tuple[str, str, Any], alice: Any) -> None:
    assert call(key_client(alice), endpoint, "0" * 32).status_code == 404


def test_the_owner_may_use_every_job_endpoint(alice: Any, dead_job: str) -> None:
    client = key_client(alice)
    assert client.get(f"/api/jobs/{dead_job}").status_code == 200
    assert client.get(f"/api/queue/job/{dead_job}").status_code == 200
    assert client.post(f"/api/queue/dead-letter/{dead_job}/retry").status_code == 201
    assert client.post(f"/api/jobs/{dead_job}/retry").status_code == 200
    lifecycle.claim(dead_job, queue="default", worker="external-1")
    assert client.put(f"/api/jobs/{dead_job}/progress", {"progress": 30}, format="json").status_code == 200
    assert client.post(f"/api/jobs/{dead_job}/cancel").status_code == 200


def test_staff_sees_and_acts_on_anyones_job(staff: Any, dead_job: str) -> None:
    client = key_client(staff)
    assert client.get(f"/api/jobs/{dead_job}").status_code == 200
    assert client.post(f"/api/jobs/{dead_job}/retry").status_code == 200
    assert AuditEntry.objects.get(action="retry").actor == staff


def test_lists_hide_other_users_jobs(alice: Any, bob: Any, dead_job: str) -> None:
    client = key_client(bob)
    assert client.get("/api/jobs").json()["results"] == []
    assert client.get("/api/queue/default/jobs").json()["results"] == []
    assert client.get("/api/queue/dead-letter/jobs").json()["results"] == []
    assert [j["id"] for j in key_client(alice).get("/api/queue/default/jobs").json()["results"]] == [dead_job]


@pytest.mark.parametrize("endpoint", USER_ENDPOINTS, ids=_id)
def test_any_authenticated_user_may_read_queue_counts_and_their_lists(endpoint: tuple[str, str, Any], alice: Any) -> None:
    assert call(key_client(alice), endpoint).status_code in (200, 201)


def test_an_api_key_post_needs_no_csrf_token_but_a_session_post_does(alice: Any) -> None:
    _, raw = create_api_key(user=alice)
    keyed = APIClient(enforce_csrf_checks=True)
    keyed.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert keyed.post("/api/jobs", {"type": "echo"}, format="json").status_code == 201

    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.post("/api/jobs", {"type": "echo"}, format="json").status_code == 403
    assert Job.objects.count() == 1


def test_a_malformed_authorization_header_is_401(alice: Any) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer two parts")
    assert client.get("/api/jobs").status_code == 401


def test_a_key_records_when_it_was_last_used_without_writing_on_every_request(alice, django_assert_num_queries) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from jobs.api.auth import create_api_key, user_for_key
    from jobs.models import ApiKey

    key, raw = create_api_key(user=alice)
    assert user_for_key(raw) == alice
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # the lookup only: used a moment ago
        assert user_for_key(raw) == alice
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now() - timedelta(minutes=5))
    user_for_key(raw)
    assert ApiKey.objects.get(pk=key.pk).last_used_at > first
