"""The dead-letter endpoints of API.md: stats, list, retry."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import selectors, services
from jobs.api.errors import errors
from jobs.api.inputs import query
from jobs.api.pagination import PAGE_PARAMS, page_of, paginated
from jobs.api.permissions import IsStaff
from jobs.api.serializers import (
    DeadLetterFilterSerializer,
    DeadLetterOutputSerializer,
    DeadLetterRetryOutputSerializer,
    DeadLetterStatsOutputSerializer,
)


class DeadLetterStatsApi(APIView):
    """Open dead letters counted by queue and by error kind (staff)."""

    permission_classes = [IsStaff]

    @extend_schema(tags=["dead letters"], summary="Dead-letter stats", operation_id="dead_letter_stats", responses={200: DeadLetterStatsOutputSerializer, **errors(403)})
    def get(self, request: Request) -> Response:
        return Response(DeadLetterStatsOutputSerializer(selectors.dead_letter_stats()).data)


class DeadLetterListApi(APIView):
    """The caller's open dead letters (staff: all), newest first."""

    @extend_schema(tags=["dead letters"], summary="List dead letters", operation_id="dead_letter_list", parameters=[DeadLetterFilterSerializer, *PAGE_PARAMS], responses={200: page_of(DeadLetterOutputSerializer), **errors(400)})
    def get(self, request: Request) -> Response:
        filters = query(DeadLetterFilterSerializer, request)
        qs = selectors.dead_letter_list(user=request.user, queue=filters.get("queue"), error_kind=filters.get("errorKind"))
        return paginated(request, self, qs, DeadLetterOutputSerializer)


class DeadLetterRetryApi(APIView):
    """A new job with the dead job's input; the dead letter is resolved as retried."""

    @extend_schema(tags=["dead letters"], summary="Retry a dead letter", operation_id="dead_letter_retry", request=None, responses={201: DeadLetterRetryOutputSerializer, **errors(404)})
    def post(self, request: Request, job_id: str) -> Response:
        new = services.retry_dead_letter(job_id, user=request.user, actor=request.user, source="api")
        return Response({"jobId": new.id}, status=status.HTTP_201_CREATED)
