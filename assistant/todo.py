"""Tasks (seed 5's task-processing queue): rows made by commands or the API, sent to an external provider over
HTTP when settings.TASKS_PROVIDER_URL is set (the seed's Airtable, in its create-records shape), and marked
SKIPPED with the reason when it is not, so a reader of the row knows why nothing left.

Sending is at most once per task as far as this side can tell: the task's row is locked while it is sent,
and a task already SYNCED is not sent again. The provider has no idempotency key, so an answer lost on
the wire (a timeout after the provider stored the record) can still make a duplicate there on the retry.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from assistant.exceptions import AssistantInputError
from assistant.models import Command, Task, group_ref_of
from jobs import selectors as job_selectors
from jobs import services as job_services
from jobs.access import User
from jobs.exceptions import ErrorKind, JobError, PermanentError
from jobs.models import Job
from jobs.services import JobSpec
from jobs.tasks import JobContext

SYNC = "assistant.sync_task"
TITLE_MAX = 500
NOT_CONFIGURED = "no task provider configured (TASKS_PROVIDER_URL)"
#: How much of a provider's error answer is kept in sync_detail (Airtable's say which field it refused).
DETAIL_BODY = 300


class ProviderRefused(PermanentError):
    """The provider answered 4xx (or redirected): it will not take the task as sent, and no retry helps."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, kind=ErrorKind.VALIDATION)
        self.status = status


class ProviderUnavailable(JobError):
    """A timeout, connection error, 429 or 5xx: the task is sent again with the queue's backoff."""


# Writes -------------------------------------------------------------------------------------------


def create_task(*, owner: User, title: str, due_at: datetime | None = None, command: Command | None = None) -> tuple[Task, Job]:
    """Write the task and enqueue its sync job (in the command's group when a command made it)."""
    clean = " ".join(str(title or "").split())
    if not clean or len(clean) > TITLE_MAX:
        raise AssistantInputError("invalid task", extra={"title": ["required" if not clean else f"at most {TITLE_MAX} characters"]})
    if due_at is not None and timezone.is_naive(due_at):
        due_at = timezone.make_aware(due_at)  # a due time without a zone is the assistant's (settings.TIME_ZONE)
    with transaction.atomic():
        task = Task.objects.create(owner=owner, command=command, title=clean, due_at=due_at)
        job, _ = job_services.enqueue(_spec(task, owner=owner, group_ref=group_ref_of(command)))
    return task, job


def _spec(task: Task, *, owner: User, group_ref: str | None = None) -> JobSpec:
    return JobSpec(type=SYNC, payload={"taskId": task.pk}, owner=owner, group_ref=group_ref)


def sync_pending(ctx: JobContext) -> dict[str, Any]:
    """Job: sync every task still PENDING or FAILED (seed 5's hourly schedule), skipping those whose sync still waits.

    With a provider configured, SKIPPED tasks are sent too: they were skipped only for want of one.
    """
    wanted = [Task.Sync.PENDING, Task.Sync.FAILED] + ([Task.Sync.SKIPPED] if settings.TASKS_PROVIDER_URL else [])
    tasks = list(Task.objects.filter(sync_status__in=wanted).select_related("owner", "command").order_by("created_at"))
    # Racy on purpose: the row lock in sync_task keeps a second job from sending twice.
    waiting = job_selectors.not_started(SYNC, key="taskId", values=[t.pk for t in tasks])
    specs = [_spec(t, owner=t.owner, group_ref=group_ref_of(t.command)) for t in tasks if t.pk not in waiting]
    jobs = job_services.enqueue_many(specs) if specs else []
    return {"tasks": len(tasks), "enqueued": len(jobs), "alreadyWaiting": len(waiting)}



# The sync job -------------------------------------------------------------------------------------


def sync_task(ctx: JobContext, *, task_id: str) -> dict[str, Any]:
    """Job: send one task to the provider, or mark it SKIPPED with the reason when none is configured."""
    if not settings.TASKS_PROVIDER_URL:
        Task.objects.filter(pk=task_id).exclude(sync_status=Task.Sync.SYNCED).update(sync_status=Task.Sync.SKIPPED, sync_detail=NOT_CONFIGURED)
        return {"taskId": task_id, "syncStatus": Task.Sync.SKIPPED, "detail": NOT_CONFIGURED}
    ctx.progress(20, "sending to the task provider")
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(pk=task_id).first()
        if task is None:
            return {"taskId": task_id, "skipped": "the task was removed"}
        if task.sync_status == Task.Sync.SYNCED:
            return {"taskId": task.pk, "syncStatus": task.sync_status, "providerId": task.provider_id, "skipped": "already synced"}
        try:
            provider_id = send(task)
        except (ProviderRefused, ProviderUnavailable) as exc:
            last_try = isinstance(exc, ProviderRefused) or ctx.attempt >= ctx.max_attempts
            _record(task, Task.Sync.FAILED if last_try else Task.Sync.PENDING, str(exc))
            failure: JobError = exc
        else:
            detail = "" if provider_id else "the provider answered without a record id"
            _record(task, Task.Sync.SYNCED, detail, provider_id=provider_id, synced_at=timezone.now())
            return {"taskId": task.pk, "syncStatus": Task.Sync.SYNCED, "providerId": provider_id}
    raise failure  # after the commit: the row keeps the reason while the engine retries or gives up


def _record(task: Task, status: str, detail: str, **fields: Any) -> None:
    Task.objects.filter(pk=task.pk).update(sync_status=status, sync_detail=detail[:5000], **fields)


# The provider (urllib, as pipelines/provider.py) ---------------------------------------------------


def body_for(task: Task) -> dict[str, Any]:
    """Airtable's create-records body for one task; Due is left out when the task has none."""
    fields: dict[str, Any] = {"Name": task.title, "Done": task.done, "TaskId": task.pk}
    if task.due_at is not None:
        fields["Due"] = task.due_at.isoformat()
    return {"records": [{"fields": fields}]}


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would repeat a redirected POST as a GET without its body; a redirect is an error instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def send(task: Task) -> str:
    """POST the task to settings.TASKS_PROVIDER_URL; the provider's record id ("" if it gave none).

    2xx: sent. 429, 5xx, timeouts and connection errors: ProviderUnavailable (retried). Other answers: ProviderRefused.
    """
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if settings.TASKS_PROVIDER_TOKEN:
        headers["Authorization"] = f"Bearer {settings.TASKS_PROVIDER_TOKEN}"
    request = urllib.request.Request(settings.TASKS_PROVIDER_URL, data=json.dumps(body_for(task)).encode(), method="POST", headers=headers)
    try:
        with _OPENER.open(request, timeout=settings.TASKS_PROVIDER_TIMEOUT) as response:
            raw = response.read(1024 * 1024)
    except urllib.error.HTTPError as exc:
        raise _refusal(exc) from exc
    except TimeoutError as exc:
        raise ProviderUnavailable(f"task provider did not answer within {settings.TASKS_PROVIDER_TIMEOUT:g}s", kind=ErrorKind.TIMEOUT) from exc
    except (urllib.error.URLError, ConnectionError) as exc:
        raise ProviderUnavailable(f"task provider not reachable: {getattr(exc, 'reason', exc)}", kind=ErrorKind.TRANSIENT) from exc
    return _record_id(raw)


def _refusal(exc: urllib.error.HTTPError) -> JobError:
    """An HTTP error answer as the error to raise, with the start of the provider's explanation."""
    said = exc.read(DETAIL_BODY).decode("utf-8", "replace").strip()
    message = f"task provider answered HTTP {exc.code}" + (f": {said}" if said else "")
    if exc.code == 429 or exc.code >= 500:
        return ProviderUnavailable(message, kind=ErrorKind.TRANSIENT, retry_after=_seconds(exc.headers.get("Retry-After")))
    return ProviderRefused(message, status=exc.code)


def _record_id(raw: bytes) -> str:
    """records[0].id of Airtable's answer; a 2xx without one still means the provider took the task."""
    try:
        records = json.loads(raw).get("records") or []
        return str(records[0].get("id") or "")[:200] if records and isinstance(records[0], dict) else ""
    except (ValueError, AttributeError):
        return ""


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: the queue's backoff is used
