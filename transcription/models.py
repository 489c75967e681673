"""A transcription: which audio, how to transcribe it, where the result went, and how its job ended.

While its job exists the job is the live state (status, progress); the row records each change of
it from the engine's hook, so after retention removes the job the row still tells the outcome.
"""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from jobs.models import Job


def new_id() -> str:
    return uuid.uuid4().hex


class Transcription(models.Model):
    class Model(models.TextChoices):
        TINY = "TINY"
        BASE = "BASE"
        SMALL = "SMALL"
        MEDIUM = "MEDIUM"
        LARGE = "LARGE"

    class Format(models.TextChoices):
        JSON = "JSON"
        SRT = "SRT"
        VTT = "VTT"
        TXT = "TXT"

    class Tier(models.TextChoices):
        FREE = "FREE"
        PRO = "PRO"
        PAYG = "PAYG"

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="transcriptions")
    source = models.CharField(max_length=1000, help_text="Storage key of the audio, or the URL it is fetched from.")
    source_name = models.CharField(max_length=300, blank=True, default="", help_text="The uploaded file's name.")
    model = models.CharField(max_length=8, choices=Model.choices, default=Model.TINY)
    format = models.CharField(max_length=4, choices=Format.choices, default=Format.JSON)
    tier = models.CharField(max_length=4, choices=Tier.choices, default=Tier.FREE)
    language = models.CharField(max_length=16, blank=True, default="")
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="transcription")
    # The job's outcome as the hook last recorded it (transcription.services.record_outcome).
    status = models.CharField(max_length=16, default="waiting")
    attempts_made = models.SmallIntegerField(default=0)
    error_kind = models.CharField(max_length=16, blank=True, default="")
    failed_reason = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    result_key = models.CharField(max_length=1000, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="transcription_owner")]

    def __str__(self) -> str:
        return f"{self.id[:8]} {self.model}/{self.format} ({self.source_name or self.source})"
