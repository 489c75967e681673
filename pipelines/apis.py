"""The pipelines REST API: seed 2's project job paths and /api/projects/. Thin: validate, call one service or selector, return."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import access
from jobs.api.errors import errors
from jobs.api.parsers import JSONParser
from jobs.api.inputs import body
from jobs.api.pagination import PAGE_PARAMS, page_of, paginated
from jobs.api.serializers import JobOutputSerializer
from pipelines import selectors, services
from pipelines.serializers import (
    ApproveInputSerializer,
    ProjectCreateInputSerializer,
    ProjectDetailOutputSerializer,
    ProjectOutputSerializer,
    RejectInputSerializer,
    RerunInputSerializer,
)


class ProjectJobsApi(APIView):
    """Every job of a project, oldest first (seed 2); 404 unless the caller owns the project or is staff."""

    @extend_schema(tags=["pipelines"], summary="Jobs of a project", operation_id="project_jobs_list", responses={200: JobOutputSerializer(many=True), **errors(404)})
    def get(self, request: Request, project_id: str) -> Response:
        return Response(JobOutputSerializer(selectors.project_jobs(project_id, user=request.user), many=True).data)


class ProjectCurrentJobApi(APIView):
    """The project's job in progress (waiting, delayed or active), or 404 (seed 2)."""

    @extend_schema(tags=["pipelines"], summary="Current job of a project", operation_id="project_jobs_current", responses={200: JobOutputSerializer, **errors(404)})
    def get(self, request: Request, project_id: str) -> Response:
        return Response(JobOutputSerializer(selectors.current_job(project_id, user=request.user)).data)


class ProjectListCreateApi(APIView):
    """The caller's projects (staff: all), and creating a project from an upload."""

    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(tags=["pipelines"], summary="List projects", operation_id="projects_list", parameters=PAGE_PARAMS, responses={200: page_of(ProjectOutputSerializer), **errors(400)})
    def get(self, request: Request) -> Response:
        return paginated(request, self, selectors.visible_projects(request.user).order_by("-created_at"), ProjectOutputSerializer)

    @extend_schema(
        tags=["pipelines"], summary="Create a project", operation_id="projects_create",
        request={"multipart/form-data": ProjectCreateInputSerializer},
        responses={201: OpenApiResponse(ProjectDetailOutputSerializer, description="The project, its first stage enqueued."), **errors(400)},
    )
    def post(self, request: Request) -> Response:
        data = body(ProjectCreateInputSerializer, request)
        project = services.create_project(
            owner=access.signed_in(request.user), upload=data["file"], upload_name=data["file"].name or "media",
            source_language=data["sourceLanguage"], target_language=data["targetLanguage"], premium=data["premium"],
        )
        return Response(ProjectDetailOutputSerializer(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(APIView):
    """A project with its stage runs (their jobs' status and progress, outputs and reviews)."""

    @extend_schema(tags=["pipelines"], summary="Get a project", operation_id="projects_retrieve", responses={200: ProjectDetailOutputSerializer, **errors(404)})
    def get(self, request: Request, project_id: str) -> Response:
        return Response(ProjectDetailOutputSerializer(selectors.project_get(project_id, user=request.user)).data)


class ProjectApproveApi(APIView):
    """Approve the stage awaiting review, optionally with an edited output; the next stage is enqueued."""

    @extend_schema(tags=["pipelines"], summary="Approve a stage", operation_id="projects_approve", request=ApproveInputSerializer, responses={200: ProjectDetailOutputSerializer, **errors(400, 404, 409)})
    def post(self, request: Request, project_id: str) -> Response:
        data = body(ApproveInputSerializer, request)
        project = services.approve(project_id=project_id, reviewer=request.user, edited_output=data.get("output"), user=request.user)
        return Response(ProjectDetailOutputSerializer(project).data)


class ProjectRejectApi(APIView):
    """Reject the stage awaiting review with notes; the stage runs again."""

    @extend_schema(tags=["pipelines"], summary="Reject a stage", operation_id="projects_reject", request=RejectInputSerializer, responses={200: ProjectDetailOutputSerializer, **errors(400, 404, 409)})
    def post(self, request: Request, project_id: str) -> Response:
        data = body(RejectInputSerializer, request)
        project = services.reject(project_id=project_id, reviewer=request.user, notes=data["notes"], user=request.user)
        return Response(ProjectDetailOutputSerializer(project).data)


class ProjectRerunApi(APIView):
    """Run the project again from a stage (its owner or staff); unfinished jobs of the project are cancelled."""

    @extend_schema(tags=["pipelines"], summary="Re-run from a stage", operation_id="projects_rerun", request=RerunInputSerializer, responses={200: ProjectDetailOutputSerializer, **errors(400, 404, 409)})
    def post(self, request: Request, project_id: str) -> Response:
        data = body(RerunInputSerializer, request)
        project = services.rerun_from(project_id=project_id, stage=data["stage"], actor=request.user, user=request.user)
        return Response(ProjectDetailOutputSerializer(project).data)
