"""The AI app's errors: each maps to one HTTP status through the engine's error handler."""
from __future__ import annotations

from jobs.exceptions import InvalidInput, JobsError


class AiInputError(InvalidInput):
    """A job request the AI app refuses (400): no text, too much text, bad options."""


class IdempotencyConflict(JobsError):
    """An idempotency key sent again with another type or input (409): nothing is created."""

    status_code = 409


class RateLimited(JobsError):
    """The key sent more requests than its limit allows in the window (429, with Retry-After)."""

    status_code = 429


class QuotaExhausted(JobsError):
    """The key's monthly token quota would be passed by this job (402): no wait within the month helps."""

    status_code = 402
