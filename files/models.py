"""A file a user stored: where its bytes are, what they are, and what processing found.

The row is the truth about a file; the bytes live in Django's default storage (the local
filesystem, or S3 when configured) under `files/`. While an upload waits for its job, the bytes
are staged under `files/staging/` and the row is `staged`.
"""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


def new_id() -> str:
    return str(uuid.uuid4())


class StoredFile(models.Model):
    class Status(models.TextChoices):
        STAGED = "staged"          # bytes received and staged; the file-upload job stores them
        STORED = "stored"          # in storage at `key`, checksum verified
        PROCESSING = "processing"  # a file-process job runs on it
        DELETING = "deleting"      # hidden from listings; the file-delete job removes object, then row
        DELETED = "deleted"        # object gone, row kept only while a job still refers to it
        FAILED = "failed"          # the upload could not be stored (see failed_reason)

    id = models.CharField(primary_key=True, max_length=36, default=new_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="stored_files")
    original_name = models.CharField(max_length=255, help_text="The name the client sent (control characters removed).")
    safe_name = models.CharField(max_length=120, help_text="ASCII name used in the storage key and Content-Disposition.")
    size = models.BigIntegerField()
    content_type = models.CharField(max_length=100, help_text="Sniffed from the bytes, not taken from the client.")
    sha256 = models.CharField(max_length=64)
    key = models.CharField(max_length=1000, help_text="Storage key of the bytes (the staging key while staged).")
    memo_id = models.UUIDField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.STAGED)
    failed_reason = models.TextField(blank=True, default="")
    # What processing found: {"analyze": {...}, "compress": {...}, "transcribe": {...}}. The file's
    # jobs are the engine's jobs whose group_ref is the file's id.
    results = models.JSONField(default=dict, blank=True)
    transcription = models.ForeignKey(
        "transcription.Transcription", null=True, blank=True, on_delete=models.SET_NULL, related_name="files",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="file_owner")]
        verbose_name = "file"

    def __str__(self) -> str:
        return f"{self.original_name} ({self.id[:8]})"
