"""Pipeline paths: seed 2's /api/jobs/project/... and this project's /api/projects/..."""
from __future__ import annotations

from django.urls import URLPattern, path

from pipelines import apis

urlpatterns: list[URLPattern] = [
    path("api/jobs/project/<str:project_id>", apis.ProjectJobsApi.as_view(), name="project-jobs"),
    path("api/jobs/project/<str:project_id>/current", apis.ProjectCurrentJobApi.as_view(), name="project-current-job"),
    path("api/projects/", apis.ProjectListCreateApi.as_view(), name="projects"),
    path("api/projects/<str:project_id>", apis.ProjectDetailApi.as_view(), name="project-detail"),
    path("api/projects/<str:project_id>/approve", apis.ProjectApproveApi.as_view(), name="project-approve"),
    path("api/projects/<str:project_id>/reject", apis.ProjectRejectApi.as_view(), name="project-reject"),
    path("api/projects/<str:project_id>/rerun", apis.ProjectRerunApi.as_view(), name="project-rerun"),
]
