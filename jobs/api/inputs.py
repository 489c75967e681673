"""Validated query parameters and bodies: a view's input serializer, run once."""
from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.request import Request

#: One character that is not blank on either side of the API. DRF trims with Python's str.strip(), which removes
#: \x1c-\x1f and \x85 where JSON Schema's ECMA-262 `\s` does not; ECMA's `\s` has U+FEFF, which strip() keeps.
#: The same pattern is published in the schema and checked by the server.
NOT_BLANK = r"[^\s\x1c-\x1f\x85\ufeff]"


def query(serializer: type, request: Request) -> dict[str, Any]:
    """The query parameters, validated by `serializer` (400 with {message, extra} when invalid).

    An empty parameter (`?queue=&status=`, as API.md writes the filters) means one left out: the
    optional filters allow blank in the schema, and blank values are dropped here.
    """
    s = serializer(data=request.query_params)
    s.is_valid(raise_exception=True)
    return {name: value for name, value in s.validated_data.items() if value != ""}


def body(serializer: type, request: Request) -> dict[str, Any]:
    """The request body, validated by `serializer` (400 with {message, extra} when invalid)."""
    s = serializer(data=request.data)
    s.is_valid(raise_exception=True)
    return s.validated_data


class _PresentWhenBlank(serializers.Field):
    """A query parameter given blank (`?to=`) is a value to check, not one left out (DRF's reading)."""

    def get_value(self, dictionary: Any) -> Any:
        return dictionary.get(self.field_name, serializers.empty)


class QueryDateField(_PresentWhenBlank, serializers.DateField):
    """A date query parameter: `?to=` is refused as not a date."""


class QueryDateTimeField(_PresentWhenBlank, serializers.DateTimeField):
    """A date-time query parameter: `?since=` is refused as not a date-time."""
