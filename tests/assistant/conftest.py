from __future__ import annotations

from typing import Any, Callable

import pytest

#: Seed 5's queues (transcription is seed 1's), in the order the seed lists them.
ASSISTANT_QUEUES = (
    "voice-processing", "transcription", "synthesis", "email-processing", "calendar-sync", "task-processing", "ai-processing", "notification",
)


@pytest.fixture
def drain(burst: Callable[..., Any]) -> Callable[[], None]:
    """Run a real worker over the assistant's queues until nothing waits (a command's whole fan-out)."""

    def run() -> None:
        burst(*ASSISTANT_QUEUES)

    return run
