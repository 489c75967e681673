"""AI jobs, usage per key and per user with totals for the filtered period, and key policies in the console."""
from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from ai.models import AiJob, KeyPolicy, Usage, UsageDay
from jobs.console.readonly import ReadOnlyAdmin as ReadOnly


class Ledger(ReadOnly):
    """Usage is accounting: written by the workers only, never edited or deleted in the console."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AiJob)
class AiJobAdmin(ReadOnly):
    list_display = ("id", "type", "status", "owner", "api_key", "tokens_in", "tokens_out", "cost_cents", "created_at", "completed_at")
    list_filter = ("type", "status", ("created_at", admin.DateFieldListFilter))
    list_select_related = ("owner", "api_key")
    search_fields = ("=id", "=job_id", "owner__username")


@admin.register(Usage)
class UsageAdmin(Ledger):
    list_display = ("at", "type", "owner", "api_key", "tokens_in", "tokens_out", "cost_cents", "ai_job")
    list_filter = ("type", ("at", admin.DateFieldListFilter))
    list_select_related = ("owner", "api_key")
    date_hierarchy = "at"


@admin.register(UsageDay)
class UsageDayAdmin(Ledger):
    """Per key per day; above the list, the totals of what the filters select, per key and per user."""

    list_display = ("day", "api_key", "owner", "type", "jobs", "tokens", "cost_cents")
    list_filter = ("type", ("day", admin.DateFieldListFilter), "owner")
    list_select_related = ("owner", "api_key")
    search_fields = ("owner__username", "api_key__name", "api_key__prefix")
    date_hierarchy = "day"
    change_list_template = "admin/ai/usageday/change_list.html"

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        if isinstance(response, TemplateResponse) and response.context_data and "cl" in response.context_data:
            rows = response.context_data["cl"].queryset
            sums = dict(jobs=Sum("jobs"), tokens=Sum("tokens"), cost_cents=Sum("cost_cents"))
            first, last = rows.order_by("day").values_list("day", flat=True).first(), rows.order_by("-day").values_list("day", flat=True).first()
            response.context_data.update(
                usage_total={k: v or 0 for k, v in rows.aggregate(**sums).items()},
                usage_by_key=rows.values("api_key__prefix", "api_key__name", "owner__username").annotate(**sums).order_by("-tokens"),
                usage_by_user=rows.values("owner__username").annotate(**sums).order_by("-tokens"),
                usage_period=f"{first} to {last}" if first else "the selection",
            )
        return response


@admin.register(KeyPolicy)
class KeyPolicyAdmin(admin.ModelAdmin):
    list_display = ("api_key", "requests_per_minute", "monthly_token_quota")
    autocomplete_fields = ("api_key",)
