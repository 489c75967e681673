"""Seed 4's AI jobs (kept after the engine's retention removes their carrier job), usage and key policies."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models


def new_id() -> str:
    return uuid.uuid4().hex


class AiJob(models.Model):
    """One text job as `/v1/jobs` shows it; the engine job that runs it is `job_id`."""

    class Type(models.TextChoices):
        SUMMARIZE = "SUMMARIZE"
        CLASSIFY = "CLASSIFY"
        SENTIMENT = "SENTIMENT"
        TRANSLATE = "TRANSLATE"
        EXTRACT = "EXTRACT"

    class Status(models.TextChoices):
        QUEUED = "QUEUED"
        PROCESSING = "PROCESSING"
        SUCCEEDED = "SUCCEEDED"
        FAILED = "FAILED"
        CANCELLED = "CANCELLED"

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ai_jobs")
    api_key = models.ForeignKey("jobs.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="ai_jobs")
    type = models.CharField(max_length=16, choices=Type.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    input = models.JSONField()
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    tokens_in = models.IntegerField(default=0)
    tokens_out = models.IntegerField(default=0)
    cost_cents = models.IntegerField(default=0)
    job_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    idempotency_key = models.CharField(max_length=150, null=True, blank=True)
    webhook_url = models.CharField(max_length=2000, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "AI job"
        indexes = [models.Index(fields=["owner", "-created_at"], name="ai_job_owner_created")]
        constraints = [models.UniqueConstraint(fields=["owner", "idempotency_key"], name="ai_job_idempotency")]

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    def __str__(self) -> str:
        return f"{self.type} {self.id} ({self.status})"


class Usage(models.Model):
    """What one succeeded job used: tokens and cost, per key and owner."""

    ai_job = models.OneToOneField(AiJob, null=True, on_delete=models.SET_NULL, related_name="usage")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ai_usage")
    api_key = models.ForeignKey("jobs.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="ai_usage")
    type = models.CharField(max_length=16, choices=AiJob.Type.choices)
    tokens_in = models.IntegerField()
    tokens_out = models.IntegerField()
    cost_cents = models.IntegerField()
    at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name_plural = "usage"
        indexes = [models.Index(fields=["api_key", "at"], name="ai_usage_key_at"), models.Index(fields=["owner", "at"], name="ai_usage_owner_at")]


class UsageDay(models.Model):
    """The rollup of Usage per key, type and day (UTC), kept up to date with each Usage row."""

    #: PROTECT: a key with usage is revoked, not deleted, so its history stays whole.
    api_key = models.ForeignKey("jobs.ApiKey", on_delete=models.PROTECT, related_name="ai_usage_days")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ai_usage_days")
    day = models.DateField()
    type = models.CharField(max_length=16, choices=AiJob.Type.choices)
    jobs = models.IntegerField(default=0)
    tokens = models.BigIntegerField(default=0)
    cost_cents = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "usage per key per day"
        verbose_name_plural = "usage per key per day"
        constraints = [models.UniqueConstraint(fields=["api_key", "day", "type"], name="ai_usage_day_key")]


class KeyPolicy(models.Model):
    """A key's own rate limit and monthly token quota (empty: the settings' defaults)."""

    api_key = models.OneToOneField("jobs.ApiKey", on_delete=models.CASCADE, related_name="ai_policy")
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)], help_text="Empty: AI_RATE_LIMIT_PER_MINUTE.")
    monthly_token_quota = models.PositiveBigIntegerField(null=True, blank=True, help_text="Empty: AI_MONTHLY_TOKEN_QUOTA. 0: no quota.")

    class Meta:
        verbose_name = "API key policy"
        verbose_name_plural = "API key policies"

    def __str__(self) -> str:
        return f"policy of {self.api_key}"
