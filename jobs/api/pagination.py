"""Pagination of the API's lists: limit/offset without COUNT(*)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class CountlessPagination(LimitOffsetPagination):
    """limit/offset without COUNT(*): one extra row tells whether a next page exists (lists stay fast at a million rows)."""

    default_limit = 50
    max_limit = 500

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        """Return one page and remember whether more rows follow."""
        self.request = request
        self.limit = self.get_limit(request) or self.default_limit
        self.offset = self.get_offset(request)
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

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The page's OpenAPI schema."""
        return {
            "type": "object",
            "required": ["limit", "offset", "next", "previous", "results"],
            "properties": {
                "limit": {"type": "integer"},
                "offset": {"type": "integer"},
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }


def paginated(request: Request, view: APIView, queryset: Any, serializer: type, **context: Any) -> Response:
    """Serialize one page of `queryset`."""
    paginator = CountlessPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True, context=context).data)


PAGE_PARAMS = [
    OpenApiParameter("limit", OpenApiTypes.INT, description=f"Page size (default {CountlessPagination.default_limit}, at most {CountlessPagination.max_limit})."),
    OpenApiParameter("offset", OpenApiTypes.INT, description="Rows to skip."),
]
