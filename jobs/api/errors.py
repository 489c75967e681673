"""The one place errors become API answers: `{message, extra}` for domain and DRF errors, and their schema."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from jobs.api.serializers import ErrorOutputSerializer
from jobs.exceptions import JobsError


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF error details as {field: [messages]}; nested fields become `a.b`, non-field errors `non_field_errors`."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(detail, list) and any(isinstance(d, (dict, list)) for d in detail):
        out = {}
        for i, value in enumerate(detail):
            out.update(_flatten(value, f"{prefix}.{i}" if prefix else str(i)))
        return out
    items = detail if isinstance(detail, list) else [detail]
    return {prefix or "non_field_errors": [str(d) for d in items]}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The one place errors become responses: `{"message": ..., "extra": {...}}` for domain and DRF errors."""
    if isinstance(exc, JobsError):
        set_rollback()
        return Response({"message": exc.message, "extra": exc.extra}, status=exc.status_code)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"message": "invalid input", "extra": _flatten(exc.detail)}
    else:
        detail = getattr(exc, "detail", None)
        response.data = {"message": str(detail) if detail is not None else response.status_text, "extra": {}}
    return response


ERRORS = {
    400: OpenApiResponse(ErrorOutputSerializer, description="Bad input; nothing was written or enqueued."),
    401: OpenApiResponse(ErrorOutputSerializer, description="No or invalid credentials."),
    403: OpenApiResponse(ErrorOutputSerializer, description="Staff only."),
    404: OpenApiResponse(ErrorOutputSerializer, description="No such queue or job visible to the caller."),
    409: OpenApiResponse(ErrorOutputSerializer, description="The job's status does not allow this."),
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Schema entries for the error responses an endpoint can give."""
    return {code: ERRORS[code] for code in (401, *codes)}
