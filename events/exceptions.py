"""The events app's errors."""
from __future__ import annotations


class EventsError(Exception):
    """Base of the events app's errors."""


class UnknownTopic(EventsError):
    """A subscription or publish named a topic kind nobody registered."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"unknown topic {kind!r}")
        self.kind = kind
