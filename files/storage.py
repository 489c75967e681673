"""Where a file's bytes go: Django's default storage (local filesystem, or S3 through django-storages).

Every read and write streams in chunks: an upload is hashed and sniffed from the request's
temporary file, a staged object is copied to its final key through a local temporary file while
its checksum is computed again, a download reads one range at a time. No call holds a whole file
in memory. Storage errors arrive as transcription.sources' SourceErrors (the project's one
translation of storage failures), which callers turn into 4xx/503 (requests) or TRANSIENT and
VALIDATION job errors (workers).
"""
from __future__ import annotations

import contextlib
import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator

import filetype
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage, storages

from transcription import s3
from transcription.sources import SourceMissing, SourceRefused, translated

CHUNK = 1024 * 1024
SNIFF_BYTES = 8192
PREFIX = "files/"
STAGING = "files/staging/"


@dataclass(frozen=True)
class Digest:
    """What the bytes are: their size, SHA-256 and content type sniffed from their start."""

    size: int
    sha256: str
    content_type: str


def sniff(head: bytes) -> str:
    """The content type of a file from its first bytes (magic numbers), never from the client's word.

    Known binary formats by signature (filetype); text that decodes as UTF-8 without NUL is
    text/plain; anything else application/octet-stream.
    """
    kind = filetype.guess(head)
    if kind is not None:
        return str(kind.mime)
    if head and b"\x00" not in head:
        try:
            head.decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 3:  # a character cut at the end of the sample
                return "text/plain"
    return "application/octet-stream"


def digest(fileobj: IO[bytes], *, on_chunk: Callable[[int], None] | None = None) -> Digest:
    """Hash and sniff a seekable file in chunks, from its start; leaves it at its start."""
    fileobj.seek(0)
    sha, size, head = hashlib.sha256(), 0, b""
    while chunk := fileobj.read(CHUNK):
        if len(head) < SNIFF_BYTES:
            head += chunk[: SNIFF_BYTES - len(head)]
        sha.update(chunk)
        size += len(chunk)
        if on_chunk:
            on_chunk(size)
    fileobj.seek(0)
    return Digest(size=size, sha256=sha.hexdigest(), content_type=sniff(head))


def is_media(content_type: str) -> bool:
    """Audio or video, which ffprobe and ffmpeg can read."""
    return content_type.startswith(("audio/", "video/"))


def save(key: str, fileobj: IO[bytes], *, content_type: str) -> str:
    """Write a seekable file at `key` (a new, unique key); return the key storage used."""
    fileobj.seek(0)
    content = File(fileobj, name=key.rsplit("/", 1)[-1])
    content.content_type = content_type  # type: ignore[attr-defined]  # S3Storage sends it as Content-Type
    with translated(key):
        saved = str(default_storage.save(key, content))
    if saved != key:  # a unique key that storage renamed: someone else wrote there
        raise SourceRefused(f"storage renamed {key!r} to {saved!r}", extra={"key": key})
    return saved


def copy_to_temp(key: str, out: IO[bytes], *, on_chunk: Callable[[int], None] | None = None) -> Digest:
    """Stream a stored object into a local file, hashing and sniffing on the way."""
    sha, size, head = hashlib.sha256(), 0, b""
    with translated(key), default_storage.open(key, "rb") as src:
        while chunk := src.read(CHUNK):
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
            sha.update(chunk)
            out.write(chunk)
            size += len(chunk)
            if on_chunk:
                on_chunk(size)
    out.flush()
    return Digest(size=size, sha256=sha.hexdigest(), content_type=sniff(head))


def delete(key: str) -> None:
    """Remove an object; one already gone is not an error. On the filesystem its folder goes too, once empty."""
    with translated(key):
        default_storage.delete(key)
    if isinstance(storages["default"], FileSystemStorage) and "/" in key:
        with contextlib.suppress(OSError):  # not empty (or already gone): left as it is
            Path(default_storage.path(key)).parent.rmdir()


def exists(key: str) -> bool:
    with translated(key):
        return bool(default_storage.exists(key))


def size_of(key: str) -> int:
    with translated(key):
        return int(default_storage.size(key))


def keys_under(prefix: str = PREFIX) -> Iterator[str]:
    """Every object key under `prefix` (recursively), through the storage API; none when the folder does not exist."""
    try:
        with translated(prefix):
            folders, names = default_storage.listdir(prefix.rstrip("/"))
    except SourceMissing:
        return
    for name in names:
        yield f"{prefix}{name}"
    for folder in folders:
        yield from keys_under(f"{prefix}{folder}/")


def read_range(key: str, start: int, length: int) -> Iterator[bytes]:
    """The bytes [start, start + length) of an object, in chunks."""
    with translated(key):
        fh = default_storage.open(key, "rb")
    try:
        with translated(key):
            fh.seek(start)
        left = length
        while left > 0:
            with translated(key):
                chunk = fh.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
    finally:
        fh.close()


def presigned_url(key: str, *, filename_header: str, content_type: str) -> str | None:
    """On S3, a time-limited GET URL that answers with this file's name and type; None on other storages."""
    if not s3.is_s3(default_storage):
        return None
    with translated(key):
        params = {"ResponseContentDisposition": filename_header, "ResponseContentType": content_type}
        return str(default_storage.url(key, parameters=params))  # type: ignore[call-arg]  # S3Storage.url takes them


def spooled() -> IO[bytes]:
    """A local temporary file for a copy in transit (on disk past 1 MB)."""
    return tempfile.SpooledTemporaryFile(max_size=CHUNK)  # type: ignore[return-value]
