"""The work of each dubbing stage, run on a worker: input from the stage run, output as plain JSON.

Failures map to the engine's kinds: unreadable or unsupported media is VALIDATION (permanent),
storage or provider hiccups are TRANSIENT (retried with the queue's backoff), a missing provider
or tool is PERMANENT.
"""
from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from django.conf import settings

from jobs.exceptions import ErrorKind, JobCancelled, PermanentError
from jobs.tasks import JobContext
from pipelines import media, provider
from pipelines.models import Project, StageRun
from transcription import engine, sources

#: The Whisper model the STT stage uses (tiny.en ships with the project; it hears English only).
STT_MODEL = "TINY"


@contextmanager
def _media_errors() -> Iterator[None]:
    """Storage (transcription.sources.job_errors) and tool errors as the engine's error kinds."""
    try:
        with sources.job_errors("media"):
            yield
    except media.ToolMissing as exc:
        raise PermanentError(str(exc)) from exc
    except media.MediaError as exc:
        raise PermanentError(f"bad media: {exc}", kind=ErrorKind.VALIDATION) from exc


def _fetch(key: str, tmp: Path, name: str) -> Path:
    folder = tmp / name
    folder.mkdir()
    return Path(sources.fetch(key, str(folder)))


def _segments(data: Any, where: str) -> list[dict[str, Any]]:
    """The segments of a stage input or provider answer, checked to be {start, end, text} objects."""
    segments = data.get("segments") if isinstance(data, dict) else None
    if not isinstance(segments, list) or not all(isinstance(s, dict) and isinstance(s.get("text"), str) for s in segments):
        raise PermanentError(f"{where} has no list of segments with text", kind=ErrorKind.VALIDATION)
    return [{"start": float(s.get("start", 0)), "end": float(s.get("end", 0)), "text": s["text"]} for s in segments]


def stt(ctx: JobContext, run: StageRun) -> dict[str, Any]:
    """Transcribe the source media (PyAV decodes video containers; ffmpeg extracts the audio if it cannot)."""
    project: Project = run.project
    with tempfile.TemporaryDirectory(prefix="stt-") as name, _media_errors():
        tmp = Path(name)
        path = _fetch(project.source_key, tmp, "source")
        ctx.progress(10, "transcribing")
        options: dict[str, Any] = dict(
            model=STT_MODEL, model_dir=settings.TRANSCRIPTION_MODEL_DIR, language=project.source_language or None,
            device=settings.TRANSCRIPTION_DEVICE, on_progress=lambda f: ctx.progress(10 + 85 * f, "transcribing"),
            should_stop=lambda: ctx.cancel_requested,
        )
        try:
            try:
                transcript = engine.transcribe(path, **options)
            except engine.BadAudio:
                transcript = engine.transcribe(media.extract_audio(path, tmp / "audio.wav"), **options)
        except engine.Stopped as exc:
            raise JobCancelled(str(exc)) from exc
        except engine.EngineError as exc:
            raise PermanentError(str(exc), kind=ErrorKind.VALIDATION) from exc
    return transcript.as_dict()


def mt(ctx: JobContext, run: StageRun) -> dict[str, Any]:
    """Translate the approved transcript's segments through the provider."""
    project: Project = run.project
    segments = _segments(run.input, "the approved transcript")
    answer = provider.call("translate", {"segments": segments, "source": project.source_language, "target": project.target_language})
    translated = _segments(answer, "the provider's translation")
    if len(translated) != len(segments):
        raise PermanentError(f"the provider translated {len(translated)} of {len(segments)} segments")
    duration = float(run.input.get("duration", 0)) if isinstance(run.input, dict) else 0.0
    return {"language": project.target_language, "source": project.source_language, "duration": duration, "segments": translated}


def tts(ctx: JobContext, run: StageRun) -> dict[str, Any]:
    """Speak each translated segment with espeak-ng and place it at its start time in one WAV."""
    project: Project = run.project
    segments = _segments(run.input, "the approved translation")
    duration = float(run.input.get("duration", 0) or 0) if isinstance(run.input, dict) else 0.0
    with tempfile.TemporaryDirectory(prefix="tts-") as name, _media_errors():
        tmp = Path(name)
        clips: list[media.Clip] = []
        spoken = [s for s in segments if s["text"].strip()]
        for i, segment in enumerate(spoken):
            ctx.check_cancelled()
            clips.append(media.Clip(media.speak(segment["text"], tmp / f"segment-{i}.wav", voice=project.target_language), segment["start"]))
            ctx.progress(10 + 70 * (i + 1) / len(spoken), "speaking")
        track = media.place(clips, tmp / "dub.wav", duration=duration)
        key = sources.save_result(track.read_bytes(), key=f"pipelines/{project.pk}/tts-{run.pk}.wav", content_type="audio/wav")
    return {"audioKey": key, "duration": duration, "segments": len(clips)}


def muxing(ctx: JobContext, run: StageRun) -> dict[str, Any]:
    """Lay the dubbed audio over the source video (video stream copied), stored next to the project's other results."""
    project: Project = run.project
    audio_key = run.input.get("audioKey") if isinstance(run.input, dict) else None
    if not isinstance(audio_key, str):
        raise PermanentError("the TTS output has no audioKey", kind=ErrorKind.VALIDATION)
    with tempfile.TemporaryDirectory(prefix="mux-") as name, _media_errors():
        tmp = Path(name)
        video = _fetch(project.source_key, tmp, "source")
        audio = _fetch(audio_key, tmp, "audio")
        ctx.progress(30, "muxing")
        out = media.mux(video, audio, tmp / "dubbed.mp4")
        key = sources.save_result(out.read_bytes(), key=f"pipelines/{project.pk}/dubbed-{run.pk}.mp4", content_type="video/mp4")
    return {"videoKey": key, "audioKey": audio_key}


def lip_sync(ctx: JobContext, run: StageRun) -> dict[str, Any]:
    """Ask the provider to lip-sync the dubbed video to its audio (premium projects)."""
    project: Project = run.project
    data = run.input if isinstance(run.input, dict) else {}
    if not isinstance(data.get("videoKey"), str):
        raise PermanentError("the muxing output has no videoKey", kind=ErrorKind.VALIDATION)
    answer = provider.call("lip_sync", {"video": data["videoKey"], "audio": data.get("audioKey"), "projectId": project.pk, "target": project.target_language})
    video = answer.get("videoKey")
    if not isinstance(video, str) or not video:
        raise PermanentError("the provider's lip-sync answer has no videoKey")
    return {"videoKey": video, "sourceVideoKey": data["videoKey"]}
