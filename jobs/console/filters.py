"""List filters of the operator console: choices come from settings and enums, never from a DISTINCT scan."""
from __future__ import annotations

from typing import Any, Iterator

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from jobs.engine import conf, priority, registry
from jobs.exceptions import ErrorKind


class QueueFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in conf.all_queues()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(queue=self.value()) if self.value() else queryset


class TypeFilter(admin.SimpleListFilter):
    title = "type"
    parameter_name = "type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in sorted(registry.all_types())]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(type=self.value()) if self.value() else queryset


class PriorityFilter(admin.SimpleListFilter):
    """By priority level: the band of integers that wait in one RQ list (see jobs.engine.priority)."""

    title = "priority"
    parameter_name = "priority"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names: dict[int, list[str]] = {}
        for name, value in priority.NAMED.items():
            names.setdefault(value, []).append(name)
        return [(str(lv), f"{lv}+ {'/'.join(names.get(lv, []))}".strip()) for lv in reversed(priority.LEVELS)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value or not value.isdigit() or int(value) not in priority.LEVELS:
            return queryset
        low = int(value)
        above = [lv for lv in priority.LEVELS if lv > low]
        queryset = queryset.filter(priority__gte=low)
        return queryset.filter(priority__lt=above[0]) if above else queryset


class KindFilter(admin.SimpleListFilter):
    title = "error kind"
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(k.value, k.value) for k in ErrorKind]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(error_kind=self.value()) if self.value() else queryset


class OpenFilter(admin.SimpleListFilter):
    """Open (not yet retried or discarded) by default."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("open", "Open"), ("resolved", "Resolved"), ("all", "All")]

    def value(self) -> str:
        return super().value() or "open"

    def choices(self, changelist: Any) -> Iterator[Any]:
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return open_filter(queryset, self.value())


def open_filter(queryset: QuerySet[Any], state: str) -> QuerySet[Any]:
    """Dead letters in `state`: open (not resolved), resolved, or all."""
    if state == "open":
        return queryset.filter(resolved_at__isnull=True)
    if state == "resolved":
        return queryset.filter(resolved_at__isnull=False)
    return queryset


class RevokedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "revoked"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("no", "Active"), ("yes", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("yes", "no"):
            return queryset.filter(revoked_at__isnull=self.value() == "no")
        return queryset
