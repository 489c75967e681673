from django.urls import path, re_path

from webhooks import apis

#: An endpoint's id (webhooks.models.new_endpoint_id); the schema publishes it as the parameter's pattern.
ENDPOINT = r"(?P<endpoint_id>ep_[0-9a-f]{32})"

urlpatterns = [
    path("v1/webhooks", apis.WebhookListCreateApi.as_view(), name="webhooks"),
    path("v1/webhooks/secret", apis.WebhookSecretApi.as_view(), name="webhooks-secret"),
    re_path(rf"^v1/webhooks/{ENDPOINT}$", apis.WebhookDetailApi.as_view(), name="webhook"),
    re_path(rf"^v1/webhooks/{ENDPOINT}/deliveries$", apis.WebhookDeliveriesApi.as_view(), name="webhook-deliveries"),
]
