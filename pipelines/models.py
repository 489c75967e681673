"""A dubbing project, one row per stage attempt, and the reviews of stage outputs."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


def new_project_id() -> str:
    return uuid.uuid4().hex


class Project(models.Model):
    """A media file going through a pipeline; its status changes only through pipelines.services._move."""

    class Status(models.TextChoices):
        CREATED = "created"
        RUNNING = "running"
        AWAITING_REVIEW = "awaiting_review"
        FAILED = "failed"
        COMPLETED = "completed"

    id = models.CharField(primary_key=True, max_length=32, default=new_project_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="projects")
    pipeline = models.CharField(max_length=50, default="dubbing")
    source_key = models.CharField(max_length=1000, help_text="Storage key of the source media.")
    source_name = models.CharField(max_length=255, blank=True, default="")
    source_language = models.CharField(max_length=16)
    target_language = models.CharField(max_length=16)
    premium = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CREATED)
    current_stage = models.CharField(max_length=50, blank=True, default="")
    failure_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="project_owner_created")]
        permissions = [("review_project", "Can approve or reject a stage's output in the console")]

    def __str__(self) -> str:
        return f"project {self.id[:8]} ({self.status}{', ' + self.current_stage if self.current_stage else ''})"


class StageRun(models.Model):
    """One attempt at one stage: its input, its job, the output the job returned, and how the job went.

    `status` and `error` are recorded from the engine's hook at each change of the job, so a run
    still tells its outcome after retention removes the job.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="stage_runs")
    stage = models.CharField(max_length=50)
    attempt = models.PositiveSmallIntegerField(default=1)
    job = models.OneToOneField("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="stage_run")
    input = models.JSONField(null=True, blank=True, help_text="The previous stage's output as approved.")
    output = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, default="waiting")
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "stage", "-id"], name="stagerun_project_stage")]

    def __str__(self) -> str:
        return f"{self.stage} #{self.attempt}"


class StageReview(models.Model):
    """A person's decision on a stage run's output; an approval keeps the output as approved (maybe edited)."""

    class Decision(models.TextChoices):
        APPROVE = "approve"
        REJECT = "reject"

    stage_run = models.ForeignKey(StageRun, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    notes = models.TextField(blank=True, default="")
    approved_output = models.JSONField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.decision} {self.stage_run}"
