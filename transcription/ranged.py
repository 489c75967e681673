"""A stored object over HTTP, one byte range at a time: what a media player or a resumed download asks for.

Browsers fetch media with `Range` and can seek only when the server answers 206 with Content-Range
(RFC 9110 §14). One range is honoured; several, or a header that does not parse, get the whole object
(a server may ignore Range); a range outside the object is a 416.

The bytes are read from storage in chunks, never whole: under ASGI through an async iterator (Django
would otherwise collect a sync iterator into a list before sending it), under WSGI through a sync one.
Used by the files' downloads and the pipelines' review player.
"""
from __future__ import annotations

import re
from typing import IO, AsyncIterator, Generator

from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from transcription import sources

CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class Unsatisfiable(Exception):
    """The requested range lies outside the object (answered 416)."""


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) bytes a Range header asks of an object of `size` bytes, or None for the whole object."""
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match or not (match.group(1) or match.group(2)):
        return None  # absent, several ranges, or another unit: the whole object
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return None  # a syntactically invalid range is ignored (RFC 9110 §14.1.1)
    else:  # a suffix: the last N bytes
        start, end = max(size - int(last), 0), size - 1
        if int(last) == 0:
            raise Unsatisfiable()
    if start >= size or end < start:
        raise Unsatisfiable()
    return start, end


def _chunks(fh: IO[bytes], start: int, length: int, key: str) -> Generator[bytes, None, None]:
    try:
        with sources.translated(key):
            fh.seek(start)
        left = length
        while left > 0:
            with sources.translated(key):
                chunk = fh.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
    finally:
        fh.close()


async def _achunks(fh: IO[bytes], start: int, length: int, key: str) -> AsyncIterator[bytes]:
    chunks = _chunks(fh, start, length, key)

    def step() -> bytes | None:
        return next(chunks, None)

    try:
        while (chunk := await sync_to_async(step, thread_sensitive=False)()) is not None:
            yield chunk
    finally:
        await sync_to_async(chunks.close, thread_sensitive=False)()


def ranged_response(request: HttpRequest, key: str, *, size: int, content_type: str, disposition: str) -> HttpResponse | StreamingHttpResponse:
    """The stored object `key` of `size` bytes as a 200, a 206 for the one byte range asked, or a 416 outside it."""
    try:
        wanted = byte_range(request.headers.get("Range", ""), size)
    except Unsatisfiable:
        answer = HttpResponse(status=416)
        answer["Content-Range"] = f"bytes */{size}"
        return answer
    start, end = wanted if wanted is not None else (0, size - 1)
    length = max(end - start + 1, 0)
    with sources.translated(key):
        fh = default_storage.open(key, "rb")
    body = _achunks(fh, start, length, key) if isinstance(request, ASGIRequest) else _chunks(fh, start, length, key)
    response = StreamingHttpResponse(body, status=206 if wanted else 200, content_type=content_type)
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = disposition
    response["X-Content-Type-Options"] = "nosniff"
    if wanted:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response
