"""Errors of the pipelines app; the jobs exception handler turns them into `{message, extra}` answers."""
from __future__ import annotations

from jobs.exceptions import JobsError


class PipelineError(JobsError):
    """Base of the pipelines app's domain errors."""


class PipelineInputError(PipelineError):
    """Input the pipeline refuses (400); nothing was written or enqueued."""


class ProjectNotFound(PipelineError):
    """No such project visible to the caller (404, also for another user's project)."""

    status_code = 404


class ProjectStateError(PipelineError):
    """The project's status does not allow this (409), e.g. approving a project that awaits no review."""

    status_code = 409

    def __init__(self, message: str, *, project_id: str, status: str) -> None:
        super().__init__(message, extra={"projectId": project_id, "status": status})
        self.project_id = project_id
        self.status = status


class ReviewEditRefused(PipelineInputError):
    """A reviewer's edits of a stage output that do not fit it (400); `extra` names each bad field, nothing was written."""


class SourceMediaNotFound(PipelineError):
    """The project's stored source media cannot be read (404)."""

    status_code = 404
