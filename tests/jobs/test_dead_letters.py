"""Dead letters retried and discarded in bulk: one service call, chunked, each letter resolved once."""
from __future__ import annotations

from typing import Any, Callable

import pytest

from jobs import services
from jobs.engine import bulk, registry
from jobs.exceptions import NotFound
from jobs.models import AuditEntry, DeadLetter, Job
from jobs.services import JobSpec

pytestmark = pytest.mark.django_db(transaction=True)


def dead(burst: Callable[..., Any], n: int, **spec: Any) -> list[Job]:
    jobs = [services.enqueue(JobSpec(type="fail", payload={"kind": "PERMANENT", "i": i}, **spec))[0] for i in range(n)]
    burst()
    assert DeadLetter.objects.filter(job__in=jobs, resolved_at__isnull=True).count() == n
    return jobs


def test_retry_in_chunks_resolves_each_letter_once_and_audits_once(burst: Callable[..., Any], staff: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(bulk, "CHUNK", 2)  # five letters: three chunks, each its own transaction
    jobs = dead(burst, 5)
    seen: list[int] = []
    retried, skipped = services.retry_dead_letters([j.id for j in jobs] + ["no-such-job"], actor=staff, progress=seen.append)
    assert set(retried) == {j.id for j in jobs} and list(skipped) == ["no-such-job"]
    assert seen == [2, 2, 2]
    for job in jobs:
        new = Job.objects.get(pk=retried[job.id])
        assert (new.type, new.payload, new.retry_of_id, new.status) == (job.type, job.payload, job.id, "waiting")
        assert DeadLetter.objects.get(job=job).retry_job_id == new.id
    entry = AuditEntry.objects.get(action="dlq_retry")
    assert (entry.actor, entry.queue, entry.detail) == (staff, "default", {"retried": 5, "skipped": 1})

    again, skipped = services.retry_dead_letters([j.id for j in jobs], actor=staff)  # a second click retries nothing
    assert again == {} and set(skipped) == {j.id for j in jobs}
    assert Job.objects.filter(retry_of__isnull=False).count() == 5 and AuditEntry.objects.filter(action="dlq_retry").count() == 1


def test_a_letter_whose_type_is_gone_is_skipped_with_the_reason(burst: Callable[..., Any], staff: Any) -> None:
    registry.task("test.gone")(lambda ctx, payload: None)
    gone = services.enqueue(JobSpec(type="test.gone"))[0]
    Job.objects.filter(pk=gone.pk).update(status="failed")
    DeadLetter.objects.create(job=gone, queue=gone.queue, error_kind="PERMANENT", reason="x")
    registry._TYPES.pop("test.gone")
    kept = dead(burst, 1)[0]
    retried, skipped = services.retry_dead_letters([gone.id, kept.id], actor=staff)
    assert list(retried) == [kept.id]
    assert "unknown job type 'test.gone'" in skipped[gone.id]
    assert DeadLetter.objects.get(job=gone).resolved_at is None  # still open: nothing was retried


def test_one_letter_through_the_api_path_is_404_for_another_user(burst: Callable[..., Any], alice: Any, bob: Any) -> None:
    job = dead(burst, 1, owner=alice)[0]
    with pytest.raises(NotFound):
        services.retry_dead_letter(job.id, user=bob)
    assert services.retry_dead_letter(job.id, user=alice).retry_of_id == job.id


def test_discard_in_chunks(burst: Callable[..., Any], staff: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(bulk, "CHUNK", 2)
    jobs = dead(burst, 3)
    assert services.discard_dead_letters((j.id for j in jobs), actor=staff) == 3
    assert services.discard_dead_letters([j.id for j in jobs], actor=staff) == 0
    assert set(DeadLetter.objects.values_list("resolution", flat=True)) == {"discarded"}
    assert AuditEntry.objects.get(action="dlq_discard").count == 3
