"""A request path holding NUL (`%00`) names nothing: 404 `{message, extra}` before any view or query sees it.

PostgreSQL cannot compare a text column with a string holding NUL (psycopg refuses to send it), so
without this a job, project or transcription id such as `abc%00` would fail inside the lookup.
"""
from __future__ import annotations

from typing import Callable

from django.http import HttpRequest, HttpResponse

from jobs.api.errors import json_error


class RefuseNulPaths:
    """Django middleware: 404 for any path with a NUL character in it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            return json_error(404, "Not Found", {"path": "contains NUL (%00)"})
        return self.get_response(request)
