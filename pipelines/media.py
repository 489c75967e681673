"""ffmpeg and espeak-ng as the stages use them: plain paths in, files out; no Django, no jobs.

A tool that exits non-zero raises MediaError with the tail of its stderr; a missing tool raises
ToolMissing. The stages translate both into the engine's error kinds.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

TOOL_TIMEOUT = 600.0  # seconds; the queue's own timeout stops a job that runs longer anyway


class MediaError(Exception):
    """A media tool refused the input (bad or unsupported media)."""


class ToolMissing(MediaError):
    """ffmpeg or espeak-ng is not installed on this worker."""


@dataclass(frozen=True)
class Clip:
    """A spoken file and where it starts in the dubbed track, in seconds."""

    path: Path
    start: float


def run_tool(args: Sequence[str]) -> str:
    """Run one tool to completion and return its output; MediaError with its stderr when it fails."""
    if shutil.which(args[0]) is None:
        raise ToolMissing(f"{args[0]} is not installed on this worker (apt-get install {args[0]})")
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-3:])
        raise MediaError(f"{args[0]} failed ({proc.returncode}): {tail}"[:1000])
    return proc.stdout


def extract_audio(video: Path, out: Path) -> Path:
    """The first audio stream of `video` as 16 kHz mono WAV."""
    run_tool(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(video), "-vn", "-ac", "1", "-ar", "16000", str(out)])
    return out


def speak(text: str, out: Path, *, voice: str) -> Path:
    """Speak `text` with espeak-ng's `voice` into a WAV; English when espeak-ng has no such voice."""
    try:
        run_tool(["espeak-ng", "-v", voice, "-w", str(out), text])
    except ToolMissing:
        raise
    except MediaError:
        run_tool(["espeak-ng", "-v", "en", "-w", str(out), text])
    return out


def place(clips: Sequence[Clip], out: Path, *, duration: float) -> Path:
    """One mono WAV with each clip starting at its time; silence of `duration` seconds when there are none."""
    if not clips:
        run_tool(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono", "-t", f"{max(duration, 0.1):.3f}", str(out)])
        return out
    inputs: list[str] = []
    chains: list[str] = []
    for i, clip in enumerate(clips):
        inputs += ["-i", str(clip.path)]
        chains.append(f"[{i}:a]aresample=22050,adelay={int(max(clip.start, 0) * 1000)}:all=1[a{i}]")
    mixed = "".join(f"[a{i}]" for i in range(len(clips)))
    graph = ";".join(chains) + f";{mixed}amix=inputs={len(clips)}:duration=longest:normalize=0[out]"
    run_tool(["ffmpeg", "-nostdin", "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[out]", "-ac", "1", str(out)])
    return out


def mux(video: Path, audio: Path, out: Path) -> Path:
    """The video stream of `video` (copied) with `audio` as its only audio track, padded to the video's length."""
    run_tool([
        "ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(video), "-i", str(audio),
        "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-af", "apad", "-shortest", str(out),
    ])
    return out
