"""API clients for tests, authenticated as a program is: an API key sent as a Bearer token."""
from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from jobs.api.auth import create_api_key


def bearer(raw: str) -> APIClient:
    """A client that sends `raw` as its API key with every request."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def key_client(user: Any) -> APIClient:
    """A client that sends a new API key of `user` with every request."""
    return bearer(create_api_key(user=user)[1])
