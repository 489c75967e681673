"""The OpenAPI schema generates without warnings, documents every path, marks aliases; the docs page renders."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

CANONICAL = {
    "/api/queue/stats": "get",
    "/api/queue/stats/{queue}": "get",
    "/api/queue/{queue}/jobs": "get",
    "/api/queue/{queue}/pause": "post",
    "/api/queue/{queue}/resume": "post",
    "/api/queue/{queue}/clean": "post",
    "/api/queue/health": "get",
    "/api/jobs": "post",
    "/api/jobs/{job_id}": "get",
    "/api/jobs/{job_id}/retry": "post",
    "/api/jobs/{job_id}/cancel": "post",
    "/api/jobs/{job_id}/progress": "put",
    "/api/queue/job/{job_id}": "get",
    "/api/queue/dead-letter/stats": "get",
    "/api/queue/dead-letter/jobs": "get",
    "/api/queue/dead-letter/{job_id}/retry": "post",
    "/metrics": "get",
}
ALIASES = {
    "/api/queue/status": ("get", "/api/queue/stats"),
    "/api/queue/status/{queue}": ("get", "/api/queue/stats/{queue}"),
    "/api/queue/pause/{queue}": ("post", "/api/queue/{queue}/pause"),
    "/api/queue/resume/{queue}": ("post", "/api/queue/{queue}/resume"),
    "/api/queue/clean/{queue}": ("post", "/api/queue/{queue}/clean"),
    "/v1/admin/queue/metrics": ("get", "/api/queue/stats/{queue}"),
    "/v1/admin/queue/metrics/all": ("get", "/api/queue/stats"),
    "/v1/admin/queue/pause": ("post", "/api/queue/{queue}/pause"),
    "/v1/admin/queue/resume": ("post", "/api/queue/{queue}/resume"),
    "/v1/admin/queue/clean": ("post", "/api/queue/{queue}/clean"),
}


@pytest.fixture(scope="module")
def schema(tmp_path_factory: Any, django_db_blocker: Any) -> dict[str, Any]:
    """The schema as `manage.py spectacular` writes it; any warning fails the command."""
    out = Path(tmp_path_factory.mktemp("schema")) / "schema.yaml"
    with django_db_blocker.unblock():
        call_command("spectacular", "--file", str(out), "--validate", "--fail-on-warn")
    return yaml.safe_load(out.read_text())


@pytest.mark.parametrize("path", sorted(CANONICAL))
def test_every_canonical_path_is_documented_and_not_deprecated(schema: dict[str, Any], path: str) -> None:
    operation = schema["paths"][path][CANONICAL[path]]
    assert not operation.get("deprecated")
    assert operation["summary"] and operation["responses"]
    assert "401" in operation["responses"]


@pytest.mark.parametrize("path", sorted(ALIASES))
def test_aliases_are_marked_deprecated_and_name_their_canonical_path(schema: dict[str, Any], path: str) -> None:
    method, canonical = ALIASES[path]
    operation = schema["paths"][path][method]
    assert operation["deprecated"] is True
    assert f"`{canonical}`" in operation["description"]


def test_request_and_response_bodies_are_documented(schema: dict[str, Any]) -> None:
    create = schema["paths"]["/api/jobs"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][body]["properties"]) == {"type", "payload", "priority", "delay", "idempotencyKey"}
    assert {"200", "201", "400"} <= set(create["responses"])
    clean = schema["paths"]["/api/queue/{queue}/clean"]["post"]
    clean_body = clean["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][clean_body]["properties"]) == {"status", "grace", "limit"}
    job = schema["components"]["schemas"]["JobOutput"]["properties"]
    assert {"id", "queue", "type", "status", "progress", "priority", "attemptsMade", "maxAttempts", "failedReason", "result", "createdAt", "startedAt", "completedAt"} <= set(job)
    seed4 = schema["paths"]["/v1/admin/queue/pause"]["post"]
    assert any(p["name"] == "queue" and p["in"] == "query" and p["required"] for p in seed4["parameters"])
    assert "text/plain" in schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert {"apiKey", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


def test_schema_and_docs_are_served() -> None:
    client = APIClient()
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/queue/dead-letter/stats" in response.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content and b"drf_spectacular_sidecar" in docs.content
