"""API shapes: input serializers validate, output serializers render camelCase JSON. No rules live here."""
from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.engine import conf, intake, priority
from jobs.engine.states import FINAL, Status
from jobs.selectors import LISTING_STATUSES

# -- fields -------------------------------------------------------------------------------------


@extend_schema_field({"oneOf": [{"type": "integer", "minimum": priority.MIN, "maximum": priority.MAX}, {"type": "string", "enum": sorted(priority.NAMED)}]})
class PriorityField(serializers.JSONField):
    """An integer priority (higher runs first) or a level name: FREE, PRO, PAYG, LOW, NORMAL, HIGH, CRITICAL.

    Passed on as sent: the enqueue service parses and checks it (jobs.engine.intake), for every caller.
    """


# -- jobs ---------------------------------------------------------------------------------------


class JobOutputSerializer(serializers.Serializer):
    """A job as every /api/jobs endpoint shows it."""

    id = serializers.CharField()
    queue = serializers.CharField()
    type = serializers.CharField()
    status = serializers.SerializerMethodField()
    progress = serializers.IntegerField(help_text="0-100")
    progressMessage = serializers.CharField(source="progress_message")
    priority = serializers.IntegerField(help_text="Higher runs first.")
    attemptsMade = serializers.IntegerField(source="attempts_made")
    maxAttempts = serializers.IntegerField(source="max_attempts")
    failedReason = serializers.SerializerMethodField()
    errorKind = serializers.SerializerMethodField()
    result = serializers.JSONField(allow_null=True)
    payload = serializers.JSONField()
    ownerId = serializers.IntegerField(source="owner_id", allow_null=True)
    retryOf = serializers.CharField(source="retry_of_id", allow_null=True)
    cancelRequested = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")
    runAt = serializers.DateTimeField(source="run_at", allow_null=True, help_text="When a delayed job becomes waiting.")
    startedAt = serializers.DateTimeField(source="started_at", allow_null=True)
    completedAt = serializers.DateTimeField(source="completed_at", allow_null=True)
    updatedAt = serializers.DateTimeField(source="updated_at")

    @extend_schema_field(serializers.ChoiceField(choices=LISTING_STATUSES))
    def get_status(self, job: Any) -> str:
        # A paused queue's listing shows its waiting jobs as `paused` (API.md); elsewhere the real status.
        if self.context.get("queue_paused") and job.status == Status.WAITING:
            return "paused"
        return job.status

    @extend_schema_field(OpenApiTypes.STR)
    def get_failedReason(self, job: Any) -> str | None:
        return job.failed_reason or None

    @extend_schema_field(OpenApiTypes.STR)
    def get_errorKind(self, job: Any) -> str | None:
        return job.error_kind or None

    def get_cancelRequested(self, job: Any) -> bool:
        return job.cancel_requested_at is not None


class JobCreateInputSerializer(serializers.Serializer):
    """Enqueue a job type open to API clients.

    Only the shape of the body is read here; every rule (known type open to API clients, a JSON
    object payload, priority, delay and key limits) is checked once, by the enqueue service.
    """

    type = serializers.CharField(help_text="A registered job type open to API clients.")
    payload = serializers.JSONField(required=False, default=dict, help_text="A JSON object handed to the task.")
    priority = PriorityField(required=False, allow_null=True, default=None)
    delay = serializers.FloatField(required=False, allow_null=True, help_text=f"Seconds before the job may run (0 to {intake.MAX_DELAY:g}); > 0 makes it delayed.")
    idempotencyKey = serializers.CharField(
        required=False, allow_null=True, allow_blank=True,
        help_text=f"1-{intake.IDEMPOTENCY_KEY_MAX} characters. Sending the same key again returns the first job (200) instead of a new one.",
    )


class JobListFilterSerializer(serializers.Serializer):
    """Query parameters of GET /api/jobs."""

    queue = serializers.CharField(required=False, help_text="A declared queue.")
    status = serializers.ChoiceField(choices=[s.value for s in Status], required=False)
    type = serializers.CharField(required=False, max_length=200)

    def validate_queue(self, value: str) -> str:
        if value not in conf.all_queues():
            raise serializers.ValidationError(f"unknown queue; known: {sorted(conf.all_queues())}")
        return value


class QueueJobsFilterSerializer(serializers.Serializer):
    """Query parameters of GET /api/queue/{queue}/jobs (limit and offset paginate)."""

    status = serializers.ChoiceField(choices=LISTING_STATUSES, required=False, help_text="`paused`: the waiting jobs of a paused queue.")


class ProgressInputSerializer(serializers.Serializer):
    """An active job's progress, reported by a worker outside this codebase."""

    progress = serializers.FloatField(min_value=0, max_value=100, help_text="0-100")
    message = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class JobStateOutputSerializer(serializers.Serializer):
    """Seed 3's polling shape."""

    jobId = serializers.CharField(source="id")
    state = serializers.CharField(source="status")
    progress = serializers.IntegerField()
    result = serializers.JSONField(allow_null=True)
    failedReason = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.STR)
    def get_failedReason(self, job: Any) -> str | None:
        return job.failed_reason or None


# -- queues -------------------------------------------------------------------------------------


class QueueStatsOutputSerializer(serializers.Serializer):
    """One queue's counts; a paused queue shows its waiting jobs under `paused` and `waiting` is 0."""

    queue = serializers.CharField()
    waiting = serializers.IntegerField()
    active = serializers.IntegerField()
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    delayed = serializers.IntegerField()
    paused = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    total = serializers.IntegerField()
    isPaused = serializers.BooleanField()


class QueueStateOutputSerializer(serializers.Serializer):
    """A queue's pause switch after pause or resume."""

    queue = serializers.CharField(source="name")
    isPaused = serializers.BooleanField(source="paused")
    changedAt = serializers.DateTimeField(source="changed_at")


class CleanInputSerializer(serializers.Serializer):
    """Remove final jobs that ended more than `grace` milliseconds ago, at most `limit` of them (seed 5)."""

    status = serializers.ChoiceField(choices=sorted(FINAL), required=False, default=Status.COMPLETED.value)
    grace = serializers.IntegerField(required=False, default=0, min_value=0, help_text="Milliseconds.")
    limit = serializers.IntegerField(required=False, default=1000, min_value=1, max_value=100_000)


class CleanOutputSerializer(serializers.Serializer):
    removed = serializers.IntegerField()


class QueueParamSerializer(serializers.Serializer):
    """The `queue` query parameter of seed 4's /v1/admin/queue endpoints."""

    queue = serializers.CharField(help_text="A declared queue, e.g. `default`.")


class WorkerOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    queues = serializers.ListField(child=serializers.CharField())
    lastSeen = serializers.DateTimeField()
    currentJobId = serializers.CharField(allow_null=True)
    jobsDone = serializers.IntegerField()


class WorkersOutputSerializer(serializers.Serializer):
    alive = serializers.IntegerField()
    staleAfterSeconds = serializers.FloatField()
    items = WorkerOutputSerializer(many=True)


@extend_schema_field({"type": "string", "description": "`connected` or `disconnected`", "example": "connected"})
class ConnectionStateField(serializers.CharField):
    """`connected` or `disconnected`."""


class HealthOutputSerializer(serializers.Serializer):
    """Seed 3's health shape plus the database and the workers."""

    status = serializers.ChoiceField(choices=["ok", "degraded"])
    redis = ConnectionStateField()
    database = ConnectionStateField()
    workers = WorkersOutputSerializer()
    queues = serializers.DictField(child=QueueStatsOutputSerializer())


# -- dead letters -------------------------------------------------------------------------------


class DeadLetterOutputSerializer(serializers.Serializer):
    """A job that failed for good and awaits review."""

    jobId = serializers.CharField(source="job_id")
    queue = serializers.CharField()
    type = serializers.CharField(source="job.type")
    errorKind = serializers.CharField(source="error_kind")
    reason = serializers.CharField()
    attemptsMade = serializers.IntegerField(source="job.attempts_made")
    maxAttempts = serializers.IntegerField(source="job.max_attempts")
    payload = serializers.JSONField(source="job.payload")
    failedAt = serializers.DateTimeField(source="created_at")


class DeadLetterFilterSerializer(serializers.Serializer):
    queue = serializers.CharField(required=False)
    errorKind = serializers.CharField(required=False)


class DeadLetterStatsOutputSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    byQueue = serializers.DictField(child=serializers.IntegerField())
    byErrorKind = serializers.DictField(child=serializers.IntegerField())


class DeadLetterRetryOutputSerializer(serializers.Serializer):
    jobId = serializers.CharField(help_text="The new job's id.")


# -- errors -------------------------------------------------------------------------------------


class ErrorOutputSerializer(serializers.Serializer):
    """Every error: a message, and per-field errors (or domain data such as the job's status) in `extra`."""

    message = serializers.CharField()
    extra = serializers.DictField()
