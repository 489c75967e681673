"""Seed 1's transcription endpoints: thin views over transcription.services and selectors."""
from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import access
from jobs.api.errors import errors
from jobs.api.parsers import JSONParser
from jobs.api.serializers import TextField
from transcription import formats, languages, selectors, services, sources
from transcription.models import Transcription


SOURCE = RegexValidator(sources.SOURCE_PATTERN, "must be printable ASCII without spaces (percent-encode URLs)")


class TranscriptionJsonInputSerializer(serializers.Serializer):
    """A transcription of audio already stored: the JSON body."""

    audioUrl = TextField(max_length=1000, validators=[SOURCE], help_text="A storage key, an s3:// URL in the configured bucket, or an https URL on an allowed host.")
    model = serializers.ChoiceField(choices=Transcription.Model.values, required=False)
    format = serializers.ChoiceField(choices=Transcription.Format.values, required=False)
    tier = serializers.ChoiceField(choices=Transcription.Tier.values, required=False, help_text="FREE, PRO or PAYG: the job's priority (1, 5, 10).")
    language = TextField(
        required=False, max_length=16, validators=[languages.VALIDATOR],
        help_text="The spoken language; left out, the model detects it.",
    )


class TranscriptionInputSerializer(TranscriptionJsonInputSerializer):
    """A transcription: the multipart body, an uploaded file or an audioUrl."""

    file = serializers.FileField(required=False, help_text="The audio (multipart). Either this or audioUrl.")
    audioUrl = TextField(required=False, max_length=1000, validators=[SOURCE], help_text="Instead of a file: a storage key, an s3:// URL in the configured bucket, or an https URL on an allowed host.")


class TranscriptionCreatedSerializer(serializers.Serializer):
    transcriptionId = serializers.CharField()
    jobId = serializers.CharField()
    status = serializers.CharField()


class TranscriptionOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    jobId = serializers.CharField(source="job_id", allow_null=True)
    status = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    attemptsMade = serializers.SerializerMethodField()
    failedReason = serializers.SerializerMethodField()
    errorKind = serializers.SerializerMethodField()
    model = serializers.CharField()
    format = serializers.CharField()
    tier = serializers.CharField()
    language = serializers.CharField()
    sourceName = serializers.CharField(source="source_name")
    durationSeconds = serializers.FloatField(source="duration_seconds", allow_null=True)
    resultUrl = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")
    startedAt = serializers.SerializerMethodField()
    completedAt = serializers.SerializerMethodField()

    def _state(self, row: Transcription, field: str) -> Any:
        """The live job's field while the job exists; after retention removed it, what the row recorded."""
        return getattr(row.job, field) if row.job else getattr(row, field)

    def get_status(self, row: Transcription) -> str:
        return str(self._state(row, "status"))

    def get_progress(self, row: Transcription) -> int:
        if row.job:
            return int(row.job.progress)
        return 100 if row.status == "completed" else 0

    def get_attemptsMade(self, row: Transcription) -> int:
        return int(self._state(row, "attempts_made"))

    def get_failedReason(self, row: Transcription) -> str | None:
        return self._state(row, "failed_reason") or None

    def get_errorKind(self, row: Transcription) -> str | None:
        return self._state(row, "error_kind") or None

    def get_startedAt(self, row: Transcription) -> str | None:
        started = self._state(row, "started_at")
        return started.isoformat() if started else None

    def get_completedAt(self, row: Transcription) -> str | None:
        done = self._state(row, "completed_at")
        return done.isoformat() if done else None

    def get_resultUrl(self, row: Transcription) -> str | None:
        return selectors.result_url(row)


class TranscriptionListCreateApi(APIView):
    """Transcribe an uploaded audio file or a stored audio URL (seed 1's addTranscriptionJob over HTTP)."""

    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        tags=["transcriptions"], summary="Request a transcription", operation_id="transcriptions_create",
        request={"multipart/form-data": TranscriptionInputSerializer, "application/json": TranscriptionJsonInputSerializer},
        responses={201: TranscriptionCreatedSerializer, **errors(400)},
    )
    def post(self, request: Request) -> Response:
        s = TranscriptionInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        data = s.validated_data
        upload = data.get("file")
        row, job = services.request_transcription(
            owner=access.signed_in(request.user), upload=upload, upload_name=getattr(upload, "name", ""), audio_url=data.get("audioUrl"),
            model=data.get("model"), format=data.get("format"), tier=data.get("tier"), language=data.get("language"),
        )
        return Response({"transcriptionId": row.id, "jobId": job.id, "status": job.status}, status=status.HTTP_201_CREATED)


class TranscriptionDetailApi(APIView):
    """A transcription's status, progress, attempts, failure and result URL (owner or staff; else 404)."""

    @extend_schema(tags=["transcriptions"], summary="Get a transcription", operation_id="transcriptions_retrieve", responses={200: TranscriptionOutputSerializer, **errors(404)})
    def get(self, request: Request, transcription_id: str) -> Response:
        return Response(TranscriptionOutputSerializer(selectors.get_for(transcription_id, user=request.user)).data)


class TranscriptionResultApi(APIView):
    """The transcript in the format it was asked for (404 until it exists)."""

    @extend_schema(tags=["transcriptions"], summary="Get a transcript", operation_id="transcriptions_result", responses={200: OpenApiResponse(description="JSON, SRT, VTT or plain text"), **errors(404)})
    def get(self, request: Request, transcription_id: str) -> HttpResponse:
        row = selectors.get_for(transcription_id, user=request.user)
        return HttpResponse(selectors.result_text(row), content_type=formats.CONTENT_TYPES[row.format])
