"""Seed 4's `/v1`: AI jobs and usage, for programs with an API key; every answer carries X-RateLimit-*."""
from __future__ import annotations

from datetime import datetime, timezone as dt_timezone
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from django.core.validators import RegexValidator
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.api.permissions import NotReadOnly
from rest_framework.views import APIView

from ai import metering, selectors, services
from ai.models import AiJob
from jobs import access
from jobs.api.auth import ApiKeyAuthentication, request_key
from jobs.api.errors import ERRORS, errors
from jobs.api.inputs import NOT_BLANK as TEXT_NOT_BLANK, QueryDateField, body, query
from jobs.api.pagination import PAGE_PARAMS, page_of, paginated
from jobs.api.serializers import ErrorOutputSerializer, IdempotencyKeyField, PriorityField, TextField
from jobs.models import ApiKey
from ai.processors import classify, summarize

LIMITED = {
    403: OpenApiResponse(ErrorOutputSerializer, description="Signed in without an API key: /v1 takes one."),
    429: OpenApiResponse(ErrorOutputSerializer, description="Over the key's requests per minute; Retry-After says when to try again."),
}


#: A string with something in it besides whitespace (the schema says so, as a pattern).
NOT_BLANK = RegexValidator(TEXT_NOT_BLANK, "must contain a character other than whitespace")


class AiJobInputSerializer(serializers.Serializer):
    text = TextField(trim_whitespace=False, validators=[NOT_BLANK], help_text="The text to process (AI_MAX_TEXT_CHARS at most).")
    priority = PriorityField(required=False, allow_null=True, default=None, help_text="An integer 0-100 (higher first) or LOW, NORMAL, HIGH, CRITICAL.")
    idempotencyKey = IdempotencyKeyField(required=False, allow_null=True, max_length=AiJob._meta.get_field("idempotency_key").max_length, help_text="The same key again returns the first job (200).")
    webhookUrl = TextField(required=False, allow_blank=True, max_length=2000, help_text="https URL told when the job ends (signed, Standard Webhooks).")


class SummarizeInputSerializer(AiJobInputSerializer):
    maxSentences = serializers.IntegerField(required=False, min_value=1, max_value=summarize.MAX_SENTENCES, help_text="Sentences in the summary.")


class ClassifyInputSerializer(AiJobInputSerializer):
    labels = serializers.ListField(
        child=TextField(max_length=classify.MAX_LABEL_LENGTH, trim_whitespace=False, validators=[NOT_BLANK]),
        required=False, allow_empty=False, min_length=1, max_length=classify.MAX_LABELS,
        help_text=f"Labels to choose from (default: {', '.join(classify.DEFAULT_LABELS)}).",
    )


class TranslateInputSerializer(AiJobInputSerializer):
    targetLanguage = TextField(max_length=20, help_text="Language to translate into, e.g. de.")
    sourceLanguage = TextField(required=False, max_length=20, help_text="The text's language (default: the provider detects it).")


INPUTS: dict[str, type[AiJobInputSerializer]] = {
    "summarize": SummarizeInputSerializer, "classify": ClassifyInputSerializer, "translate": TranslateInputSerializer,
    "sentiment": AiJobInputSerializer, "extract": AiJobInputSerializer,
}


class AiJobOutputSerializer(serializers.Serializer):
    """Seed 4's job: {id, status, type, input, output, tokenUsed, costCents, createdAt, completedAt}."""

    id = serializers.CharField()
    status = serializers.ChoiceField(choices=AiJob.Status.choices)
    type = serializers.ChoiceField(choices=AiJob.Type.choices)
    input = serializers.DictField()
    output = serializers.DictField(allow_null=True)
    tokenUsed = serializers.IntegerField(help_text="Input and output tokens (Whisper tiny.en's tokenizer).")
    tokensIn = serializers.IntegerField()
    tokensOut = serializers.IntegerField()
    costCents = serializers.IntegerField()
    error = serializers.CharField(allow_null=True)
    createdAt = serializers.DateTimeField()
    startedAt = serializers.DateTimeField(allow_null=True)
    completedAt = serializers.DateTimeField(allow_null=True)

    def to_representation(self, instance: Any) -> Any:
        return selectors.public(instance)


class UsageQuerySerializer(serializers.Serializer):
    # `from` is a Python keyword: declared below.
    to = QueryDateField(required=False, help_text="Last day (UTC), default today.")


UsageQuerySerializer._declared_fields["from"] = QueryDateField(required=False, help_text="First day (UTC), default 30 days before `to`.")


class UsageOutputSerializer(serializers.Serializer):
    jobs = serializers.IntegerField()
    tokens = serializers.IntegerField()
    costCents = serializers.IntegerField()
    byType = serializers.DictField()
    byDay = serializers.ListField(child=serializers.DictField())
    monthTokens = serializers.IntegerField()
    monthlyQuota = serializers.IntegerField(allow_null=True)


UsageOutputSerializer._declared_fields["from"] = serializers.DateField()
UsageOutputSerializer._declared_fields["to"] = serializers.DateField()


def api_key(request: Request) -> ApiKey:
    """The key a KeyedApi request came with (HasApiKey lets no other request in)."""
    key = request_key(request)
    assert key is not None
    return key


class HasApiKey(BasePermission):
    """Seed 4's /v1 is for programs: a signed-in browser session is not enough (403), an API key is."""

    message = "/v1 takes an API key: send 'Authorization: Bearer <key>'"

    def has_permission(self, request: Request, view: Any) -> bool:
        return request_key(request) is not None


class KeyedApi(APIView):
    """An API-key endpoint: counted against the key's requests per minute, answered with X-RateLimit-* headers."""

    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated, NotReadOnly, HasApiKey]
    window: metering.Window | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.window = metering.hit(api_key(request))

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.window is not None:
            for name, value in self.window.headers().items():
                response[name] = value
        return response


def _create_view(kind: str) -> type[KeyedApi]:
    serializer = INPUTS[kind]

    @extend_schema(
        tags=["ai"], summary=f"Queue a {kind} job", operation_id=f"ai_jobs_{kind}", request=serializer,
        responses={
            201: OpenApiResponse(AiJobOutputSerializer, description="The new job, QUEUED."),
            200: OpenApiResponse(AiJobOutputSerializer, description="The job first created with this idempotency key."),
            402: OpenApiResponse(ErrorOutputSerializer, description="The key's monthly token quota is used up."),
            409: OpenApiResponse(ErrorOutputSerializer, description="The idempotency key was used for another type or input."),
            **errors(400, 413), **LIMITED,
        },
    )
    def post(self: KeyedApi, request: Request) -> Response:
        data = body(serializer, request)
        row, created = services.create(owner=access.signed_in(request.user), api_key=api_key(request), kind=kind, data=data)
        return Response(selectors.public(row), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    return type(f"AiJob{kind.title()}Api", (KeyedApi,), {"post": post, "__doc__": f"Queue a {kind} job on ai-jobs (seed 4).", "__module__": __name__})


CREATE_VIEWS = {kind: _create_view(kind) for kind in services.KINDS}


class AiJobListApi(KeyedApi):
    """The caller's AI jobs, newest first."""

    @extend_schema(tags=["ai"], summary="List AI jobs", operation_id="ai_jobs_list", parameters=PAGE_PARAMS, responses={200: page_of(AiJobOutputSerializer), **errors(400), **LIMITED})
    def get(self, request: Request) -> Response:
        return paginated(request, self, selectors.jobs_of(user=request.user), AiJobOutputSerializer)


class AiJobDetailApi(KeyedApi):
    """One AI job of the caller's; 404 for anyone else's."""

    @extend_schema(tags=["ai"], summary="Get an AI job", operation_id="ai_jobs_retrieve", responses={200: AiJobOutputSerializer, **errors(404), **LIMITED})
    def get(self, request: Request, job_id: str) -> Response:
        return Response(selectors.public(selectors.get(job_id, user=request.user)))

    @extend_schema(
        tags=["ai"], summary="Any other job type: refused", operation_id="ai_jobs_unknown_type", request=None,
        description="`/v1/jobs/<type>` for a type that is not one of summarize, classify, sentiment, translate, extract: 400 naming them.",
        responses={**errors(400), **LIMITED},
    )
    def post(self, request: Request, job_id: str) -> Response:
        """A POST to /v1/jobs/<anything but a kind>: 400 naming the kinds."""
        services.refuse_unknown(job_id)
        raise AssertionError(f"{job_id} is a kind, whose own path comes first")


class UsageApi(KeyedApi):
    """The calling key's usage between two days (UTC, both included; `from` after `to` is an empty period), from the daily rollups."""

    @extend_schema(tags=["ai"], summary="The key's usage", operation_id="ai_usage", parameters=[UsageQuerySerializer], responses={200: UsageOutputSerializer, **errors(400), **LIMITED})
    def get(self, request: Request) -> Response:
        params = query(UsageQuerySerializer, request)
        end = params.get("to") or datetime.now(dt_timezone.utc).date()
        return Response(selectors.usage(api_key=api_key(request), start=params.get("from"), end=end))


__all__ = ["AiJobDetailApi", "AiJobListApi", "CREATE_VIEWS", "ERRORS", "UsageApi"]
