"""The REST API end to end: real PostgreSQL, real Redis, a real engine worker in burst mode."""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from jobs.engine import broker, lifecycle, registry
from jobs.models import AuditEntry, DeadLetter, Job, QueueState, WorkerHeartbeat

pytestmark = pytest.mark.django_db(transaction=True)

JOB_KEYS = {
    "id", "queue", "type", "status", "progress", "priority", "attemptsMade", "maxAttempts", "failedReason",
    "errorKind", "result", "payload", "createdAt", "startedAt", "completedAt", "runAt", "progressMessage",
}
STAT_KEYS = {"queue", "waiting", "active", "completed", "failed", "delayed", "paused", "cancelled", "total", "isPaused", "settings"}


@registry.task("api_test_private")
def _private(ctx: Any, payload: dict[str, Any]) -> None:
    """A job type that API clients may not enqueue."""


# -- fixtures -----------------------------------------------------------------------------------


def enqueue(client: APIClient, type: str = "echo", **body: Any) -> dict[str, Any]:
    response = client.post("/api/jobs", {"type": type, **body}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def redis_ids() -> set[str]:
    return broker.carried_ids("default")


# -- queues -------------------------------------------------------------------------------------


def test_stats_show_every_declared_queue_even_without_jobs(as_alice: APIClient, queues: Callable[..., None]) -> None:
    queues(media={"attempts": 2})
    body = as_alice.get("/api/queue/stats").json()
    assert set(body) >= {"default", "media"}
    media = body["media"]
    assert media.pop("settings")["attempts"] == 2  # the declaration as declared; tests/assistant checks every key
    assert media == {"queue": "media", "waiting": 0, "active": 0, "completed": 0, "failed": 0, "delayed": 0, "paused": 0, "cancelled": 0, "total": 0, "isPaused": False}


def test_stats_count_jobs_and_a_paused_queue_shows_waiting_as_paused(as_alice: APIClient, as_staff: APIClient) -> None:
    enqueue(as_alice, payload={"n": 1})
    enqueue(as_alice, payload={"n": 2})
    enqueue(as_alice, delay=60)
    one = as_alice.get("/api/queue/stats/default").json()
    assert set(one) == STAT_KEYS
    assert (one["waiting"], one["delayed"], one["paused"], one["total"], one["isPaused"]) == (2, 1, 0, 3, False)

    assert as_staff.post("/api/queue/default/pause").status_code == 200
    paused = as_alice.get("/api/queue/stats/default").json()
    assert (paused["waiting"], paused["paused"], paused["delayed"], paused["total"], paused["isPaused"]) == (0, 2, 1, 3, True)
    # Every path to the same numbers agrees.
    assert as_alice.get("/api/queue/stats").json()["default"] == paused
    assert as_alice.get("/api/queue/status").json()["default"] == paused
    assert as_alice.get("/api/queue/status/default").json() == paused
    assert as_staff.get("/v1/admin/queue/metrics?queue=default").json() == paused
    assert as_staff.get("/v1/admin/queue/metrics").json() == paused  # seed 4 without ?queue=: the default queue
    assert as_staff.get("/v1/admin/queue/metrics/all").json()["default"] == paused


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/queue/stats/nope"),
        ("get", "/api/queue/status/nope"),
        ("get", "/api/queue/nope/jobs"),
        ("post", "/api/queue/nope/pause"),
        ("post", "/api/queue/resume/nope"),
        ("post", "/api/queue/nope/clean"),
        ("get", "/v1/admin/queue/metrics?queue=nope"),
        ("post", "/v1/admin/queue/pause?queue=nope"),
    ],
)
def test_an_unknown_queue_is_404(as_staff: APIClient, method: str, path: str) -> None:
    response = getattr(as_staff, method)(path)
    assert response.status_code == 404
    assert set(response.json()) == {"message", "extra"}


def test_seed4_queue_actions_need_the_queue_parameter(as_staff: APIClient) -> None:
    response = as_staff.post("/v1/admin/queue/pause")
    assert response.status_code == 400
    assert "queue" in response.json()["extra"]
    assert not QueueState.objects.exists()


def test_queue_jobs_lists_filters_and_pages(as_alice: APIClient, as_staff: APIClient) -> None:
    ids = [enqueue(as_alice, payload={"n": i})["id"] for i in range(3)]
    delayed = enqueue(as_alice, delay=120)["id"]

    page = as_alice.get("/api/queue/default/jobs?status=waiting&limit=2&offset=0").json()
    assert [j["id"] for j in page["results"]] == [ids[2], ids[1]]
    assert page["next"] and "offset=2" in page["next"]
    rest = as_alice.get("/api/queue/default/jobs?status=waiting&limit=2&offset=2").json()
    assert [j["id"] for j in rest["results"]] == [ids[0]] and rest["next"] is None
    assert [j["id"] for j in as_alice.get("/api/queue/default/jobs?status=delayed").json()["results"]] == [delayed]
    assert len(as_alice.get("/api/queue/default/jobs").json()["results"]) == 4

    as_staff.post("/api/queue/default/pause")
    listed = as_alice.get("/api/queue/default/jobs?status=paused").json()["results"]
    assert sorted(j["id"] for j in listed) == sorted(ids)
    assert {j["status"] for j in listed} == {"paused"}
    # Outside queue listings the real status shows.
    assert as_alice.get(f"/api/jobs/{ids[0]}").json()["status"] == "waiting"

    bad = as_alice.get("/api/queue/default/jobs?status=sleeping")
    assert bad.status_code == 400 and "status" in bad.json()["extra"]


PAUSE_FAMILIES = {
    "seed2": ("/api/queue/default/pause", "/api/queue/default/resume"),
    "seed5": ("/api/queue/pause/default", "/api/queue/resume/default"),
    "seed4": ("/v1/admin/queue/pause?queue=default", "/v1/admin/queue/resume?queue=default"),
}


@pytest.mark.parametrize("family", sorted(PAUSE_FAMILIES))
def test_pause_and_resume_through_each_path_family(family: str, as_alice: APIClient, as_staff: APIClient, staff: Any, burst: Callable[..., Any]) -> None:
    pause, resume = PAUSE_FAMILIES[family]
    response = as_staff.post(pause)
    assert response.status_code == 200
    assert response.json()["queue"] == "default" and response.json()["isPaused"] is True
    assert QueueState.objects.get(name="default").paused
    assert "default" in broker.paused_queues()

    job = enqueue(as_alice)
    burst()
    assert Job.objects.get(pk=job["id"]).status == "waiting"  # workers take nothing from a paused queue

    response = as_staff.post(resume)
    assert response.status_code == 200 and response.json()["isPaused"] is False
    assert "default" not in broker.paused_queues()
    burst()
    assert as_alice.get(f"/api/jobs/{job['id']}").json()["status"] == "completed"

    actions = list(AuditEntry.objects.order_by("at").values_list("action", "queue", "actor", "source"))
    assert actions == [("pause", "default", staff.pk, "api"), ("resume", "default", staff.pk, "api")]


CLEAN_PATHS = ["/api/queue/default/clean", "/api/queue/clean/default", "/v1/admin/queue/clean?queue=default"]


@pytest.mark.parametrize("path", CLEAN_PATHS)
def test_clean_removes_old_completed_jobs(path: str, as_alice: APIClient, as_staff: APIClient, staff: Any, burst: Callable[..., Any]) -> None:
    ids = [enqueue(as_alice, payload={"n": i})["id"] for i in range(3)]
    burst()
    assert Job.objects.filter(status="completed").count() == 3
    Job.objects.filter(pk__in=ids[:2]).update(completed_at=timezone.now() - timedelta(hours=2))

    response = as_staff.post(path, {"status": "completed", "grace": 3600000, "limit": 100}, format="json")
    assert response.status_code == 200
    assert response.json() == {"removed": 2}
    assert list(Job.objects.values_list("id", flat=True)) == [ids[2]]
    assert as_staff.get("/api/queue/stats/default").json()["completed"] == 1
    entry = AuditEntry.objects.get(action="clean")
    assert (entry.actor_id, entry.source, entry.count, sorted(entry.job_ids)) == (staff.pk, "api", 2, sorted(ids[:2]))


def test_clean_honours_limit_and_defaults(as_alice: APIClient, as_staff: APIClient, burst: Callable[..., Any]) -> None:
    for i in range(3):
        enqueue(as_alice, payload={"n": i})
    burst()
    Job.objects.update(completed_at=timezone.now() - timedelta(minutes=1))
    assert as_staff.post("/api/queue/default/clean", {"limit": 1}, format="json").json() == {"removed": 1}
    assert as_staff.post("/api/queue/default/clean", {}, format="json").json() == {"removed": 2}  # completed, grace 0


@pytest.mark.parametrize(
    ("body", "field"),
    [({"status": "waiting"}, "status"), ({"grace": -1}, "grace"), ({"limit": 0}, "limit"), ({"grace": "an hour"}, "grace")],
)
def test_clean_rejects_bad_input(as_staff: APIClient, body: dict[str, Any], field: str) -> None:
    response = as_staff.post("/api/queue/default/clean", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["extra"]
    assert not AuditEntry.objects.exists()


def test_health_reports_redis_database_workers_and_queues(as_alice: APIClient) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(name="w1", hostname="h", pid=1, queues=["default"], started_at=now, last_seen=now)
    WorkerHeartbeat.objects.create(name="gone", hostname="h", pid=2, queues=["default"], started_at=now, last_seen=now - timedelta(hours=1))
    enqueue(as_alice)
    response = as_alice.get("/api/queue/health")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["redis"], body["database"]) == ("ok", "connected", "connected")
    assert body["workers"]["alive"] == 1 and [w["name"] for w in body["workers"]["items"]] == ["w1"]
    assert body["queues"]["default"]["waiting"] == 1


def test_health_is_503_when_redis_is_down(as_alice: APIClient, settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = as_alice.get("/api/queue/health")
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["redis"], body["database"]) == ("degraded", "disconnected", "connected")
    assert "default" in body["queues"]


# -- jobs ---------------------------------------------------------------------------------------


def test_enqueue_run_and_read_back(as_alice: APIClient, alice: Any, burst: Callable[..., Any]) -> None:
    created = enqueue(as_alice, payload={"text": "hi"}, priority="PAYG")
    assert JOB_KEYS <= set(created)
    assert (created["type"], created["queue"], created["status"], created["priority"], created["attemptsMade"]) == ("echo", "default", "waiting", 10, 0)
    assert Job.objects.get(pk=created["id"]).owner == alice
    assert created["id"] in redis_ids()

    burst()
    job = as_alice.get(f"/api/jobs/{created['id']}").json()
    assert (job["status"], job["progress"], job["attemptsMade"], job["failedReason"]) == ("completed", 100, 1, None)
    assert job["result"] == {"echo": {"text": "hi"}}
    assert job["startedAt"] and job["completedAt"]

    state = as_alice.get(f"/api/queue/job/{created['id']}").json()
    assert state == {"jobId": created["id"], "state": "completed", "progress": 100, "result": {"echo": {"text": "hi"}}, "failedReason": None}


def test_enqueue_with_delay_is_delayed_and_not_in_redis(as_alice: APIClient) -> None:
    job = enqueue(as_alice, delay=30, priority=7)
    assert job["status"] == "delayed" and job["runAt"] and job["priority"] == 7
    assert job["id"] not in redis_ids()


def test_an_idempotency_key_returns_the_first_job(as_alice: APIClient, as_bob: APIClient) -> None:
    first = as_alice.post("/api/jobs", {"type": "echo", "payload": {"n": 1}, "idempotencyKey": "order-42"}, format="json")
    again = as_alice.post("/api/jobs", {"type": "echo", "payload": {"n": 2}, "idempotencyKey": "order-42"}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["payload"] == {"n": 1}
    assert Job.objects.count() == 1 and len(redis_ids()) == 1
    # Keys are per caller: another user's same key is another job, never the first caller's.
    other = as_bob.post("/api/jobs", {"type": "echo", "idempotencyKey": "order-42"}, format="json")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"payload": {}}, "type"),
        ({"type": "no-such-type"}, "type"),
        ({"type": "api_test_private"}, "type"),
        ({"type": "echo", "payload": [1, 2]}, "payload"),
        ({"type": "echo", "payload": "text"}, "payload"),
        ({"type": "echo", "priority": "URGENT"}, "priority"),
        ({"type": "echo", "priority": 1000}, "priority"),
        ({"type": "echo", "priority": True}, "priority"),
        ({"type": "echo", "delay": -1}, "delay"),
        ({"type": "echo", "delay": "soon"}, "delay"),
        ({"type": "echo", "idempotencyKey": ""}, "idempotencyKey"),
        ({"type": "echo", "idempotencyKey": "k" * 151}, "idempotencyKey"),
    ],
)
def test_bad_input_is_400_and_nothing_is_enqueued(as_alice: APIClient, clean_redis: Any, body: dict[str, Any], field: str) -> None:
    response = as_alice.post("/api/jobs", body, format="json")
    assert response.status_code == 400, response.json()
    payload = response.json()
    assert set(payload) == {"message", "extra"}
    assert field in payload["extra"] and isinstance(payload["extra"][field], list)
    assert Job.objects.count() == 0
    assert broker.waiting_count("default") == 0 and not clean_redis.keys("rq:job:*")


def test_every_rule_an_enqueue_breaks_is_named_at_once(as_alice: APIClient) -> None:
    """The enqueue service checks a request once, for every field (the serializer only reads its shape)."""
    body = {"type": "echo", "payload": [1], "priority": "URGENT", "delay": -5, "idempotencyKey": ""}
    response = as_alice.post("/api/jobs", body, format="json")
    assert response.status_code == 400
    assert set(response.json()["extra"]) == {"payload", "priority", "delay", "idempotencyKey"}
    response = as_alice.post("/api/jobs", {"type": "api_test_private"}, format="json")
    assert response.json()["extra"] == {"type": ["job type 'api_test_private' is not open to API clients"]}
    assert Job.objects.count() == 0


def test_malformed_json_is_400(as_alice: APIClient) -> None:
    response = as_alice.generic("POST", "/api/jobs", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()) == {"message", "extra"}
    assert Job.objects.count() == 0


def test_list_shows_the_callers_jobs_newest_first_and_filters(as_alice: APIClient, as_bob: APIClient, as_staff: APIClient, burst: Callable[..., Any]) -> None:
    a1 = enqueue(as_alice)["id"]
    a2 = enqueue(as_alice, type="noop")["id"]
    b1 = enqueue(as_bob)["id"]
    burst()
    a3 = enqueue(as_alice)["id"]

    assert [j["id"] for j in as_alice.get("/api/jobs").json()["results"]] == [a3, a2, a1]
    assert [j["id"] for j in as_bob.get("/api/jobs").json()["results"]] == [b1]
    assert [j["id"] for j in as_staff.get("/api/jobs").json()["results"]] == [a3, b1, a2, a1]
    assert [j["id"] for j in as_alice.get("/api/jobs?status=completed").json()["results"]] == [a2, a1]
    assert [j["id"] for j in as_alice.get("/api/jobs?type=noop").json()["results"]] == [a2]
    assert [j["id"] for j in as_alice.get("/api/jobs?queue=default&status=waiting").json()["results"]] == [a3]
    page = as_alice.get("/api/jobs?limit=1&offset=1").json()
    assert [j["id"] for j in page["results"]] == [a2] and page["next"] and page["previous"]
    for field, bad in (("status", "sleeping"), ("queue", "nope")):
        response = as_alice.get(f"/api/jobs?{field}={bad}")
        assert response.status_code == 400 and field in response.json()["extra"]


def test_retry_and_cancel_through_the_api(as_alice: APIClient, alice: Any, burst: Callable[..., Any]) -> None:
    job = enqueue(as_alice, type="fail", payload={"kind": "PERMANENT"})
    burst()
    failed = as_alice.get(f"/api/jobs/{job['id']}").json()
    assert (failed["status"], failed["errorKind"], failed["attemptsMade"]) == ("failed", "PERMANENT", 1)

    retried = as_alice.post(f"/api/jobs/{job['id']}/retry")
    assert retried.status_code == 200
    assert (retried.json()["status"], retried.json()["attemptsMade"], retried.json()["failedReason"]) == ("waiting", 0, None)
    assert job["id"] in redis_ids()

    cancelled = as_alice.post(f"/api/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert job["id"] not in redis_ids()

    conflict = as_alice.post(f"/api/jobs/{job['id']}/cancel")
    assert conflict.status_code == 409
    assert conflict.json()["extra"]["status"] == "cancelled"

    assert list(AuditEntry.objects.order_by("at").values_list("action", "actor", "source")) == [("retry", alice.pk, "api"), ("cancel", alice.pk, "api")]


def test_cancel_an_active_job_asks_it_to_stop(as_alice: APIClient) -> None:
    job = enqueue(as_alice, type="sleep")
    lifecycle.claim(job["id"], queue="default", worker="external-1")
    response = as_alice.post(f"/api/jobs/{job['id']}/cancel")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["cancelRequested"]) == ("active", True)


def test_retry_a_completed_job_is_409(as_alice: APIClient, burst: Callable[..., Any]) -> None:
    job = enqueue(as_alice)
    burst()
    response = as_alice.post(f"/api/jobs/{job['id']}/retry")
    assert response.status_code == 409
    assert set(response.json()) == {"message", "extra"}


def test_progress_of_an_active_job(as_alice: APIClient) -> None:
    job = enqueue(as_alice, type="sleep")
    waiting = as_alice.put(f"/api/jobs/{job['id']}/progress", {"progress": 10}, format="json")
    assert waiting.status_code == 409  # only an active job reports progress

    lifecycle.claim(job["id"], queue="default", worker="external-1")
    response = as_alice.put(f"/api/jobs/{job['id']}/progress", {"progress": 50, "message": "half"}, format="json")
    assert response.status_code == 200
    assert (response.json()["progress"], response.json()["status"]) == (50, "active")
    stored = Job.objects.get(pk=job["id"])
    assert (stored.progress, stored.progress_message) == (50, "half")
    assert as_alice.get(f"/api/queue/job/{job['id']}").json()["progress"] == 50

    for bad in ({"progress": 150}, {"progress": -1}, {"progress": "half"}, {}):
        response = as_alice.put(f"/api/jobs/{job['id']}/progress", bad, format="json")
        assert response.status_code == 400 and "progress" in response.json()["extra"]
    assert Job.objects.get(pk=job["id"]).progress == 50


# -- dead letters -------------------------------------------------------------------------------


def test_dead_letters_list_stats_and_retry(as_alice: APIClient, as_bob: APIClient, as_staff: APIClient, alice: Any, burst: Callable[..., Any]) -> None:
    dead = enqueue(as_alice, type="fail", payload={"kind": "PERMANENT", "message": "bad file"})
    enqueue(as_bob, type="fail", payload={"kind": "VALIDATION"})
    enqueue(as_alice)
    burst()

    mine = as_alice.get("/api/queue/dead-letter/jobs").json()["results"]
    assert [d["jobId"] for d in mine] == [dead["id"]]
    assert (mine[0]["errorKind"], mine[0]["reason"], mine[0]["type"], mine[0]["payload"]["kind"]) == ("PERMANENT", "bad file", "fail", "PERMANENT")
    assert len(as_staff.get("/api/queue/dead-letter/jobs").json()["results"]) == 2
    assert [d["errorKind"] for d in as_staff.get("/api/queue/dead-letter/jobs?errorKind=VALIDATION").json()["results"]] == ["VALIDATION"]

    stats = as_staff.get("/api/queue/dead-letter/stats").json()
    assert stats == {"total": 2, "byQueue": {"default": 2}, "byErrorKind": {"PERMANENT": 1, "VALIDATION": 1}}

    response = as_alice.post(f"/api/queue/dead-letter/{dead['id']}/retry")
    assert response.status_code == 201
    new_id = response.json()["jobId"]
    assert new_id != dead["id"] and set(response.json()) == {"jobId"}
    new = Job.objects.get(pk=new_id)
    assert (new.type, new.payload, new.owner, new.status, new.retry_of_id) == ("fail", dead["payload"], alice, "waiting", dead["id"])
    assert new_id in redis_ids()
    assert DeadLetter.objects.get(job_id=dead["id"]).resolution == "retried"
    assert as_alice.get("/api/queue/dead-letter/jobs").json()["results"] == []
    assert as_staff.get("/api/queue/dead-letter/stats").json()["total"] == 1
    assert AuditEntry.objects.filter(action="dlq_retry", actor=alice, source="api").count() == 1

    assert as_alice.post(f"/api/queue/dead-letter/{dead['id']}/retry").status_code == 404  # already retried


# -- the error shape ----------------------------------------------------------------------------


def test_nested_validation_errors_are_flattened_to_field_lists() -> None:
    from jobs.api.errors import _flatten

    assert _flatten({"a": {"b": ["bad"]}, "c": ["worse"]}) == {"a.b": ["bad"], "c": ["worse"]}
    assert _flatten(["not an object"]) == {"non_field_errors": ["not an object"]}
    assert _flatten({"items": [{"x": ["no"]}, {}]}) == {"items.0.x": ["no"]}
