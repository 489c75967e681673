"""How the API's two bearer schemes appear in the OpenAPI schema (drf-spectacular extensions).

Imported by jobs.api.urls, so they are registered wherever the API is served, and only there:
a worker or a management command does not load drf-spectacular.
"""
from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Documents `Authorization: Bearer <api key>`."""

    target_class = "jobs.api.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        """The bearer scheme of API keys."""
        return {"type": "http", "scheme": "bearer", "description": "An API key created in the admin or with `manage.py create_api_key USER`."}


class MetricsTokenScheme(OpenApiAuthenticationExtension):
    """Documents `Authorization: Bearer <METRICS_TOKEN>` on /metrics."""

    target_class = "jobs.api.permissions.MetricsTokenAuthentication"
    name = "metricsToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        """The bearer scheme of the metrics token."""
        return {"type": "http", "scheme": "bearer", "description": "settings.METRICS_TOKEN, when configured (for Prometheus scrapers)."}
