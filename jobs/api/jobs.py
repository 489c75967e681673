"""The job endpoints of API.md: list, enqueue, get, retry, cancel, progress, and seed 3's polling shape."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import access, selectors, services
from jobs.api.errors import errors
from jobs.api.inputs import body, query
from jobs.api.pagination import PAGE_PARAMS, page_of, paginated
from jobs.api.serializers import (
    JobCreateInputSerializer,
    JobListFilterSerializer,
    JobOutputSerializer,
    JobStateOutputSerializer,
    ProgressInputSerializer,
)


class JobListCreateApi(APIView):
    """The caller's jobs (staff: all), and enqueueing a job type open to API clients."""

    @extend_schema(tags=["jobs"], summary="List jobs", operation_id="jobs_list", parameters=[JobListFilterSerializer, *PAGE_PARAMS], responses={200: page_of(JobOutputSerializer), **errors(400)})
    def get(self, request: Request) -> Response:
        filters = query(JobListFilterSerializer, request)
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
        data = body(JobCreateInputSerializer, request)
        spec = services.JobSpec(
            type=data["type"], payload=data["payload"], priority=data["priority"], delay=data.get("delay"),
            idempotency_key=data.get("idempotencyKey"), owner=access.signed_in(request.user),
        )
        job, created = services.enqueue(spec, from_api=True)
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
        data = body(ProgressInputSerializer, request)
        job = services.update_progress(job_id, progress=data["progress"], message=data["message"], user=request.user)
        return Response(JobOutputSerializer(job).data)


class JobStateApi(APIView):
    """Seed 3's polling shape of one job."""

    @extend_schema(tags=["jobs"], summary="Poll a job's state", operation_id="queue_job_state", responses={200: JobStateOutputSerializer, **errors(404)})
    def get(self, request: Request, job_id: str) -> Response:
        return Response(JobStateOutputSerializer(selectors.job_get(job_id, user=request.user)).data)
