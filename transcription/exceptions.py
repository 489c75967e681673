"""Errors of the transcription app; JobsError subclasses, so the API's one handler shapes them."""
from __future__ import annotations

from jobs.exceptions import InvalidInput


class TranscriptionInputError(InvalidInput):
    """A transcription request the app refuses (400); nothing was stored or enqueued.

    A storage that does not answer is jobs.exceptions.StorageUnavailable (503), through
    transcription.sources.request_errors, for every app that stores media.
    """
