"""Seed 5's eight queues: declared with the seed's settings, visible in /api/queue/status, cleaned with {status, grace, limit}."""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from jobs import services
from jobs.engine import registry
from jobs.models import Job
from jobs.services import JobSpec
from tests.assistant.conftest import ASSISTANT_QUEUES
from tests.jobs.engine_support import task_type

pytestmark = pytest.mark.django_db(transaction=True)

#: Seed 5's priorities (1 Critical ... 4 Low, lower first) as the engine's levels (higher first), and its concurrency.
SEED = {
    "voice-processing": ("CRITICAL", 5), "ai-processing": ("CRITICAL", 5), "transcription": ("HIGH", 3), "synthesis": ("HIGH", 3),
    "email-processing": ("NORMAL", 10), "calendar-sync": ("NORMAL", 10), "task-processing": ("LOW", 5), "notification": ("LOW", 20),
}


def test_the_eight_queues_answer_status_with_the_seed_settings(as_alice: APIClient) -> None:
    every = as_alice.get("/api/queue/status").json()
    for name in ASSISTANT_QUEUES:
        one = as_alice.get(f"/api/queue/status/{name}").json()
        assert one == every[name]
        s = one["settings"]
        assert (s["priorityLevel"], s["concurrency"]) == SEED[name], name
        if name != "transcription":  # seed 1's queue keeps its own retries and retention
            assert (s["attempts"], s["backoff"]) == (3, {"type": "exponential", "delay": 2000, "factor": 2.0}), name
            assert (s["removeOnComplete"], s["removeOnFail"]) == ({"age": 3600, "count": 100}, {"age": 86400}), name
        assert s["mode"] == ("processes" if name in ("ai-processing", "transcription") else "threads"), name
        assert s["timeout"] > 0
        assert {k: one[k] for k in ("waiting", "active", "completed", "failed", "delayed", "paused")} == dict.fromkeys(
            ("waiting", "active", "completed", "failed", "delayed", "paused"), 0)


@pytest.mark.parametrize("queue", ASSISTANT_QUEUES)
def test_clean_with_status_grace_and_limit_on_each_queue(queue: str, as_alice: APIClient, as_staff: APIClient, burst: Callable[..., Any]) -> None:
    with task_type(f"test.noop.{queue}", lambda ctx, payload: None, queue=queue):
        ids = [services.enqueue(JobSpec(type=f"test.noop.{queue}", payload={"n": i}))[0].id for i in range(4)]
        burst(queue)
    assert Job.objects.filter(status="completed").count() == 4
    Job.objects.filter(pk__in=ids[:3]).update(completed_at=timezone.now() - timedelta(hours=2))
    answer = as_staff.post(f"/api/queue/clean/{queue}", {"status": "completed", "grace": 3600000, "limit": 2}, format="json")
    assert answer.status_code == 200 and answer.json() == {"removed": 2}
    assert as_staff.post(f"/api/queue/clean/{queue}", {"status": "completed", "grace": 3600000, "limit": 100}, format="json").json() == {"removed": 1}
    assert list(Job.objects.values_list("id", flat=True)) == [ids[3]]  # inside the grace: kept
    assert as_alice.post(f"/api/queue/clean/{queue}", {"status": "completed"}, format="json").status_code == 403


def test_pause_and_resume_on_the_seed_paths(as_staff: APIClient) -> None:
    assert as_staff.post("/api/queue/pause/notification").status_code == 200
    assert as_staff.get("/api/queue/status/notification").json()["isPaused"] is True
    assert as_staff.post("/api/queue/resume/notification").status_code == 200
    assert as_staff.get("/api/queue/status/notification").json()["isPaused"] is False


def test_a_job_without_a_priority_gets_its_queue_priority() -> None:
    assert registry.get("assistant.notify").queue == "notification"
    job, _ = services.enqueue(JobSpec(type="assistant.voice_command", payload={"commandId": "x"}))
    explicit, _ = services.enqueue(JobSpec(type="assistant.voice_command", payload={"commandId": "y"}, priority="LOW"))
    assert (job.priority, explicit.priority) == (20, 1)


def test_the_seed_recurring_jobs_ship_disabled_with_the_seed_crons() -> None:
    import importlib

    from django.apps import apps

    from jobs.models import Schedule

    # The data migration's function (the rows it wrote at migrate time are gone after the first transactional test).
    importlib.import_module("assistant.migrations.0002_seed_schedules").add(apps, None)
    rows = {s.name: s for s in Schedule.objects.filter(name__startswith="assistant.")}
    assert {n: (s.cron, s.enabled, s.next_fire_at) for n, s in rows.items()} == {
        "assistant.email-sync": ("0 */30 * * * *", False, None),
        "assistant.calendar-sync": ("0 */15 * * * *", False, None),
        "assistant.task-sync": ("0 0 */1 * * *", False, None),
    }
    assert all(registry.get(s.job_type) for s in rows.values())
    enabled = services.set_schedule_enabled(rows["assistant.calendar-sync"].pk, enabled=True)
    assert enabled.next_fire_at is not None and enabled.next_fire_at.minute % 15 == 0 and enabled.next_fire_at.second == 0
