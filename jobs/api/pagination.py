"""Pagination of the API's lists: limit/offset without COUNT(*)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.api.inputs import query


#: Deeper pages are refused (400): an OFFSET this large reads more rows than a list should.
MAX_OFFSET = 1_000_000


class CountlessPagination(LimitOffsetPagination):
    """limit/offset without COUNT(*): one extra row tells whether a next page exists (lists stay fast at a million rows).

    limit and offset are validated (PageParamsSerializer): a bad value is a 400, not a silent default.
    """

    default_limit = 50
    max_limit = 500

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        """Return one page and remember whether more rows follow."""
        self.request = request
        params = query(PageParamsSerializer, request)
        self.limit = params.get("limit", self.default_limit)
        self.offset = params.get("offset", 0)
        rows = list(queryset[self.offset : self.offset + self.limit + 1])
        self.has_next = len(rows) > self.limit
        self.count = self.offset + len(rows)  # used by DRF's link helpers only
        return rows[: self.limit]

    def get_next_link(self) -> str | None:
        """The next page's URL when more rows follow."""
        return super().get_next_link() if self.has_next else None

    def get_paginated_response(self, data: Any) -> Response:
        """The page with limit, offset and links."""
        return Response(
            OrderedDict(
                [("limit", self.limit), ("offset", self.offset), ("next", self.get_next_link()), ("previous", self.get_previous_link()), ("results", data)]
            )
        )


def paginated(request: Request, view: APIView, queryset: Any, serializer: type, **context: Any) -> Response:
    """Serialize one page of `queryset`."""
    paginator = CountlessPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True, context=context).data)


class QueryIntegerField(serializers.IntegerField):
    """An integer query parameter: `?offset=` is refused as not an integer (DRF would read it as left out)."""

    def get_value(self, dictionary: Any) -> Any:
        return dictionary.get(self.field_name, serializers.empty)


class PageParamsSerializer(serializers.Serializer):
    """limit and offset, as the schema documents them."""

    limit = QueryIntegerField(
        required=False, min_value=1, max_value=CountlessPagination.max_limit,
        help_text=f"Page size (default {CountlessPagination.default_limit}, at most {CountlessPagination.max_limit}).",
    )
    offset = QueryIntegerField(required=False, min_value=0, max_value=MAX_OFFSET, help_text="Rows to skip.")


PAGE_PARAMS = [PageParamsSerializer]

_PAGES: dict[type, type] = {}


def page_of(item: type[serializers.Serializer]) -> serializers.Serializer:
    """The schema of one page of `item`s: {limit, offset, next, previous, results} (one component per item)."""
    if item not in _PAGES:
        name = item.__name__.removesuffix("Serializer").removesuffix("Output") + "PageSerializer"
        _PAGES[item] = type(name, (serializers.Serializer,), {
            "__module__": __name__,
            "__doc__": f"One page of {item.__name__.removesuffix('Serializer')}; `next` is null on the last page.",
            "limit": serializers.IntegerField(),
            "offset": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
        })
    return _PAGES[item]()
