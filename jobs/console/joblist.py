"""The jobs list of the console at a million rows: time and duration filters, keyset pagination, search.

With the default order (newest first) the list pages by keyset: `?after=<created_at>|<id>` asks for the
rows after that one, so the 1,000th page costs what the first does (Django's OFFSET pages get slower
the deeper they go). A column ordering the operator picks pages the admin's usual way.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Iterator, Mapping

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.db.models import DurationField, ExpressionWrapper, F, Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from jobs.engine.states import Status

CURSOR = "after"

#: choice -> how far back "created within" reaches.
WITHIN: dict[str, tuple[str, timedelta]] = {
    "5m": ("last 5 minutes", timedelta(minutes=5)),
    "15m": ("last 15 minutes", timedelta(minutes=15)),
    "1h": ("last hour", timedelta(hours=1)),
    "6h": ("last 6 hours", timedelta(hours=6)),
    "24h": ("last 24 hours", timedelta(hours=24)),
    "7d": ("last 7 days", timedelta(days=7)),
}
#: choice -> (label, shortest, longest) run time of a finished job; "running" is an active job started that long ago.
TOOK: dict[str, tuple[str, timedelta | None, timedelta | None]] = {
    "lt1s": ("under 1 s", None, timedelta(seconds=1)),
    "1s-10s": ("1 s to 10 s", timedelta(seconds=1), timedelta(seconds=10)),
    "10s-1m": ("10 s to 1 min", timedelta(seconds=10), timedelta(minutes=1)),
    "1m-10m": ("1 min to 10 min", timedelta(minutes=1), timedelta(minutes=10)),
    "gt10m": ("over 10 min", timedelta(minutes=10), None),
    "running1m": ("still running after 1 min", timedelta(minutes=1), None),
}


class CreatedWithinFilter(admin.SimpleListFilter):
    """Jobs created within the last minutes, hours or days (a range of its own: ?created_at__gte=&created_at__lt=)."""

    title = "created within"
    parameter_name = "created"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _) in WITHIN.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        choice = WITHIN.get(self.value() or "")
        return queryset.filter(created_at__gte=timezone.now() - choice[1]) if choice else queryset


class CreatedRangeFilter(admin.ListFilter):
    """`?created_from=&created_to=` (the list's range form; local times, as a datetime-local input sends them)."""

    title = "created between"
    parameters = ("created_from", "created_to")
    template = "admin/jobs/job/no_filter_output.html"  # the range form above the list is its input

    def __init__(self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        self.bounds: dict[str, datetime] = {}
        for name in self.parameters:
            raw = params.pop(name, None)
            value = raw[-1] if isinstance(raw, list) else raw
            if not value:
                continue
            when = parse_datetime(value)
            if when is None:
                raise IncorrectLookupParameters(f"{name}: not a date and time: {value!r}")
            self.bounds[name] = timezone.make_aware(when) if timezone.is_naive(when) else when

    def has_output(self) -> bool:
        return True

    def choices(self, changelist: Any) -> Iterator[Mapping[str, object]]:
        return iter(())

    def expected_parameters(self) -> list[str | None]:
        return list(self.parameters)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if "created_from" in self.bounds:
            queryset = queryset.filter(created_at__gte=self.bounds["created_from"])
        if "created_to" in self.bounds:
            queryset = queryset.filter(created_at__lt=self.bounds["created_to"])
        return queryset


class DurationFilter(admin.SimpleListFilter):
    """By run time: completed_at minus started_at of a finished job, or how long an active job has run."""

    title = "run time"
    parameter_name = "took"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _, _) in TOOK.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        choice = TOOK.get(self.value() or "")
        if choice is None:
            return queryset
        _, shortest, longest = choice
        if self.value() == "running1m":
            assert shortest is not None
            return queryset.filter(status=Status.ACTIVE, started_at__lt=timezone.now() - shortest)
        took = ExpressionWrapper(F("completed_at") - F("started_at"), output_field=DurationField())
        queryset = queryset.filter(started_at__isnull=False, completed_at__isnull=False).alias(took=took)
        if shortest is not None:
            queryset = queryset.filter(took__gte=shortest)
        if longest is not None:
            queryset = queryset.filter(took__lt=longest)
        return queryset


def cursor_of(created_at: datetime, pk: str) -> str:
    return f"{created_at.isoformat()}|{pk}"


def parse_cursor(value: str) -> tuple[datetime, str]:
    at, sep, pk = value.partition("|")
    when = parse_datetime(at) if sep else None
    if when is None or not pk:
        raise IncorrectLookupParameters(f"bad cursor {value!r}")
    return when, pk


class KeysetChangeList(ChangeList):
    """The admin's changelist; in the default order (newest first) it pages by keyset instead of OFFSET."""

    keyset = False
    next_cursor: str | None = None
    first_url: str | None = None

    def get_filters_params(self, params: Any = None) -> Any:
        lookup_params = super().get_filters_params(params)
        lookup_params.pop(CURSOR, None)
        return lookup_params

    def get_results(self, request: HttpRequest) -> None:
        if self.params.get(ORDER_VAR) or self.show_all or self.is_popup:
            super().get_results(request)
            return
        qs = self.queryset.order_by("-created_at", "-pk")
        cursor = self.params.get(CURSOR)
        if cursor:
            at, pk = parse_cursor(cursor)
            qs = qs.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk))
        rows = list(qs[: self.list_per_page + 1])
        paginator = self.model_admin.get_paginator(request, self.queryset, self.list_per_page)
        self.result_count = paginator.count
        self.show_full_result_count = False
        self.show_admin_actions = True
        self.full_result_count = None
        self.result_list = rows[: self.list_per_page]
        self.can_show_all = False
        self.multi_page = False  # the keyset links replace the page numbers
        self.paginator = paginator
        self.keyset = True
        if len(rows) > self.list_per_page:
            last = self.result_list[-1]
            self.next_cursor = self.get_query_string({CURSOR: cursor_of(last.created_at, last.pk)})
        if cursor:
            self.first_url = self.get_query_string(remove=[CURSOR])


JOB_ID_PREFIX = re.compile(r"[0-9a-f]{8,64}")


def search(queryset: QuerySet[Any], term: str) -> QuerySet[Any]:
    """Jobs by id (exact, or a prefix of 8+ characters) or by text in the payload (the JSON cast to text, on
    PostgreSQL and SQLite). A term that looks like an id (8+ hex characters) finds its job through the primary
    key's index; only when no id matches does it read the payloads (a scan: a million take about half a second)."""
    term = term.strip()
    if not term:
        return queryset
    if JOB_ID_PREFIX.fullmatch(term):
        by_id = queryset.filter(Q(pk=term) | Q(pk__startswith=term))
        if by_id.exists():
            return by_id
    match = Q(pk=term) | Q(payload_text__icontains=term)
    if len(term) >= 8:
        match |= Q(pk__startswith=term)
    return queryset.alias(payload_text=Cast("payload", output_field=TextField())).filter(match)
