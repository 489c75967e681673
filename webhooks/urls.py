from django.urls import path

from webhooks import apis

urlpatterns = [
    path("v1/webhooks", apis.WebhookListCreateApi.as_view(), name="webhooks"),
    path("v1/webhooks/secret", apis.WebhookSecretApi.as_view(), name="webhooks-secret"),
    path("v1/webhooks/<str:endpoint_id>", apis.WebhookDetailApi.as_view(), name="webhook"),
    path("v1/webhooks/<str:endpoint_id>/deliveries", apis.WebhookDeliveriesApi.as_view(), name="webhook-deliveries"),
]
