"""The hooks' outbox: each change reaches each hook at least once, in order per job, retried, swept, or stuck."""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable, Iterator

import pytest
from django.utils import timezone

from jobs import services
from jobs.engine import hooks, outbox
from jobs.models import HookDelivery, Job, JobEvent
from jobs.services import JobSpec
from tests.jobs.engine_support import wait_status

pytestmark = pytest.mark.django_db(transaction=True)


class Recorder:
    """A hook that records what it sees, and raises while `fail(change)` says so."""

    def __init__(self, name: str) -> None:
        self.name, self.seen, self.calls = name, [], 0
        self.fail: Callable[[hooks.JobChange], bool] = lambda change: False

    def __call__(self, change: hooks.JobChange) -> None:
        self.calls += 1
        if self.fail(change):
            raise RuntimeError(f"{self.name} refuses {change.event}")
        self.seen.append((change.job_id, change.event, change.event_id))

    def events(self, job_id: str) -> list[str]:
        return [e for j, e, _ in self.seen if j == job_id]


@pytest.fixture
def recorders() -> Iterator[tuple[Recorder, Recorder]]:
    flaky, steady = Recorder("test.flaky"), Recorder("test.steady")
    for r in (flaky, steady):
        hooks.register(r.name, r)
    yield flaky, steady
    for r in (flaky, steady):
        hooks.unregister(r.name)


def make_due() -> None:
    HookDelivery.objects.filter(done_at__isnull=True).update(next_at=timezone.now() - timedelta(seconds=1))


def test_every_hook_event_is_marked_delivered_once_its_hooks_ran(recorders: Any, burst: Any) -> None:
    flaky, steady = recorders
    job, _ = services.enqueue(JobSpec(type="echo", payload={"x": 1}))
    burst()
    assert steady.events(job.id) == ["created", "started", "completed"]
    assert not JobEvent.objects.filter(delivered=False).exists() and not HookDelivery.objects.exists()
    completed = [c for c in steady.seen if c[1] == "completed"][0]
    assert JobEvent.objects.get(id=completed[2]).data == {"result": {"echo": {"x": 1}}, "attempt": 1}  # what hooks need travels with the event


def test_a_failing_hook_is_retried_with_backoff_then_stuck_until_an_operator_retries(recorders: Any) -> None:
    flaky, steady = recorders
    flaky.fail = lambda change: True
    job, _ = services.enqueue(JobSpec(type="noop"))
    delivery = HookDelivery.objects.get()
    assert (delivery.consumer, delivery.attempts, delivery.stuck) == ("test.flaky", 1, False)
    assert delivery.next_at > timezone.now()  # backing off
    assert steady.events(job.id) == ["created"]  # the other hook is not held up

    for attempt in range(2, outbox.MAX_ATTEMPTS + 1):
        assert outbox.retry_due() == 0  # not due yet
        make_due()
        assert outbox.retry_due() == 1
        delivery.refresh_from_db()
        assert delivery.attempts == attempt
    assert delivery.stuck and "refuses created" in delivery.last_error
    make_due()
    assert outbox.retry_due() == 0  # stuck: left for an operator

    flaky.fail = lambda change: False
    assert outbox.retry_stuck([delivery.pk]) == 1
    assert outbox.retry_due() == 1
    delivery.refresh_from_db()
    assert delivery.done_at is not None and flaky.events(job.id) == ["created"] and steady.events(job.id) == ["created"]


def test_a_jobs_later_changes_wait_behind_a_hooks_open_delivery_and_arrive_in_order(recorders: Any, burst: Any) -> None:
    flaky, steady = recorders
    failed_once: set[str] = set()

    def first_created_fails(change: hooks.JobChange) -> bool:
        if change.event == "created" and change.job_id not in failed_once:
            failed_once.add(change.job_id)
            return True
        return False

    flaky.fail = first_created_fails
    job, _ = services.enqueue(JobSpec(type="noop"))
    burst()
    assert steady.events(job.id) == ["created", "started", "completed"]  # never held up by the other hook
    assert flaky.events(job.id) == []  # started and completed queued behind its failed created
    pending = list(HookDelivery.objects.filter(consumer="test.flaky").order_by("event_id").values_list("attempts", flat=True))
    assert pending == [1, 0, 0] and not JobEvent.objects.filter(delivered=False).exists()

    make_due()
    outbox.retry_due()
    assert flaky.events(job.id) == ["created", "started", "completed"]
    assert steady.events(job.id) == ["created", "started", "completed"]  # once each
    assert not HookDelivery.objects.filter(done_at__isnull=True).exists()


def test_the_sweep_delivers_in_order_and_queues_behind_a_failing_hook(recorders: Any) -> None:
    """Events left undelivered (their writer died) reach each hook in order; a hook failing on the first gets the rest after it."""
    flaky, steady = recorders
    job, _ = services.enqueue(JobSpec(type="noop"))
    JobEvent.objects.filter(job_id=job.id).update(delivered=False)  # as if the hooks had never run
    flaky.seen.clear()
    steady.seen.clear()
    services.cancel(job.id)  # a later change of the same job: blocked, left to the sweep
    assert steady.events(job.id) == [] and JobEvent.objects.filter(job_id=job.id, delivered=False).count() == 2

    failing = {"once": True}

    def created_fails_once(change: hooks.JobChange) -> bool:
        hit = failing["once"] and change.event == "created"
        failing["once"] = failing["once"] and not hit
        return hit

    flaky.fail = created_fails_once
    assert outbox.sweep(after=0) == 2
    assert steady.events(job.id) == ["created", "cancelled"]
    assert flaky.events(job.id) == []
    make_due()
    outbox.retry_due()
    assert flaky.events(job.id) == ["created", "cancelled"]


def test_a_change_whose_worker_died_before_its_hooks_is_swept(recorders: Any, worker_process: Any) -> None:
    """A worker killed between the commit of a job's completion and its hooks (JOBS_FAULT_POINT)."""
    flaky, steady = recorders
    job, _ = services.enqueue(JobSpec(type="echo", payload={"n": 7}))
    proc = worker_process("default", env={"JOBS_FAULT_POINT": "before-hooks:completed"})
    assert proc.wait(30) == 137
    assert Job.objects.get(pk=job.id).status == "completed"
    event = JobEvent.objects.get(job_id=job.id, to_status="completed")
    assert not event.delivered
    assert outbox.sweep(after=0) >= 1
    event.refresh_from_db()
    assert event.delivered
    assert ("completed", event.id) in [(e, i) for j, e, i in steady.seen if j == job.id]
    wait_status(job.id, "completed")


def test_an_operator_sees_a_stuck_delivery_in_the_console_and_retries_it(recorders: Any, admin_client: Any, admin_user: Any) -> None:
    from django.urls import reverse

    from jobs.models import AuditEntry

    flaky, steady = recorders
    flaky.fail = lambda change: True
    job, _ = services.enqueue(JobSpec(type="noop"))
    HookDelivery.objects.update(stuck=True, attempts=outbox.MAX_ATTEMPTS)
    url = reverse("admin:jobs_hookdelivery_changelist")
    page = admin_client.get(url, {"state": "stuck"}).content.decode()
    assert "test.flaky" in page and "refuses created" in page and job.id[:8] in page

    flaky.fail = lambda change: False
    delivery = HookDelivery.objects.get()
    admin_client.post(url, {"action": "retry_deliveries", "_selected_action": [delivery.pk]}, follow=True)
    delivery.refresh_from_db()
    assert (delivery.stuck, delivery.attempts) == (False, 0)
    assert AuditEntry.objects.get(action="hook_retry").actor == admin_user
    assert outbox.retry_due() == 1 and flaky.events(job.id) == ["created"]
