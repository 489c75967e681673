"""`/v1/webhooks`: register, list and delete endpoints, read their deliveries, rotate the job-URL secret."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import access
from jobs.api.auth import request_key
from jobs.api.errors import errors
from jobs.api.inputs import body
from jobs.api.pagination import PAGE_PARAMS, page_of, paginated
from jobs.api.serializers import TextField
from webhooks import selectors, services
from webhooks.models import Delivery, Endpoint


class EndpointInputSerializer(serializers.Serializer):
    url = TextField(max_length=2000, help_text="https URL that receives the events (no private, loopback or link-local address).")
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=services.EVENTS), required=False, allow_empty=False, min_length=1, max_length=len(services.EVENTS),
        help_text="Events to receive (default: all).",
    )
    description = TextField(required=False, allow_blank=True, max_length=200)


class EndpointOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField()
    createdAt = serializers.DateTimeField(source="created_at")


class EndpointCreatedSerializer(EndpointOutputSerializer):
    secret = serializers.CharField(help_text="whsec_…: verifies `webhook-signature`. Shown only now.")


class AttemptOutputSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    at = serializers.DateTimeField()
    statusCode = serializers.IntegerField(source="status_code", allow_null=True)
    latencyMs = serializers.FloatField(source="latency_ms")
    response = serializers.CharField(source="response_excerpt")
    error = serializers.CharField()


class DeliveryOutputSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Sent as `webhook-id` on every attempt.")
    event = serializers.CharField()
    url = serializers.CharField()
    status = serializers.ChoiceField(choices=Delivery.Status.choices)
    payload = serializers.DictField()
    createdAt = serializers.DateTimeField(source="created_at")
    deliveredAt = serializers.DateTimeField(source="delivered_at", allow_null=True)
    attempts = AttemptOutputSerializer(many=True)


class SecretOutputSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="Signs deliveries to the `webhookUrl` of your jobs. Shown only now.")


class WebhookListCreateApi(APIView):
    """The caller's endpoints, and registering one (sent with an API key: it receives that key's jobs only)."""

    @extend_schema(tags=["webhooks"], summary="List webhook endpoints", operation_id="webhooks_list", parameters=PAGE_PARAMS, responses={200: page_of(EndpointOutputSerializer), **errors(400)})
    def get(self, request: Request) -> Response:
        return paginated(request, self, selectors.endpoints(user=request.user), EndpointOutputSerializer)

    @extend_schema(tags=["webhooks"], summary="Register a webhook endpoint", operation_id="webhooks_create", request=EndpointInputSerializer, responses={201: EndpointCreatedSerializer, **errors(400)})
    def post(self, request: Request) -> Response:
        data = body(EndpointInputSerializer, request)
        row = services.register(
            owner=access.signed_in(request.user), url=data["url"], events=data.get("events"), api_key=request_key(request), description=data.get("description", ""),
        )
        return Response(EndpointCreatedSerializer(row).data, status=status.HTTP_201_CREATED)


class WebhookDetailApi(APIView):
    @extend_schema(tags=["webhooks"], summary="Get a webhook endpoint", operation_id="webhooks_retrieve", responses={200: EndpointOutputSerializer, **errors(404)})
    def get(self, request: Request, endpoint_id: str) -> Response:
        return Response(EndpointOutputSerializer(selectors.endpoint(endpoint_id, user=request.user)).data)

    @extend_schema(tags=["webhooks"], summary="Delete a webhook endpoint", operation_id="webhooks_destroy", responses={204: OpenApiResponse(description="Deleted."), **errors(404)})
    def delete(self, request: Request, endpoint_id: str) -> Response:
        services.delete(endpoint_id, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveriesApi(APIView):
    @extend_schema(
        tags=["webhooks"], summary="An endpoint's deliveries and their attempts", operation_id="webhooks_deliveries",
        parameters=PAGE_PARAMS, responses={200: page_of(DeliveryOutputSerializer), **errors(400, 404)},
    )
    def get(self, request: Request, endpoint_id: str) -> Response:
        return paginated(request, self, selectors.deliveries(endpoint_id, user=request.user), DeliveryOutputSerializer)


class WebhookSecretApi(APIView):
    @extend_schema(tags=["webhooks"], summary="Rotate the secret that signs deliveries to jobs' own webhookUrl", operation_id="webhooks_secret", request=None, responses={201: SecretOutputSerializer, **errors()})
    def post(self, request: Request) -> Response:
        return Response({"secret": services.rotate_secret(owner=access.signed_in(request.user))}, status=status.HTTP_201_CREATED)


__all__ = ["Endpoint", "WebhookDeliveriesApi", "WebhookDetailApi", "WebhookListCreateApi", "WebhookSecretApi"]
