"""What the transcription queue runs."""
from __future__ import annotations

from typing import Any

from jobs.tasks import JobContext, task
from transcription import services


@task(services.JOB_TYPE, queue=services.QUEUE)
def transcribe(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Transcribe one Transcription row (payload: transcriptionId)."""
    return services.transcribe(ctx, transcription_id=payload["transcriptionId"])
