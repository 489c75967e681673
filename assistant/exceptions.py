"""The assistant's errors: a bad request is InvalidInput (400 {message, extra}) like every app's."""
from __future__ import annotations

from jobs.exceptions import InvalidInput


class AssistantInputError(InvalidInput):
    """A command, email, calendar or task request the assistant cannot take."""
