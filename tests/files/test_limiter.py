"""Seed 3's limiter: at most 10 jobs a second start on a file queue, across every worker."""
from __future__ import annotations

from typing import Any

import pytest

from jobs import services
from jobs.models import Job
from jobs.services import JobSpec
from tests.jobs.engine_support import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_twenty_jobs_cannot_start_within_one_second_across_two_workers(worker_process: Any) -> None:
    jobs = services.enqueue_many([JobSpec(type="file-delete", payload={"fileId": f"missing-{i}"}) for i in range(20)])
    ids = [j.id for j in jobs]
    worker_process("file-delete")
    worker_process("file-delete")
    wait_for(lambda: Job.objects.filter(pk__in=ids, status="completed").count() == 20, timeout=60, what="20 limited jobs")
    starts = sorted(Job.objects.filter(pk__in=ids).values_list("started_at", flat=True))
    assert (starts[-1] - starts[0]).total_seconds() >= 1.0  # 20 at 10 a second: the last starts a second or more after the first
    # No window of a second holds more than 10 starts. The limiter counts when a worker takes a job;
    # started_at is written a few milliseconds later, so the window checked is 0.9 s.
    offsets = [round((s - starts[0]).total_seconds(), 3) for s in starts]
    for i, first in enumerate(offsets):
        assert sum(1 for s in offsets[i:] if s - first < 0.9) <= 10, offsets
