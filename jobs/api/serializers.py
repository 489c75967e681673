"""API shapes: input serializers validate, output serializers render camelCase JSON. No rules live here."""
from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.api.inputs import NOT_BLANK
from jobs.engine import conf, intake, priority
from jobs.engine.states import FINAL, Status
from jobs.exceptions import ErrorKind
from jobs.selectors import LISTING_STATUSES

# -- fields -------------------------------------------------------------------------------------


@extend_schema_field({"oneOf": [{"type": "integer", "minimum": priority.MIN, "maximum": priority.MAX}, {"type": "string", "enum": sorted(priority.NAMED)}]})
class PriorityField(serializers.JSONField):
    """An integer priority (higher runs first) or a level name: FREE, PRO, PAYG, LOW, NORMAL, HIGH, CRITICAL.

    Passed on as sent: the enqueue service parses and checks it (jobs.engine.intake), for every caller.
    """


class TextField(serializers.CharField):
    """An input string: unlike DRF's CharField, a number or boolean sent for it is refused, not turned into text."""

    default_error_messages = {"not_text": "must be a string"}

    def __init__(self, *, blank_message: str = "may not be blank", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not self.allow_blank and self.trim_whitespace:
            # Spaces alone are blank once trimmed: the schema says so (a pattern), so clients know it.
            self.validators.append(RegexValidator(NOT_BLANK, message=blank_message))

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_text")
        return str(super().to_internal_value(data))


class NumberField(serializers.FloatField):
    """A JSON number: unlike DRF's FloatField, `true` or `"5"` is refused, not read as 1 or 5."""

    default_error_messages = {"not_number": "must be a number"}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("not_number")
        return float(super().to_internal_value(data))


class WholeNumberField(serializers.IntegerField):
    """A JSON integer: unlike DRF's IntegerField, `true`, `"5"` or `5.5` is refused."""

    default_error_messages = {"not_integer": "must be an integer"}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, (int, float)) or (isinstance(data, float) and not data.is_integer()):
            self.fail("not_integer")
        return int(super().to_internal_value(data))


#: The schema of a method field that returns a string or null.
NULLABLE_TEXT = serializers.CharField(allow_null=True)


class NameField(TextField):
    """A name from a fixed list, taken as sent: " default" or "\\r" is not `default` or empty, but unknown."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)


class QueueNameField(NameField):
    """A declared queue's name; the schema lists them (jobs.api.schema), the services check it."""


class ApiJobTypeField(NameField):
    """A job type open to API clients; the schema lists them (jobs.api.schema), the enqueue service checks it."""


class JobTypeField(NameField):
    """Any registered job type (staff endpoints: a schedule may run housekeeping types); the schema lists them."""


class TimezoneField(NameField):
    """An IANA timezone name; the schema lists the ones this machine knows (jobs.api.schema)."""


@extend_schema_field({"type": "object", "additionalProperties": True})
class PayloadField(serializers.JSONField):
    """A JSON object handed to the task (the enqueue service checks that it is one)."""


# The enqueue service checks these limits, with every other rule; the schema publishes them.
@extend_schema_field({"type": "number", "minimum": 0, "maximum": intake.MAX_DELAY, "nullable": True})
class DelayField(NumberField):
    """Seconds before a job may run."""


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": intake.IDEMPOTENCY_KEY_MAX, "nullable": True})
class IdempotencyKeyField(TextField):
    """A client's idempotency key; an empty one is passed on, for the service to refuse with the other rules."""

    def run_validation(self, data: Any = serializers.empty) -> Any:
        return "" if data == "" else super().run_validation(data)


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

    @extend_schema_field(NULLABLE_TEXT)
    def get_failedReason(self, job: Any) -> str | None:
        return job.failed_reason or None

    @extend_schema_field(NULLABLE_TEXT)
    def get_errorKind(self, job: Any) -> str | None:
        return job.error_kind or None

    def get_cancelRequested(self, job: Any) -> bool:
        return job.cancel_requested_at is not None


class JobCreateInputSerializer(serializers.Serializer):
    """Enqueue a job type open to API clients.

    Only the shape of the body is read here; every rule (known type open to API clients, a JSON
    object payload, priority, delay and key limits) is checked once, by the enqueue service.
    """

    type = ApiJobTypeField(help_text="A registered job type open to API clients.")
    payload = PayloadField(required=False, default=dict, help_text="A JSON object handed to the task.")
    priority = PriorityField(required=False, allow_null=True, default=None)
    delay = DelayField(
        required=False, allow_null=True,
        help_text=f"Seconds before the job may run (0 to {intake.MAX_DELAY:g}); > 0 makes it delayed.",
    )
    idempotencyKey = IdempotencyKeyField(
        required=False, allow_null=True,
        help_text=f"1-{intake.IDEMPOTENCY_KEY_MAX} characters. Sending the same key again returns the first job (200) instead of a new one.",
    )


class JobListFilterSerializer(serializers.Serializer):
    """Query parameters of GET /api/jobs."""

    queue = QueueNameField(required=False, allow_blank=True, help_text="A declared queue.")
    status = serializers.ChoiceField(choices=[s.value for s in Status], required=False, allow_blank=True)
    type = TextField(required=False, allow_blank=True, max_length=200)

    def validate_queue(self, value: str) -> str:
        if value and value not in conf.all_queues():
            raise serializers.ValidationError(f"unknown queue; known: {sorted(conf.all_queues())}")
        return value


class QueueJobsFilterSerializer(serializers.Serializer):
    """Query parameters of GET /api/queue/{queue}/jobs (limit and offset paginate)."""

    status = serializers.ChoiceField(choices=LISTING_STATUSES, required=False, allow_blank=True, help_text="`paused`: the waiting jobs of a paused queue.")


class ProgressInputSerializer(serializers.Serializer):
    """An active job's progress, reported by a worker outside this codebase."""

    progress = NumberField(min_value=0, max_value=100, help_text="0-100")
    message = TextField(required=False, allow_blank=True, default="", max_length=500)


class JobStateOutputSerializer(serializers.Serializer):
    """Seed 3's polling shape."""

    jobId = serializers.CharField(source="id")
    state = serializers.CharField(source="status")
    progress = serializers.IntegerField()
    result = serializers.JSONField(allow_null=True)
    failedReason = serializers.SerializerMethodField()

    @extend_schema_field(NULLABLE_TEXT)
    def get_failedReason(self, job: Any) -> str | None:
        return job.failed_reason or None


# -- queues -------------------------------------------------------------------------------------


class QueueSettingsOutputSerializer(serializers.Serializer):
    """A queue's declaration (settings.JOBS_QUEUES), in the job-option names the seeds use."""

    attempts = serializers.IntegerField(help_text="Attempts before a job goes to the dead letters.")
    backoff = serializers.DictField(help_text='`{"type": "exponential", "delay": ms before the first retry, "factor": growth per attempt}`.')
    timeout = serializers.FloatField(help_text="Seconds a job may run.")
    priority = serializers.IntegerField(help_text="Priority of a job enqueued here without one (higher runs first).")
    priorityLevel = serializers.CharField(allow_null=True, help_text="LOW, NORMAL, HIGH or CRITICAL when the priority is one of those levels.")
    concurrency = serializers.IntegerField(help_text="Jobs of this queue that run at once in its worker group.")
    mode = serializers.ChoiceField(choices=["processes", "threads"])
    group = serializers.CharField(help_text="The worker group (`manage.py worker --group`) that serves the queue.")
    rateLimit = serializers.DictField(allow_null=True, help_text="`{max, duration}`: at most max starts per duration seconds.")
    removeOnComplete = serializers.DictField(allow_null=True, help_text="`{age (s), count}` kept of completed jobs; null: all kept.")
    removeOnFail = serializers.DictField(allow_null=True, help_text="`{age (s), count}` kept of failed jobs; null: all kept.")


class QueueStatsOutputSerializer(serializers.Serializer):
    """One queue's counts and settings; a paused queue shows its waiting jobs under `paused` and `waiting` is 0."""

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
    settings = QueueSettingsOutputSerializer()


class QueueStateOutputSerializer(serializers.Serializer):
    """A queue's pause switch after pause or resume."""

    queue = serializers.CharField(source="name")
    isPaused = serializers.BooleanField(source="paused")
    changedAt = serializers.DateTimeField(source="changed_at")


#: Ten years in milliseconds: a larger grace would be older than any job (and overflow a date).
MAX_GRACE_MS = 10 * 366 * 24 * 3600 * 1000


class CleanInputSerializer(serializers.Serializer):
    """Remove final jobs that ended more than `grace` milliseconds ago, at most `limit` of them (seed 5)."""

    status = serializers.ChoiceField(choices=sorted(FINAL), required=False, default=Status.COMPLETED.value)
    grace = WholeNumberField(required=False, default=0, min_value=0, max_value=MAX_GRACE_MS, help_text="Milliseconds (at most ten years).")
    limit = WholeNumberField(required=False, default=1000, min_value=1, max_value=100_000)


class CleanOutputSerializer(serializers.Serializer):
    removed = serializers.IntegerField()


class QueueParamSerializer(serializers.Serializer):
    """The `queue` query parameter of seed 4's /v1/admin/queue endpoints."""

    queue = QueueNameField(help_text="A declared queue, e.g. `default`.")


class QueueOptionalParamSerializer(serializers.Serializer):
    """The `queue` query parameter of seed 4's metrics, `default` when left out."""

    queue = QueueNameField(required=False, allow_blank=True, help_text="A declared queue (default: `default`, also when empty).")


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
    queues = serializers.DictField(
        child=QueueStatsOutputSerializer(),
        help_text="Every queue by name; a name with dashes also under its camelCase form (seed 3 reads `queues.fileUpload`).",
    )


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
    queue = TextField(required=False, allow_blank=True)
    errorKind = serializers.ChoiceField(choices=[k.value for k in ErrorKind], required=False, allow_blank=True)


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


class ScheduleOutputSerializer(serializers.Serializer):
    """A recurring job as /api/schedules shows it, with its next 5 times in its timezone."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    jobType = serializers.CharField(source="job_type")
    payload = serializers.JSONField()
    queue = serializers.CharField(help_text="empty: the job type's own queue")
    priority = serializers.IntegerField()
    cron = serializers.CharField(help_text="five fields, or six with seconds first")
    timezone = serializers.CharField()
    enabled = serializers.BooleanField()
    missed = serializers.ChoiceField(choices=["skip", "run_once"])
    grace = serializers.FloatField(help_text="seconds a missed slot may be late and still run once (missed=run_once)")
    nextFireAt = serializers.DateTimeField(source="next_fire_at", allow_null=True)
    nextTimes = serializers.SerializerMethodField()
    lastFiredAt = serializers.DateTimeField(source="last_fired_at", allow_null=True)
    lastJobId = serializers.CharField(source="last_job_id", allow_null=True)
    lastJobStatus = serializers.SerializerMethodField()
    updatedAt = serializers.DateTimeField(source="updated_at")

    @extend_schema_field(serializers.ListField(child=serializers.DateTimeField()))
    def get_nextTimes(self, schedule: Any) -> list[str]:
        from jobs.engine import schedules

        if not schedule.enabled:
            return []
        return [t.isoformat() for t in schedules.next_times(schedule.cron, schedule.timezone)]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_lastJobStatus(self, schedule: Any) -> str | None:
        return schedule.last_job.status if schedule.last_job_id and schedule.last_job else None


class ScheduleInputSerializer(serializers.Serializer):
    """A recurring job's fields; the schedule services check every rule (cron, timezone, job type, queue, priority)."""

    name = TextField(max_length=100, min_length=1)
    jobType = JobTypeField(source="job_type")
    cron = TextField(max_length=200, help_text="five fields (minute hour day month weekday), or six with seconds first: 0 */30 * * * *")
    payload = PayloadField(required=False)
    queue = QueueNameField(required=False, allow_blank=True, help_text="empty: the job type's own queue")
    priority = PriorityField(required=False)
    timezone = TimezoneField(required=False)
    enabled = serializers.BooleanField(required=False)
    missed = serializers.ChoiceField(choices=["skip", "run_once"], required=False)
    grace = NumberField(required=False, min_value=0)


class ScheduleChangeSerializer(ScheduleInputSerializer):
    """The fields to change (all optional); the name stays."""

    name = None  # type: ignore[assignment]
    jobType = JobTypeField(source="job_type", required=False)
    cron = TextField(max_length=200, required=False)
