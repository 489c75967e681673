"""A local run skips a test whose system tool is missing and says so; CI=true fails it instead (tests/tools.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.parametrize("ci", [False, True], ids=["local", "ci"])
def test_a_missing_tool_skips_locally_and_fails_under_ci(ci: bool, tmp_path: Path) -> None:
    # No espeak-ng or ffmpeg on this PATH; the media tests chosen need no database.
    env = {**os.environ, "PATH": str(tmp_path), "CI": "true" if ci else ""}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests/transcription/test_engine.py", "-k", "spoken_words"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    out = run.stdout + run.stderr
    if ci:
        assert run.returncode == 1, out
        assert "CI=true runs every test, so a missing tool fails the run" in out
    else:
        assert run.returncode == 0, out
        assert "2 skipped" in out and "skipped because espeak-ng is not installed" in out
