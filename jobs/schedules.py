"""The services of recurring jobs (jobs.engine.schedules fires them): create, change, enable or disable, run
now and delete a schedule, each checked by one set of rules and audited. jobs.services exports them."""
from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.access import Viewer
from jobs.engine import audit, conf
from jobs.engine.intake import JobSpec
from jobs.exceptions import Conflict, InvalidInput, NotFound
from jobs.models import Job, Schedule

SCHEDULE_FIELDS = ("job_type", "payload", "queue", "priority", "cron", "timezone", "enabled", "missed", "grace")


def schedule_problems(values: dict[str, Any]) -> dict[str, list[str]]:
    """What is wrong with a schedule's fields, by field ({} if nothing); normalises `priority` in place."""
    from jobs.engine import priority as priorities
    from jobs.engine import registry, schedules

    out: dict[str, list[str]] = {}
    if not str(values.get("name") or "").strip():
        out["name"] = ["required"]
    try:
        registry.get(str(values.get("job_type") or ""))
    except InvalidInput as exc:
        out["job_type"] = exc.extra.get("type", ["unknown job type"])
    if values.get("queue") and values["queue"] not in conf.all_queues():
        out["queue"] = [f"unknown queue; known: {sorted(conf.all_queues())}"]
    try:
        values["priority"] = priorities.parse(values.get("priority"))
    except ValueError as exc:
        out["priority"] = [str(exc)]
    if not isinstance(values.get("payload") or {}, dict):
        out["payload"] = ["must be a JSON object"]
    if values.get("missed", "skip") not in ("skip", "run_once"):
        out["missed"] = ["must be skip or run_once"]
    grace = values.get("grace", 3600.0)
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace < 0:
        out["grace"] = ["must be a number of seconds >= 0"]
    out.update(schedules.cron_problems(str(values.get("cron") or ""), str(values.get("timezone") or "UTC")))
    return out


def create_schedule(*, name: str, job_type: str, cron: str, actor: Viewer | None = None, source: str = "api", **options: Any) -> Schedule:
    """Declare a recurring job (`options`: payload, queue, priority, timezone, enabled, missed, grace); audited."""
    from jobs.engine import schedules

    unknown = set(options) - set(SCHEDULE_FIELDS)
    if unknown:
        raise InvalidInput("unknown schedule fields", extra={k: ["unknown field"] for k in sorted(unknown)})
    values = {"name": name, "job_type": job_type, "cron": cron, "timezone": "UTC", **options}
    problems = schedule_problems(values)
    if problems:
        raise InvalidInput("invalid schedule", extra=problems)
    taken = Conflict(f"a schedule named {name!r} exists", extra={"name": ["a schedule with this name exists"]})
    if Schedule.objects.filter(name=name).exists():
        raise taken
    try:
        with transaction.atomic():
            schedule = Schedule(**values)
            schedule.next_fire_at = schedules.next_after(schedule, timezone.now()) if schedule.enabled else None
            schedule.save()
            audit.record(actor=actor, action="schedule-create", queue=schedule.queue, detail=_schedule_detail(schedule), source=source)
    except IntegrityError:
        raise taken from None  # created meanwhile by another caller
    return schedule


def update_schedule(schedule_id: int, *, actor: Viewer | None = None, source: str = "api", **changes: Any) -> Schedule:
    """Change a schedule's fields (SCHEDULE_FIELDS); its next time is computed afresh; audited with before and after."""
    from jobs.engine import schedules

    unknown = set(changes) - set(SCHEDULE_FIELDS)
    if unknown:
        raise InvalidInput("unknown schedule fields", extra={k: ["unknown field"] for k in sorted(unknown)})
    with transaction.atomic():
        schedule = Schedule.objects.select_for_update().filter(pk=schedule_id).first()
        if schedule is None:
            raise NotFound(f"no schedule {schedule_id}")
        before = _schedule_detail(schedule)
        values = {"name": schedule.name, **{f: getattr(schedule, f) for f in SCHEDULE_FIELDS}, **changes}
        problems = schedule_problems(values)
        if problems:
            raise InvalidInput("invalid schedule", extra=problems)
        for f in SCHEDULE_FIELDS:
            setattr(schedule, f, values[f])
        schedule.next_fire_at = schedules.next_after(schedule, timezone.now()) if schedule.enabled else None
        schedule.save()
        audit.record(actor=actor, action="schedule-update", queue=schedule.queue, detail={"before": before, "after": _schedule_detail(schedule)}, source=source)
    return schedule


def set_schedule_enabled(schedule_id: int, *, enabled: bool, actor: Viewer | None = None, source: str = "api") -> Schedule:
    """Enable (from the next time after now: missed slots are not caught up) or disable a schedule; audited."""
    return update_schedule(schedule_id, enabled=enabled, actor=actor, source=source)


def run_schedule_now(schedule_id: int, *, actor: Viewer | None = None, source: str = "api") -> Job:
    """Enqueue a schedule's job now, outside its times (its next time does not move); audited."""
    schedule = Schedule.objects.filter(pk=schedule_id).first()
    if schedule is None:
        raise NotFound(f"no schedule {schedule_id}")
    from jobs import services  # the enqueue service; it imports this module

    with transaction.atomic():
        job, _ = services.enqueue(JobSpec(type=schedule.job_type, payload=dict(schedule.payload or {}), queue=schedule.queue or None, priority=schedule.priority))
        Schedule.objects.filter(pk=schedule.pk).update(last_job=job)
        audit.record(actor=actor, action="schedule-run", queue=job.queue, job_ids=[job.id], detail={"schedule": schedule.name}, source=source)
    return job


def delete_schedule(schedule_id: int, *, actor: Viewer | None = None, source: str = "api") -> None:
    """Remove a schedule (its jobs stay); audited."""
    with transaction.atomic():
        schedule = Schedule.objects.filter(pk=schedule_id).first()
        if schedule is None:
            raise NotFound(f"no schedule {schedule_id}")
        detail = _schedule_detail(schedule)
        schedule.delete()
        audit.record(actor=actor, action="schedule-delete", queue=detail["queue"], detail=detail, source=source)


def _schedule_detail(schedule: Schedule) -> dict[str, Any]:
    return {"name": schedule.name, **{f: getattr(schedule, f) for f in SCHEDULE_FIELDS}}
