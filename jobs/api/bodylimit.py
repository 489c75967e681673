"""Request bodies over the limits are refused from their Content-Length, before a byte of them is read.

An ASGI middleware around the whole site (config/asgi.py). A multipart body (an upload) may be up
to settings.UPLOAD_BODY_MAX bytes, any other body up to settings.DATA_UPLOAD_MAX_MEMORY_SIZE
(Django's own limit on what it reads into memory). A body over its limit is answered 413 with
`{message, extra}` at once; a body without a Content-Length (chunked) is answered 411, so that
every accepted body has a size known before it is read. The web server (uvicorn) streams bodies
to the application and reads no further than the application asks.
"""
from __future__ import annotations

import json
from typing import Any, Awaitable, Callable, Mapping

from django.conf import settings

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Methods whose requests carry a body.
WITH_BODY = {"POST", "PUT", "PATCH"}


class BodyLimit:
    """Wraps an ASGI application: refuses oversize or unsized request bodies before reading them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        limit = limit_for(headers.get(b"content-type", b""))
        length = declared_length(headers.get(b"content-length"))
        if length is None and scope.get("method") in WITH_BODY and b"transfer-encoding" in headers:
            await _answer(send, 411, "a request body needs a Content-Length", {"limit": limit})
            return
        if length is not None and length > limit:
            await _answer(send, 413, "request body too large", {"limit": limit, "length": length})
            return
        await self.app(scope, receive, send)


def limit_for(content_type: bytes) -> int:
    """The largest body accepted for a content type: an upload's, or Django's in-memory limit."""
    if content_type.split(b";")[0].strip().lower() == b"multipart/form-data":
        return int(settings.UPLOAD_BODY_MAX)
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def declared_length(raw: bytes | str | None) -> int | None:
    """A Content-Length header's value, or None when it is missing or not a number."""
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


async def _answer(send: Send, status: int, message: str, extra: dict[str, Any]) -> None:
    body = json.dumps({"message": message, "extra": extra}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": body})
