"""Schemathesis over the served OpenAPI schema, as a staff key and as a plain user's key."""
from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance, status_code_conformance

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
# The API refuses NUL in any JSON string with a 400 (jobs.api.parsers; tests/jobs/test_api_bad_input.py).
schema.config.generation.update(allow_x00=False)


UPLOADS = {("POST", "/api/transcriptions"), ("POST", "/api/projects/")}
# Uploads of any bytes: a generated file is a valid body (its emptiness is judged by the server).
FILE_UPLOADS = {("POST", "/api/files/upload"), ("POST", "/api/files/upload-async")}
ASSISTANT = {
    ("POST", "/api/assistant/commands"), ("POST", "/api/assistant/transcriptions"), ("POST", "/api/assistant/emails"),
    ("POST", "/api/assistant/calendars"),
}


def _asks_email(body: dict[str, Any]) -> bool:
    channels = body.get("channels")
    return isinstance(channels, list) and "email" in channels


@pytest.fixture
def keys(django_user_model: Any) -> dict[str, str]:
    from jobs.api.auth import create_api_key

    staff = django_user_model.objects.create_user("fuzz-staff", is_staff=True)
    plain = django_user_model.objects.create_user("fuzz-user")
    return {"staff": create_api_key(user=staff)[1], "user": create_api_key(user=plain)[1]}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: Any, keys: dict[str, str]) -> None:
    # Checks that cannot apply, and why:
    # - the two uploads' multipart bodies are not judged at all on acceptance: a generated `file` is
    #   not audio or video (a valid body cannot be generated; tests/transcription and tests/pipelines
    #   send real media), and form fields are text without JSON types, where an empty field means
    #   one left out;
    # - the file uploads take any bytes as a file, so only their negative (multipart) bodies are
    #   not judged, for the reason above; a generated file must be accepted;
    # - a transcription's JSON body is not judged on accepting valid data: its audioUrl must name
    #   stored audio or an allowed host, which a generated string does not. Its invalid bodies are.
    # - a job id of "project", which the schema's pattern forbids, is judged on being refused but not
    #   on its status code: /api/jobs/project/<x> is seed 2's project-jobs listing (GET only), so a
    #   POST to /api/jobs/project/retry is a 405 from that path, not a code of the job path's.
    # - a webhook URL (registering an endpoint, or a job's `webhookUrl`) must name a public https host
    #   that resolves, which a generated string does not: such bodies are not judged on acceptance;
    # - POST /v1/jobs/{job_id} is a job type that is not one: it is documented as always refused.
    # - a schedule's cron expression is checked by croniter, which a generated string rarely passes:
    #   bodies with one are not judged on acceptance (tests/jobs/test_schedules.py sends real ones).
    # - the assistant's bodies that a generator cannot make valid (ASSISTANT: real audio, an https
    #   calendar URL on an allowed host, addresses that Django's validate_email takes, a command's
    #   text or audio, one of them) are not judged on acceptance (tests/assistant sends real ones);
    #   nor is a notification by email, which the fuzzing users (they have no address) cannot receive.
    # Every other operation and body gets every default check.
    excluded = []
    if (case.path_parameters or {}).get("job_id") == "project":
        excluded.append(status_code_conformance)
    body = case.body if isinstance(case.body, dict) else {}
    if (case.method, case.path) in UPLOADS | ASSISTANT | {("POST", "/v1/webhooks"), ("POST", "/v1/jobs/{job_id}")} or body.get("webhookUrl") or "cron" in body or _asks_email(body):
        excluded.append(positive_data_acceptance)
    if (case.method, case.path) in UPLOADS | FILE_UPLOADS and (case.media_type or "multipart/form-data").startswith("multipart/"):
        excluded.append(negative_data_rejection)
    for who in ("staff", "user"):
        case.call_and_validate(headers={"Authorization": f"Bearer {keys[who]}"}, excluded_checks=excluded)
