"""manage.py commands do from a shell what the console does, through the same services."""
from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from jobs import services
from jobs.api.auth import user_for_key
from jobs.engine import broker
from jobs.models import AuditEntry, DeadLetter, Job, QueueState
from jobs.services import JobSpec

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_enqueue_count_then_worker_burst_completes_all() -> None:
    out = run("enqueue", "echo", "--payload", '{"n": 1}', "--count", "25", "--priority", "PAYG")
    assert "25/25" in out
    assert Job.objects.filter(type="echo", priority=10).count() == 25
    call_command("worker", "default", "--burst")
    assert Job.objects.filter(status="completed").count() == 25


def test_enqueue_rejects_bad_input_and_writes_nothing() -> None:
    with pytest.raises(CommandError, match="unknown job type"):
        run("enqueue", "no-such-type")
    with pytest.raises(CommandError, match="not JSON"):
        run("enqueue", "echo", "--payload", "{oops")
    with pytest.raises(CommandError, match="priority"):
        run("enqueue", "echo", "--priority", "URGENT")
    assert Job.objects.count() == 0
    assert broker.waiting_count("default") == 0


def test_queues_pause_resume_clean_and_stats_are_audited() -> None:
    run("queues", "pause", "default")
    assert QueueState.objects.get(name="default").paused
    assert "default" in broker.paused_queues()
    assert "paused" in run("queues", "stats")
    run("queues", "resume", "default")
    assert not QueueState.objects.get(name="default").paused
    services.enqueue(JobSpec(type="noop"))
    call_command("worker", "default", "--burst")
    out = run("queues", "clean", "default", "--grace", "0")
    assert "removed 1 completed" in out
    assert list(AuditEntry.objects.order_by("at").values_list("action", "source")) == [("pause", "cli"), ("resume", "cli"), ("clean", "cli")]
    with pytest.raises(CommandError, match="no queue"):
        run("queues", "pause", "nope")


def test_deadletters_list_and_retry_all() -> None:
    for _ in range(3):
        services.enqueue(JobSpec(type="fail", payload={"kind": "PERMANENT"}))
    call_command("worker", "default", "--burst")
    assert "3 open dead letters" in run("deadletters", "list")
    out = run("deadletters", "retry", "--all")
    assert "retried 3" in out
    assert DeadLetter.objects.filter(resolved_at__isnull=True).count() == 0
    assert Job.objects.filter(retry_of__isnull=False, status="waiting").count() == 3


def test_create_api_key_prints_a_working_key_once() -> None:
    user = get_user_model().objects.create_user("ann", password="x")
    raw = run("create_api_key", "ann").strip()
    assert user_for_key(raw) == user
    assert raw not in str(list(user.api_keys.values()))
    with pytest.raises(CommandError):
        run("create_api_key", "nobody")


def test_create_api_key_with_create_makes_a_plain_user_whose_key_enqueues() -> None:
    """The README's API quick start: a plain user and a key from a shell, then the API with that key."""
    from rest_framework.test import APIClient

    raw = run("create_api_key", "carol", "--create").strip()
    carol = get_user_model().objects.get(username="carol")
    assert not carol.is_staff and not carol.has_usable_password() and user_for_key(raw) == carol
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    created = client.post("/api/jobs", {"type": "echo", "payload": {"hello": "world"}}, format="json")
    assert created.status_code == 201
    assert client.get(f"/api/jobs/{created.json()['id']}").json()["status"] == "waiting"
    assert run("create_api_key", "carol", "--create").strip() != raw  # a second key for the same user


def test_reconcile_reports_what_it_requeued(clean_redis) -> None:
    services.enqueue(JobSpec(type="noop"))
    Job.objects.update(updated_at="2000-01-01T00:00:00Z")
    clean_redis.flushdb()
    assert "re-queued 1 waiting jobs" in run("reconcile")
    assert broker.waiting_count("default") == 1
