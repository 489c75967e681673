"""Webhook endpoints, the deliveries made to them, and every attempt of each delivery."""
from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_endpoint_id() -> str:
    return f"ep_{uuid.uuid4().hex}"


def new_delivery_id() -> str:
    """The delivery's id, sent as `webhook-id`: the same on every attempt, for receivers to deduplicate."""
    return f"msg_{uuid.uuid4().hex}"


class SigningSecret(models.Model):
    """An owner's secret for deliveries to a URL given with a job (not a registered endpoint)."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_secret")
    secret = models.CharField(max_length=100, default=new_secret, editable=False)
    created_at = models.DateTimeField(auto_now=True)


class Endpoint(models.Model):
    """A URL that receives the owner's events, registered once; its secret is shown once."""

    id = models.CharField(primary_key=True, max_length=40, default=new_endpoint_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoints")
    #: The key that registered it: it then receives only that key's jobs (None: all the owner's).
    api_key = models.ForeignKey("jobs.ApiKey", null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.CharField(max_length=2000)
    events = models.JSONField(default=list)
    description = models.CharField(max_length=200, blank=True, default="")
    secret = models.CharField(max_length=100, default=new_secret, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    #: Deleted through the API: hidden, sent nothing more (its deliveries stay, for their history).
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "-created_at"], name="webhook_endpoint_owner")]

    def __str__(self) -> str:
        return f"{self.url} ({', '.join(self.events)})"


class Delivery(models.Model):
    """One event for one URL; a `webhook-deliver` job sends it, retried until it is delivered or gives up."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    id = models.CharField(primary_key=True, max_length=40, default=new_delivery_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_deliveries")
    endpoint = models.ForeignKey(Endpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries")
    url = models.CharField(max_length=2000)
    event = models.CharField(max_length=100)
    payload = models.JSONField()
    #: What made it (an event of a job) and where it goes: the same pair never makes a second delivery.
    dedupe_key = models.CharField(max_length=300, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    last_status_code = models.IntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    #: The engine job that sends it now (a redelivery makes a new one).
    job_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_endpoint"),
            models.Index(fields=["owner", "-created_at"], name="webhook_delivery_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.url} ({self.status})"


class Attempt(models.Model):
    """One POST of a delivery: what the receiver answered, or why nothing came back."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.IntegerField(null=True, blank=True)
    latency_ms = models.FloatField(default=0)
    response_excerpt = models.CharField(max_length=1000, blank=True, default="")
    error = models.CharField(max_length=1000, blank=True, default="")

    class Meta:
        ordering = ["delivery", "number"]
