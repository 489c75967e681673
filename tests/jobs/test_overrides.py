"""Run-time overrides of a queue's concurrency and rate limit: validated, audited, and applied by running workers."""
from __future__ import annotations

import pytest

from jobs import services
from jobs.engine import overrides
from jobs.engine.worker import stale_before
from jobs.exceptions import InvalidInput
from jobs.models import AuditEntry, QueueState, WorkerHeartbeat
from tests import tools
from tests.jobs.engine_support import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_overrides_apply_over_the_declaration_and_clear_back_to_it() -> None:
    declared = overrides.effective("file-upload", max_age=0)
    assert (declared.concurrency, declared.rate_limit.max, declared.concurrency_overridden) == (5, 10, False)

    applied = services.set_overrides("file-upload", concurrency=2, rate_limit={"max": 0, "duration": 1}, source="cli")
    assert (applied.concurrency, applied.rate_limit, applied.concurrency_overridden, applied.rate_limit_overridden) == (2, None, True, True)
    applied = services.set_overrides("file-upload", concurrency=None, rate_limit={"max": 3, "duration": 2})
    assert (applied.concurrency, applied.rate_limit.max, applied.rate_limit.duration) == (5, 3, 2)
    assert services.set_overrides("file-upload", concurrency=None, rate_limit=None) == declared

    entries = list(AuditEntry.objects.filter(action="override").order_by("id"))
    assert [e.detail["after"]["concurrency"] for e in entries] == [2, None, None]
    assert entries[1].detail["before"] == {"concurrency": 2, "rate_limit": {"max": 0, "duration": 1}}
    assert entries[0].source == "cli"


@pytest.mark.parametrize(
    ("concurrency", "rate", "field"),
    [(0, None, "concurrency"), (overrides.MAX_CONCURRENCY + 1, None, "concurrency"), ("3", None, "concurrency"),
     (None, {"max": 5}, "rate_limit"), (None, {"max": 5, "duration": 0.5}, "rate_limit"), (None, {"max": -1, "duration": 1}, "rate_limit")],
)
def test_a_bad_override_is_refused_and_changes_nothing(concurrency: object, rate: object, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        services.set_overrides("default", concurrency=concurrency, rate_limit=rate)  # type: ignore[arg-type]
    assert field in refused.value.extra
    assert not QueueState.objects.filter(name="default", concurrency__isnull=False).exists()
    assert not AuditEntry.objects.filter(action="override").exists()


def _serving() -> int:
    return WorkerHeartbeat.objects.filter(stopped_at__isnull=True, last_seen__gte=stale_before()).count()


@pytest.mark.slow
def test_a_supervising_worker_starts_and_stops_processes_to_match_a_concurrency_override(worker_process) -> None:
    supervisor = worker_process("default", "--processes", "2")
    try:
        wait_for(lambda: _serving() == 2, timeout=60, what="two worker processes")
        services.set_overrides("default", concurrency=3, rate_limit=None)
        wait_for(lambda: _serving() == 3, timeout=60, what="a third process")
        services.set_overrides("default", concurrency=1, rate_limit=None)
        wait_for(lambda: _serving() == 1, timeout=60, what="two processes stopped")
        assert WorkerHeartbeat.objects.filter(stopped_at__isnull=False).count() == 2  # they stopped cleanly
        services.set_overrides("default", concurrency=None, rate_limit=None)
        wait_for(lambda: _serving() == 2, timeout=60, what="back to the two it started with")
    finally:
        tools.stop(supervisor)
    assert _serving() == 0


def test_a_running_threads_worker_takes_a_concurrency_override_without_a_restart(queues) -> None:
    import threading
    import time

    from django.db import connection

    from jobs.engine.threads import ThreadsWorker
    from jobs.models import Job
    from jobs.services import JobSpec

    queues(io={"mode": "threads", "concurrency": 3, "timeout": 30})
    jobs = [services.enqueue(JobSpec(type="sleep", payload={"seconds": 0.6}, queue="io"))[0] for _ in range(30)]
    before: list[int] = []

    def raise_it() -> None:
        before.append(Job.objects.filter(queue="io", status="completed").count())
        services.set_overrides("io", concurrency=8, rate_limit=None, source="cli")
        connection.close()

    timer = threading.Timer(1.5, raise_it)
    timer.start()
    worker = ThreadsWorker(["io"], threads=10)
    assert worker.limits == {"io": 3}
    assert worker.work(burst=True) == 0
    timer.join()
    assert worker.limits == {"io": 8}
    assert worker.most_at_once["io"] == 8  # never more than the override; the override reached a running worker
    assert Job.objects.filter(pk__in=[j.id for j in jobs], status="completed").count() == 30
    assert before and before[0] <= 9  # three at a time until the override: at most three rounds of three in 1.5 s


def test_a_rate_limit_override_holds_back_a_worker_whose_queue_declares_none(queues, burst) -> None:
    import time

    from jobs.models import Job
    from jobs.services import JobSpec

    queues(rated={"attempts": 1})
    ids = [services.enqueue(JobSpec(type="noop", payload={"i": i}, queue="rated"))[0].id for i in range(6)]
    services.set_overrides("rated", concurrency=None, rate_limit={"max": 2, "duration": 1})
    started = time.monotonic()
    burst("rated")
    took = time.monotonic() - started
    assert Job.objects.filter(pk__in=ids, status="completed").count() == 6
    assert took >= 1.9, took  # two a second: the third pair waits for the second window to pass
    starts = sorted(Job.objects.filter(pk__in=ids).values_list("started_at", flat=True))
    assert (starts[2] - starts[0]).total_seconds() >= 0.9 and (starts[4] - starts[2]).total_seconds() >= 0.9
