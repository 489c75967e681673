"""Tasks (seed 5's task-processing): rows, and their sync to an Airtable-shaped provider served by a real HTTP server
on loopback, run by a real worker: skipped without a provider, synced once, refused (4xx), retried (5xx)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Iterator

import pytest

from assistant import todo
from assistant.exceptions import AssistantInputError
from assistant.models import Command, Task
from jobs import services as job_services
from jobs.engine import scheduler
from jobs.models import Job
from jobs.services import JobSpec
from tests.jobs.engine_support import make_due
from tests.net import http_server

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "pat-test-token"
DUE = datetime(2030, 12, 4, 15, 30, tzinfo=dt_timezone.utc)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Provider:
    """The fake Airtable: records each request and answers `script` in turn, then 200 with a record id."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    script: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
def provider(settings: Any) -> Iterator[Provider]:
    state = Provider()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            state.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw)))
            status, answer = state.script.pop(0) if state.script else (200, {"records": [{"id": f"rec{len(state.seen)}", "fields": {}}]})
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    with http_server(Handler) as base:
        state.url = f"{base}/v0/appTEST/Tasks"
        settings.TASKS_PROVIDER_URL, settings.TASKS_PROVIDER_TOKEN, settings.TASKS_PROVIDER_TIMEOUT = state.url, TOKEN, 2.0
        yield state


@pytest.fixture
def run_tasks(burst: Callable[..., Any]) -> Callable[[], None]:
    """Run the task-processing queue with a real worker until it is empty."""
    return lambda: burst("task-processing")


def retry_now(job: Job) -> None:
    """The retry's backoff, skipped: the job is made due and promoted as the scheduler would."""
    make_due(job.id)
    scheduler.promote_due()


# Creating tasks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("title", "says"), [("", "required"), ("   \n ", "required"), ("x" * 501, "at most 500 characters")])
def test_a_bad_title_is_refused_and_nothing_is_written(alice: Any, title: str, says: str) -> None:
    with pytest.raises(AssistantInputError) as caught:
        todo.create_task(owner=alice, title=title)
    assert caught.value.status_code == 400 and caught.value.extra == {"title": [says]}
    assert not Task.objects.exists() and not Job.objects.exists()


def test_a_task_of_a_command_is_synced_in_the_commands_group(alice: Any) -> None:
    command = Command.objects.create(owner=alice, conversation_id="conv", text="add a task")
    task, job = todo.create_task(owner=alice, title="  Renew the\nparking permit ", due_at=DUE, command=command)
    assert (task.title, task.due_at, task.command_id, task.sync_status) == ("Renew the parking permit", DUE, command.pk, "PENDING")
    assert (job.type, job.queue, job.payload, job.group_ref, job.owner_id) == ("assistant.sync_task", "task-processing", {"taskId": task.pk}, command.group_ref, alice.pk)
    assert todo.create_task(owner=alice, title="x" * 500)[1].group_ref is None


# Syncing ------------------------------------------------------------------------------------------


def test_without_a_provider_the_task_is_skipped_with_the_reason(alice: Any, settings: Any, run_tasks: Callable[[], None]) -> None:
    settings.TASKS_PROVIDER_URL = ""
    task, job = todo.create_task(owner=alice, title="Buy milk")
    run_tasks()
    task.refresh_from_db()
    job.refresh_from_db()
    assert (task.sync_status, task.sync_detail, task.provider_id) == ("SKIPPED", "no task provider configured (TASKS_PROVIDER_URL)", "")
    assert (job.status, job.result) == ("completed", {"taskId": task.pk, "syncStatus": "SKIPPED", "detail": todo.NOT_CONFIGURED})


def test_with_a_provider_the_task_is_posted_in_airtables_shape_once(alice: Any, provider: Provider, run_tasks: Callable[[], None]) -> None:
    task, job = todo.create_task(owner=alice, title="Book the venue", due_at=DUE)
    run_tasks()
    (seen,) = provider.seen
    assert (seen.method, seen.path) == ("POST", "/v0/appTEST/Tasks")
    assert seen.headers["authorization"] == f"Bearer {TOKEN}" and seen.headers["content-type"] == "application/json"
    assert seen.body == {"records": [{"fields": {"Name": "Book the venue", "Due": "2030-12-04T15:30:00+00:00", "Done": False, "TaskId": task.pk}}]}
    task.refresh_from_db()
    job.refresh_from_db()
    assert (task.sync_status, task.provider_id, task.sync_detail) == ("SYNCED", "rec1", "") and task.synced_at is not None
    assert job.result == {"taskId": task.pk, "syncStatus": "SYNCED", "providerId": "rec1"}

    again, _ = job_services.enqueue(JobSpec(type=todo.SYNC, payload={"taskId": task.pk}, owner=alice))
    run_tasks()
    again.refresh_from_db()
    assert (again.status, again.result) == ("completed", {"taskId": task.pk, "syncStatus": "SYNCED", "providerId": "rec1", "skipped": "already synced"})
    assert len(provider.seen) == 1


def test_a_task_without_a_due_time_leaves_due_out(alice: Any, provider: Provider, run_tasks: Callable[[], None]) -> None:
    task, _ = todo.create_task(owner=alice, title="Call Ana")
    run_tasks()
    assert provider.seen[0].body == {"records": [{"fields": {"Name": "Call Ana", "Done": False, "TaskId": task.pk}}]}


def test_a_4xx_fails_the_task_at_once_with_the_providers_reason(alice: Any, provider: Provider, run_tasks: Callable[[], None]) -> None:
    provider.script = [(422, {"error": {"type": "INVALID_VALUE_FOR_COLUMN", "message": "Field \"Due\" cannot accept the provided value"}})]
    task, job = todo.create_task(owner=alice, title="Book the venue", due_at=DUE)
    run_tasks()
    task.refresh_from_db()
    job.refresh_from_db()
    assert (job.status, job.attempts_made, job.error_kind) == ("failed", 1, "VALIDATION")
    assert task.sync_status == "FAILED" and task.sync_detail.startswith("task provider answered HTTP 422: ")
    assert "INVALID_VALUE_FOR_COLUMN" in task.sync_detail and len(provider.seen) == 1


def test_a_5xx_is_retried_and_the_task_is_synced_once(alice: Any, provider: Provider, run_tasks: Callable[[], None]) -> None:
    provider.script = [(503, {"error": "SERVICE_UNAVAILABLE"})]
    task, job = todo.create_task(owner=alice, title="Book the venue")
    run_tasks()
    task.refresh_from_db()
    job.refresh_from_db()
    assert (job.status, job.attempts_made, job.error_kind) == ("delayed", 1, "TRANSIENT")
    assert task.sync_status == "PENDING" and "HTTP 503" in task.sync_detail  # the reason shows while the engine retries

    retry_now(job)
    run_tasks()
    task.refresh_from_db()
    job.refresh_from_db()
    assert (job.status, job.attempts_made) == ("completed", 2)
    assert (task.sync_status, task.provider_id, task.sync_detail) == ("SYNCED", "rec2", "")
    assert [s.body for s in provider.seen] == [provider.seen[0].body] * 2  # the same record sent again, and only until it was taken


def test_a_provider_that_keeps_failing_leaves_the_task_failed_after_the_last_attempt(alice: Any, provider: Provider, run_tasks: Callable[[], None]) -> None:
    provider.script = [(500, {})] * 3
    task, job = todo.create_task(owner=alice, title="Book the venue")
    run_tasks()
    for _ in range(2):
        retry_now(job)
        run_tasks()
    task.refresh_from_db()
    job.refresh_from_db()
    assert (job.status, job.attempts_made, len(provider.seen)) == ("failed", 3, 3)
    assert task.sync_status == "FAILED" and "HTTP 500" in task.sync_detail


def test_an_unreachable_provider_is_retried(alice: Any, settings: Any, run_tasks: Callable[[], None]) -> None:
    from tests.net import free_port

    settings.TASKS_PROVIDER_URL = f"http://127.0.0.1:{free_port()}/v0/app/Tasks"
    task, job = todo.create_task(owner=alice, title="Book the venue")
    run_tasks()
    job.refresh_from_db()
    task.refresh_from_db()
    assert (job.status, job.error_kind) == ("delayed", "TRANSIENT") and task.sync_detail.startswith("task provider not reachable")


def test_sync_pending_enqueues_pending_failed_and_once_skipped_tasks_but_not_synced_or_waiting_ones(
    alice: Any, provider: Provider, burst: Callable[..., Any],
) -> None:
    rows = {s: Task.objects.create(owner=alice, title=s, sync_status=s) for s in ("PENDING", "FAILED", "SKIPPED", "SYNCED")}
    waiting = Task.objects.create(owner=alice, title="waiting")
    job_services.enqueue(JobSpec(type=todo.SYNC, payload={"taskId": waiting.pk}, owner=alice, delay=3600))
    hourly, _ = job_services.enqueue(JobSpec(type="assistant.sync_tasks"))
    burst("task-processing", max_jobs=1)  # the schedule's job only
    hourly.refresh_from_db()
    assert (hourly.status, hourly.result) == ("completed", {"tasks": 4, "enqueued": 3, "alreadyWaiting": 1})
    queued = Job.objects.filter(type=todo.SYNC, status="waiting").values_list("payload", flat=True)
    assert sorted(p["taskId"] for p in queued) == sorted(rows[s].pk for s in ("PENDING", "FAILED", "SKIPPED"))
