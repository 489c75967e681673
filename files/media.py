"""ffprobe and ffmpeg on local paths: what a media file holds, and its audio re-encoded to Opus. No Django, no jobs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# One way to run a media tool, shared with the dubbing stages: MediaError with the tail of its
# stderr when it fails, ToolMissing when it is not installed.
from pipelines.media import MediaError, ToolMissing, run_tool as _run

OPUS_BITRATE = "48k"

__all__ = ["MediaError", "ToolMissing", "probe", "to_opus"]


def _number(value: Any, kind: type = float) -> Any:
    try:
        return kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError):
        return None


def probe(path: Path) -> dict[str, Any]:
    """Duration (s), format, bitrate (bit/s) and the first audio stream's codec, sample rate and channels."""
    out = _run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)])
    info = json.loads(out or "{}")
    fmt = info.get("format", {})
    audio = next((s for s in info.get("streams", []) if s.get("codec_type") == "audio"), None)
    if audio is None:
        raise MediaError("no audio stream in the file")
    return {
        "durationSeconds": _number(fmt.get("duration") or audio.get("duration")),
        "format": fmt.get("format_name"),
        "bitRate": _number(fmt.get("bit_rate") or audio.get("bit_rate"), int),
        "codec": audio.get("codec_name"),
        "sampleRate": _number(audio.get("sample_rate"), int),
        "channels": _number(audio.get("channels"), int),
        "hasVideo": any(s.get("codec_type") == "video" for s in info.get("streams", [])),
    }


def to_opus(src: Path, out: Path, *, bitrate: str = OPUS_BITRATE) -> Path:
    """The audio of `src` as Opus in an Ogg container (video dropped)."""
    _run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-vn", "-c:a", "libopus", "-b:a", bitrate, "-f", "ogg", str(out)])
    return out
