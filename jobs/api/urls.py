"""The engine's paths (API.md). Canonical paths first; other seeds' aliases route to subclasses of the same views."""
from __future__ import annotations

from django.urls import URLPattern, path

from jobs.api import deadletters, metrics, queues, schedules, schema  # noqa: F401  (schema: registers the auth schemes)
from jobs.api import jobs as job_views

urlpatterns: list[URLPattern] = [
    # Queues. Fixed paths come before /api/queue/<queue>/... so a queue name never shadows them.
    path("api/queue/stats", queues.QueueStatsListApi.as_view(), name="queue-stats"),
    path("api/queue/stats/<str:queue>", queues.QueueStatsDetailApi.as_view(), name="queue-stats-detail"),
    path("api/queue/health", queues.QueueHealthApi.as_view(), name="queue-health"),
    path("api/queue/job/<str:job_id>", job_views.JobStateApi.as_view(), name="queue-job-state"),
    path("api/queue/dead-letter/stats", deadletters.DeadLetterStatsApi.as_view(), name="dead-letter-stats"),
    path("api/queue/dead-letter/jobs", deadletters.DeadLetterListApi.as_view(), name="dead-letter-jobs"),
    path("api/queue/dead-letter/groups", deadletters.DeadLetterGroupListApi.as_view(), name="dead-letter-groups"),
    path("api/queue/dead-letter/groups/<str:fingerprint>/retry", deadletters.DeadLetterGroupRetryApi.as_view(), name="dead-letter-group-retry"),
    path("api/queue/dead-letter/groups/<str:fingerprint>/discard", deadletters.DeadLetterGroupDiscardApi.as_view(), name="dead-letter-group-discard"),
    path("api/queue/dead-letter/<str:job_id>/retry", deadletters.DeadLetterRetryApi.as_view(), name="dead-letter-retry"),
    # Seed 5's aliases.
    path("api/queue/status", queues.QueueStatusListApi.as_view(), name="queue-status"),
    path("api/queue/status/<str:queue>", queues.QueueStatusDetailApi.as_view(), name="queue-status-detail"),
    path("api/queue/pause/<str:queue>", queues.QueuePauseAliasApi.as_view(), name="queue-pause-alias"),
    path("api/queue/resume/<str:queue>", queues.QueueResumeAliasApi.as_view(), name="queue-resume-alias"),
    path("api/queue/clean/<str:queue>", queues.QueueCleanAliasApi.as_view(), name="queue-clean-alias"),
    # Seed 2's per-queue paths.
    path("api/queue/<str:queue>/jobs", queues.QueueJobsApi.as_view(), name="queue-jobs"),
    path("api/queue/<str:queue>/pause", queues.QueuePauseApi.as_view(), name="queue-pause"),
    path("api/queue/<str:queue>/resume", queues.QueueResumeApi.as_view(), name="queue-resume"),
    path("api/queue/<str:queue>/clean", queues.QueueCleanApi.as_view(), name="queue-clean"),
    # Seed 4's admin aliases.
    path("v1/admin/queue/metrics", queues.AdminQueueMetricsApi.as_view(), name="admin-queue-metrics"),
    path("v1/admin/queue/metrics/all", queues.AdminQueueMetricsAllApi.as_view(), name="admin-queue-metrics-all"),
    path("v1/admin/queue/pause", queues.AdminQueuePauseApi.as_view(), name="admin-queue-pause"),
    path("v1/admin/queue/resume", queues.AdminQueueResumeApi.as_view(), name="admin-queue-resume"),
    path("v1/admin/queue/clean", queues.AdminQueueCleanApi.as_view(), name="admin-queue-clean"),
    # Jobs.
    path("api/jobs", job_views.JobListCreateApi.as_view(), name="jobs"),
    path("api/jobs/<str:job_id>", job_views.JobDetailApi.as_view(), name="job-detail"),
    path("api/jobs/<str:job_id>/retry", job_views.JobRetryApi.as_view(), name="job-retry"),
    path("api/jobs/<str:job_id>/cancel", job_views.JobCancelApi.as_view(), name="job-cancel"),
    path("api/jobs/<str:job_id>/progress", job_views.JobProgressApi.as_view(), name="job-progress"),
    # Prometheus.
    path("api/schedules", schedules.ScheduleListApi.as_view(), name="schedules"),
    path("api/schedules/<int:schedule_id>", schedules.ScheduleDetailApi.as_view(), name="schedule-detail"),
    path("api/schedules/<int:schedule_id>/run", schedules.ScheduleRunApi.as_view(), name="schedule-run"),
    path("metrics", metrics.MetricsApi.as_view(), name="metrics"),
]
