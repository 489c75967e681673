"""The API's JSON parser: DRF's, plus two bodies PostgreSQL or Python cannot take, refused with 400.

A body nested deeper than Python's recursion limit (`[[[[...]]]]`) would raise RecursionError in
the JSON decoder, and a string holding NUL (`"\\u0000"`) cannot be stored in a PostgreSQL text or
jsonb column; both become a ParseError, i.e. `{message, extra}` with status 400, before any view
or service sees the body.
"""
from __future__ import annotations

from typing import Any, Mapping

from rest_framework import parsers
from rest_framework.exceptions import ParseError

#: How deep a JSON body may nest (objects and arrays); far beyond any documented body.
MAX_DEPTH = 64


class JSONParser(parsers.JSONParser):
    """application/json bodies without NUL characters and at most MAX_DEPTH levels deep."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels") from None
        problem = refused(data)
        if problem:
            raise ParseError(f"JSON parse error - {problem}")
        return data


def refused(value: Any, depth: int = 0) -> str | None:
    """Why a decoded JSON value cannot be accepted, or None."""
    if depth > MAX_DEPTH:
        return f"nested deeper than {MAX_DEPTH} levels"
    if isinstance(value, str):
        return "strings may not contain NUL (\\u0000)" if "\x00" in value else None
    if isinstance(value, dict):
        items: Any = (x for kv in value.items() for x in kv)
    elif isinstance(value, list):
        items = value
    else:
        return None
    for item in items:
        problem = refused(item, depth + 1)
        if problem:
            return problem
    return None
