"""The one place errors become API answers: `{message, extra}` for domain and DRF errors, and their schema."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import bad_request, page_not_found, server_error
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
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
        return Response({"message": exc.message, "extra": exc.extra}, status=exc.status_code, headers=exc.headers or None)
    if isinstance(exc, RequestDataTooBig):
        return Response({"message": "request body too large", "extra": {"limit": settings.DATA_UPLOAD_MAX_MEMORY_SIZE}}, status=413)
    if isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        return Response({"message": str(exc) or "too many fields", "extra": {}}, status=400)
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
    413: OpenApiResponse(ErrorOutputSerializer, description="The body is over its limit; refused from Content-Length before it is read."),
    415: OpenApiResponse(ErrorOutputSerializer, description="The body's Content-Type is missing or not the documented one."),
}

#: The 403 of a change refused to a read-only operator (jobs.api.schema.AutoSchema adds it to each such change).
READ_ONLY = OpenApiResponse(ErrorOutputSerializer, description="A read-only operator's account: it may view, not change.")


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Schema entries for the error responses an endpoint can give."""
    return {code: ERRORS[code] for code in (401, *codes)}


def json_error(status: int, message: str, extra: dict[str, Any] | None = None) -> JsonResponse:
    """An error answer outside DRF's handler, in the same `{message, extra}` shape."""
    return JsonResponse({"message": message, "extra": extra or {}}, status=status)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: a path that matches no route answers `{message, extra}` under the API's prefixes, Django's page elsewhere."""
    if request.path.startswith(API_PREFIXES):
        return json_error(404, "Not Found", {"path": request.path})
    return page_not_found(request, exception or Http404())


def bad_request_page(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400: what Django refuses before a view (a bad Host header, too many form fields) is `{message, extra}` under the API's prefixes."""
    if request.path.startswith(API_PREFIXES):
        return json_error(400, "Bad Request")
    return bad_request(request, exception or SuspiciousOperation())


def server_error_page(request: HttpRequest) -> HttpResponse:
    """handler500: an unexpected error is `{message, extra}` under the API's prefixes (the traceback goes to the log only)."""
    if request.path.startswith(API_PREFIXES):
        return json_error(500, "Server Error")
    return server_error(request)


#: Where answers are JSON (the API, seed 4's admin paths, the metrics).
API_PREFIXES = ("/api/", "/v1/", "/metrics")
