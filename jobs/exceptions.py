"""Errors of the job engine. `JobsError` is the base of everything the engine raises on purpose."""
from __future__ import annotations

import enum
from typing import Any


class ErrorKind(str, enum.Enum):
    """Why a job failed (seed 2's error types); routes retries and dead letters."""

    TRANSIENT = "TRANSIENT"
    RESOURCE = "RESOURCE"
    VALIDATION = "VALIDATION"
    PERMANENT = "PERMANENT"
    TIMEOUT = "TIMEOUT"
    STALLED = "STALLED"
    CANCELLED = "CANCELLED"


#: Kinds that are retried unless the error says otherwise.
RETRYABLE_KINDS = {ErrorKind.TRANSIENT, ErrorKind.RESOURCE, ErrorKind.TIMEOUT, ErrorKind.STALLED}


class JobsError(Exception):
    """Base of the engine's domain errors; `extra` is shown to API clients as-is."""

    status_code = 400

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
        #: Response headers that go with the error (Retry-After on a 429, say).
        self.headers = headers or {}


class InvalidInput(JobsError):
    """Input that the engine refuses; nothing was written or enqueued."""


class NotFound(JobsError):
    """No such job, queue or job type visible to the caller."""

    status_code = 404


class Forbidden(JobsError):
    """The caller may not do this (a read-only account asking for an operator's write); nothing was written (403)."""

    status_code = 403


class Conflict(JobsError):
    """What the caller asked for clashes with what exists (a name taken); nothing was written (409)."""

    status_code = 409


class NotSignedIn(JobsError):
    """A write that needs an account was asked for without one (401)."""

    status_code = 401


class StorageUnavailable(JobsError):
    """A storage that a request needs did not answer in time (503); nothing was stored or enqueued."""

    status_code = 503


class InvalidTransition(JobsError):
    """A status change the state machine forbids, or the row changed under us."""

    status_code = 409

    def __init__(self, job_id: str, current: str | None, target: str) -> None:
        super().__init__(
            f"job {job_id} cannot move from {current} to {target}",
            extra={"jobId": job_id, "status": current, "target": target},
        )
        self.job_id = job_id
        self.current = current
        self.target = target


class JobError(Exception):
    """Raised by a task to say how it failed: an error kind and whether a retry can help."""

    def __init__(self, message: str, *, kind: ErrorKind | str = ErrorKind.TRANSIENT, retryable: bool | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = ErrorKind(kind)
        self.retryable = self.kind in RETRYABLE_KINDS if retryable is None else retryable
        #: The least wait before the next attempt (a server's Retry-After), if longer than the queue's backoff.
        self.retry_after = retry_after


class PermanentError(JobError):
    """A failure no retry can fix."""

    def __init__(self, message: str, *, kind: ErrorKind | str = ErrorKind.PERMANENT) -> None:
        super().__init__(message, kind=kind, retryable=False)


class JobCancelled(BaseException):
    """Raised inside a running task when an operator's cancel passes its grace period.

    A BaseException so that a task's own `except Exception` does not swallow it.
    """


class WorkerShutdown(BaseException):
    """Raised inside a running task when the worker's shutdown grace has passed."""


class JobTimedOut(BaseException):
    """Raised inside a running task when its queue's timeout passes."""
