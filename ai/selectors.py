"""Reads of the AI app: a program's own jobs and usage, and seed 4's job body."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import QuerySet, Sum

from ai import metering
from ai.models import AiJob, UsageDay
from jobs.access import Viewer, account
from jobs.exceptions import NotFound
from jobs.models import ApiKey

#: The default period of a usage read, ending on its `to` day.
USAGE_DAYS = 30


def jobs_of(*, user: Viewer) -> QuerySet[AiJob]:
    """The caller's AI jobs, newest first: /v1 is a program's view of its owner's jobs, an operator's key included."""
    return AiJob.objects.filter(owner=account(user)).order_by("-created_at", "-id")


def get(job_id: str, *, user: Viewer) -> AiJob:
    found = jobs_of(user=user).filter(pk=job_id).first()
    if found is None:
        raise NotFound(f"job {job_id} not found")
    return found


def public(row: AiJob) -> dict[str, Any]:
    """Seed 4's job body: {id, status, type, input, output, tokenUsed, costCents, createdAt, completedAt} and a few more."""
    return {
        "id": row.id, "status": row.status, "type": row.type, "input": row.input, "output": row.output,
        "tokenUsed": row.tokens, "tokensIn": row.tokens_in, "tokensOut": row.tokens_out, "costCents": row.cost_cents,
        "error": row.error or None, "createdAt": _iso(row.created_at), "startedAt": _iso(row.started_at), "completedAt": _iso(row.completed_at),
    }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


def usage(*, api_key: ApiKey, start: date | None, end: date) -> dict[str, Any]:
    """A key's usage from `start` (default: USAGE_DAYS before `end`) to `end`, both included: totals, per type, per day."""
    if start is None:
        start = end - timedelta(days=USAGE_DAYS) if end > date.min + timedelta(days=USAGE_DAYS) else date.min
    days = UsageDay.objects.filter(api_key=api_key, day__gte=start, day__lte=end)
    per_day: dict[str, dict[str, int]] = {}
    per_type: dict[str, dict[str, int]] = {}
    for d in days.order_by("day", "type"):
        for bucket in (per_day.setdefault(d.day.isoformat(), _zero()), per_type.setdefault(d.type, _zero())):
            bucket["jobs"] += d.jobs
            bucket["tokens"] += d.tokens
            bucket["costCents"] += d.cost_cents
    total = days.aggregate(jobs=Sum("jobs"), tokens=Sum("tokens"), cost=Sum("cost_cents"))
    return {
        "from": start.isoformat(), "to": end.isoformat(),
        "jobs": total["jobs"] or 0, "tokens": total["tokens"] or 0, "costCents": total["cost"] or 0,
        "byType": per_type, "byDay": [{"day": day, **v} for day, v in per_day.items()],
        "monthTokens": metering.tokens_this_month(api_key),
        "monthlyQuota": metering.quota(api_key) or None,
    }


def _zero() -> dict[str, int]:
    return {"jobs": 0, "tokens": 0, "costCents": 0}
