"""The engine's tables. A Job row is the truth; Redis only carries its id to a worker."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

# Re-exported: the job states that other apps compare against (jobs.models.Status, PENDING, FINAL).
from jobs.engine.states import FINAL, PENDING, Status

__all__ = [
    "FINAL", "PENDING", "Status", "ApiKey", "AuditEntry", "DeadLetter", "HookDelivery", "Job", "JobEvent", "Lease", "QueueCount",
    "QueueLatency", "QueueRollup", "QueueState", "Schedule", "WorkerHeartbeat", "new_job_id",
]


def new_job_id() -> str:
    return uuid.uuid4().hex


class JobQuerySet(models.QuerySet["Job"]):
    def ready(self) -> "JobQuerySet":
        return self.filter(status=Status.WAITING)

    def failed(self) -> "JobQuerySet":
        return self.filter(status=Status.FAILED)

    def final(self) -> "JobQuerySet":
        return self.filter(status__in=list(FINAL))


class Job(models.Model):
    id = models.CharField(primary_key=True, max_length=64, default=new_job_id, editable=False)
    queue = models.CharField(max_length=100)
    type = models.CharField(max_length=200)
    payload = models.JSONField(default=dict, blank=True)
    # No index of its own: job_owner_created (owner, -created_at) serves every lookup by owner.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs", db_index=False)
    priority = models.SmallIntegerField(default=5)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING)
    progress = models.SmallIntegerField(default=0)
    progress_message = models.CharField(max_length=500, blank=True, default="")
    attempts_made = models.SmallIntegerField(default=0)
    max_attempts = models.SmallIntegerField(default=3)
    error_kind = models.CharField(max_length=16, blank=True, default="")
    error_class = models.CharField(max_length=300, blank=True, default="")
    failed_reason = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    run_at = models.DateTimeField(null=True, blank=True, help_text="When a delayed job becomes waiting.")
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    worker_name = models.CharField(max_length=200, blank=True, default="")
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    group_ref = models.CharField(max_length=100, null=True, blank=True, db_index=True, help_text="e.g. a pipeline project id")
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries")

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["-created_at"], name="job_created"),
            models.Index(fields=["queue", "status", "-created_at"], name="job_queue_status"),
            models.Index(fields=["owner", "-created_at"], name="job_owner_created"),
            models.Index(fields=["status", "run_at"], name="job_delayed_due", condition=Q(status="delayed")),
            models.Index(fields=["status", "worker_name"], name="job_active_worker", condition=Q(status="active")),
            models.Index(fields=["queue", "status", "completed_at"], name="job_final_age"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id[:8]} ({self.status})"


class JobEvent(models.Model):
    """One status change (or a notable moment) of a job, written in the transaction of the change.

    It is the job's history, the source of queue stats, and the outbox of the hooks: a change that
    hooks consume is written `delivered=False` with what they need (type, group, owner, and in
    `data` the result or the error), and is marked delivered once every hook has had it
    (jobs.engine.outbox). Events live as long as their job.
    """

    id = models.BigAutoField(primary_key=True)
    # No database constraint: a cleaned job's events outlive it until the stats fold them.
    # No index of its own: jobevent_job (job, id) serves every lookup by job.
    job = models.ForeignKey(Job, on_delete=models.DO_NOTHING, db_constraint=False, related_name="events", db_index=False)
    queue = models.CharField(max_length=100)
    type = models.CharField(max_length=200, blank=True, default="", db_default="")
    group_ref = models.CharField(max_length=100, null=True, blank=True)
    owner_id = models.IntegerField(null=True, blank=True)
    from_status = models.CharField(max_length=16, null=True, blank=True)
    to_status = models.CharField(max_length=16, null=True, blank=True, help_text="Empty when the job was removed.")
    message = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField()
    # Set once the event's change is added to QueueCount. A database default, because the worker's
    # one-statement transitions and COPY insert events without naming this column.
    folded = models.BooleanField(default=False, db_default=False)
    # False until every hook has had the change (or its failure is a HookDelivery to retry); events
    # that no hook consumes (a promotion, a cancel request, a removal) are written True.
    delivered = models.BooleanField(default=True, db_default=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["job", "id"], name="jobevent_job"),
            models.Index(fields=["id"], name="jobevent_unfolded", condition=Q(folded=False)),
            models.Index(fields=["job", "id"], name="jobevent_undelivered", condition=Q(delivered=False)),
        ]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status or 'removed'}"


class HookDelivery(models.Model):
    """One hook's delivery of one job event that did not go through at once: retried with backoff, then stuck.

    Written when a hook raises, and for the later events of the same job and hook, which wait
    behind it (a hook sees a job's changes in order). An operator retries a stuck one.
    """

    event_id = models.BigIntegerField()
    job_id = models.CharField(max_length=64)
    consumer = models.CharField(max_length=100)
    attempts = models.SmallIntegerField(default=0)
    next_at = models.DateTimeField()
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)
    stuck = models.BooleanField(default=False)

    class Meta:
        ordering = ["event_id"]
        verbose_name_plural = "hook deliveries"
        constraints = [models.UniqueConstraint(fields=["event_id", "consumer"], name="hookdelivery_unique")]
        indexes = [
            models.Index(fields=["job_id", "consumer", "event_id"], name="hookdelivery_open", condition=Q(done_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.consumer} event {self.event_id} ({'stuck' if self.stuck else 'done' if self.done_at else 'pending'})"


class QueueCount(models.Model):
    """Job counts per queue and status, from every folded JobEvent."""

    queue = models.CharField(max_length=100)
    status = models.CharField(max_length=16)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["queue", "status"], name="queuecount_unique")]


class QueueState(models.Model):
    """Durable per-queue switches: a pause survives worker and Redis restarts."""

    name = models.CharField(primary_key=True, max_length=100)
    paused = models.BooleanField(default=False)
    # Set when jobs of this queue were committed but could not be handed to Redis (it was down):
    # the scheduler hands them over within a tick of Redis answering again, not at the next reconcile.
    handoff_failed_at = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField(auto_now=True)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Run-time overrides of the declared settings (null: as declared), set from the console and
    # picked up by running workers without a restart; each change is an AuditEntry.
    concurrency = models.PositiveIntegerField(null=True, blank=True)
    rate_limit = models.JSONField(null=True, blank=True, help_text='{"max": N, "duration": seconds}')

    def __str__(self) -> str:
        return f"{self.name} ({'paused' if self.paused else 'running'})"


class QueueRollup(models.Model):
    """What one queue did in one minute (width 60), or one hour (width 3600) once a day old.

    Written by the stats fold from the job events in the fold's own transaction, so each event is
    counted once. `wait` (start minus the moment the job became waiting) and `run` (end minus start)
    are log-bucket histograms (jobs.engine.rollups), which add up exactly when minutes are compacted
    into hours; their quantiles are read from the buckets, their max is exact.
    """

    queue = models.CharField(max_length=100)
    start = models.DateTimeField()
    width = models.PositiveIntegerField(default=60)
    started = models.IntegerField(default=0)
    completed = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    retried = models.IntegerField(default=0)
    cancelled = models.IntegerField(default=0)
    wait = models.JSONField(default=dict)
    run = models.JSONField(default=dict)
    wait_max = models.FloatField(default=0.0)
    run_max = models.FloatField(default=0.0)

    class Meta:
        ordering = ["start"]
        constraints = [models.UniqueConstraint(fields=["width", "start", "queue"], name="queuerollup_unique")]

    def __str__(self) -> str:
        return f"{self.queue} {self.start:%Y-%m-%d %H:%M} /{self.width}s"


class QueueLatency(models.Model):
    """Every wait or run time a queue ever had, as one cumulative histogram: Prometheus's counters."""

    queue = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, help_text="wait or run")
    buckets = models.JSONField(default=dict)
    count = models.BigIntegerField(default=0)
    total = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["queue", "kind"], name="queuelatency_unique")]

    def __str__(self) -> str:
        return f"{self.queue} {self.kind} ({self.count})"


class DeadLetter(models.Model):
    """A job that failed for good, kept for review until it is retried or discarded."""

    class Resolution(models.TextChoices):
        RETRIED = "retried"
        DISCARDED = "discarded"

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="dead_letter")
    queue = models.CharField(max_length=100)
    error_kind = models.CharField(max_length=16, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True, default="")
    retry_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Which failures are the same error (jobs.engine.fingerprint): the console's groups.
    fingerprint = models.CharField(max_length=16, blank=True, default="")
    signature = models.CharField(max_length=300, blank=True, default="", help_text="e.g. ValueError: bad row <n> @ tasks.py in parse")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["resolved_at", "error_kind"], name="deadletter_open_kind"),
            # The open groups (selectors.dead_letter_groups) read only this index: count, first and last seen, queues, latest id.
            models.Index(fields=["fingerprint", "queue", "created_at", "id"], name="deadletter_open_fp", condition=Q(resolved_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.queue} {self.job_id[:8]} {self.error_kind}"


class AuditEntry(models.Model):
    """An operator action: who did what to which queue or jobs, and when."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=50)
    queue = models.CharField(max_length=100, blank=True, default="")
    job_ids = models.JSONField(default=list, blank=True)
    count = models.IntegerField(default=0)
    detail = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=20, default="admin", help_text="admin, api or cli")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.action} {self.queue} ({self.count})"


class ApiKey(models.Model):
    """A bearer key for programs. Only its SHA-256 is stored; the key is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, default="default")
    prefix = models.CharField(max_length=12, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"


class WorkerHeartbeat(models.Model):
    """A worker process seen alive at `last_seen`; stalled-job recovery trusts this, not Redis."""

    name = models.CharField(primary_key=True, max_length=200)
    hostname = models.CharField(max_length=200)
    pid = models.IntegerField()
    queues = models.JSONField(default=list)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)
    current_job_id = models.CharField(max_length=64, blank=True, default="")
    jobs_done = models.BigIntegerField(default=0)
    stopped_at = models.DateTimeField(null=True, blank=True)
    mode = models.CharField(max_length=16, default="processes", db_default="processes")
    rss = models.BigIntegerField(null=True, blank=True, help_text="resident memory of the process, in bytes")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Schedule(models.Model):
    """A recurring job: the scheduler enqueues `job_type` with `payload` at each time its cron expression names.

    `cron` has five fields, or six with seconds first (`0 */30 * * * *`), read in `timezone`.
    A slot missed while no scheduler ran (down for an hour) follows `missed`: `skip` it, or
    `run_once` for the latest missed slot if it is at most `grace` seconds old.
    """

    class Missed(models.TextChoices):
        SKIP = "skip"
        RUN_ONCE = "run_once"

    name = models.CharField(max_length=100, unique=True)
    job_type = models.CharField(max_length=100)
    payload = models.JSONField(default=dict, blank=True)
    queue = models.CharField(max_length=100, blank=True, default="", help_text="empty: the job type's own queue")
    priority = models.IntegerField(default=5)
    cron = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC")
    enabled = models.BooleanField(default=True)
    missed = models.CharField(max_length=10, choices=Missed.choices, default=Missed.SKIP)
    grace = models.FloatField(default=3600.0, help_text="seconds: how old a missed slot may be and still run once")
    next_fire_at = models.DateTimeField(null=True, blank=True)
    last_fired_at = models.DateTimeField(null=True, blank=True, help_text="the slot last fired")
    last_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["next_fire_at"], name="schedule_due", condition=Q(enabled=True))]

    def __str__(self) -> str:
        return f"{self.name} ({self.cron})"


class Lease(models.Model):
    """A lock that expires: who holds a duty (the scheduler's firing of schedules) until when."""

    name = models.CharField(primary_key=True, max_length=100)
    holder = models.CharField(max_length=200)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}: {self.holder} until {self.expires_at}"
