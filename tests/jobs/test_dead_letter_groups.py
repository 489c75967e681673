"""Dead letters grouped by error fingerprint (jobs.deadletters): the fingerprint a worker writes, the groups' figures,
a group or a filter retried and discarded in chunks and audited once, the CLI, and the backfill migration."""
from __future__ import annotations

import importlib
from io import StringIO
from types import SimpleNamespace
from typing import Any, Callable

import pytest
from django.apps import apps as django_apps
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

from jobs import deadletters, services
from jobs.deadletters import LetterFilter
from jobs.engine import bulk
from jobs.exceptions import Forbidden, InvalidInput, NotFound
from jobs.models import AuditEntry, DeadLetter, Job
from jobs.services import JobSpec

pytestmark = pytest.mark.django_db(transaction=True)


def dead(burst: Callable[..., Any], *messages: str, queue: str = "default", kind: str = "PERMANENT") -> list[Job]:
    """Jobs that a real worker failed for good with these messages (so a worker wrote their letters)."""
    jobs = [services.enqueue(JobSpec(type="fail", queue=queue, payload={"kind": kind, "message": m}))[0] for m in messages]
    burst(queue)
    assert DeadLetter.objects.filter(job__in=jobs, resolved_at__isnull=True).count() == len(jobs)
    return jobs


def letter(job: Job) -> DeadLetter:
    return DeadLetter.objects.get(job=job)


def test_a_worker_writes_each_letters_fingerprint_and_signature(burst: Callable[..., Any]) -> None:
    rows = dead(burst, "bad row 17 in /data/a.csv", "bad row 9 in /data/other/b.csv", "disk full")
    first, second, other = (letter(j) for j in rows)
    assert first.fingerprint == second.fingerprint != other.fingerprint
    assert len(first.fingerprint) == 16
    assert first.signature == "JobError: bad row <n> in <path> @ samples.py in fail"  # the task's frame, not the engine's
    assert other.signature == "JobError: disk full @ samples.py in fail"


def test_groups_count_first_and_last_seen_queues_and_the_latest_letter(burst: Callable[..., Any], queues: Any) -> None:
    queues(media={"attempts": 1})
    rows = dead(burst, "bad row 1", "bad row 2") + dead(burst, "bad row 3", queue="media") + dead(burst, "disk full")
    resolved = dead(burst, "bad row 4")[0]
    services.discard_dead_letters([resolved.id], actor=None)
    with CaptureQueriesContext(connection) as queries:
        found = deadletters.groups()
    assert len(queries) == 3  # groups, their queues, the samples: whatever the numbers
    big, small = found
    letters = [letter(j) for j in rows[:3]]
    assert (big.fingerprint, big.count, big.queues) == (letters[0].fingerprint, 3, {"default": 2, "media": 1})
    assert big.signature == "JobError: bad row <n> @ samples.py in fail"
    assert (big.first_seen, big.last_seen) == (min(x.created_at for x in letters), max(x.created_at for x in letters))
    assert big.sample.job_id == rows[2].id and "Traceback (most recent call last)" in big.sample.job.traceback
    assert (small.count, small.queues, small.sample.reason) == (1, {"default": 1}, "disk full")
    assert [(g.count, g.queues) for g in deadletters.groups(queue="media")] == [(1, {"media": 1})]
    assert deadletters.groups(error_kind="VALIDATION") == []
    with pytest.raises(InvalidInput) as bad:
        deadletters.groups(error_kind="nonsense")
    assert "errorKind" in bad.value.extra


def test_a_group_is_retried_in_chunks_as_new_jobs_and_audited_once(burst: Callable[..., Any], staff: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(bulk, "CHUNK", 2)  # five letters: three chunks, each its own transaction
    rows = dead(burst, *(f"bad row {i}" for i in range(5)))
    (other,) = dead(burst, "disk full")
    fp = letter(rows[0]).fingerprint
    seen: list[int] = []
    retried, skipped = deadletters.retry_group(fp, actor=staff, source="api", progress=seen.append)
    assert set(retried) == {j.id for j in rows} and skipped == {} and seen == [2, 2, 1]
    for job in rows:
        new = Job.objects.get(pk=retried[job.id])
        assert (new.type, new.payload, new.retry_of_id, new.status) == (job.type, job.payload, job.id, "waiting")
        assert (letter(job).resolution, letter(job).retry_job_id) == ("retried", new.id)
    assert letter(other).resolved_at is None  # another group is left alone
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.source, entry.count) == ("dlq_retry_group", staff, "api", 5)
    assert entry.detail == {"fingerprint": fp, "signature": "JobError: bad row <n> @ samples.py in fail", "retried": 5, "skipped": 0}
    assert sorted(entry.job_ids) == sorted(j.id for j in rows)
    with pytest.raises(NotFound):  # a second click: nothing open in the group any more
        deadletters.retry_group(fp, actor=staff)
    assert AuditEntry.objects.count() == 1


def test_a_group_is_discarded_in_chunks_and_audited_once(burst: Callable[..., Any], staff: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(bulk, "CHUNK", 2)
    rows = dead(burst, "bad row 1", "bad row 2", "bad row 3")
    fp = letter(rows[0]).fingerprint
    assert deadletters.discard_group(fp, actor=staff, source="cli") == 3
    assert {letter(j).resolution for j in rows} == {"discarded"}
    assert set(Job.objects.filter(pk__in=[j.id for j in rows]).values_list("status", flat=True)) == {"failed"}  # kept for the record
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.count, entry.source, entry.detail["fingerprint"], entry.detail["discarded"]) == ("dlq_discard_group", 3, "cli", fp, 3)


def test_all_open_letters_matching_a_filter(burst: Callable[..., Any], staff: Any, queues: Any) -> None:
    queues(media={"attempts": 1})
    media = dead(burst, "bad row 1", "disk full", queue="media")
    plain = dead(burst, "bad row 2")
    invalid = dead(burst, "bad input", kind="VALIDATION")
    retried, _ = deadletters.retry_matching(LetterFilter(queue="media"), actor=staff)
    assert set(retried) == {j.id for j in media}
    assert deadletters.discard_matching(LetterFilter(error_kind="VALIDATION"), actor=staff) == 1
    assert letter(invalid[0]).resolution == "discarded" and letter(plain[0]).resolved_at is None
    entries = list(AuditEntry.objects.order_by("at").values_list("action", "queue", "count", "detail"))
    assert entries == [
        ("dlq_retry_matching", "media", 2, {"queue": "media", "retried": 2, "skipped": 0}),
        ("dlq_discard_matching", "", 1, {"errorKind": "VALIDATION", "discarded": 1}),
    ]
    with pytest.raises(InvalidInput):
        deadletters.retry_matching(LetterFilter(fingerprint="not-hex"), actor=staff)


def test_a_non_operator_is_refused_and_nothing_changes(burst: Callable[..., Any], alice: Any) -> None:
    rows = dead(burst, "bad row 1")
    fp = letter(rows[0]).fingerprint
    with pytest.raises(Forbidden):
        deadletters.retry_group(fp, actor=alice)
    with pytest.raises(Forbidden):
        deadletters.discard_matching(LetterFilter(), actor=alice)
    assert letter(rows[0]).resolved_at is None and not AuditEntry.objects.exists()


# -- manage.py deadletters ----------------------------------------------------------------------


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_cli_lists_groups_and_retries_or_discards_one(burst: Callable[..., Any]) -> None:
    rows = dead(burst, "bad row 1", "bad row 2")
    (other,) = dead(burst, "disk full")
    fp, other_fp = letter(rows[0]).fingerprint, letter(other).fingerprint
    out = run("deadletters", "groups")
    assert "3 open dead letters in 2 groups" in out
    assert f"{fp}        2" in out and "[default 2]  JobError: bad row <n> @ samples.py in fail" in out
    assert "2 open dead letters" in run("deadletters", "list", "--group", fp)
    assert "retried 2 dead letters" in run("deadletters", "retry", "--group", fp)
    assert Job.objects.filter(retry_of__in=rows).count() == 2
    assert "discarded 1 dead letters" in run("deadletters", "discard", "--group", other_fp)
    assert list(AuditEntry.objects.order_by("at").values_list("action", "source", "count")) == [("dlq_retry_group", "cli", 2), ("dlq_discard_group", "cli", 1)]
    with pytest.raises(CommandError, match="no open dead letters"):
        run("deadletters", "retry", "--group", fp)


# -- the backfill migration ---------------------------------------------------------------------

MIGRATION = importlib.import_module("jobs.migrations.0007_deadletter_fingerprint")


def test_the_backfill_fingerprints_existing_letters_from_their_jobs(burst: Callable[..., Any], monkeypatch: Any) -> None:
    rows = dead(burst, "bad row 1", "bad row 2", "disk full")
    written = {j.id: (letter(j).fingerprint, letter(j).signature) for j in rows}
    hand = services.enqueue(JobSpec(type="noop"))[0]  # a letter whose job kept no error (retried in place): its own reason
    Job.objects.filter(pk=hand.pk).update(status="failed")
    DeadLetter.objects.create(job=hand, queue="default", error_kind="PERMANENT", reason="bad row 5")
    DeadLetter.objects.update(fingerprint="", signature="")
    monkeypatch.setattr(MIGRATION, "CHUNK", 2)  # four letters: two chunks
    MIGRATION.backfill(django_apps, SimpleNamespace(connection=connection))
    assert {j.id: (letter(j).fingerprint, letter(j).signature) for j in rows} == written  # as the worker wrote them
    assert letter(hand).signature == "Error: bad row <n>"
    assert not DeadLetter.objects.filter(fingerprint="").exists()


def test_the_migration_adds_the_fields_and_index_and_backfills_on_the_way_up(burst: Callable[..., Any]) -> None:
    (job,) = dead(burst, "bad row 1")
    expected = letter(job).fingerprint
    executor = MigrationExecutor(connection)
    executor.migrate([("jobs", "0006_console_history")])
    with connection.cursor() as cursor:
        columns = {c.name for c in connection.introspection.get_table_description(cursor, "jobs_deadletter")}
    assert "fingerprint" not in columns
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert letter(job).fingerprint == expected
    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, "jobs_deadletter")
    assert indexes["deadletter_open_fp"]["columns"] == ["fingerprint", "queue", "created_at", "id"]
