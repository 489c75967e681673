"""The engine's REST API (API.md: Queues, Jobs, Dead letters, /metrics). Thin views: validate, call one service or selector, return.

Aliases that other seeds documented are subclasses of the canonical view, marked deprecated in the
schema with the canonical path in their description; they share the canonical view's behaviour.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping

from django.http import HttpResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import authentication, exceptions, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from jobs import metrics, selectors, services
from jobs.auth import ApiKeyAuthentication
from jobs.exceptions import JobsError
from jobs.permissions import IsStaff, IsStaffOrMetricsToken, MetricsTokenAuthentication
from jobs.serializers import (
    CleanInputSerializer,
    CleanOutputSerializer,
    DeadLetterFilterSerializer,
    DeadLetterOutputSerializer,
    DeadLetterRetryOutputSerializer,
    DeadLetterStatsOutputSerializer,
    ErrorOutputSerializer,
    HealthOutputSerializer,
    JobCreateInputSerializer,
    JobListFilterSerializer,
    JobOutputSerializer,
    JobStateOutputSerializer,
    ProgressInputSerializer,
    QueueJobsFilterSerializer,
    QueueParamSerializer,
    QueueStateOutputSerializer,
    QueueStatsOutputSerializer,
)

# -- errors -------------------------------------------------------------------------------------


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


# -- pagination ---------------------------------------------------------------------------------


class CountlessPagination(LimitOffsetPagination):
    """limit/offset without COUNT(*): one extra row tells whether a next page exists (lists stay fast at a million rows)."""

    default_limit = 50
    max_limit = 500

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        """Return one page and remember whether more rows follow."""
        self.request = request
        self.limit = self.get_limit(request) or self.default_limit
        self.offset = self.get_offset(request)
        rows = list(queryset[self.offset : self.offset + self.limit + 1])
        self.has_next = len(rows) > self.limit
        self.count = self.offset + len(rows)  # used by DRF's link helpers only
        return rows[: self.limit]

    def get_next_link(self) -> str | None:
        """The next page's URL when more rows follow."""
        return super().get_next_link() if self.has_next else None

    def get_paginated_response(self, data: Any) -> Response:
        """The page with limit, offset and links."""
        return Response(
            OrderedDict(
                [("limit", self.limit), ("offset", self.offset), ("next", self.get_next_link()), ("previous", self.get_previous_link()), ("results", data)]
            )
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The page's OpenAPI schema."""
        return {
            "type": "object",
            "required": ["limit", "offset", "next", "previous", "results"],
            "properties": {
                "limit": {"type": "integer"},
                "offset": {"type": "integer"},
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }


def paginated(request: Request, view: APIView, queryset: Any, serializer: type, **context: Any) -> Response:
    """Serialize one page of `queryset`."""
    paginator = CountlessPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True, context=context).data)


PAGE_PARAMS = [
    OpenApiParameter("limit", OpenApiTypes.INT, description=f"Page size (default {CountlessPagination.default_limit}, at most {CountlessPagination.max_limit})."),
    OpenApiParameter("offset", OpenApiTypes.INT, description="Rows to skip."),
]


def _query(serializer: type, request: Request) -> dict[str, Any]:
    s = serializer(data=request.query_params)
    s.is_valid(raise_exception=True)
    return s.validated_data


def _body(serializer: type, request: Request) -> dict[str, Any]:
    s = serializer(data=request.data)
    s.is_valid(raise_exception=True)
    return s.validated_data


# -- queues -------------------------------------------------------------------------------------


class QueueNameFromPath:
    """The queue an endpoint acts on comes from the path; seed 4's aliases take it from `?queue=`."""

    def queue_name(self, request: Request, kwargs: dict[str, Any]) -> str:
        """The queue named in the path."""
        return kwargs["queue"]


class QueueNameFromQuery(QueueNameFromPath):
    """Seed 4's queue actions: `?queue=` is required (400 without it)."""

    def queue_name(self, request: Request, kwargs: dict[str, Any]) -> str:
        """The queue named in `?queue=`."""
        return _query(QueueParamSerializer, request)["queue"]


class QueueNameFromQueryOrDefault(QueueNameFromPath):
    """Seed 4's metrics: `?queue=` may be left out to mean the `default` queue, as that seed's example does."""

    def queue_name(self, request: Request, kwargs: dict[str, Any]) -> str:
        """The queue named in `?queue=`, else `default`."""
        return request.query_params.get("queue") or "default"


QUEUE_QUERY = [OpenApiParameter("queue", OpenApiTypes.STR, required=True, description="A declared queue, e.g. `default`.")]
QUEUE_QUERY_OPTIONAL = [OpenApiParameter("queue", OpenApiTypes.STR, description="A declared queue (default: `default`).")]


def alias(view: type[APIView], canonical: str, method: str, *, name: str, bases: tuple[type, ...] = (), attrs: dict[str, Any] | None = None, **schema: Any) -> type[APIView]:
    """A subclass of `view` named `name` for another seed's path, marked deprecated with the canonical path in the schema."""
    doc = f"Alias of `{canonical}`, kept for another seed's clients: same behaviour and body. New clients should use `{canonical}`."
    sub = type(name, (*bases, view), {"__doc__": doc, "__module__": __name__, **(attrs or {})})
    decorate = extend_schema(deprecated=True, description=doc, operation_id=_snake(name), **schema)
    return extend_schema_view(**{method: decorate})(sub)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name.removesuffix("Api")).lstrip("_")


QUEUE_STATS_MAP = OpenApiResponse(
    {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/QueueStatsOutput"}},
    description="Every declared queue's stats, keyed by queue name.",
)


class QueueStatsListApi(APIView):
    """Counts of every declared queue, keyed by queue name (queues without jobs show zeros)."""

    @extend_schema(tags=["queues"], summary="Stats of every queue", operation_id="queue_stats_list", responses={200: QUEUE_STATS_MAP, **errors()})
    def get(self, request: Request) -> Response:
        return Response(selectors.queue_stats_all())


class QueueStatsDetailApi(QueueNameFromPath, APIView):
    """Counts of one queue: waiting, active, completed, failed, delayed, paused, cancelled, total."""

    @extend_schema(tags=["queues"], summary="Stats of one queue", operation_id="queue_stats_retrieve", responses={200: QueueStatsOutputSerializer, **errors(404)})
    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response(QueueStatsOutputSerializer(selectors.queue_stats(self.queue_name(request, kwargs))).data)


class QueueJobsApi(APIView):
    """The jobs of one queue that the caller may see (staff: all), newest first; a paused queue's waiting jobs show as `paused`."""

    @extend_schema(tags=["queues"], summary="Jobs of one queue", operation_id="queue_jobs_list", parameters=[QueueJobsFilterSerializer, *PAGE_PARAMS], responses={200: JobOutputSerializer(many=True), **errors(400, 404)})
    def get(self, request: Request, queue: str) -> Response:
        filters = _query(QueueJobsFilterSerializer, request)
        listing = selectors.queue_jobs(queue, user=request.user, status=filters.get("status"))
        return paginated(request, self, listing.jobs, JobOutputSerializer, queue_paused=listing.paused)


class QueuePauseApi(QueueNameFromPath, APIView):
    """Pause a queue (staff): workers take nothing from it, running jobs finish; survives restarts."""

    permission_classes = [IsStaff]

    @extend_schema(tags=["queues"], summary="Pause a queue", operation_id="queue_pause", request=None, responses={200: QueueStateOutputSerializer, **errors(403, 404)})
    def post(self, request: Request, **kwargs: Any) -> Response:
        state = services.set_paused(self.queue_name(request, kwargs), paused=True, actor=request.user, source="api")
        return Response(QueueStateOutputSerializer(state).data)


class QueueResumeApi(QueueNameFromPath, APIView):
    """Resume a paused queue (staff)."""

    permission_classes = [IsStaff]

    @extend_schema(tags=["queues"], summary="Resume a queue", operation_id="queue_resume", request=None, responses={200: QueueStateOutputSerializer, **errors(403, 404)})
    def post(self, request: Request, **kwargs: Any) -> Response:
        state = services.set_paused(self.queue_name(request, kwargs), paused=False, actor=request.user, source="api")
        return Response(QueueStateOutputSerializer(state).data)


class QueueCleanApi(QueueNameFromPath, APIView):
    """Remove completed, failed or cancelled jobs that ended more than `grace` ms ago, up to `limit` (staff)."""

    permission_classes = [IsStaff]

    @extend_schema(tags=["queues"], summary="Clean old jobs of a queue", operation_id="queue_clean", request=CleanInputSerializer, responses={200: CleanOutputSerializer, **errors(400, 403, 404)})
    def post(self, request: Request, **kwargs: Any) -> Response:
        data = _body(CleanInputSerializer, request)
        removed = services.clean(
            self.queue_name(request, kwargs), status=data["status"], grace=data["grace"] / 1000, limit=data["limit"], actor=request.user, source="api"
        )
        return Response({"removed": removed})


class QueueHealthApi(APIView):
    """Redis and database reachability, live workers and every queue's stats; 503 when Redis or the database is down."""

    @extend_schema(tags=["queues"], summary="Queue health", operation_id="queue_health", responses={200: HealthOutputSerializer, 503: HealthOutputSerializer, **errors()})
    def get(self, request: Request) -> Response:
        report = selectors.health()
        code = status.HTTP_200_OK if report["status"] == "ok" else status.HTTP_503_SERVICE_UNAVAILABLE
        return Response(HealthOutputSerializer(report).data, status=code)


# Seed 5's paths.
QueueStatusListApi = alias(QueueStatsListApi, "/api/queue/stats", "get", name="QueueStatusListApi")
QueueStatusDetailApi = alias(QueueStatsDetailApi, "/api/queue/stats/{queue}", "get", name="QueueStatusDetailApi")
QueuePauseAliasApi = alias(QueuePauseApi, "/api/queue/{queue}/pause", "post", name="QueuePauseAliasApi")
QueueResumeAliasApi = alias(QueueResumeApi, "/api/queue/{queue}/resume", "post", name="QueueResumeAliasApi")
QueueCleanAliasApi = alias(QueueCleanApi, "/api/queue/{queue}/clean", "post", name="QueueCleanAliasApi")

# Seed 4's admin paths: staff only, the queue in `?queue=`.
_STAFF = {"permission_classes": [IsStaff]}
AdminQueueMetricsApi = alias(
    QueueStatsDetailApi, "/api/queue/stats/{queue}", "get", name="AdminQueueMetricsApi", bases=(QueueNameFromQueryOrDefault,), attrs=_STAFF,
    parameters=QUEUE_QUERY_OPTIONAL, responses={200: QueueStatsOutputSerializer, **errors(403, 404)},
)
AdminQueueMetricsAllApi = alias(QueueStatsListApi, "/api/queue/stats", "get", name="AdminQueueMetricsAllApi", attrs=_STAFF, responses={200: QUEUE_STATS_MAP, **errors(403)})
AdminQueuePauseApi = alias(QueuePauseApi, "/api/queue/{queue}/pause", "post", name="AdminQueuePauseApi", bases=(QueueNameFromQuery,), parameters=QUEUE_QUERY)
AdminQueueResumeApi = alias(QueueResumeApi, "/api/queue/{queue}/resume", "post", name="AdminQueueResumeApi", bases=(QueueNameFromQuery,), parameters=QUEUE_QUERY)
AdminQueueCleanApi = alias(QueueCleanApi, "/api/queue/{queue}/clean", "post", name="AdminQueueCleanApi", bases=(QueueNameFromQuery,), parameters=QUEUE_QUERY)


# -- jobs ---------------------------------------------------------------------------------------


class JobListCreateApi(APIView):
    """The caller's jobs (staff: all), and enqueueing a job type open to API clients."""

    @extend_schema(tags=["jobs"], summary="List jobs", operation_id="jobs_list", parameters=[JobListFilterSerializer, *PAGE_PARAMS], responses={200: JobOutputSerializer(many=True), **errors(400)})
    def get(self, request: Request) -> Response:
        filters = _query(JobListFilterSerializer, request)
        return paginated(request, self, selectors.job_list(user=request.user, **filters), JobOutputSerializer)

    @extend_schema(
        tags=["jobs"],
        summary="Enqueue a job", operation_id="jobs_create",
        request=JobCreateInputSerializer,
        responses={
            201: OpenApiResponse(JobOutputSerializer, description="The new job."),
            200: OpenApiResponse(JobOutputSerializer, description="The job first enqueued with this idempotency key."),
            **errors(400),
        },
    )
    def post(self, request: Request) -> Response:
        data = _body(JobCreateInputSerializer, request)
        job, created = services.enqueue(
            type=data["type"],
            payload=data["payload"],
            priority=data.get("priority"),
            delay=data.get("delay"),
            idempotency_key=data.get("idempotencyKey"),
            owner=request.user,
        )
        return Response(JobOutputSerializer(job).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class JobDetailApi(APIView):
    """One job (seed 1's getJobStatus, seed 2's job status); 404 unless the caller owns it or is staff."""

    @extend_schema(tags=["jobs"], summary="Get a job", operation_id="jobs_retrieve", responses={200: JobOutputSerializer, **errors(404)})
    def get(self, request: Request, job_id: str) -> Response:
        return Response(JobOutputSerializer(selectors.job_get(job_id, user=request.user)).data)


class JobRetryApi(APIView):
    """Run a failed or cancelled job again (its attempts start afresh)."""

    @extend_schema(tags=["jobs"], summary="Retry a job", operation_id="jobs_retry", request=None, responses={200: JobOutputSerializer, **errors(404, 409)})
    def post(self, request: Request, job_id: str) -> Response:
        job = services.retry(job_id, user=request.user, actor=request.user, source="api")
        return Response(JobOutputSerializer(job).data)


class JobCancelApi(APIView):
    """Cancel a waiting or delayed job at once; an active job is asked to stop (`cancelRequested`) and stopped after a grace."""

    @extend_schema(tags=["jobs"], summary="Cancel a job", operation_id="jobs_cancel", request=None, responses={200: JobOutputSerializer, **errors(404, 409)})
    def post(self, request: Request, job_id: str) -> Response:
        job = services.cancel(job_id, user=request.user, actor=request.user, source="api")
        return Response(JobOutputSerializer(job).data)


class JobProgressApi(APIView):
    """An active job's progress, reported by a worker outside this codebase."""

    @extend_schema(tags=["jobs"], summary="Report a job's progress", operation_id="jobs_progress", request=ProgressInputSerializer, responses={200: JobOutputSerializer, **errors(400, 404, 409)})
    def put(self, request: Request, job_id: str) -> Response:
        data = _body(ProgressInputSerializer, request)
        job = services.update_progress(job_id, progress=data["progress"], message=data["message"], user=request.user)
        return Response(JobOutputSerializer(job).data)


class JobStateApi(APIView):
    """Seed 3's polling shape of one job."""

    @extend_schema(tags=["jobs"], summary="Poll a job's state", operation_id="queue_job_state", responses={200: JobStateOutputSerializer, **errors(404)})
    def get(self, request: Request, job_id: str) -> Response:
        return Response(JobStateOutputSerializer(selectors.job_get(job_id, user=request.user)).data)


# -- dead letters -------------------------------------------------------------------------------


class DeadLetterStatsApi(APIView):
    """Open dead letters counted by queue and by error kind (staff)."""

    permission_classes = [IsStaff]

    @extend_schema(tags=["dead letters"], summary="Dead-letter stats", operation_id="dead_letter_stats", responses={200: DeadLetterStatsOutputSerializer, **errors(403)})
    def get(self, request: Request) -> Response:
        return Response(DeadLetterStatsOutputSerializer(selectors.dead_letter_stats()).data)


class DeadLetterListApi(APIView):
    """The caller's open dead letters (staff: all), newest first."""

    @extend_schema(tags=["dead letters"], summary="List dead letters", operation_id="dead_letter_list", parameters=[DeadLetterFilterSerializer, *PAGE_PARAMS], responses={200: DeadLetterOutputSerializer(many=True), **errors(400)})
    def get(self, request: Request) -> Response:
        filters = _query(DeadLetterFilterSerializer, request)
        qs = selectors.dead_letter_list(user=request.user, queue=filters.get("queue"), error_kind=filters.get("errorKind"))
        return paginated(request, self, qs, DeadLetterOutputSerializer)


class DeadLetterRetryApi(APIView):
    """A new job with the dead job's input; the dead letter is resolved as retried."""

    @extend_schema(tags=["dead letters"], summary="Retry a dead letter", operation_id="dead_letter_retry", request=None, responses={201: DeadLetterRetryOutputSerializer, **errors(404)})
    def post(self, request: Request, job_id: str) -> Response:
        new = services.retry_dead_letter(job_id, user=request.user, actor=request.user, source="api")
        return Response({"jobId": new.id}, status=status.HTTP_201_CREATED)


# -- metrics ------------------------------------------------------------------------------------


class PrometheusRenderer(BaseRenderer):
    """Lets `Accept: text/plain` (what scrapers send) pass content negotiation; errors still render as JSON."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None) -> bytes:
        if isinstance(data, bytes):
            return data
        return JSONRenderer().render(data)


class MetricsApi(APIView):
    """Prometheus text format: jobs per queue and status, paused queues, dead letters, live workers. Staff, or `Bearer <METRICS_TOKEN>`."""

    authentication_classes = [MetricsTokenAuthentication, ApiKeyAuthentication, authentication.SessionAuthentication]
    permission_classes = [IsStaffOrMetricsToken]
    renderer_classes = [JSONRenderer, PrometheusRenderer]

    @extend_schema(tags=["metrics"], summary="Prometheus metrics", operation_id="metrics", responses={(200, "text/plain"): OpenApiTypes.STR, **errors(403)})
    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8")


# -- schema -------------------------------------------------------------------------------------


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Documents `Authorization: Bearer <api key>`."""

    target_class = "jobs.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        """The bearer scheme of API keys."""
        return {"type": "http", "scheme": "bearer", "description": "An API key created in the admin or with `manage.py create_api_key USER`."}


class MetricsTokenScheme(OpenApiAuthenticationExtension):
    """Documents `Authorization: Bearer <METRICS_TOKEN>` on /metrics."""

    target_class = "jobs.permissions.MetricsTokenAuthentication"
    name = "metricsToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        """The bearer scheme of the metrics token."""
        return {"type": "http", "scheme": "bearer", "description": "settings.METRICS_TOKEN, when configured (for Prometheus scrapers)."}
