"""Test audio: known sentences spoken by espeak-ng into WAV, MP3 by ffmpeg, and word matching."""
from __future__ import annotations

import re
import subprocess
import wave
from pathlib import Path

from tests import tools

# Plain words that tiny.en hears well from espeak-ng (tongue twisters do not come back reliably).
SENTENCE = (
    "Please send the weekly report to the whole team before the meeting on Friday afternoon. "
    "The new office is next to the railway station, close to the river."
)

# Several sentences with pauses between them, so Whisper returns more than one segment.
LONG = (
    "Good morning everyone, and welcome to the weekly planning meeting. "
    "First we will review the progress of the transcription service. "
    "The workers are now running on two machines in the office. "
    "After that we will talk about the budget for the coming quarter. "
    "Please keep your questions until the end of each section. "
    "Thank you all for coming today, and let us begin with the first topic."
)

# About 37 s at 150 words a minute; twice over at 185 words a minute is a 60 s clip.
SENTENCES = (
    "The committee approved the new library building after a long debate.",
    "Farmers in the valley expect a good harvest if the weather stays dry.",
    "Our engineers replaced the old servers with faster machines last winter.",
    "Children learn to read more quickly when their parents read to them at home.",
    "The river flooded the town twice during the spring, damaging many houses.",
    "A small team of scientists discovered a new species of frog in the forest.",
    "Travelers should check the train schedule before leaving for the station.",
    "The museum will open a special exhibition about ancient maps next month.",
)


def require_tools() -> None:
    """Skip the calling test when espeak-ng or ffmpeg is missing (fail it under CI=true: tests.tools)."""
    tools.require("espeak-ng", "ffmpeg", why="the audio helpers speak test sentences")


def speak(text: str, out: Path, *, words_per_minute: int = 150) -> Path:
    """Speak ``text`` with espeak-ng into ``out``: WAV, or MP3 (through ffmpeg) when it ends in .mp3."""
    require_tools()
    wav = out.with_name(out.name + ".wav") if out.suffix.lower() == ".mp3" else out
    subprocess.run(["espeak-ng", "-s", str(words_per_minute), "-w", str(wav), text], check=True, capture_output=True)
    if wav is out:
        return out
    to_mp3(wav, out)
    wav.unlink()
    return out


def to_mp3(wav: Path, out: Path) -> Path:
    """Convert a WAV file to MP3 with ffmpeg."""
    require_tools()
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), str(out)], check=True, capture_output=True)
    return out


def silence(out: Path, *, seconds: float = 2.0, rate: int = 16_000) -> Path:
    """Write a WAV file of digital silence (zero samples); ``seconds=0`` gives a header-only file."""
    with wave.open(str(out), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(b"\0\0" * int(seconds * rate))
    return out


def words(text: str) -> list[str]:
    """Lower-case words without punctuation; hyphens and apostrophes split or join like Whisper's."""
    return re.findall(r"[a-z0-9]+", text.lower().replace("'", ""))


def in_order_fraction(spoken: str, heard: str) -> float:
    """The share of spoken words that come back in order (longest common subsequence of words)."""
    said, got = words(spoken), words(heard)
    if not said:
        return 1.0
    previous = [0] * (len(got) + 1)
    for word in said:
        current = [0]
        for j, other in enumerate(got):
            current.append(previous[j] + 1 if word == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1] / len(said)


words_back = in_order_fraction  # the name the API tests use
