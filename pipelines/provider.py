"""The external provider that machine translation and lip-sync call: one JSON POST to settings.PIPELINES_PROVIDER_URL."""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings

from jobs.exceptions import ErrorKind, JobError, PermanentError


class ProviderMissing(PermanentError):
    """No provider is configured, so the stage cannot run (no retry helps)."""


def call(task: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST `{"task": task, **body}` to settings.PIPELINES_PROVIDER_URL and return the JSON object answered."""
    return post(settings.PIPELINES_PROVIDER_URL, {"task": task, **body}, timeout=settings.PIPELINES_PROVIDER_TIMEOUT, task=task, setting="PIPELINES_PROVIDER_URL")


def post(url: str, body: dict[str, Any], *, timeout: float, task: str, setting: str) -> dict[str, Any]:
    """POST `body` as JSON to a provider at `url` (the setting named `setting`) and return the JSON object answered.

    No provider: ProviderMissing. Timeouts, connection errors, 429 and 5xx: retried (TRANSIENT or
    TIMEOUT). Other 4xx and answers that are not a JSON object: permanent.
    """
    if not url:
        raise ProviderMissing(f"no provider configured for {task}: set {setting} to an http(s) endpoint")
    data = json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read(50 * 1024 * 1024)
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code == 429:
            raise JobError(f"provider answered {exc.code} for {task}", kind=ErrorKind.TRANSIENT) from exc
        raise PermanentError(f"provider refused {task}: HTTP {exc.code}", kind=ErrorKind.VALIDATION) from exc
    except (socket.timeout, TimeoutError) as exc:
        raise JobError(f"provider timed out on {task}", kind=ErrorKind.TIMEOUT) from exc
    except (urllib.error.URLError, ConnectionError) as exc:
        raise JobError(f"provider not reachable for {task}: {getattr(exc, 'reason', exc)}", kind=ErrorKind.TRANSIENT) from exc
    try:
        answer = json.loads(raw)
    except ValueError as exc:
        raise PermanentError(f"provider answered {task} with invalid JSON") from exc
    if not isinstance(answer, dict):
        raise PermanentError(f"provider answered {task} with {type(answer).__name__}, not a JSON object")
    return answer
