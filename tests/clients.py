"""API clients for tests, authenticated as a program is: a fresh API key of the user, sent as a Bearer token."""
from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from jobs.api.auth import create_api_key


def key_client(user: Any) -> APIClient:
    """A client that sends a new API key of `user` with every request."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {create_api_key(user=user)[1]}")
    return client
