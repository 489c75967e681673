"""The OpenAPI schema generates without warnings, documents every path, marks aliases; the docs page renders."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import hypothesis
import pytest
import yaml
from hypothesis import strategies
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


def _example(param: dict[str, Any]) -> str:
    """A value of a path parameter's type that names nothing that exists."""
    kind = param.get("schema", {})
    if kind.get("type") == "integer":
        return "987654"
    if kind.get("format") == "uuid":
        return "00000000-0000-4000-8000-000000000000"
    if kind.get("enum"):
        return str(kind["enum"][0])
    if kind.get("pattern"):  # e.g. a webhook endpoint's `ep_<32 hex>`: the smallest string the pattern matches
        return str(hypothesis.find(strategies.from_regex(kind["pattern"], fullmatch=True), lambda _: True))
    return "no-such-id"


def test_every_documented_change_refuses_a_read_only_operator_with_its_documented_403(schema: dict[str, Any], django_user_model: Any) -> None:
    """Each POST/PUT/PATCH/DELETE in the schema documents a 403, and a read-only operator's call (staff, only the
    jobs app's `view_*` permissions) gets it, as `{message, extra}`, before its input or ids are looked at."""
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer-schema", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(content_type__app_label="jobs", codename__startswith="view_"))
    client = APIClient()
    client.force_authenticate(viewer)
    called = []
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            if method not in ("post", "put", "patch", "delete"):
                continue
            assert "403" in op["responses"], f"{method.upper()} {path} documents no 403"
            url = path
            for param in op.get("parameters", []):
                if param["in"] == "path":
                    url = url.replace("{" + param["name"] + "}", _example(param))
            answer = getattr(client, method)(url, {}, format="json")
            assert answer.status_code == 403, f"{method.upper()} {url}: {answer.status_code} {answer.content[:200]!r}"
            assert set(answer.json()) == {"message", "extra"}, url
            called.append(f"{method} {path}")
    assert len(called) >= 40
