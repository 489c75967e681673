"""The files app's errors: each maps to one HTTP status through the engine's error handler."""
from __future__ import annotations

from jobs.exceptions import InvalidInput, JobsError


class FileInputError(InvalidInput):
    """A request the files app refuses (400): no file, an empty one, a bad memo id, an operation that does not fit."""


class FileTooLarge(JobsError):
    """An upload over settings.FILES_MAX_BYTES (413)."""

    status_code = 413


class FileBusy(JobsError):
    """The file's status does not allow this now (409): processing, being deleted, or not stored yet."""

    status_code = 409
