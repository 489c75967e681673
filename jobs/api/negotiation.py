"""Content negotiation: an Accept header that names nothing the view renders is disregarded, not a 406.

RFC 9110 (12.5.1) lets a server either answer 406 or ignore such a header. Every client of the seeds
reads JSON, and a 406 is a code no operation documents: the view's first renderer answers instead
(JSON, or the text of /metrics). A `?format=` that names no renderer stays a 404, as in DRF.
"""
from __future__ import annotations

from typing import Any, Iterable

from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer


class DisregardUnacceptable(DefaultContentNegotiation):
    """DRF's negotiation, with its first renderer where it would answer 406."""

    def select_renderer(self, request: Any, renderers: Iterable[BaseRenderer], format_suffix: str | None = None) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except exceptions.NotAcceptable:
            return renderers[0], renderers[0].media_type
