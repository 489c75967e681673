"""The dead-letter endpoints of API.md (stats, list, retry), and the groups by error fingerprint: list, retry or discard a group.

The groups' shapes live here rather than in serializers.py (that module's size); they are shapes only.
"""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import deadletters, selectors, services
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


# -- groups by error fingerprint ----------------------------------------------------------------


class DeadLetterSampleOutputSerializer(serializers.Serializer):
    """A group's latest letter: its job, reason and traceback."""

    jobId = serializers.CharField(source="job_id")
    queue = serializers.CharField()
    errorKind = serializers.CharField(source="error_kind")
    reason = serializers.CharField()
    traceback = serializers.CharField(source="job.traceback")
    failedAt = serializers.DateTimeField(source="created_at")


class DeadLetterGroupOutputSerializer(serializers.Serializer):
    """Open dead letters with one error fingerprint: class, message without its varying parts, and top frame."""

    fingerprint = serializers.CharField()
    signature = serializers.CharField(help_text="e.g. `ValueError: bad row <n> @ tasks.py in parse`")
    count = serializers.IntegerField()
    firstSeen = serializers.DateTimeField(source="first_seen")
    lastSeen = serializers.DateTimeField(source="last_seen")
    queues = serializers.DictField(child=serializers.IntegerField(), help_text="Open letters per queue.")
    sample = DeadLetterSampleOutputSerializer()


class DeadLetterGroupListOutputSerializer(serializers.Serializer):
    groups = DeadLetterGroupOutputSerializer(many=True, help_text=f"Largest first; at most {deadletters.GROUPS_SHOWN}.")


class DeadLetterGroupRetryOutputSerializer(serializers.Serializer):
    fingerprint = serializers.CharField()
    retried = serializers.IntegerField(help_text="Letters retried as new jobs.")
    skipped = serializers.DictField(child=serializers.CharField(), help_text="Letters left open, by job id: why (at most 100 shown).")


class DeadLetterGroupDiscardOutputSerializer(serializers.Serializer):
    fingerprint = serializers.CharField()
    discarded = serializers.IntegerField()


FINGERPRINT_PATH = [
    OpenApiParameter("fingerprint", OpenApiTypes.STR, OpenApiParameter.PATH, pattern="^[0-9a-f]{16}$", description="16 hex characters, from the groups list."),
]
SKIPPED_SHOWN = 100


class DeadLetterGroupListApi(APIView):
    """Open dead letters grouped by error fingerprint, largest group first (staff)."""

    permission_classes = [IsStaff]

    @extend_schema(
        tags=["dead letters"], summary="Dead letters grouped by error", operation_id="dead_letter_groups",
        parameters=[DeadLetterFilterSerializer], responses={200: DeadLetterGroupListOutputSerializer, **errors(400, 403)},
    )
    def get(self, request: Request) -> Response:
        filters = query(DeadLetterFilterSerializer, request)
        found = deadletters.groups(queue=filters.get("queue", ""), error_kind=filters.get("errorKind", ""))
        return Response(DeadLetterGroupListOutputSerializer({"groups": found}).data)


class DeadLetterGroupRetryApi(APIView):
    """Every open letter of a group retried as a new job, in chunks; audited once (staff)."""

    permission_classes = [IsStaff]

    @extend_schema(
        tags=["dead letters"], summary="Retry a group of dead letters", operation_id="dead_letter_group_retry", request=None,
        parameters=FINGERPRINT_PATH, responses={200: DeadLetterGroupRetryOutputSerializer, **errors(400, 403, 404)},
    )
    def post(self, request: Request, fingerprint: str) -> Response:
        retried, skipped = deadletters.retry_group(fingerprint, actor=request.user, source="api")
        shown = dict(list(skipped.items())[:SKIPPED_SHOWN])
        return Response({"fingerprint": fingerprint, "retried": len(retried), "skipped": shown})


class DeadLetterGroupDiscardApi(APIView):
    """Every open letter of a group marked reviewed and discarded (the failed jobs stay); audited once (staff)."""

    permission_classes = [IsStaff]

    @extend_schema(
        tags=["dead letters"], summary="Discard a group of dead letters", operation_id="dead_letter_group_discard", request=None,
        parameters=FINGERPRINT_PATH, responses={200: DeadLetterGroupDiscardOutputSerializer, **errors(400, 403, 404)},
    )
    def post(self, request: Request, fingerprint: str) -> Response:
        done = deadletters.discard_group(fingerprint, actor=request.user, source="api")
        return Response({"fingerprint": fingerprint, "discarded": done})
