from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from tests.assistant.smtp import Mailbox, point_django_at, smtp_server

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


@pytest.fixture
def smtp(settings: Any) -> Iterator[Mailbox]:
    """A loopback SMTP server (aiosmtpd) that Django sends to."""
    with smtp_server() as (port, box):
        point_django_at(settings, port)
        yield box
