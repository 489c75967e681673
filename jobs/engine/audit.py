"""The audit log of operator actions."""
from __future__ import annotations

from typing import Any, Iterable

from jobs.access import Viewer, account
from jobs.models import AuditEntry

MAX_IDS = 1000


def record(
    *, actor: Viewer | None, action: str, queue: str = "", job_ids: Iterable[str] = (), detail: dict[str, Any] | None = None, source: str = "admin",
    count: int | None = None,
) -> AuditEntry:
    """Write one audit entry (the first MAX_IDS job ids are kept; `count` has them all, unless the caller counts otherwise)."""
    ids = list(job_ids)
    user = account(actor)
    return AuditEntry.objects.create(
        actor=user, action=action, queue=queue, job_ids=ids[:MAX_IDS], count=len(ids) if count is None else count, detail=detail or {}, source=source
    )
