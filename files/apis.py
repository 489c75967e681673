"""Seed 3's file endpoints: thin views over files.services."""
from __future__ import annotations

from typing import Any
from uuid import UUID

from django.core.validators import RegexValidator
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from files import services, storage
from files.models import StoredFile
from jobs import access
from jobs.api.bodylimit import declared_length
from jobs.api.errors import errors
from jobs.api.inputs import body
from jobs.api.pagination import PAGE_PARAMS, page_of, paginated
from jobs.api.parsers import JSONParser
from jobs.api.serializers import TextField
from transcription import ranged, sources

UUID_OR_EMPTY = r"^([0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12})?$"


@extend_schema_field({"type": "string", "format": "binary", "minLength": 1})
class NonEmptyFileField(serializers.FileField):
    """A file of one byte or more (an empty one is refused by the service, with the other rules)."""


class UploadInputSerializer(serializers.Serializer):
    file = NonEmptyFileField(help_text="The file (multipart), not empty. Its content type is sniffed from the bytes.", allow_empty_file=True)
    memoId = TextField(
        required=False, allow_blank=True, validators=[RegexValidator(UUID_OR_EMPTY, "must be a UUID")],
        help_text="A memo to attach the file to (a UUID; empty means none).",
    )


class UploadQueuedSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    jobId = serializers.CharField()
    message = serializers.CharField()
    fileId = serializers.CharField()


class UploadedSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    fileId = serializers.CharField()
    filename = serializers.CharField()
    url = serializers.CharField()


class FileOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    filename = serializers.CharField(source="original_name")
    size = serializers.IntegerField()
    contentType = serializers.CharField(source="content_type")
    sha256 = serializers.CharField()
    memoId = serializers.UUIDField(source="memo_id", allow_null=True)
    status = serializers.CharField()
    failedReason = serializers.SerializerMethodField()
    results = serializers.DictField()
    transcriptionId = serializers.CharField(source="transcription_id", allow_null=True)
    url = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    def get_url(self, row: StoredFile) -> str:
        return services.download_path(row.id)

    def get_failedReason(self, row: StoredFile) -> str | None:
        return row.failed_reason or None


class ProcessInputSerializer(serializers.Serializer):
    operation = serializers.ChoiceField(choices=services.OPERATIONS, help_text="transcribe (audio or video), analyze (ffprobe), compress (Opus).")


class JobQueuedSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    jobId = serializers.CharField()
    fileId = serializers.CharField()
    message = serializers.CharField()


def _upload_input(request: Request) -> tuple[Any, str | None]:
    """The upload and memo id, after refusing an oversize body from its Content-Length."""
    services.refuse_oversize(declared_length(request.META.get("CONTENT_LENGTH")))
    data = body(UploadInputSerializer, request)
    return data["file"], data.get("memoId")


class FileUploadAsyncApi(APIView):
    """Stage an upload and queue the file-upload job that stores it (seed 3)."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        tags=["files"], summary="Upload a file through the queue", operation_id="files_upload_async",
        request={"multipart/form-data": UploadInputSerializer}, responses={202: UploadQueuedSerializer, **errors(400, 413, 415)},
    )
    def post(self, request: Request) -> Response:
        upload, memo = _upload_input(request)
        row, job = services.upload_async(owner=access.signed_in(request.user), upload=upload, memo_id=memo)
        return Response(
            {"success": True, "jobId": job.id, "message": "File upload queued successfully", "fileId": row.id}, status=status.HTTP_202_ACCEPTED,
        )


class FileUploadApi(APIView):
    """Store an upload before answering (seed 3's synchronous upload)."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        tags=["files"], summary="Upload a file", operation_id="files_upload",
        request={"multipart/form-data": UploadInputSerializer}, responses={201: UploadedSerializer, **errors(400, 413, 415)},
    )
    def post(self, request: Request) -> Response:
        upload, memo = _upload_input(request)
        row = services.upload(owner=access.signed_in(request.user), upload=upload, memo_id=memo)
        return Response(services.upload_result(row), status=status.HTTP_201_CREATED)


class FileListApi(APIView):
    """The caller's files (staff: all), newest first; files being deleted are hidden."""

    @extend_schema(tags=["files"], summary="List files", operation_id="files_list", parameters=[*PAGE_PARAMS], responses={200: page_of(FileOutputSerializer), **errors(400)})
    def get(self, request: Request) -> Response:
        return paginated(request, self, services.listing(user=request.user), FileOutputSerializer)


class FileDetailApi(APIView):
    """One file; DELETE queues its removal (the file is hidden at once)."""

    @extend_schema(tags=["files"], summary="Get a file", operation_id="files_retrieve", responses={200: FileOutputSerializer, **errors(404)})
    def get(self, request: Request, file_id: UUID) -> Response:
        return Response(FileOutputSerializer(services.get_for(str(file_id), user=request.user)).data)

    @extend_schema(tags=["files"], summary="Delete a file through the queue", operation_id="files_destroy", responses={202: JobQueuedSerializer, **errors(404, 409)})
    def delete(self, request: Request, file_id: UUID) -> Response:
        row, job = services.request_delete(file_id=str(file_id), user=request.user)
        return Response({"success": True, "jobId": job.id, "fileId": row.id, "message": "File delete queued successfully"}, status=status.HTTP_202_ACCEPTED)


class FileProcessApi(APIView):
    """Queue a file-process job: transcribe, analyze or compress."""

    parser_classes = [JSONParser]

    @extend_schema(
        tags=["files"], summary="Process a file through the queue", operation_id="files_process",
        request=ProcessInputSerializer, responses={202: JobQueuedSerializer, **errors(400, 404, 409)},
    )
    def post(self, request: Request, file_id: UUID) -> Response:
        data = body(ProcessInputSerializer, request)
        row, job = services.request_processing(file_id=str(file_id), operation=data["operation"], user=request.user)
        return Response({"success": True, "jobId": job.id, "fileId": row.id, "message": f"File {data['operation']} queued successfully"}, status=status.HTTP_202_ACCEPTED)


class FileDownloadApi(APIView):
    """The file's bytes: streamed with Range support, or on S3 a redirect to a presigned URL."""

    @extend_schema(
        tags=["files"], summary="Download a file", operation_id="files_download",
        parameters=[OpenApiParameter("Range", str, OpenApiParameter.HEADER, required=False, description="One byte range, e.g. `bytes=0-1023`.")],
        responses={
            200: OpenApiResponse(description="The bytes, with the sniffed content type and a safe Content-Disposition."),
            206: OpenApiResponse(description="The requested range."),
            302: OpenApiResponse(description="On S3: a presigned URL."),
            416: OpenApiResponse(description="A range outside the file."),
            **errors(404, 409),
        },
    )
    def get(self, request: Request, file_id: UUID) -> HttpResponse | StreamingHttpResponse:
        row = services.downloadable(str(file_id), user=request.user)
        disposition = content_disposition_header(True, row.original_name) or "attachment"
        with sources.request_errors(field="file"):
            presigned = storage.presigned_url(row.key, filename_header=disposition, content_type=row.content_type)
        if presigned:
            return HttpResponseRedirect(presigned)
        with sources.request_errors(field="file"):
            return ranged.ranged_response(request, row.key, size=row.size, content_type=row.content_type, disposition=disposition)
