"""The operator console: jobs, dead letters, API keys, the audit log and the Queues page.

Every action delegates to jobs.services / jobs.api.auth with actor=request.user, source="admin", so the
services write the audit log. Nothing here writes a job's status: Job is view-only in the admin.
"""
from __future__ import annotations

import json
from typing import Any, Iterator

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from jobs import services
from jobs.api import auth as api_keys
from jobs.console import errors as console_errors
from jobs.console import schedules as _schedules  # noqa: F401  (registers the Schedules page)
from jobs.console.deadletters import FingerprintFilter, changelist_context
from jobs.console.filters import KindFilter, OpenFilter, PriorityFilter, QueueFilter, RevokedFilter, TypeFilter, open_filter
from jobs.console.joblist import CreatedRangeFilter, CreatedWithinFilter, DurationFilter, KeysetChangeList, search
from jobs.console.paginators import EstimatedCountPaginator
from jobs.engine import conf
from jobs.models import ApiKey, AuditEntry, DeadLetter, HookDelivery, Job, JobEvent

#: Ids fetched per query when an action runs on "all N matching": memory and statement size stay flat.
ID_CHUNK = 500
EVENTS_SHOWN = 500


def iter_values(queryset: QuerySet[Any], field: str = "pk") -> Iterator[Any]:
    """`field` of every row of `queryset`, ID_CHUNK rows per query, walking the primary key.

    Keyset paging (pk > last) rather than OFFSET: rows that leave the filter while the action
    runs (a retried job is no longer "failed") neither shift the pages nor get skipped.
    """
    base = queryset.order_by("pk").values_list("pk", field)
    last = None
    while True:
        page = list((base if last is None else base.filter(pk__gt=last))[:ID_CHUNK])
        if not page:
            return
        yield from (value for _, value in page)
        last = page[-1][0]


def pretty_json(value: Any) -> str:
    return format_html('<pre class="jc-pre">{}</pre>', json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str))


def status_badge(status: str) -> str:
    return format_html('<span class="jc-status jc-status-{}">{}</span>', status, status)


def progress_bar(value: int) -> str:
    pct = min(max(int(value or 0), 0), 100)
    return format_html('<span class="jc-nowrap"><span class="jc-progress" title="{}%"><span style="width:{}%"></span></span> {}%</span>', pct, pct, pct)


def report(model_admin: admin.ModelAdmin, request: HttpRequest, verb: str, done: int, skipped: dict[str, str], *, noun: str = "job(s)") -> None:
    """Tell the operator how many rows an action changed and why the others were left alone."""
    console_errors.report(request, f"{verb} {done} {noun}.", done, skipped)


# -- jobs -------------------------------------------------------------------------------------


class OperateMixin:
    """Actions that change jobs need the model's change permission; the pages themselves stay view-only."""

    def has_operate_permission(self, request: HttpRequest) -> bool:
        opts = self.model._meta  # type: ignore[attr-defined]
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


#: The job page's sections; every field is read-only (status changes only through services).
JOB_SECTIONS: list[tuple[str | None, tuple[str, ...]]] = [
    (None, ("id", "type", "queue", "status_col", "priority", "owner", "group_ref", "idempotency_key", "retry_of")),
    ("Progress", ("progress_col", "progress_message", "attempts", "cancel_requested_at")),
    ("Timing", ("created_at", "run_at", "started_at", "completed_at", "duration", "worker_name")),
    ("Error", ("error_kind", "error_class", "failed_reason", "traceback_col")),
    ("Payload and result", ("payload_col", "result_col")),
]


@admin.register(Job)
class JobAdmin(OperateMixin, admin.ModelAdmin):
    list_display = ["short_id", "type", "queue", "status_col", "priority", "progress_col", "attempts", "owner", "created_at"]
    list_display_links = ["short_id"]
    list_filter = [QueueFilter, "status", PriorityFilter, TypeFilter, CreatedWithinFilter, CreatedRangeFilter, DurationFilter, "owner"]
    list_select_related = ["owner"]
    search_fields = ["=id"]
    search_help_text = "A job id (or its first 8+ characters), or text in the payload."
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    actions = ["retry_jobs", "cancel_jobs"]
    change_form_template = "admin/jobs/job/change_form.html"
    change_list_template = "admin/jobs/job/change_list.html"
    fieldsets = [(title, {"fields": fields}) for title, fields in JOB_SECTIONS]
    readonly_fields = [f for _, fields in JOB_SECTIONS for f in fields]

    class Media:
        css = {"all": ["jobs/admin.css"]}
        js = ["jobs/live.js"]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[KeysetChangeList]:
        return KeysetChangeList

    @admin.display(description="id", ordering="id")
    def short_id(self, job: Job) -> str:
        return job.id[:8]

    @admin.display(description="status", ordering="status")
    def status_col(self, job: Job) -> str:
        return status_badge(job.status)

    @admin.display(description="progress", ordering="progress")
    def progress_col(self, job: Job) -> str:
        return progress_bar(job.progress)

    @admin.display(description="attempts")
    def attempts(self, job: Job) -> str:
        return f"{job.attempts_made}/{job.max_attempts}"

    @admin.display(description="duration")
    def duration(self, job: Job) -> str:
        end = job.completed_at or (timezone.now() if job.started_at else None)
        return f"{(end - job.started_at).total_seconds():.3f}s" if job.started_at and end else "-"

    @admin.display(description="traceback")
    def traceback_col(self, job: Job) -> str:
        return format_html('<pre class="jc-pre jc-traceback">{}</pre>', job.traceback) if job.traceback else "-"

    @admin.display(description="payload")
    def payload_col(self, job: Job) -> str:
        return pretty_json(job.payload)

    @admin.display(description="result")
    def result_col(self, job: Job) -> str:
        return pretty_json(job.result) if job.result is not None else "-"

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Job], search_term: str) -> tuple[QuerySet[Job], bool]:
        """By id or payload text (jobs.console.joblist.search)."""
        return search(queryset, search_term), False

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None) -> HttpResponse:
        rows = JobEvent.objects.filter(job_id=object_id).order_by("id")[:EVENTS_SHOWN]
        events = [(e, json.dumps(e.data, sort_keys=True, default=str) if e.data else "") for e in rows]
        context = {**(extra_context or {}), "events": events, "events_limit": EVENTS_SHOWN, "can_operate": self.has_operate_permission(request),
                   "live_topics": json.dumps([["job", object_id]])}
        return super().change_view(request, object_id, form_url, extra_context=context)

    def _back_to_job(self, request: HttpRequest) -> HttpResponse | None:
        job_id = request.POST.get("_job")
        if job_id:
            return HttpResponseRedirect(reverse("admin:jobs_job_change", args=[job_id], current_app=self.admin_site.name))
        return None

    @admin.action(description="Retry selected jobs (failed or cancelled)", permissions=["operate"])
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> HttpResponse | None:
        done, skipped = services.retry_many(iter_values(queryset), actor=request.user, source="admin")
        report(self, request, "Retried", len(done), skipped)
        return self._back_to_job(request)

    @admin.action(description="Cancel selected jobs (waiting, delayed or active)", permissions=["operate"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> HttpResponse | None:
        done, skipped = services.cancel_many(iter_values(queryset), actor=request.user, source="admin")
        report(self, request, "Cancelled (or asked to stop)", len(done), skipped)
        return self._back_to_job(request)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """Opened from a product's row (`?group_ref=`: a project's or a file's jobs), the title says whose jobs these are."""
        if group := request.GET.get("group_ref"):
            extra_context = {**(extra_context or {}), "title": f"Jobs of {group}"}
        queue = request.GET.get(QueueFilter.parameter_name)
        shown = [queue] if queue in conf.all_queues() else list(conf.all_queues())
        extra_context = {**(extra_context or {}), "live_topics": json.dumps([["queue", q] for q in shown])}
        return super().changelist_view(request, extra_context)


# -- dead letters -----------------------------------------------------------------------------


@admin.register(DeadLetter)
class DeadLetterAdmin(OperateMixin, admin.ModelAdmin):
    list_display = ["job_link", "queue", "error_kind", "reason_short", "owner", "created_at", "resolution", "resolved_at", "retry_link"]
    list_filter = [OpenFilter, KindFilter, QueueFilter, FingerprintFilter, ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["owner"]
    search_fields = ["=job__id", "reason"]
    actions = ["retry_letters", "discard_letters"]
    change_list_template = "admin/jobs/deadletter/change_list.html"
    fields = readonly_fields = ("job_link", "queue", "error_kind", "reason", "signature", "fingerprint", "owner", "created_at", "resolution", "resolved_at", "retry_link")

    class Media:
        css = {"all": ["jobs/admin.css"]}

    @admin.display(description="job", ordering="job_id")
    def job_link(self, letter: DeadLetter) -> str:
        url = reverse("admin:jobs_job_change", args=[letter.job_id], current_app=self.admin_site.name)
        return format_html('<a href="{}">{}</a>', url, letter.job_id[:8])

    @admin.display(description="retried as")
    def retry_link(self, letter: DeadLetter) -> str:
        if not letter.retry_job_id:
            return "-"
        url = reverse("admin:jobs_job_change", args=[letter.retry_job_id], current_app=self.admin_site.name)
        return format_html('<a href="{}">{}</a>', url, letter.retry_job_id[:8])

    @admin.display(description="reason")
    def reason_short(self, letter: DeadLetter) -> str:
        return letter.reason if len(letter.reason) <= 120 else letter.reason[:119] + "…"

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """The changelist, with the open (or resolved) dead letters counted per error kind above it."""
        response = super().changelist_view(request, extra_context)
        if isinstance(response, TemplateResponse) and response.context_data and "cl" in response.context_data:
            cl = response.context_data["cl"]
            state = request.GET.get(OpenFilter.parameter_name) or "open"
            by_kind = open_filter(DeadLetter.objects.all(), state).values("error_kind").annotate(n=Count("id")).order_by("-n", "error_kind")
            current = request.GET.get(KindFilter.parameter_name)
            response.context_data["kind_counts"] = [
                {"kind": row["error_kind"] or "-", "count": row["n"], "selected": row["error_kind"] == current,
                 "url": cl.get_query_string({KindFilter.parameter_name: row["error_kind"]}, ["p"])}
                for row in by_kind
            ]
            response.context_data["kind_state"] = state
            response.context_data.update(changelist_context(request, cl.result_count))  # groups link, "all matching"
        return response

    @admin.action(description="Retry: enqueue a new job with the same input", permissions=["operate"])
    def retry_letters(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        retried, skipped = services.retry_dead_letters(iter_values(queryset.filter(resolved_at__isnull=True), "job_id"), actor=request.user, source="admin")
        report(self, request, "Retried (as new jobs)", len(retried), skipped)

    @admin.action(description="Discard: mark reviewed, keep the failed job", permissions=["operate"])
    def discard_letters(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        done = services.discard_dead_letters(iter_values(queryset.filter(resolved_at__isnull=True), "job_id"), actor=request.user, source="admin")
        self.message_user(request, f"Discarded {done} dead letter(s).", messages.SUCCESS)


# -- hook deliveries --------------------------------------------------------------------------


class DeliveryStateFilter(admin.SimpleListFilter):
    """Stuck, retrying (open, backing off) or done; open ones by default."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("open", "Open (stuck or retrying)"), ("stuck", "Stuck"), ("done", "Done")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value() or "open"
        if value == "stuck":
            return queryset.filter(done_at__isnull=True, stuck=True)
        if value == "done":
            return queryset.filter(done_at__isnull=False)
        return queryset.filter(done_at__isnull=True)


@admin.register(HookDelivery)
class HookDeliveryAdmin(OperateMixin, admin.ModelAdmin):
    """A hook's delivery of a job change that did not go through at once (jobs.engine.outbox)."""

    list_display = ["event_id", "consumer", "job_link", "state", "attempts", "next_at", "error_short", "created_at"]
    list_filter = [DeliveryStateFilter, "consumer"]
    search_fields = ["=job_id", "consumer"]
    actions = ["retry_deliveries"]
    fields = readonly_fields = ("event_id", "consumer", "job_link", "state", "attempts", "next_at", "last_error", "created_at", "done_at")

    @admin.display(description="job")
    def job_link(self, delivery: HookDelivery) -> str:
        url = reverse("admin:jobs_job_change", args=[delivery.job_id], current_app=self.admin_site.name)
        return format_html('<a href="{}">{}</a>', url, delivery.job_id[:8])

    @admin.display(description="state")
    def state(self, delivery: HookDelivery) -> str:
        return "done" if delivery.done_at else "stuck" if delivery.stuck else "retrying"

    @admin.display(description="last error")
    def error_short(self, delivery: HookDelivery) -> str:
        return delivery.last_error if len(delivery.last_error) <= 120 else delivery.last_error[:119] + "…"

    @admin.action(description="Retry now (attempts counted afresh)", permissions=["operate"])
    def retry_deliveries(self, request: HttpRequest, queryset: QuerySet[HookDelivery]) -> None:
        n = services.retry_hook_deliveries(iter_values(queryset.filter(done_at__isnull=True)), actor=request.user, source="admin")
        self.message_user(request, f"{n} deliver{'y' if n == 1 else 'ies'} due now; the scheduler retries them on its next tick.", messages.SUCCESS)


# -- API keys ---------------------------------------------------------------------------------


class ApiKeyAddForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["user", "name"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix_col", "name", "user", "created_at", "last_used_at", "revoked_at"]
    list_filter = [RevokedFilter, "user"]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__username"]
    actions = ["revoke"]
    readonly_fields = ["user", "name", "prefix_col", "created_at", "last_used_at", "revoked_at"]

    @admin.display(description="key", ordering="prefix")
    def prefix_col(self, key: ApiKey) -> str:
        return f"{key.prefix}…"

    def get_form(self, request: HttpRequest, obj: ApiKey | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        return ["user", "name"] if obj is None else list(self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        return [] if obj is None else list(self.readonly_fields)

    def has_change_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("jobs.change_apikey")

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        """Keys are made by jobs.api.auth.create_api_key; the raw key is shown here once and never stored."""
        key, raw = api_keys.create_api_key(user=obj.user, name=obj.name)
        obj.pk, obj.prefix, obj.key_hash, obj.created_at = key.pk, key.prefix, key.key_hash, key.created_at
        self.message_user(
            request,
            format_html('New API key for {}: <code class="jc-key">{}</code> Copy it now: it is stored hashed and will not be shown again.', key.user, raw),
            messages.WARNING,
        )

    @admin.action(description="Revoke selected API keys", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        n = api_keys.revoke_api_keys(list(queryset.values_list("pk", flat=True)), actor=request.user, source="admin")
        self.message_user(request, f"Revoked {n} API key(s).", messages.SUCCESS)


# -- audit log --------------------------------------------------------------------------------


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "actor", "action", "source", "queue", "count", "jobs_short"]
    list_filter = ["action", ("actor", admin.RelatedOnlyFieldListFilter), "source", ("at", admin.DateFieldListFilter)]
    list_select_related = ["actor"]
    search_fields = ["queue"]
    search_help_text = "A queue name or a job id."
    fields = readonly_fields = ("at", "actor", "action", "source", "queue", "count", "jobs_col", "detail_col")

    @admin.display(description="jobs")
    def jobs_short(self, entry: AuditEntry) -> str:
        ids = [str(i)[:8] for i in (entry.job_ids or [])[:3]]
        return ", ".join(ids) + (" …" if entry.count > 3 else "")

    @admin.display(description="job ids")
    def jobs_col(self, entry: AuditEntry) -> str:
        return pretty_json(entry.job_ids)

    @admin.display(description="detail")
    def detail_col(self, entry: AuditEntry) -> str:
        return pretty_json(entry.detail)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[AuditEntry], search_term: str) -> tuple[QuerySet[AuditEntry], bool]:
        """A queue name, or a job id anywhere in the entry's job ids (the JSON cast to text)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(queue=term) | Q(ids_text__icontains=term)
        return queryset.alias(ids_text=Cast("job_ids", output_field=TextField())).filter(match), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False
