"""Removing final jobs: an operator's clean and each queue's retention, with a 'removed' event per job so folded stats stay right."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from jobs.engine import conf
from jobs.models import Job, JobEvent


def remove(qs: Any, limit: int) -> list[str]:
    """Delete jobs and write a 'removed' event for each, so folded stats stay right."""
    now = timezone.now()
    with transaction.atomic():
        rows = list(qs.select_for_update(skip_locked=True).values_list("id", "queue", "status")[:limit])
        if not rows:
            return []
        ids = [r[0] for r in rows]
        JobEvent.objects.bulk_create([JobEvent(job_id=i, queue=q, from_status=s, to_status=None, message="removed", at=now) for i, q, s in rows])
        Job.objects.filter(pk__in=ids).delete()
    return ids


def apply_retention(*, now: datetime | None = None, batch: int = 1000) -> int:
    """Remove final jobs beyond each queue's retention (count and age). Returns how many were removed."""
    now = now or timezone.now()
    total = 0
    for q in conf.all_queues().values():
        for status, rule in q.retention.items():
            if rule.age is not None:
                total += len(remove(Job.objects.filter(queue=q.name, status=status, completed_at__lt=now - timedelta(seconds=rule.age)).order_by("completed_at"), batch))
            if rule.count is not None:
                keep = Job.objects.filter(queue=q.name, status=status).order_by("-completed_at").values_list("completed_at", flat=True)[rule.count : rule.count + 1]
                edge = list(keep)
                if edge and edge[0] is not None:
                    total += len(remove(Job.objects.filter(queue=q.name, status=status, completed_at__lte=edge[0]).order_by("completed_at"), batch))
    return total
