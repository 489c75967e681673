"""The console's dead letters grouped by error (/admin/jobs/deadletter/groups/), and "retry or discard all matching"
on the dead-letter list: the same error's letters retried or discarded in one click, as Sentry's issues.

The views read through jobs.deadletters and delegate every write to it (chunked, audited once);
ConsoleSite wires them in through `urls()`, behind the admin's login and CSRF and
jobs.console.errors.operator_view. Writes need the operate permission of the dead-letter list
(OperateMixin: change_deadletter), checked here as well as hiding the buttons.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from jobs import deadletters
from jobs.console.errors import report, require
from jobs.deadletters import LetterFilter
from jobs.exceptions import InvalidInput

#: What DeadLetterAdmin's actions need (OperateMixin: the model's change permission); viewing needs the view one.
OPERATE_PERM = "jobs.change_deadletter"
VIEW_PERM = "jobs.view_deadletter"
#: The list's query parameters that a filter of jobs.deadletters expresses; `state` must be open, `o` and `p` only order and page.
FILTER_PARAMS = {"fingerprint": "fingerprint", "queue": "queue", "kind": "error_kind"}
HARMLESS_PARAMS = {"o", "p", "state"}


class FingerprintFilter(admin.SimpleListFilter):
    """`?fingerprint=`: one group's letters (the groups page links here); shown only while it is set."""

    title = "error group"
    parameter_name = "fingerprint"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        return [(value, value)] if value else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(fingerprint=self.value()) if self.value() else queryset


def urls(page: Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]], *, site: admin.AdminSite) -> list[URLPattern]:
    """The pages' URLs, each wrapped by `page` (operator_view); they come before the admin's own dead-letter URLs."""

    return [
        path("jobs/deadletter/groups/", page(partial(groups_page, site=site)), name="jobs_deadletter_groups"),
        path("jobs/deadletter/groups/<str:fingerprint>/retry/", page(partial(retry_group, site=site)), name="jobs_deadletter_group_retry"),
        path("jobs/deadletter/groups/<str:fingerprint>/discard/", page(partial(discard_group, site=site)), name="jobs_deadletter_group_discard"),
        path("jobs/deadletter/matching/retry/", page(partial(retry_matching, site=site)), name="jobs_deadletter_matching_retry"),
        path("jobs/deadletter/matching/discard/", page(partial(discard_matching, site=site)), name="jobs_deadletter_matching_discard"),
    ]


def _may_operate(request: HttpRequest) -> None:
    require(request, OPERATE_PERM, "retrying or discarding dead letters")


def _groups_url(site: admin.AdminSite, query: str = "") -> str:
    url = reverse("admin:jobs_deadletter_groups", current_app=site.name)
    return f"{url}?{query}" if query else url


def groups_page(request: HttpRequest, *, site: admin.AdminSite) -> HttpResponse:
    """The open dead letters grouped by fingerprint, largest group first; `?queue=` and `?kind=` narrow them."""
    if not (request.user.has_perm(VIEW_PERM) or request.user.has_perm(OPERATE_PERM)):
        raise PermissionDenied("the dead letters need the 'view dead letter' permission")
    queue, kind = request.GET.get("queue", ""), request.GET.get("kind", "")
    found = deadletters.groups(queue=queue, error_kind=kind)
    changelist = reverse("admin:jobs_deadletter_changelist", current_app=site.name)
    context = {
        **site.each_context(request),
        "title": "Dead letters by error",
        "subtitle": None,
        "groups": [{"group": g, "letters_url": f"{changelist}?{urlencode({'fingerprint': g.fingerprint})}"} for g in found],
        "total": sum(g.count for g in found),
        "limited": len(found) >= deadletters.GROUPS_SHOWN,
        "queue": queue,
        "kind": kind,
        "query": request.GET.urlencode(),
        "can_operate": request.user.has_perm(OPERATE_PERM),
        "changelist_url": changelist,
        "app_label": "jobs",
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/jobs/deadletter/groups.html", context)


def _report_retry(request: HttpRequest, what: str, retried: dict[str, str], skipped: dict[str, str]) -> None:
    report(request, f"Retried {len(retried)} dead letter(s) {what} as new jobs.", len(retried), skipped)


@require_POST
def retry_group(request: HttpRequest, fingerprint: str, *, site: admin.AdminSite) -> HttpResponse:
    """Retry every open letter of one group as new jobs (jobs.deadletters.retry_group: chunked, audited once)."""
    _may_operate(request)
    signature = deadletters.group(fingerprint).signature
    retried, skipped = deadletters.retry_group(fingerprint, actor=request.user, source="admin")
    _report_retry(request, f"of “{signature}”", retried, skipped)
    return HttpResponseRedirect(_groups_url(site, request.POST.get("query", "")))


@require_POST
def discard_group(request: HttpRequest, fingerprint: str, *, site: admin.AdminSite) -> HttpResponse:
    """Discard every open letter of one group (jobs.deadletters.discard_group: chunked, audited once); the failed jobs stay."""
    _may_operate(request)
    signature = deadletters.group(fingerprint).signature
    done = deadletters.discard_group(fingerprint, actor=request.user, source="admin")
    messages.success(request, f"Discarded {done} dead letter(s) of “{signature}”.")
    return HttpResponseRedirect(_groups_url(site, request.POST.get("query", "")))


def list_filter(query: str) -> LetterFilter:
    """The dead-letter list's filter (its query string) as jobs.deadletters reads it; InvalidInput when the list shows
    something else (a search, dates, resolved letters), so "all matching" never takes more than the list shows."""
    params: dict[str, str] = {k: str(v) for k, v in QueryDict(query).items()}
    other = sorted(k for k, v in params.items() if v and k not in FILTER_PARAMS and k not in HARMLESS_PARAMS)
    if other or params.get("state", "open") != "open":
        raise InvalidInput(
            "“All matching” takes open letters filtered by group, queue and error kind only: clear the other filters first",
            extra={"filters": other or ["state"]},
        )
    return LetterFilter(**{field: params.get(param, "") for param, field in FILTER_PARAMS.items()})


def changelist_context(request: HttpRequest, result_count: int) -> dict[str, Any]:
    """What the dead-letter list's template needs for its "all matching" buttons and its link to the groups."""
    try:
        list_filter(request.GET.urlencode())
        usable = True
    except InvalidInput:
        usable = False
    return {
        "groups_url": reverse("admin:jobs_deadletter_groups"),
        "matching": {
            "usable": usable and result_count > 0,
            "count": result_count,
            "can_operate": request.user.has_perm(OPERATE_PERM),
            "query": request.GET.urlencode(),
        },
    }


def _back_to_list(site: admin.AdminSite, request: HttpRequest) -> HttpResponseRedirect:
    url = reverse("admin:jobs_deadletter_changelist", current_app=site.name)
    query = request.POST.get("query", "")
    return HttpResponseRedirect(f"{url}?{query}" if query else url)


@require_POST
def retry_matching(request: HttpRequest, *, site: admin.AdminSite) -> HttpResponse:
    """Retry every open letter that the list's filter matches (not only the checked rows); chunked, audited once."""
    _may_operate(request)
    where = list_filter(request.POST.get("query", ""))
    retried, skipped = deadletters.retry_matching(where, actor=request.user, source="admin")
    _report_retry(request, "matching the filter", retried, skipped)
    return _back_to_list(site, request)


@require_POST
def discard_matching(request: HttpRequest, *, site: admin.AdminSite) -> HttpResponse:
    """Discard every open letter that the list's filter matches (not only the checked rows); chunked, audited once."""
    _may_operate(request)
    where = list_filter(request.POST.get("query", ""))
    done = deadletters.discard_matching(where, actor=request.user, source="admin")
    messages.success(request, f"Discarded {done} dead letter(s) matching the filter.")
    return _back_to_list(site, request)
