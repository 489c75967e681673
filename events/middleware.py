"""WebSocket authentication by API key in the `api_key` query parameter (browsers cannot set headers)."""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.request import validate_host


@database_sync_to_async
def _user_for_key(raw: str) -> Any:
    """The key's active user, or None."""
    from jobs.api.auth import user_for_key

    return user_for_key(raw)


def _foreign_origin(scope: dict[str, Any]) -> bool:
    """Whether a browser opened this socket from a page on a host not in ALLOWED_HOSTS."""
    for name, value in scope.get("headers", []):
        if name == b"origin":
            host = urlsplit(value.decode("latin-1")).hostname or ""
            allowed = list(settings.ALLOWED_HOSTS) or (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
            return not validate_host(host, allowed)
    return False


class ApiKeyMiddleware(BaseMiddleware):
    """Inside AuthMiddlewareStack: a `?api_key=` replaces the session user; an invalid key leaves an anonymous one.

    A session (cookie) is not honoured from a foreign Origin: another site's page must not open a
    socket with the user's cookies (cross-site WebSocket hijacking).
    """

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        """Resolve the key, if any, into scope["user"]."""
        params = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        keys = params.get("api_key")
        if keys:
            user = await _user_for_key(keys[0])
            scope = {**scope, "user": user or AnonymousUser(), "auth": "api_key" if user else None}
        elif _foreign_origin(scope):
            scope = {**scope, "user": AnonymousUser(), "auth": None}
        return await super().__call__(scope, receive, send)
