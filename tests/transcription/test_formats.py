"""The output formats on a hand-made Transcript: pure functions, no model, no database."""
from __future__ import annotations

import json
import re

import pytest

from transcription.engine import Segment, Transcript
from transcription.formats import CONTENT_TYPES, EXTENSIONS, FORMATS, check_format, render, timestamp

SRT_TIME = r"\d{2}:\d{2}:\d{2},\d{3}"
VTT_TIME = r"\d{2}:\d{2}:\d{2}\.\d{3}"

TRANSCRIPT = Transcript(
    language="en",
    duration=3725.5,
    segments=(
        Segment(0.0, 2.5, " Good morning, everyone."),
        Segment(2.5, 61.0004, "Welcome to the meeting."),
        Segment(61.25, 3661.5, "Let us begin."),
    ),
)


def test_formats_are_the_four_of_the_api() -> None:
    assert FORMATS == ("JSON", "SRT", "VTT", "TXT")
    assert set(CONTENT_TYPES) == set(EXTENSIONS) == set(FORMATS)


@pytest.mark.parametrize(
    ("seconds", "srt", "vtt"),
    [
        (0.0, "00:00:00,000", "00:00:00.000"),
        (2.5, "00:00:02,500", "00:00:02.500"),
        (61.0004, "00:01:01,000", "00:01:01.000"),
        (59.9996, "00:01:00,000", "00:01:00.000"),
        (3661.5, "01:01:01,500", "01:01:01.500"),
        (-0.2, "00:00:00,000", "00:00:00.000"),
    ],
)
def test_timestamps(seconds: float, srt: str, vtt: str) -> None:
    assert (timestamp(seconds, ","), timestamp(seconds, ".")) == (srt, vtt)


def test_srt_is_numbered_blocks_with_comma_times() -> None:
    content, content_type = render(TRANSCRIPT, "SRT")

    blocks = content.strip("\n").split("\n\n")
    assert len(blocks) == 3
    for n, (block, segment) in enumerate(zip(blocks, TRANSCRIPT.segments), start=1):
        number, times, text = block.split("\n")
        assert number == str(n)
        assert re.fullmatch(rf"{SRT_TIME} --> {SRT_TIME}", times), times
        assert text == segment.text.strip()
    assert blocks[2].split("\n")[1] == "00:01:01,250 --> 01:01:01,500"
    assert content_type.startswith("application/x-subrip")


def test_vtt_starts_with_webvtt_and_uses_dot_times() -> None:
    content, content_type = render(TRANSCRIPT, "VTT")

    assert content.startswith("WEBVTT\n\n")
    cues = content.split("\n\n")[1:]
    assert len(cues) == 3
    for cue, segment in zip(cues, TRANSCRIPT.segments):
        times, text = cue.strip("\n").split("\n")
        assert re.fullmatch(rf"{VTT_TIME} --> {VTT_TIME}", times), times
        assert text == segment.text.strip()
    assert cues[0].startswith("00:00:00.000 --> 00:00:02.500\n")
    assert content_type.startswith("text/vtt")


def test_json_has_language_duration_text_and_segments() -> None:
    content, content_type = render(TRANSCRIPT, "JSON")

    data = json.loads(content)
    assert set(data) == {"language", "duration", "text", "segments"}
    assert (data["language"], data["duration"]) == ("en", 3725.5)
    assert data["text"] == "Good morning, everyone. Welcome to the meeting. Let us begin."
    assert data["segments"][1] == {"start": 2.5, "end": 61.0004, "text": "Welcome to the meeting."}
    assert Transcript.from_dict(data) == TRANSCRIPT
    assert content_type == "application/json"


def test_txt_is_the_text() -> None:
    content, content_type = render(TRANSCRIPT, "TXT")

    assert content == "Good morning, everyone. Welcome to the meeting. Let us begin.\n"
    assert content_type.startswith("text/plain")


def test_format_names_are_case_insensitive() -> None:
    assert render(TRANSCRIPT, "srt") == render(TRANSCRIPT, "SRT")
    assert check_format(" vtt ") == "VTT"


@pytest.mark.parametrize("fmt", ["DOCX", "", "SRT2"])
def test_an_unknown_format_is_refused_naming_the_allowed_ones(fmt: str) -> None:
    with pytest.raises(ValueError, match="JSON, SRT, VTT, TXT"):
        render(TRANSCRIPT, fmt)


def test_an_empty_transcript_renders_in_every_format() -> None:
    empty = Transcript(language="en", duration=0.0, segments=())

    assert render(empty, "SRT")[0] == ""
    assert render(empty, "VTT")[0] == "WEBVTT\n"
    assert render(empty, "TXT")[0] == ""
    assert json.loads(render(empty, "JSON")[0]) == {"language": "en", "duration": 0.0, "text": "", "segments": []}


def test_cue_text_cannot_break_a_cue() -> None:
    tricky = Transcript("en", 3.0, (Segment(0.0, 1.0, "a --> b\n\nc"), Segment(1.0, 2.0, "   "), Segment(2.5, 2.0, "late")))

    srt, _ = render(tricky, "SRT")
    vtt, _ = render(tricky, "VTT")

    assert srt == "1\n00:00:00,000 --> 00:00:01,000\na -> b c\n\n2\n00:00:02,500 --> 00:00:02,500\nlate\n"
    assert vtt.split("\n\n")[1] == "00:00:00.000 --> 00:00:01.000\na -> b c"
