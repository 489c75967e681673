"""The console's Schedules page (recurring jobs), as sidekiq-cron's and Oban Web's crons pages: every change
goes through the schedule services, which check it as the API does and audit it."""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from jobs import services
from jobs.models import Schedule


class ScheduleForm(forms.ModelForm):
    """Checked by the same rules as the API and `manage.py schedules` (services.schedule_problems)."""

    job_type = forms.ChoiceField(choices=())
    priority = forms.CharField(initial="NORMAL", help_text="0-100 or a level name (LOW, NORMAL, HIGH, CRITICAL, FREE, PRO, PAYG)")

    class Meta:
        model = Schedule
        fields = ["name", "job_type", "payload", "queue", "priority", "cron", "timezone", "enabled", "missed", "grace"]
        help_texts = {"cron": "five fields (minute hour day month weekday), or six with seconds first: 0 */30 * * * *"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from jobs.engine import registry

        field = self.fields["job_type"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(t, t) for t in sorted(registry.all_types())]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        values = {k: data.get(k) for k in self.Meta.fields}
        values["payload"] = values.get("payload") or {}
        for field, errors in services.schedule_problems(values).items():
            if field in self.fields and field not in self.errors:
                self.add_error(field, errors)
        data["priority"] = values["priority"]
        return data


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    """Recurring jobs, as sidekiq-cron's and Oban Web's crons pages show them; every change goes through services (audited)."""

    form = ScheduleForm
    list_display = ["name", "cron", "timezone", "enabled", "job_type", "next_local", "last_fired_at", "last_outcome"]
    list_filter = ["enabled", "job_type"]
    search_fields = ["name", "job_type"]
    list_select_related = ["last_job"]
    actions = ["enable_schedules", "disable_schedules", "run_now"]
    readonly_fields = ["next_times", "last_fired_at", "last_outcome", "created_at", "updated_at"]

    @admin.display(description="next fire (its timezone)", ordering="next_fire_at")
    def next_local(self, schedule: Schedule) -> str:
        from zoneinfo import ZoneInfo

        if schedule.next_fire_at is None:
            return "-"
        return schedule.next_fire_at.astimezone(ZoneInfo(schedule.timezone)).strftime("%Y-%m-%d %H:%M:%S %Z")

    @admin.display(description="next 5 times (its timezone)")
    def next_times(self, schedule: Schedule) -> str:
        from jobs.engine import schedules

        if not schedule.pk or not schedule.enabled:
            return "—"
        return format_html("<br>".join("{}" for _ in range(5)), *(t.strftime("%Y-%m-%d %H:%M:%S %Z") for t in schedules.next_times(schedule.cron, schedule.timezone)))

    @admin.display(description="last run")
    def last_outcome(self, schedule: Schedule) -> str:
        job = schedule.last_job
        if job is None:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse(f"{self.admin_site.name}:jobs_job_change", args=[job.pk]), job.status)

    def save_model(self, request: HttpRequest, obj: Schedule, form: Any, change: bool) -> None:
        values = {f: form.cleaned_data[f] for f in services.SCHEDULE_FIELDS}
        if change:
            saved = services.update_schedule(obj.pk, actor=request.user, source="admin", **values)
        else:
            saved = services.create_schedule(name=form.cleaned_data["name"], actor=request.user, source="admin", **values)
        obj.pk = saved.pk
        obj.next_fire_at = saved.next_fire_at

    def delete_model(self, request: HttpRequest, obj: Schedule) -> None:
        services.delete_schedule(obj.pk, actor=request.user, source="admin")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        for pk in queryset.values_list("pk", flat=True):
            services.delete_schedule(pk, actor=request.user, source="admin")

    @admin.action(description="Enable selected schedules", permissions=["change"])
    def enable_schedules(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        for pk in queryset.values_list("pk", flat=True):
            services.set_schedule_enabled(pk, enabled=True, actor=request.user, source="admin")
        self.message_user(request, f"Enabled {queryset.count()} schedule(s).", messages.SUCCESS)

    @admin.action(description="Disable selected schedules", permissions=["change"])
    def disable_schedules(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        for pk in queryset.values_list("pk", flat=True):
            services.set_schedule_enabled(pk, enabled=False, actor=request.user, source="admin")
        self.message_user(request, f"Disabled {queryset.count()} schedule(s).", messages.SUCCESS)

    @admin.action(description="Run selected schedules now", permissions=["change"])
    def run_now(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        jobs = [services.run_schedule_now(pk, actor=request.user, source="admin") for pk in queryset.values_list("pk", flat=True)]
        self.message_user(request, f"Enqueued {len(jobs)} job(s): {', '.join(j.id[:8] for j in jobs)}.", messages.SUCCESS)
