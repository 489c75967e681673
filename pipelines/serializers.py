"""Input and output shapes of the pipelines API (camelCase like the engine's)."""
from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.api.serializers import TextField
from pipelines import definitions
from transcription import languages

LANGUAGE = languages.VALIDATOR


@extend_schema_field({"type": "object", "additionalProperties": True, "nullable": True})
class ObjectField(serializers.JSONField):
    """A JSON object (documented as one; the service checks the value)."""


class ProjectCreateInputSerializer(serializers.Serializer):
    """Multipart: the source media and the languages."""

    file = serializers.FileField(help_text="The source video (or audio).")
    sourceLanguage = TextField(max_length=16, validators=[LANGUAGE], help_text="Spoken language of the media, e.g. en.")
    targetLanguage = TextField(max_length=16, validators=[LANGUAGE], help_text="Language to dub into, e.g. fr.")
    premium = serializers.BooleanField(default=False, help_text="Premium projects also run lip-sync.")


class ApproveInputSerializer(serializers.Serializer):
    output = ObjectField(required=False, allow_null=True, help_text="The stage's output as edited by the reviewer (e.g. a corrected transcript); omitted: approved as produced.")


class RejectInputSerializer(serializers.Serializer):
    notes = TextField(max_length=5000, blank_message="say what is wrong", help_text="What is wrong; the stage runs again.")


class RerunInputSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=[s.name for s in definitions.DUBBING.stages], help_text="Run the project again from this stage.")


class StageReviewOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    decision = serializers.CharField()
    reviewerId = serializers.IntegerField(source="reviewer_id", allow_null=True)
    notes = serializers.CharField()
    approvedOutput = serializers.JSONField(source="approved_output", allow_null=True)
    at = serializers.DateTimeField()


class StageRunOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    stage = serializers.CharField()
    attempt = serializers.IntegerField()
    jobId = serializers.CharField(source="job_id", allow_null=True)
    status = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    error = serializers.CharField(help_text="Why the job failed or was cancelled, as recorded on the run.")
    input = serializers.JSONField(allow_null=True)
    output = serializers.JSONField(allow_null=True)
    startedAt = serializers.DateTimeField(source="started_at")
    endedAt = serializers.DateTimeField(source="ended_at", allow_null=True)
    reviews = StageReviewOutputSerializer(many=True)

    @extend_schema_field(OpenApiTypes.STR)
    def get_status(self, run: Any) -> str:
        # The live job while it exists; after retention removed it, what the run recorded.
        return run.job.status if run.job_id else run.status

    @extend_schema_field(OpenApiTypes.INT)
    def get_progress(self, run: Any) -> int:
        if run.job_id:
            return run.job.progress
        return 100 if run.status == "completed" else 0


class ProjectOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    pipeline = serializers.CharField()
    ownerId = serializers.IntegerField(source="owner_id")
    sourceKey = serializers.CharField(source="source_key")
    sourceName = serializers.CharField(source="source_name")
    sourceLanguage = serializers.CharField(source="source_language")
    targetLanguage = serializers.CharField(source="target_language")
    premium = serializers.BooleanField()
    status = serializers.CharField()
    currentStage = serializers.CharField(source="current_stage")
    failureReason = serializers.CharField(source="failure_reason")
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")
    completedAt = serializers.DateTimeField(source="completed_at", allow_null=True)


class ProjectDetailOutputSerializer(ProjectOutputSerializer):
    stageRuns = serializers.SerializerMethodField()

    @extend_schema_field(StageRunOutputSerializer(many=True))
    def get_stageRuns(self, project: Any) -> list[dict[str, Any]]:
        from pipelines import selectors

        return list(StageRunOutputSerializer(selectors.stage_runs(project), many=True).data)
