"""The engine's reads for the API and the console: queue stats, job lists, dead letters, health.

Queue counts come from jobs.engine.stats.counts() (folded events), never from COUNT(*) over the jobs table.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from django.conf import settings
from django.db import connection
from django.db.models import Count, QuerySet

from jobs import access
from jobs.access import Viewer
from jobs.engine import broker, conf, priority, registry, stats
from jobs.engine.states import Status
from jobs.engine.worker import stale_before
from jobs.exceptions import InvalidInput, NotFound
from jobs.models import PENDING, DeadLetter, Job, QueueState, Schedule, WorkerHeartbeat

#: The statuses a queue listing shows; `paused` is `waiting` in a paused queue.
LISTING_STATUSES = [s.value for s in Status] + ["paused"]
STAT_KEYS = ("waiting", "active", "completed", "failed", "delayed", "paused", "cancelled")


def queue_names() -> list[str]:
    """The declared queues (settings.JOBS_QUEUES), in declaration order."""
    return list(conf.all_queues())


@dataclass(frozen=True)
class WorkerGroup:
    """Queues that one `manage.py worker --group` serves, in which mode, and how many processes or threads it runs (their largest concurrency)."""

    name: str
    queues: list[str]
    processes: int
    mode: str = "processes"

    @property
    def argv(self) -> list[str]:
        """The `manage.py worker` arguments that run this group."""
        count = "--threads" if self.mode == "threads" else "--processes"
        return ["worker", "--group", self.name, count, str(self.processes)]


def worker_groups() -> list[WorkerGroup]:
    """The worker groups of the declared queues, by name."""
    return [
        WorkerGroup(name=name, queues=[q.name for q in queues], processes=max(q.concurrency for q in queues), mode=queues[0].mode)
        for name, queues in sorted(conf.groups().items())
    ]


def paused_queues() -> set[str]:
    """Names of the queues paused in the database (the durable truth, not Redis's copy)."""
    return set(QueueState.objects.filter(paused=True).values_list("name", flat=True))


def is_paused(queue: str) -> bool:
    """Whether one queue is paused."""
    return QueueState.objects.filter(name=queue, paused=True).exists()


def queue_settings(queue: conf.QueueConfig) -> dict[str, Any]:
    """A queue's declaration as clients of the seeds read job options: attempts, backoff (ms), retention, priority, concurrency."""

    def kept(status: str) -> dict[str, float | int] | None:
        rule = queue.retention.get(status)
        if rule is None:
            return None
        return {k: v for k, v in (("age", rule.age), ("count", rule.count)) if v is not None}

    return {
        "attempts": queue.attempts,
        "backoff": {"type": "exponential", "delay": round(queue.backoff.delay * 1000), "factor": queue.backoff.factor},
        "timeout": queue.timeout,
        "priority": queue.priority,
        "priorityLevel": priority.URGENCY.get(queue.priority),
        "concurrency": queue.concurrency,
        "mode": queue.mode,
        "group": queue.group,
        "rateLimit": None if queue.rate_limit is None else {"max": queue.rate_limit.max, "duration": queue.rate_limit.duration},
        "removeOnComplete": kept("completed"),
        "removeOnFail": kept("failed"),
    }


def _stats_row(name: str, raw: dict[str, int], paused: bool) -> dict[str, Any]:
    row = {key: max(int(raw.get(key, 0)), 0) for key in STAT_KEYS if key != "paused"}
    row["paused"] = 0
    if paused:
        row["paused"], row["waiting"] = row["waiting"], 0
    return {"queue": name, **row, "total": sum(row.values()), "isPaused": paused, "settings": queue_settings(conf.get_queue(name))}


def queue_stats_all(counts: dict[str, dict[str, int]] | None = None) -> dict[str, dict[str, Any]]:
    """Stats of every declared queue, keyed by name (queues without jobs show zeros); `counts` reuses a stats.counts() read."""
    counts = stats.counts() if counts is None else counts
    paused = paused_queues()
    return {name: _stats_row(name, counts.get(name, {}), name in paused) for name in conf.all_queues()}


def queue_stats(queue: str) -> dict[str, Any]:
    """Stats of one declared queue; NotFound for an unknown queue."""
    name = conf.get_queue(queue).name
    return _stats_row(name, stats.counts().get(name, {}), is_paused(name))


def not_started(job_type: str, *, key: str, values: Iterable[object]) -> dict[str, Job]:
    """Jobs of `job_type` still waiting or delayed whose payload's `key` is one of `values`, by that value as text.

    What an app asks before enqueueing another sync of the same thing (a calendar feed, a task).
    """
    wanted = list(values)
    if not wanted:
        return {}
    queue = registry.get(job_type).queue  # the (queue, status) index finds them
    rows = Job.objects.filter(queue=queue, type=job_type, status__in=list(PENDING), **{f"payload__{key}__in": wanted})
    return {str(job.payload[key]): job for job in rows}


def jobs_visible_to(user: Viewer | None) -> QuerySet[Job]:
    """The jobs `user` may see (jobs.access: an operator all, others their own); None, an internal caller: all."""
    return Job.objects.all() if user is None else access.visible(Job.objects.all(), user)


def job_get(job_id: str, *, user: Viewer | None = None) -> Job:
    """A job the user may see (None: an internal caller, any job); NotFound otherwise, so ids cannot be probed."""
    try:
        return jobs_visible_to(user).get(pk=job_id)
    except Job.DoesNotExist:
        raise NotFound(f"job {job_id} not found") from None


def job_list(*, user: Viewer, queue: str | None = None, status: str | None = None, type: str | None = None) -> QuerySet[Job]:
    """The user's jobs (an operator: all), newest first, optionally filtered."""
    qs = jobs_visible_to(user)
    if queue:
        qs = qs.filter(queue=queue)
    if status:
        qs = qs.filter(status=status)
    if type:
        qs = qs.filter(type=type)
    return qs.order_by("-created_at", "-id")


@dataclass(frozen=True)
class QueueListing:
    """The jobs of one queue as a listing shows them; `paused` tells the serializer to relabel waiting jobs."""

    jobs: QuerySet[Job]
    paused: bool


def queue_jobs(queue: str, *, user: Viewer, status: str | None = None) -> QueueListing:
    """The jobs of one queue that the user may see, newest first; `paused` selects waiting jobs of a paused queue."""
    name = conf.get_queue(queue).name
    paused = is_paused(name)
    if status and status not in LISTING_STATUSES:
        raise InvalidInput("invalid status", extra={"status": [f"must be one of {LISTING_STATUSES}"]})
    qs = jobs_visible_to(user).filter(queue=name)
    if status == "paused":
        qs = qs.filter(status=Status.WAITING) if paused else qs.none()
    elif status:
        qs = qs.filter(status=status)
    return QueueListing(jobs=qs.order_by("-created_at", "-id"), paused=paused)


def open_dead_letters(*, user: Viewer | None = None) -> QuerySet[DeadLetter]:
    """Dead letters not yet retried or discarded, of the jobs `user` may see (None: an internal caller, all)."""
    qs = DeadLetter.objects.filter(resolved_at__isnull=True)
    return qs if user is None else access.visible(qs, user, owner="job__owner")


def dead_letter_list(*, user: Viewer, queue: str | None = None, error_kind: str | None = None) -> QuerySet[DeadLetter]:
    """Open dead letters of the user's jobs (an operator: all), newest first."""
    qs = open_dead_letters(user=user).select_related("job")
    if queue:
        qs = qs.filter(queue=queue)
    if error_kind:
        qs = qs.filter(error_kind=error_kind)
    return qs.order_by("-created_at", "-id")


def dead_letter_stats() -> dict[str, Any]:
    """Open dead letters counted in total, by queue and by error kind."""
    rows = list(
        DeadLetter.objects.filter(resolved_at__isnull=True).values("queue", "error_kind").annotate(n=Count("id")).order_by()
    )
    by_queue: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    for row in rows:
        by_queue[row["queue"]] = by_queue.get(row["queue"], 0) + row["n"]
        kind = row["error_kind"] or "UNKNOWN"
        by_kind[kind] = by_kind.get(kind, 0) + row["n"]
    return {"total": sum(by_queue.values()), "byQueue": by_queue, "byErrorKind": by_kind}


def alive_workers() -> list[WorkerHeartbeat]:
    """Workers seen within the stall timeout (settings.JOBS_STALL_TIMEOUT) and not stopped."""
    return list(WorkerHeartbeat.objects.filter(stopped_at__isnull=True, last_seen__gte=stale_before()).order_by("name"))


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def camel(name: str) -> str:
    """file-upload -> fileUpload: the key seed 3's clients read in the health body."""
    first, *rest = name.split("-")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def with_camel_keys(queues: dict[str, Any]) -> dict[str, Any]:
    """Queue stats keyed by name and, for a name with dashes, also by its camelCase form (seed 3's `fileUpload`, seed 4's `aiJobs`)."""
    return {**queues, **{camel(name): stats for name, stats in queues.items() if camel(name) != name}}


def health() -> dict[str, Any]:
    """Redis and database reachability, live workers and per-queue stats; `status` is ok or degraded."""
    redis_ok = broker.ping()
    db_ok = _database_ok()
    workers = alive_workers() if db_ok else []
    queues = with_camel_keys(queue_stats_all()) if db_ok else {}
    return {
        "status": "ok" if redis_ok and db_ok else "degraded",
        "redis": "connected" if redis_ok else "disconnected",
        "database": "connected" if db_ok else "disconnected",
        "workers": {
            "alive": len(workers),
            "staleAfterSeconds": settings.JOBS_STALL_TIMEOUT,
            "items": [
                {
                    "name": w.name,
                    "queues": w.queues,
                    "lastSeen": w.last_seen,
                    "currentJobId": w.current_job_id or None,
                    "jobsDone": w.jobs_done,
                }
                for w in workers
            ],
        },
        "queues": queues,
    }


def schedules() -> list[Schedule]:
    """Every schedule, by name, with its last job."""
    return list(Schedule.objects.select_related("last_job").order_by("name"))


def schedule(schedule_id: int | None = None, *, name: str | None = None) -> Schedule:
    """One schedule by id or by name (NotFound if none)."""
    found = Schedule.objects.select_related("last_job").filter(**({"pk": schedule_id} if name is None else {"name": name})).first()
    if found is None:
        raise NotFound(f"no schedule {schedule_id if name is None else repr(name)}")
    return found
