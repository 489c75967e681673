"""Recurring jobs over REST (staff): list, create, show, change, delete and run now; every change audited (source api)."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import selectors, services
from jobs.api.errors import errors
from jobs.api.inputs import body
from jobs.api.permissions import IsStaff
from jobs.api.serializers import JobOutputSerializer, ScheduleChangeSerializer, ScheduleInputSerializer, ScheduleOutputSerializer


class ScheduleListApi(APIView):
    """Every recurring job, or a new one."""

    permission_classes = [IsStaff]

    @extend_schema(tags=["schedules"], summary="List recurring jobs", operation_id="schedules_list", responses={200: ScheduleOutputSerializer(many=True), **errors(403)})
    def get(self, request: Request) -> Response:
        return Response(ScheduleOutputSerializer(selectors.schedules(), many=True).data)

    @extend_schema(
        tags=["schedules"], summary="Create a recurring job", operation_id="schedules_create",
        request=ScheduleInputSerializer, responses={201: ScheduleOutputSerializer, **errors(400, 403)},
    )
    def post(self, request: Request) -> Response:
        schedule = services.create_schedule(actor=request.user, source="api", **body(ScheduleInputSerializer, request))
        return Response(ScheduleOutputSerializer(schedule).data, status=status.HTTP_201_CREATED)


class ScheduleDetailApi(APIView):
    """One recurring job: show, change (its next time is computed afresh) or delete (its jobs stay)."""

    permission_classes = [IsStaff]

    @extend_schema(tags=["schedules"], summary="Show a recurring job", operation_id="schedules_show", responses={200: ScheduleOutputSerializer, **errors(403, 404)})
    def get(self, request: Request, schedule_id: int) -> Response:
        return Response(ScheduleOutputSerializer(selectors.schedule(schedule_id)).data)

    @extend_schema(
        tags=["schedules"], summary="Change a recurring job", operation_id="schedules_change",
        request=ScheduleChangeSerializer, responses={200: ScheduleOutputSerializer, **errors(400, 403, 404)},
    )
    def patch(self, request: Request, schedule_id: int) -> Response:
        changes: dict[str, Any] = dict(body(ScheduleChangeSerializer, request))
        schedule = services.update_schedule(schedule_id, actor=request.user, source="api", **changes)
        return Response(ScheduleOutputSerializer(schedule).data)

    @extend_schema(tags=["schedules"], summary="Delete a recurring job", operation_id="schedules_delete", responses={204: None, **errors(403, 404)})
    def delete(self, request: Request, schedule_id: int) -> Response:
        services.delete_schedule(schedule_id, actor=request.user, source="api")
        return Response(status=status.HTTP_204_NO_CONTENT)


class ScheduleRunApi(APIView):
    """Enqueue a recurring job's job now, outside its times."""

    permission_classes = [IsStaff]

    @extend_schema(tags=["schedules"], summary="Run a recurring job now", operation_id="schedules_run", request=None, responses={202: JobOutputSerializer, **errors(403, 404)})
    def post(self, request: Request, schedule_id: int) -> Response:
        job = services.run_schedule_now(schedule_id, actor=request.user, source="api")
        return Response(JobOutputSerializer(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)
