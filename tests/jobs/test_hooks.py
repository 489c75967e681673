"""Hooks run in order after the change commits, with what happened to the job."""
from __future__ import annotations

from typing import Iterator

import pytest
from django.db import transaction

from jobs import services
from jobs.engine import hooks
from jobs.models import Job
from jobs.services import JobSpec

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def seen() -> Iterator[list[tuple[str, str, str]]]:
    log: list[tuple[str, str, str]] = []

    def first(change: hooks.JobChange) -> None:
        # Runs after commit: the row is visible with the status the hook is told about.
        assert Job.objects.get(pk=change.job_id).status == change.status
        log.append(("first", change.event, change.status))

    def broken(change: hooks.JobChange) -> None:
        raise RuntimeError("a failing hook must not stop the others")

    def last(change: hooks.JobChange) -> None:
        log.append(("last", change.event, change.status))

    for h in (first, broken, last):
        hooks.register(f"test.{h.__name__}", h)
    yield log
    for h in (first, broken, last):
        hooks.unregister(f"test.{h.__name__}")


def test_hooks_see_each_change_in_order(seen, burst) -> None:
    services.enqueue(JobSpec(type="sleep", payload={"seconds": 0.01, "steps": 2}))
    burst()
    events = [e for who, e, _ in seen if who == "first"]
    assert events == ["created", "started", "progress", "progress", "completed"]
    assert [e for who, e, _ in seen if who == "last"] == events


def test_hooks_wait_for_the_outer_transaction(seen) -> None:
    with transaction.atomic():
        services.enqueue(JobSpec(type="noop"))
        assert seen == []
    assert seen[0][1:] == ("created", "waiting")


def test_failure_and_retry_are_told(seen, burst) -> None:
    job, _ = services.enqueue(JobSpec(type="fail", payload={"kind": "PERMANENT"}))
    burst()
    services.retry(job.id)
    assert [e for who, e, _ in seen if who == "first"] == ["created", "started", "failed", "retried"]
