from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include("transcription.urls")),
    # Before jobs.api.urls: /api/jobs/project/<id> must not reach the engine's /api/jobs/<id>/... paths.
    path("", include("pipelines.urls")),
    path("", include("jobs.api.urls")),
]
