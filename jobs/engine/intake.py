"""How a job comes in: what a caller may ask for (JobSpec), the checks it passes once, and its hand-off to RQ after commit.

Every rule about a new job lives here, for every caller: the API, the console, commands and
apps. `build()` validates a spec and returns an unsaved Job, or raises one InvalidInput that names
every bad field (the API answers it as 400 `{message, extra}`).
"""
from __future__ import annotations

import gc
import logging
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Iterator, Sequence

from django.db import transaction
from django.db.models import signals
from django.db.models.base import ModelState
from django.utils import timezone

from jobs.access import User, account
from jobs.engine import broker, conf, hooks, outbox, priority, registry, sql
from jobs.engine.states import Status
from jobs.exceptions import InvalidInput, JobsError
from jobs.models import Job, JobEvent, QueueState

log = logging.getLogger(__name__)

#: Longest idempotency key a caller may send; the stored key adds the owner's id in front.
IDEMPOTENCY_KEY_MAX = 150
#: Longest delay a job may be given, in seconds (a year and a day).
MAX_DELAY = 366 * 24 * 3600.0
MAX_ATTEMPTS = 100


@dataclass
class JobSpec:
    """One job to enqueue: its type, input and how it should run. Only `type` is required."""

    type: str
    payload: dict[str, Any] = field(default_factory=dict)
    owner: User | None = None
    #: An integer 0-100 (higher runs first) or a level name (FREE, PRO, PAYG, LOW, NORMAL, HIGH, CRITICAL);
    #: None: the queue's declared priority (NORMAL unless declared).
    priority: int | str | None = None
    #: Seconds before the job may run; a job with a delay (or a future run_at) starts delayed.
    delay: float | None = None
    run_at: datetime | None = None
    #: The same key from the same owner returns the first job instead of a new one.
    idempotency_key: str | None = None
    #: What the job belongs to in an app, e.g. a pipeline project id.
    group_ref: str | None = None
    #: Another declared queue than the job type's own.
    queue: str | None = None
    #: Attempts before the dead letters (default: the queue's).
    attempts: int | None = None
    #: The failed job this one retries (a dead-letter retry).
    retry_of: str | None = None


def scoped_key(spec: JobSpec) -> str | None:
    """The stored idempotency key: scoped by owner, so one caller's key can never return another's job."""
    if not spec.idempotency_key:
        return None
    owner = account(spec.owner)
    return f"{owner.pk if owner is not None else '-'}:{spec.idempotency_key}"


def problems(spec: JobSpec, *, from_api: bool = False) -> dict[str, list[str]]:
    """Every rule the spec breaks, by field (the API's names); empty when it may be enqueued."""
    errors: dict[str, list[str]] = {}
    task = registry.all_types().get(spec.type) if isinstance(spec.type, str) else None
    if task is None:
        errors["type"] = [f"unknown job type {spec.type!r}; known: {sorted(registry.all_types())}"]
    elif from_api and not task.api:
        errors["type"] = [f"job type {spec.type!r} is not open to API clients"]
    queue = spec.queue or (task.queue if task else None)
    if queue is not None and queue not in conf.all_queues():
        errors["queue"] = [f"unknown queue; known: {sorted(conf.all_queues())}"]
    if not isinstance(spec.payload, dict):
        errors["payload"] = ["must be a JSON object"]
    try:
        priority.parse(spec.priority)
    except ValueError as exc:
        errors["priority"] = [str(exc)]
    delay = spec.delay
    if delay is not None and (isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= MAX_DELAY):
        errors["delay"] = [f"must be a number of seconds from 0 to {MAX_DELAY:g}"]
    if spec.attempts is not None and (isinstance(spec.attempts, bool) or not isinstance(spec.attempts, int) or not 1 <= spec.attempts <= MAX_ATTEMPTS):
        errors["attempts"] = [f"must be an integer from 1 to {MAX_ATTEMPTS}"]
    key = spec.idempotency_key
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= IDEMPOTENCY_KEY_MAX):
        errors["idempotencyKey"] = [f"must be 1-{IDEMPOTENCY_KEY_MAX} characters"]
    return errors


def check(spec: JobSpec, *, from_api: bool = False) -> None:
    """Raise InvalidInput naming every rule the spec breaks."""
    errors = problems(spec, from_api=from_api)
    if errors:
        message = "invalid job" if set(errors) != {"type"} else errors["type"][0]
        raise InvalidInput(message, extra=errors)


class _Rows:
    """Unsaved instances of a model from keyword values, without `Model.__init__`'s per-field work: a fifth
    of the time of `Model(**kwargs)`, which matters at 10,000 jobs and events per enqueue_many. Values
    are by attname (`owner_id`); a field left out gets its default. A model with post_init receivers
    (none here) is built the usual way, so that they run."""

    def __init__(self, model: Any) -> None:
        self.model = model
        fields = model._meta.concrete_fields
        self.names = frozenset(f.attname for f in fields)
        # Only a callable default (a new id, dict for JSON) is called per row; the rest are constants.
        self.constant = {f.attname: f.get_default() for f in fields if not (f.has_default() and callable(f.default))}
        self.made = [(f.attname, f) for f in fields if f.attname not in self.constant]

    def __call__(self, **values: Any) -> Any:
        if not values.keys() <= self.names:
            raise TypeError(f"{self.model.__name__} has no field {sorted(values.keys() - self.names)}")
        row = self.constant.copy()
        row.update(values)
        for name, made in self.made:
            if name not in values:
                row[name] = made.get_default()
        # `receivers` first: an empty list (the usual case) needs no per-sender lookup.
        if (signals.pre_init.receivers or signals.post_init.receivers) and (
            signals.pre_init.has_listeners(self.model) or signals.post_init.has_listeners(self.model)
        ):
            return self.model(**row)
        obj = self.model.__new__(self.model)
        obj.__dict__.update(row)
        obj._state = ModelState()
        return obj


_JOB_ROWS = _Rows(Job)
_EVENT_ROWS = _Rows(JobEvent)


def build(spec: JobSpec, now: datetime, *, from_api: bool = False) -> Job:
    """The unsaved Job for a spec, checked first; waiting, or delayed when it must not run before a later time."""
    check(spec, from_api=from_api)
    task = registry.get(spec.type)
    queue = conf.get_queue(spec.queue or task.queue)
    run_at = spec.run_at or (now + timedelta(seconds=spec.delay) if spec.delay else None)
    delayed = run_at is not None and run_at > now
    owner = account(spec.owner)
    job: Job = _JOB_ROWS(
        queue=queue.name,
        type=task.name,
        payload=spec.payload,
        owner_id=owner.pk if owner is not None else None,
        priority=queue.priority if spec.priority in (None, "") else priority.parse(spec.priority),
        status=Status.DELAYED if delayed else Status.WAITING,
        run_at=run_at if delayed else None,
        max_attempts=spec.attempts or queue.attempts,
        idempotency_key=scoped_key(spec),
        group_ref=spec.group_ref,
        retry_of_id=spec.retry_of,
        created_at=now,
        updated_at=now,
    )
    if owner is not None:
        job.owner = owner  # the account the caller gave, cached (no query when read)
    return job


_gc_lock = threading.Lock()
_gc_depth = 0  # gc_paused() blocks running now, in any thread
_gc_restore = False  # whether the first of them found collection on


@contextmanager
def gc_paused() -> Iterator[None]:
    """Automatic garbage collection off for one bulk step (enqueue_many's 10,000 jobs, events and changes).

    Such a step allocates tens of thousands of objects that reference counting frees; but each
    allocation burst sets off collections, and the oldest generation's walk covers the whole process
    (Django, its apps and their modules): about a quarter of a 10,000-job enqueue_many. Collection is
    off for the process while any pause runs (threads may overlap) and on again when the last ends,
    unless it was off before the first (then it stays as it was).
    """
    global _gc_depth, _gc_restore
    with _gc_lock:
        if _gc_depth == 0:
            _gc_restore = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_restore:
                gc.enable()


def _gc_after_fork() -> None:
    """A child forked during a pause has none running: collection as it was before the pause."""
    global _gc_lock, _gc_depth
    _gc_lock = threading.Lock()
    if _gc_depth:
        _gc_depth = 0
        if _gc_restore:
            gc.enable()


os.register_at_fork(after_in_child=_gc_after_fork)


def skip_reason(spec: JobSpec) -> str | None:
    """Why a spec cannot be enqueued, in one line (bulk callers report it and go on), or None."""
    try:
        check(spec)
    except JobsError as exc:
        return "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in exc.extra.items()) or exc.message
    return None


def created_event(job: Job, now: datetime) -> JobEvent:
    """The unsaved event of a new job: a change that hooks consume, so it is written undelivered."""
    event: JobEvent = _EVENT_ROWS(
        job_id=job.id, queue=job.queue, type=job.type, group_ref=job.group_ref, owner_id=job.owner_id,
        from_status=None, to_status=job.status, message="created", at=now, delivered=False,
    )
    return event


def carry(
    jobs: Sequence[Job], changes: Sequence[hooks.JobChange], *, blocked: Iterable[str] = (), held: dict[str, set[str]] | None = None,
) -> None:
    """After commit: the hooks get the changes, then the waiting jobs go to RQ.

    Hooks first: a job's first change has reached its hooks before any worker can start it, so a
    hook sees `created` before `started`. Called inside the writing transaction, whose commit then
    waits for the disk even in a worker that commits asynchronously (sql.durable).
    """
    sql.durable()
    waiting = [j for j in jobs if j.status == Status.WAITING]
    skipped = tuple(blocked)

    def after_commit() -> None:
        try:
            outbox.deliver(changes, blocked=skipped, held=held)
        except Exception:
            log.exception("could not record the delivery of %d job changes; the outbox sweep will deliver them", len(changes))
        if waiting:
            hand_over([broker.Carried(j.id, j.queue, j.priority, conf.get_queue(j.queue).timeout, j.owner_id) for j in waiting])

    transaction.on_commit(after_commit)


def hand_over(items: Sequence[broker.Carried], *, at_front: bool = False) -> None:
    """Push committed waiting jobs to Redis; when Redis does not answer, note their queues for the scheduler.

    The rows are the truth and stay waiting: the scheduler hands them over as soon as Redis answers
    again (QueueState.handoff_failed_at), and reconcile would anyway. Never raises.
    """
    if not items:
        return
    try:
        broker.push(items, at_front=at_front)
    except Exception as exc:
        queues = sorted({i.queue for i in items})
        log.error("could not hand %d jobs of %s to Redis (%s); the scheduler hands them over once it answers", len(items), ", ".join(queues), exc)
        try:
            now = timezone.now()
            for name in queues:
                QueueState.objects.update_or_create(name=name, defaults={"handoff_failed_at": now})
        except Exception:
            log.exception("could not note the failed hand-over either; reconcile hands the jobs over")
