"""How the API's bearer schemes, queue names and job types appear in the OpenAPI schema (drf-spectacular extensions).

Imported by jobs.api.urls, so they are registered wherever the API is served, and only there:
a worker or a management command does not load drf-spectacular.
"""
from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import permissions

from jobs.api.errors import READ_ONLY
from jobs.api.permissions import IsStaff, NotReadOnly
from jobs.engine import conf, registry


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema (DEFAULT_SCHEMA_CLASS), plus the 403 that a read-only operator gets from any
    change: documented wherever the view's permissions refuse it (NotReadOnly, or IsStaff, which includes it).

    It extends `_get_response_bodies`, not `get_response_serializers`: `@extend_schema(responses=...)` replaces
    the latter in a subclass of its own. tests/jobs/test_api_schema.py calls every change as a read-only
    operator against what this documents."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        if self.method in permissions.SAFE_METHODS or "403" in responses:
            return responses  # a staff-only change has its 403 documented already
        if any(isinstance(p, (NotReadOnly, IsStaff)) for p in self.view.get_permissions()):
            responses["403"] = self._get_response_for_code(READ_ONLY, "403", direction=direction)
        return responses


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


class QueueNameSchema(OpenApiSerializerFieldExtension):
    """A queue field is documented as an enum of the declared queues, read when the schema is built."""

    target_class = "jobs.api.serializers.QueueNameField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        """The declared queues."""
        names: list[str] = sorted(conf.all_queues())
        # An optional queue filter may be sent empty (`?queue=`): it then filters nothing.
        return {"type": "string", "enum": [*names, ""] if self.target.allow_blank else names}


class ApiJobTypeSchema(OpenApiSerializerFieldExtension):
    """A job type field is documented as an enum of the types open to API clients."""

    target_class = "jobs.api.serializers.ApiJobTypeField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        """The registered job types with api=True."""
        return {"type": "string", "enum": sorted(name for name, task in registry.all_types().items() if task.api)}


class JobTypeSchema(OpenApiSerializerFieldExtension):
    """Any registered job type (staff's schedules), as an enum."""

    target_class = "jobs.api.serializers.JobTypeField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        """Every registered job type."""
        return {"type": "string", "enum": sorted(registry.all_types())}


class TimezoneSchema(OpenApiSerializerFieldExtension):
    """An IANA timezone name, as an enum of the names this machine's zoneinfo knows."""

    target_class = "jobs.api.serializers.TimezoneField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        """zoneinfo's names."""
        from zoneinfo import available_timezones

        return {"type": "string", "enum": sorted(available_timezones())}


#: A job id is never `project`: /api/jobs/project/{id}/... are a project's paths (seed 2).
JOB_ID_PATTERN = r"^(?!project$)[^/]+$"


def path_parameters(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Postprocessing hook: every `{queue}` path parameter is an enum of the declared queues, every
    `{job_id}` says it is never `project`, so the schema names only paths that reach their view; an
    empty `?format=` (the default renderer, as DRF reads it) is documented as allowed."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for param in operation.get("parameters", []) if isinstance(operation, dict) else []:
                if param.get("in") == "query" and param["name"] == "format" and "enum" in param.get("schema", {}):
                    param["schema"]["enum"] = [*param["schema"]["enum"], ""]
                if param.get("in") != "path":
                    continue
                if param["name"] == "queue":
                    param["schema"] = {"type": "string", "enum": sorted(conf.all_queues())}
                elif param["name"] == "job_id":
                    param["schema"] = {"type": "string", "pattern": JOB_ID_PATTERN}
    return result
