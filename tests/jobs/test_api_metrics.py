"""GET /metrics: Prometheus text from the engine's folded stats; staff, or the configured bearer token."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from jobs import services
from jobs.api.auth import create_api_key
from jobs.engine import lifecycle
from jobs.exceptions import PermanentError
from jobs.models import WorkerHeartbeat
from jobs.services import JobSpec

pytestmark = pytest.mark.django_db

PROMETHEUS_ACCEPT = "application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"


@pytest.fixture
def staff() -> Any:
    return get_user_model().objects.create_user("ops", is_staff=True)


@pytest.fixture
def alice() -> Any:
    return get_user_model().objects.create_user("alice")


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_show_jobs_per_queue_and_status_paused_queues_dead_letters_and_workers(staff: Any, alice: Any, queues: Any) -> None:
    queues(media={})
    for _ in range(2):
        services.enqueue(JobSpec(type="echo", owner=alice))
    dead, _ = services.enqueue(JobSpec(type="fail", owner=alice))
    claimed = lifecycle.claim(dead.id, queue="default", worker="w1")
    assert claimed is not None
    lifecycle.fail(claimed, worker="w1", exc=PermanentError("no"))
    services.set_paused("media", paused=True, actor=staff)
    now = timezone.now()
    WorkerHeartbeat.objects.create(name="w1", hostname="h", pid=1, queues=["default"], started_at=now, last_seen=now, jobs_done=7)
    WorkerHeartbeat.objects.create(name="w0", hostname="h", pid=2, queues=["default"], started_at=now, last_seen=now - timedelta(hours=1))

    client = APIClient()
    client.force_login(staff)
    response = client.get("/metrics", HTTP_ACCEPT=PROMETHEUS_ACCEPT)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    got = samples(response.content.decode())
    assert got[("jobconsole_queue_jobs", (("queue", "default"), ("status", "waiting")))] == 2
    assert got[("jobconsole_queue_jobs", (("queue", "default"), ("status", "failed")))] == 1
    assert got[("jobconsole_queue_jobs", (("queue", "media"), ("status", "waiting")))] == 0  # declared, no jobs
    assert got[("jobconsole_queue_paused", (("queue", "media"),))] == 1
    assert got[("jobconsole_queue_paused", (("queue", "default"),))] == 0
    assert got[("jobconsole_dead_letters", (("queue", "default"),))] == 1
    assert got[("jobconsole_workers_alive", ())] == 1
    assert got[("jobconsole_worker_jobs_done", (("worker", "w1"),))] == 7


def test_metrics_accept_a_plain_text_accept_header(staff: Any) -> None:
    client = bearer(create_api_key(user=staff)[1])
    assert client.get("/metrics", HTTP_ACCEPT="text/plain").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_the_metrics_token_lets_a_scraper_in(settings: Any) -> None:
    settings.METRICS_TOKEN = "scrape-me-0123456789"
    response = bearer("scrape-me-0123456789").get("/metrics", HTTP_ACCEPT=PROMETHEUS_ACCEPT)
    assert response.status_code == 200
    assert b"jobconsole_queue_jobs" in response.content
    assert bearer("scrape-me-wrong").get("/metrics").status_code == 401
    # The token opens /metrics only.
    assert bearer("scrape-me-0123456789").get("/api/queue/stats").status_code == 401


def test_without_a_configured_token_no_bearer_value_opens_metrics(settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    assert bearer("").get("/metrics").status_code == 401
    assert bearer("anything").get("/metrics").status_code == 401


def test_metrics_are_staff_only(alice: Any) -> None:
    response = APIClient().get("/metrics")
    assert response.status_code == 401 and response.json()["message"]
    assert bearer(create_api_key(user=alice)[1]).get("/metrics").status_code == 403
    client = APIClient()
    client.force_login(alice)
    assert client.get("/metrics").status_code == 403
