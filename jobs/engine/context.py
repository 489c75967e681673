"""What a running task sees: its payload, a progress reporter and the cancel request."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from django.db import InterfaceError, OperationalError

from jobs.exceptions import JobCancelled

log = logging.getLogger(__name__)


@dataclass
class JobContext:
    job_id: str
    queue: str
    type: str
    attempt: int
    max_attempts: int
    payload: dict[str, Any]
    owner_id: int | None = None
    group_ref: str | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _last_progress: int = -1
    _last_message: str = ""

    def progress(self, percent: float, message: str = "") -> None:
        """Report progress 0-100 (stored on the job and sent to hooks); a report that repeats the last one is skipped."""
        from jobs import services

        value = max(0, min(100, int(percent)))
        if value == self._last_progress and message in ("", self._last_message):
            return
        self._last_progress, self._last_message = value, message or self._last_message
        try:
            services.update_progress(self.job_id, progress=value, message=message)
        except (OperationalError, InterfaceError) as exc:
            # Progress is a level the next report supersedes: a database restart must not fail the job.
            log.warning("job %s: progress %d not recorded, database unreachable: %s", self.job_id, value, exc)
            from jobs.engine.dbretry import drop_connection

            drop_connection()

    @property
    def cancel_requested(self) -> bool:
        """True once an operator asked this job to stop; a task should return soon after."""
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        """Raise JobCancelled if a stop was requested: call it between units of work."""
        if self._cancel.is_set():
            raise JobCancelled(f"job {self.job_id} cancelled")
