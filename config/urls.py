from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include("transcription.urls")),
    path("", include("files.urls")),
    path("", include("webhooks.urls")),
    # Before jobs.api.urls: seed 4's /v1/jobs are the AI app's.
    path("", include("ai.urls")),
    path("", include("assistant.urls")),
    # Before jobs.api.urls: /api/jobs/project/<id> must not reach the engine's /api/jobs/<id>/... paths.
    path("", include("pipelines.urls")),
    path("", include("jobs.api.urls")),
]

# What Django answers outside the views is `{message, extra}` too under /api/, /v1/ and /metrics (jobs.api.errors).
handler400 = "jobs.api.errors.bad_request_page"
handler404 = "jobs.api.errors.not_found"
handler500 = "jobs.api.errors.server_error_page"
