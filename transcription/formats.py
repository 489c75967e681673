"""Transcript output formats: JSON, SubRip (SRT), WebVTT and plain text; pure functions, no Django."""
from __future__ import annotations

import json
from typing import Callable

from transcription.engine import Segment, Transcript

__all__ = ["CONTENT_TYPES", "EXTENSIONS", "FORMATS", "check_format", "render", "timestamp"]

FORMATS = ("JSON", "SRT", "VTT", "TXT")
CONTENT_TYPES = {
    "JSON": "application/json",
    "SRT": "application/x-subrip; charset=utf-8",
    "VTT": "text/vtt; charset=utf-8",
    "TXT": "text/plain; charset=utf-8",
}
EXTENSIONS = {"JSON": "json", "SRT": "srt", "VTT": "vtt", "TXT": "txt"}


def check_format(fmt: str) -> str:
    """The canonical (upper-case) name of ``fmt``; ValueError naming the allowed ones otherwise."""
    name = fmt.strip().upper() if isinstance(fmt, str) else ""
    if name not in FORMATS:
        raise ValueError(f"unknown transcript format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return name


def timestamp(seconds: float, separator: str) -> str:
    """``HH:MM:SS<separator>mmm`` for a time in seconds (SRT uses ",", WebVTT ".")."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cue_text(segment: Segment) -> str:
    """A segment's text as one cue line: a blank line or "-->" would end or break the cue."""
    return " ".join(segment.text.split()).replace("-->", "->")


def _cues(transcript: Transcript) -> list[tuple[float, float, str]]:
    """The non-empty segments as (start, end, text), an end never before its start."""
    return [(s.start, max(s.start, s.end), text) for s in transcript.segments if (text := _cue_text(s))]


def _json(transcript: Transcript) -> str:
    return json.dumps(transcript.as_dict(), ensure_ascii=False, indent=2) + "\n"


def _srt(transcript: Transcript) -> str:
    blocks = [
        f"{n}\n{timestamp(start, ',')} --> {timestamp(end, ',')}\n{text}\n"
        for n, (start, end, text) in enumerate(_cues(transcript), start=1)
    ]
    return "\n".join(blocks)


def _vtt(transcript: Transcript) -> str:
    blocks = [f"{timestamp(start, '.')} --> {timestamp(end, '.')}\n{text}\n" for start, end, text in _cues(transcript)]
    return "\n".join(["WEBVTT\n", *blocks])


def _txt(transcript: Transcript) -> str:
    text = transcript.text
    return text + "\n" if text else ""


_RENDERERS: dict[str, Callable[[Transcript], str]] = {"JSON": _json, "SRT": _srt, "VTT": _vtt, "TXT": _txt}


def render(transcript: Transcript, fmt: str) -> tuple[str, str]:
    """The transcript in format ``fmt`` and that format's content type."""
    name = check_format(fmt)
    return _RENDERERS[name](transcript), CONTENT_TYPES[name]
