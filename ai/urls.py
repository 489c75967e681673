from django.urls import path

from ai import apis

urlpatterns = [
    path("v1/jobs", apis.AiJobListApi.as_view(), name="ai-jobs"),
    *[path(f"v1/jobs/{kind}", view.as_view(), name=f"ai-jobs-{kind}") for kind, view in apis.CREATE_VIEWS.items()],
    path("v1/jobs/<str:job_id>", apis.AiJobDetailApi.as_view(), name="ai-job"),
    path("v1/usage", apis.UsageApi.as_view(), name="ai-usage"),
]
