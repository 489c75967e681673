"""Jobs that the scheduler enqueues once per period (settings.JOBS_PERIODIC): housekeeping that apps declare.

    JOBS_PERIODIC = {"files-sweep": {"type": "file-sweep", "every": 3600, "payload": {"remove": True}}}

Time is cut into slots of `every` seconds; each slot's job carries the idempotency key
`periodic:<name>:<slot>`, so two schedulers, or one restarted within the slot, enqueue it once.
A fixed period only: cron expressions are not built yet.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    name: str
    type: str
    every: float
    payload: dict[str, Any] = field(default_factory=dict)

    def slot(self, now: datetime) -> int:
        return int(now.timestamp() // self.every)


def declared() -> list[Periodic]:
    """The periodic jobs of settings.JOBS_PERIODIC (ValueError for a malformed one)."""
    out = []
    for name, raw in getattr(settings, "JOBS_PERIODIC", {}).items():
        every = float(raw.get("every", 0))
        if every <= 0 or not raw.get("type"):
            raise ValueError(f"JOBS_PERIODIC[{name!r}] needs a job type and a positive `every` (seconds), got {raw!r}")
        out.append(Periodic(name=name, type=str(raw["type"]), every=every, payload=dict(raw.get("payload") or {})))
    return out


def enqueue_due(done: dict[str, int], *, now: datetime | None = None) -> int:
    """Enqueue each periodic job whose current slot is not in `done` (the caller's memory); returns how many were new."""
    from jobs import services  # the public enqueue, with its checks; imported here because services imports the engine

    now = now or timezone.now()
    created = 0
    for periodic in declared():
        slot = periodic.slot(now)
        if done.get(periodic.name) == slot:
            continue
        try:
            _, new = services.enqueue(services.JobSpec(type=periodic.type, payload=periodic.payload, idempotency_key=f"periodic:{periodic.name}:{slot}"))
        except Exception:
            log.exception("periodic job %s could not be enqueued", periodic.name)
            continue
        done[periodic.name] = slot
        created += int(new)
    return created
