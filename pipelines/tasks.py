"""What the stage queues run: load the job's stage run, call its stage, return the output."""
from __future__ import annotations

from typing import Any, Callable

from jobs.exceptions import PermanentError
from jobs.tasks import JobContext, task
from pipelines import definitions, services, stages
from pipelines.models import StageRun

StageWork = Callable[[JobContext, StageRun], dict[str, Any]]


def _run(ctx: JobContext, work: StageWork) -> dict[str, Any]:
    run = services.run_for_job(job_id=ctx.job_id)
    if run is None:
        raise PermanentError(f"job {ctx.job_id} belongs to no stage run of a current project")
    return work(ctx, StageRun.objects.select_related("project").get(pk=run.pk))


#: What each stage does, by stage name; a declared pipeline's stages get their job types from this.
WORK: dict[str, StageWork] = {
    "STT": stages.stt,  # speech to text of the source media with the transcription engine
    "MT": stages.mt,  # machine translation of the approved transcript through the provider
    "TTS": stages.tts,  # text to speech of the approved translation with espeak-ng
    "MUXING": stages.muxing,  # the dubbed audio over the source video with ffmpeg
    "LIP_SYNC": stages.lip_sync,  # lip-sync through the provider (premium projects only)
}


def _register(stage: definitions.Stage) -> None:
    work = WORK[stage.name]

    def run_stage(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        return _run(ctx, work)

    run_stage.__doc__ = f"The {stage.name} stage of a project (payload: projectId, stage, stageRunId)."
    task(stage.task_type, queue=stage.queue)(run_stage)


for _stage in {s for p in definitions.all_pipelines().values() for s in p.stages}:
    _register(_stage)
