"""What the stage queues run: load the job's stage run, call its stage, return the output."""
from __future__ import annotations

from typing import Any, Callable

from jobs.context import JobContext
from jobs.exceptions import PermanentError
from jobs.registry import task
from pipelines import definitions, services, stages
from pipelines.models import StageRun

StageWork = Callable[[JobContext, StageRun], dict[str, Any]]


def _run(ctx: JobContext, work: StageWork) -> dict[str, Any]:
    run = services.run_for_job(job_id=ctx.job_id)
    if run is None:
        raise PermanentError(f"job {ctx.job_id} belongs to no stage run of a current project")
    return work(ctx, StageRun.objects.select_related("project").get(pk=run.pk))


@task(definitions.STT.task_type, queue=definitions.STT.queue)
def stt(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Speech to text of a project's source media (payload: projectId, stage, stageRunId)."""
    return _run(ctx, stages.stt)


@task(definitions.MT.task_type, queue=definitions.MT.queue)
def mt(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Machine translation of the approved transcript through the provider."""
    return _run(ctx, stages.mt)


@task(definitions.TTS.task_type, queue=definitions.TTS.queue)
def tts(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Text to speech of the approved translation with espeak-ng."""
    return _run(ctx, stages.tts)


@task(definitions.MUXING.task_type, queue=definitions.MUXING.queue)
def muxing(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """The dubbed audio over the source video with ffmpeg."""
    return _run(ctx, stages.muxing)


@task(definitions.LIP_SYNC.task_type, queue=definitions.LIP_SYNC.queue)
def lip_sync(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Lip-sync through the provider (premium projects only)."""
    return _run(ctx, stages.lip_sync)
