"""The console's webhook pages: endpoints, deliveries with every attempt, and redelivery."""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from jobs import access
from webhooks import services
from webhooks.models import Attempt, Delivery, Endpoint


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ("id", "url", "events", "owner", "api_key", "created_at")
    search_fields = ("url", "id", "owner__username")
    readonly_fields = ("id", "owner", "api_key", "created_at")
    fields = ("id", "owner", "api_key", "url", "events", "description", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # registered through the API, which checks the URL and shows the secret once


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = ("number", "at", "status_code", "latency_ms", "response_excerpt", "error")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "event", "url", "status", "last_status_code", "owner", "created_at", "delivered_at")
    list_filter = ("status", "event")
    search_fields = ("id", "url", "dedupe_key")
    readonly_fields = ("id", "owner", "endpoint", "url", "event", "payload", "dedupe_key", "status", "last_status_code", "last_error", "job_id", "created_at", "delivered_at")
    inlines = [AttemptInline]
    actions = ["redeliver"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Delivery | None = None) -> bool:
        return False

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return access.is_operator(request.user)

    @admin.action(description="Redeliver the selected deliveries (same webhook-id)", permissions=["operate"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        n = services.redeliver(queryset.values_list("pk", flat=True), actor=request.user)
        self.message_user(request, f"{n} of {queryset.count()} deliveries queued again (those still on their way were left to it).", messages.SUCCESS)
