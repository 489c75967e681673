"""The queue endpoints of API.md (stats, jobs, pause, resume, clean, health) and other seeds' aliases of them.

Aliases that other seeds documented are subclasses of the canonical view, marked deprecated in the
schema with the canonical path in their description; they share the canonical view's behaviour.
"""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import selectors, services
from jobs.api.errors import errors
from jobs.api.inputs import body, query
from jobs.api.pagination import PAGE_PARAMS, page_of, paginated
from jobs.api.permissions import IsStaff
from jobs.api.serializers import (
    CleanInputSerializer,
    CleanOutputSerializer,
    HealthOutputSerializer,
    JobOutputSerializer,
    QueueJobsFilterSerializer,
    QueueOptionalParamSerializer,
    QueueParamSerializer,
    QueueStateOutputSerializer,
    QueueStatsOutputSerializer,
)


class QueueNameFromPath:
    """The queue an endpoint acts on comes from the path; seed 4's aliases take it from `?queue=`."""

    def queue_name(self, request: Request, kwargs: dict[str, Any]) -> str:
        """The queue named in the path."""
        return kwargs["queue"]


class QueueNameFromQuery(QueueNameFromPath):
    """Seed 4's queue actions: `?queue=` is required (400 without it)."""

    def queue_name(self, request: Request, kwargs: dict[str, Any]) -> str:
        """The queue named in `?queue=`."""
        return query(QueueParamSerializer, request)["queue"]


class QueueNameFromQueryOrDefault(QueueNameFromPath):
    """Seed 4's metrics: `?queue=` may be left out to mean the `default` queue, as that seed's example does."""

    def queue_name(self, request: Request, kwargs: dict[str, Any]) -> str:
        """The queue named in `?queue=`, else `default`."""
        return str(query(QueueOptionalParamSerializer, request).get("queue", "default"))


QUEUE_QUERY = [QueueParamSerializer]
QUEUE_QUERY_OPTIONAL = [QueueOptionalParamSerializer]


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

    @extend_schema(tags=["queues"], summary="Jobs of one queue", operation_id="queue_jobs_list", parameters=[QueueJobsFilterSerializer, *PAGE_PARAMS], responses={200: page_of(JobOutputSerializer), **errors(400, 404)})
    def get(self, request: Request, queue: str) -> Response:
        filters = query(QueueJobsFilterSerializer, request)
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
        data = body(CleanInputSerializer, request)
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
    parameters=QUEUE_QUERY_OPTIONAL, responses={200: QueueStatsOutputSerializer, **errors(400, 403, 404)},
)
AdminQueueMetricsAllApi = alias(
    QueueStatsListApi, "/api/queue/stats", "get", name="AdminQueueMetricsAllApi",
    attrs={**_STAFF, "get": lambda self, request: Response(selectors.with_camel_keys(selectors.queue_stats_all()))},
    responses={200: OpenApiResponse(QUEUE_STATS_MAP.response, description="Every queue by name; a name with dashes also under its camelCase form (seed 4 reads `aiJobs`)."), **errors(403)},
)
AdminQueuePauseApi = alias(
    QueuePauseApi, "/api/queue/{queue}/pause", "post", name="AdminQueuePauseApi", bases=(QueueNameFromQuery,), parameters=QUEUE_QUERY,
    responses={200: QueueStateOutputSerializer, **errors(400, 403, 404)},
)
AdminQueueResumeApi = alias(
    QueueResumeApi, "/api/queue/{queue}/resume", "post", name="AdminQueueResumeApi", bases=(QueueNameFromQuery,), parameters=QUEUE_QUERY,
    responses={200: QueueStateOutputSerializer, **errors(400, 403, 404)},
)
AdminQueueCleanApi = alias(QueueCleanApi, "/api/queue/{queue}/clean", "post", name="AdminQueueCleanApi", bases=(QueueNameFromQuery,), parameters=QUEUE_QUERY)
