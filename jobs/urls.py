"""The engine's paths (API.md). Canonical paths first; other seeds' aliases route to subclasses of the same views."""
from __future__ import annotations

from django.urls import URLPattern, path

from jobs import apis

urlpatterns: list[URLPattern] = [
    # Queues. Fixed paths come before /api/queue/<queue>/... so a queue name never shadows them.
    path("api/queue/stats", apis.QueueStatsListApi.as_view(), name="queue-stats"),
    path("api/queue/stats/<str:queue>", apis.QueueStatsDetailApi.as_view(), name="queue-stats-detail"),
    path("api/queue/health", apis.QueueHealthApi.as_view(), name="queue-health"),
    path("api/queue/job/<str:job_id>", apis.JobStateApi.as_view(), name="queue-job-state"),
    path("api/queue/dead-letter/stats", apis.DeadLetterStatsApi.as_view(), name="dead-letter-stats"),
    path("api/queue/dead-letter/jobs", apis.DeadLetterListApi.as_view(), name="dead-letter-jobs"),
    path("api/queue/dead-letter/<str:job_id>/retry", apis.DeadLetterRetryApi.as_view(), name="dead-letter-retry"),
    # Seed 5's aliases.
    path("api/queue/status", apis.QueueStatusListApi.as_view(), name="queue-status"),
    path("api/queue/status/<str:queue>", apis.QueueStatusDetailApi.as_view(), name="queue-status-detail"),
    path("api/queue/pause/<str:queue>", apis.QueuePauseAliasApi.as_view(), name="queue-pause-alias"),
    path("api/queue/resume/<str:queue>", apis.QueueResumeAliasApi.as_view(), name="queue-resume-alias"),
    path("api/queue/clean/<str:queue>", apis.QueueCleanAliasApi.as_view(), name="queue-clean-alias"),
    # Seed 2's per-queue paths.
    path("api/queue/<str:queue>/jobs", apis.QueueJobsApi.as_view(), name="queue-jobs"),
    path("api/queue/<str:queue>/pause", apis.QueuePauseApi.as_view(), name="queue-pause"),
    path("api/queue/<str:queue>/resume", apis.QueueResumeApi.as_view(), name="queue-resume"),
    path("api/queue/<str:queue>/clean", apis.QueueCleanApi.as_view(), name="queue-clean"),
    # Seed 4's admin aliases.
    path("v1/admin/queue/metrics", apis.AdminQueueMetricsApi.as_view(), name="admin-queue-metrics"),
    path("v1/admin/queue/metrics/all", apis.AdminQueueMetricsAllApi.as_view(), name="admin-queue-metrics-all"),
    path("v1/admin/queue/pause", apis.AdminQueuePauseApi.as_view(), name="admin-queue-pause"),
    path("v1/admin/queue/resume", apis.AdminQueueResumeApi.as_view(), name="admin-queue-resume"),
    path("v1/admin/queue/clean", apis.AdminQueueCleanApi.as_view(), name="admin-queue-clean"),
    # Jobs.
    path("api/jobs", apis.JobListCreateApi.as_view(), name="jobs"),
    path("api/jobs/<str:job_id>", apis.JobDetailApi.as_view(), name="job-detail"),
    path("api/jobs/<str:job_id>/retry", apis.JobRetryApi.as_view(), name="job-retry"),
    path("api/jobs/<str:job_id>/cancel", apis.JobCancelApi.as_view(), name="job-cancel"),
    path("api/jobs/<str:job_id>/progress", apis.JobProgressApi.as_view(), name="job-progress"),
    # Prometheus.
    path("metrics", apis.MetricsApi.as_view(), name="metrics"),
]
