"""Errors of the transcription app; JobsError subclasses, so the API's one handler shapes them."""
from __future__ import annotations

from jobs.exceptions import InvalidInput, JobsError


class TranscriptionInputError(InvalidInput):
    """A transcription request the app refuses (400); nothing was stored or enqueued."""


class StorageUnavailable(JobsError):
    """The file storage did not answer in time (503); nothing was stored or enqueued."""

    status_code = 503
