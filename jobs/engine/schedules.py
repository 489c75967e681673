"""Recurring jobs: schedules in the database (jobs.models.Schedule) that the scheduler fires.

A schedule's cron expression (croniter; five fields, or six with seconds first as in seed 5's
`0 */30 * * * *`) is read in its timezone, so `0 9 * * *` in Europe/Berlin stays at 9:00 across
daylight-saving changes. Each fire enqueues with the idempotency key `schedule:<id>:<slot>`, so
two schedulers, or one that crashed after enqueueing and before advancing, enqueue a slot once;
leadership (a Lease row that expires) keeps a second scheduler from even trying while the first
lives. A slot is on time when it fires within ON_TIME seconds; a later one was missed (the
schedulers were down) and follows the schedule's policy: `skip`, or `run_once` for the latest
missed slot if it is at most `grace` seconds old.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from jobs.models import Job, Lease, Schedule

log = logging.getLogger(__name__)

LEASE = "schedules"
#: How long a scheduler holds leadership without renewing it (each tick renews).
LEASE_SECONDS = 15.0
#: A slot fired at most this many seconds after its time is on time, whatever the missed-run policy.
ON_TIME = 60.0
#: Schedules fired per tick at most.
BATCH = 500


def _parts(expression: str) -> tuple[str, bool]:
    """The expression with its whitespace normalised, and whether its first field is seconds (six fields)."""
    fields = expression.split()
    return " ".join(fields), len(fields) == 6


def _cron(expression: str, start: datetime) -> croniter:
    text, seconds = _parts(expression)
    return croniter(text, start, second_at_beginning=seconds)


def cron_problems(expression: str, tz: str) -> dict[str, list[str]]:
    """What is wrong with a cron expression and a timezone name ({} if nothing)."""
    out: dict[str, list[str]] = {}
    text, seconds = _parts(expression)
    if len(text.split()) not in (5, 6) or not croniter.is_valid(text, second_at_beginning=seconds):
        out["cron"] = ["not a cron expression: five fields (minute hour day month weekday), or six with seconds first"]
    else:
        try:
            _cron(expression, timezone.now()).get_next(datetime)
        except CroniterBadDateError:
            out["cron"] = ["never fires (a date that does not exist, such as 30 February)"]
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        out["timezone"] = [f"unknown timezone {tz!r}; use an IANA name such as UTC or Europe/Berlin"]
    return out


def next_times(expression: str, tz: str, *, after: datetime | None = None, count: int = 5) -> list[datetime]:
    """The next `count` fire times after `after` (default now), in the schedule's timezone."""
    start = (after or timezone.now()).astimezone(ZoneInfo(tz))
    it = _cron(expression, start)
    return [it.get_next(datetime) for _ in range(count)]


def next_after(schedule: Schedule, moment: datetime) -> datetime:
    """The schedule's first fire time strictly after `moment`."""
    return next_times(schedule.cron, schedule.timezone, after=moment, count=1)[0]


def latest_slot(schedule: Schedule, now: datetime) -> datetime:
    """The schedule's latest fire time at or before `now`."""
    text, seconds = _parts(schedule.cron)
    local = now.astimezone(ZoneInfo(schedule.timezone))
    # `now` itself is a slot when its second (minute, for five fields) matches.
    exact = local.replace(microsecond=0) if seconds else local.replace(second=0, microsecond=0)
    if croniter.match(text, exact, second_at_beginning=seconds):
        return exact
    return _cron(schedule.cron, local).get_prev(datetime)


def take_lease(holder: str, *, now: datetime | None = None, seconds: float = LEASE_SECONDS) -> bool:
    """Hold (or renew) leadership of the firing until now + seconds; False while another holder's lease lasts."""
    now = now or timezone.now()
    until = now + timedelta(seconds=seconds)
    if Lease.objects.filter(name=LEASE).filter(Q(holder=holder) | Q(expires_at__lt=now)).update(holder=holder, expires_at=until):
        return True
    try:
        with transaction.atomic():
            _, created = Lease.objects.get_or_create(name=LEASE, defaults={"holder": holder, "expires_at": until})
    except IntegrityError:
        return False
    return created


def fire_due(*, holder: str, now: datetime | None = None) -> int:
    """The scheduler's duty: if this holder leads, fire every enabled schedule that is due; returns the jobs enqueued."""
    now = now or timezone.now()
    if not take_lease(holder, now=now):
        return 0
    return fire_all_due(now=now)


def fire_all_due(*, now: datetime) -> int:
    """Fire every enabled schedule whose next time has come (without leadership: the idempotency key still holds)."""
    fired = 0
    for schedule in Schedule.objects.filter(enabled=True, next_fire_at__lte=now).order_by("next_fire_at")[:BATCH]:
        try:
            fired += fire(schedule, now=now)
        except Exception:
            log.exception("schedule %s could not fire", schedule.name)
    return fired


def fire(schedule: Schedule, *, now: datetime) -> int:
    """Fire one due schedule's latest slot (or skip it as missed), then move its next time past `now`. 1 if a job was new."""
    from jobs import services

    slot = latest_slot(schedule, now)
    late = (now - slot).total_seconds()
    run = late <= ON_TIME or (schedule.missed == Schedule.Missed.RUN_ONCE and late <= schedule.grace)
    job: Job | None = None
    created = False
    if run:
        job, created = services.enqueue(services.JobSpec(
            type=schedule.job_type, payload=dict(schedule.payload or {}), queue=schedule.queue or None, priority=schedule.priority,
            idempotency_key=slot_key(schedule, slot),
        ))
    else:
        log.warning("schedule %s: slot %s missed by %.0fs; skipped (%s)", schedule.name, slot.isoformat(), late, schedule.missed)
    fields: dict[str, Any] = {"next_fire_at": next_after(schedule, now)}
    if job is not None:
        fields.update(last_fired_at=slot, last_job=job)
    # Conditional: of two schedulers that both got here, one advances it (and the key made the job once).
    Schedule.objects.filter(pk=schedule.pk, next_fire_at=schedule.next_fire_at).update(**fields)
    return int(created)


def slot_key(schedule: Schedule, slot: datetime) -> str:
    """The idempotency key of one slot of one schedule."""
    return f"schedule:{schedule.pk}:{int(slot.timestamp())}"
