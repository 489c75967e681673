"""Transcription writes: accept a request (store the audio, enqueue the job) and do the work on a worker."""
from __future__ import annotations

import tempfile
from typing import IO, Any

from django.conf import settings
from django.db import transaction

from jobs import services as job_services
from jobs.services import JobChange, JobSpec
from jobs.exceptions import ErrorKind, JobCancelled, PermanentError
from jobs.access import User
from jobs.models import Job
from jobs.tasks import JobContext
from transcription import engine, formats, languages, sources
from transcription.exceptions import TranscriptionInputError
from transcription.models import Transcription

JOB_TYPE = "transcribe"
QUEUE = "transcription"


def _choice(field: str, value: str | None, choices: Any, default: str) -> str:
    chosen = (value or default).strip().upper()
    if chosen not in choices.values:
        raise TranscriptionInputError(f"invalid {field}", extra={field: [f"must be one of {', '.join(choices.values)}"]})
    return chosen


def request_transcription(
    *,
    owner: User,
    upload: IO[bytes] | None = None,
    upload_name: str = "",
    audio_url: str | None = None,
    model: str | None = None,
    format: str | None = None,
    tier: str | None = None,
    language: str | None = None,
    priority: int | str | None = None,
    group_ref: str | None = None,
) -> tuple[Transcription, Job]:
    """Store the audio (or check its URL), write the transcription and enqueue its job at the tier's priority.

    Another app's caller may give the job a `priority` of its own (the assistant's audio commands run
    at the transcription queue's HIGH) and a `group_ref` (the command the job belongs to).
    """
    chosen = dict(
        model=_choice("model", model, Transcription.Model, Transcription.Model.TINY),
        format=_choice("format", format, Transcription.Format, Transcription.Format.JSON),
        tier=_choice("tier", tier, Transcription.Tier, Transcription.Tier.FREE),
    )
    language = (language or "").strip()
    if language and not languages.is_code(language):
        raise TranscriptionInputError("invalid language", extra={"language": [languages.MESSAGE]})
    if (upload is None) == (not audio_url):
        raise TranscriptionInputError("send either an audio file or an audioUrl", extra={"file": ["exactly one of file and audioUrl"]})
    with sources.request_errors(field="file" if upload is not None else "audioUrl", invalid=TranscriptionInputError):
        if upload is not None:
            sources.require_audio(upload)
            source = sources.save_upload(upload, name=upload_name or "audio")
        else:
            source = sources.check(audio_url or "")
    with transaction.atomic():
        row = Transcription.objects.create(owner=owner, source=source, source_name=upload_name, language=language, **chosen)
        job, _ = job_services.enqueue(JobSpec(
            type=JOB_TYPE, payload={"transcriptionId": row.id}, owner=owner, priority=priority or chosen["tier"], group_ref=group_ref,
        ))
        row.job = job
        row.save(update_fields=["job"])
    return row, job


def record_outcome(change: JobChange) -> None:
    """The engine's hook: the row keeps its job's status, attempts, error and times (idempotent; in order per job)."""
    if change.type != JOB_TYPE or change.event == "progress":
        return  # progress is read from the live job; the row already says active since `started`
    fields: dict[str, Any] = {"status": change.status}
    if "attempt" in change.data:
        fields["attempts_made"] = change.data["attempt"]
    if change.event == "started":
        fields["started_at"] = change.at
    elif change.event in ("completed", "failed", "cancelled"):
        fields["completed_at"] = change.at
    if change.event in ("failed", "retrying", "cancelled"):
        fields["failed_reason"] = str(change.data.get("error", ""))[:5000]
        fields["error_kind"] = str(change.data.get("kind") or ("CANCELLED" if change.event == "cancelled" else ""))
    elif change.event in ("retried", "completed"):
        fields.update(failed_reason="", error_kind="")
        if change.event == "retried":
            fields.update(attempts_made=0, started_at=None, completed_at=None)
    Transcription.objects.filter(job_id=change.job_id).update(**fields)


def transcribe(ctx: JobContext, *, transcription_id: str) -> dict[str, Any]:
    """Worker side: fetch the audio, transcribe it with progress by audio time, store the result (seed 1's steps)."""
    row = Transcription.objects.get(pk=transcription_id)
    ctx.progress(5, "downloading audio")
    with tempfile.TemporaryDirectory(prefix="transcribe-") as tmp:
        with sources.job_errors("audio"):
            path = sources.fetch(row.source, tmp)
        ctx.progress(10, "transcribing")
        try:
            transcript = engine.transcribe(
                path,
                model=row.model,
                model_dir=settings.TRANSCRIPTION_MODEL_DIR,
                language=row.language or None,
                device=settings.TRANSCRIPTION_DEVICE,
                on_progress=lambda fraction: ctx.progress(10 + 80 * fraction, "transcribing"),
                should_stop=lambda: ctx.cancel_requested,
            )
        except engine.Stopped as exc:
            raise JobCancelled(str(exc)) from exc
        except engine.EngineError as exc:
            raise PermanentError(str(exc), kind=ErrorKind.VALIDATION) from exc
    ctx.progress(90, "uploading result")
    content, content_type = formats.render(transcript, row.format)
    key = sources.save_result(content, key=f"transcripts/{row.id}.{row.format.lower()}", content_type=content_type)
    Transcription.objects.filter(pk=row.pk).update(result_key=key, duration_seconds=transcript.duration, language=transcript.language)
    ctx.progress(100, "done")
    return {"transcriptionId": row.id, "resultKey": key, "durationSeconds": transcript.duration, "language": transcript.language}
