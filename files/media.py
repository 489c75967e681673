"""ffprobe and ffmpeg on local paths: what a media file holds, and its audio re-encoded to Opus. No Django, no jobs."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

TOOL_TIMEOUT = 600.0  # seconds; the queue's own timeout stops a job that runs longer anyway
OPUS_BITRATE = "48k"


class MediaError(Exception):
    """The tool could not read or write the media (bad, unsupported or silent input)."""


class ToolMissing(MediaError):
    """ffmpeg or ffprobe is not installed on this worker."""


def _run(args: list[str]) -> str:
    if shutil.which(args[0]) is None:
        raise ToolMissing(f"{args[0]} is not installed on this worker (apt-get install ffmpeg)")
    proc = subprocess.run(args, capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-3:])
        raise MediaError(f"{args[0]} failed ({proc.returncode}): {tail}"[:1000])
    return proc.stdout


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
