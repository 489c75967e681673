"""Seed 5's three recurring jobs as data, disabled until configured (an operator enables them on the schedules page)."""
from __future__ import annotations

from typing import Any

from django.db import migrations

LOW = 1
SCHEDULES = [
    ("assistant.email-sync", "assistant.sync_email", "0 */30 * * * *"),
    ("assistant.calendar-sync", "assistant.sync_calendars", "0 */15 * * * *"),
    ("assistant.task-sync", "assistant.sync_tasks", "0 0 */1 * * *"),
]


def add(apps: Any, schema_editor: Any) -> None:
    Schedule = apps.get_model("jobs", "Schedule")
    for name, job_type, cron in SCHEDULES:
        Schedule.objects.get_or_create(name=name, defaults=dict(job_type=job_type, cron=cron, priority=LOW, enabled=False, timezone="UTC"))


def remove(apps: Any, schema_editor: Any) -> None:
    apps.get_model("jobs", "Schedule").objects.filter(name__in=[s[0] for s in SCHEDULES], enabled=False).delete()


class Migration(migrations.Migration):
    dependencies = [("assistant", "0001_initial"), ("jobs", "0004_schedules")]
    operations = [migrations.RunPython(add, remove)]
