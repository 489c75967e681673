"""Where transcription audio comes from and where results go: checks, uploads, worker fetches, result files.

Two layers, kept apart on purpose:
- policy: `check()` decides which sources are acceptable (a storage key, an s3:// URL in the configured
  bucket, an https URL on a host of settings.TRANSCRIPTION_ALLOWED_HOSTS; never http, IP literals or
  localhost), so no request can make a worker fetch an internal address;
- transport: `download()` copies one URL to a file with settings.STORAGE_TIMEOUT, a size cap and
  same-origin redirects only. It has no host policy of its own (tests drive it over plain HTTP on
  loopback); `fetch()` always runs `check()` before it.
Storage errors become SourceMissing (permanent) or SourceUnavailable (transient: the job retries).
"""
from __future__ import annotations

import http.client
import ipaddress
import re
import tempfile
import unicodedata
import uuid
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO, Iterable, Iterator
from urllib.parse import urljoin, urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils.text import get_valid_filename

from jobs.exceptions import ErrorKind, InvalidInput, JobError, JobsError, PermanentError, StorageUnavailable
from transcription import s3

CHUNK = 1024 * 1024
MAX_KEY_LENGTH = 1000
MAX_REDIRECTS = 5
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")
_REDIRECTS = {301, 302, 303, 307, 308}


class SourceError(Exception):
    """An audio source or result the transcription cannot use; message and extra shape the error answer."""

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra: dict[str, Any] = extra or {}


class SourceRefused(SourceError):
    """Input refused by policy (answer 400): a URL or key that no worker may fetch."""


class SourceMissing(SourceError):
    """The named object does not exist or may not be read (permanent)."""


class SourceUnavailable(SourceError):
    """A timeout, connection error or server error while reading (transient: retry)."""


class SourceTooLarge(SourceError):
    """The audio is larger than settings.TRANSCRIPTION_MAX_BYTES (permanent)."""


# How a storage error reaches a caller: the one translation, for every app that stores media --------


@contextmanager
def request_errors(*, field: str, invalid: type[JobsError] = InvalidInput) -> Iterator[None]:
    """Around storing or checking what a request brought: a storage that does not answer is StorageUnavailable
    (503); any other source error is `invalid` (400), naming `field` unless the error names its own."""
    try:
        yield
    except SourceUnavailable as exc:
        raise StorageUnavailable(f"storage not available: {exc.message}") from exc
    except SourceError as exc:
        raise invalid(exc.message, extra=exc.extra or {field: [exc.message]}) from exc


@contextmanager
def job_errors(what: str) -> Iterator[None]:
    """Around a worker's storage reads and writes: unavailable is TRANSIENT (retried with backoff); a missing,
    refused or too large source is a permanent VALIDATION error that no retry can fix."""
    try:
        yield
    except SourceUnavailable as exc:
        raise JobError(f"{what} not readable now: {exc.message}", kind=ErrorKind.TRANSIENT) from exc
    except SourceError as exc:
        raise PermanentError(f"{what}: {exc.message}", kind=ErrorKind.VALIDATION) from exc


# Policy -------------------------------------------------------------------------------------------


#: What an audio source may hold: printable ASCII without spaces (also the API schema's pattern).
SOURCE_PATTERN = r"^[!-~]+$"


def check(source: str) -> str:
    """Validate a user-given audio URL or storage key; return the storage key or the normalized https URL."""
    text = (source or "").strip()
    if not text:
        raise _refused("no audio source given")
    if len(text) > MAX_KEY_LENGTH or not re.fullmatch(SOURCE_PATTERN, text):
        raise _refused("an audio source must be printable ASCII without spaces, at most 1000 characters (percent-encode URLs)")
    scheme = _SCHEME.match(text)
    if scheme is None:
        return check_key(text)
    kind = scheme.group(1).lower()
    if kind == "s3":
        return _check_s3(text)
    if kind == "https":
        return _check_https(text)
    if kind == "http":
        raise _refused("plain http audio URLs are not accepted; use https")
    raise _refused(f"{kind}: URLs are not accepted; give a storage key, an s3:// URL or an https URL")


def check_key(key: str) -> str:
    """Validate a storage key: relative, no '.' or '..' segments, no backslashes or empty segments."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise _refused("invalid storage key")
    if key.startswith("/") or "\\" in key or _SCHEME.match(key):
        raise _refused("a storage key must be a relative path")
    if any(part in {"", ".", ".."} for part in key.split("/")):
        raise _refused("a storage key may not contain '..', '.' or empty segments")
    return key


def _check_s3(url: str) -> str:
    parts = urlsplit(url)
    storage = default_storage
    if not s3.is_s3(storage):
        raise _refused("s3:// URLs are accepted only when storage is S3")
    bucket = getattr(storage, "bucket_name", None)
    if parts.netloc != bucket or parts.query or parts.fragment:
        raise _refused("s3:// URLs must name an object in the configured bucket")
    name = s3.storage_name(storage, parts.path.lstrip("/"))
    if name is None:
        raise _refused("s3:// URL lies outside the storage location")
    return check_key(name)


def check_https(url: str, *, allowed_hosts: Iterable[str], field: str = "audioUrl", what: str = "audio") -> str:
    """The https policy of every URL a worker fetches for a user (audio, calendar feeds): the default port, no
    credentials, no IP literal or localhost, a host of `allowed_hosts`; the normalized URL, or SourceRefused naming `field`."""

    def refused(message: str) -> SourceRefused:
        return SourceRefused(message, extra={field: [message]})

    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise refused(f"invalid port in {what} URL") from None
    host = (parts.hostname or "").rstrip(".")
    if "@" in parts.netloc:
        raise refused(f"{what} URLs may not carry credentials")
    if port not in (None, 443):
        raise refused(f"https {what} URLs must use the default port")
    if _is_ip_literal(host) or host == "localhost" or host.endswith(".localhost"):
        raise refused(f"{what} URLs may not name an IP address or localhost")
    if host not in {h.lower() for h in allowed_hosts}:
        raise refused(f"{what} URLs from {host or 'this host'} are not accepted")
    return urlunsplit(("https", host, parts.path or "/", parts.query, ""))


def _check_https(url: str) -> str:
    return check_https(url, allowed_hosts=settings.TRANSCRIPTION_ALLOWED_HOSTS)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return bool(re.fullmatch(r"[0-9.]+|0x[0-9a-f.x]+", host))  # 2130706433, 127.1, 0x7f.1
    return True


def _refused(message: str) -> SourceRefused:
    return SourceRefused(message, extra={"audioUrl": [message]})


# Storage ------------------------------------------------------------------------------------------


def save_upload(fileobj: IO[bytes], *, name: str, prefix: str = "audio/") -> str:
    """Store an uploaded file through default_storage under a unique key; return the key (SourceTooLarge over the limit)."""
    prefix = check_key(prefix.strip("/")) + "/"
    size = _size_of(fileobj)
    limit = settings.TRANSCRIPTION_MAX_BYTES
    if size is not None and size > limit:
        raise _too_large(size)
    key = f"{prefix}{uuid.uuid4().hex}/{safe_filename(name)}"
    if size is not None:
        return _save(key, fileobj if isinstance(fileobj, File) else File(fileobj))
    with tempfile.SpooledTemporaryFile(max_size=CHUNK * 8) as spool:
        _copy(fileobj, spool, limit)  # an unseekable stream: learn its size (capped) before storing
        spool.seek(0)
        return _save(key, File(spool))


def require_audio(fileobj: IO[bytes]) -> None:
    """SourceRefused unless FFmpeg (PyAV) reads an audio stream from a seekable upload's headers.

    The services call it before storing an upload, so that a text file or an image sent as audio is
    a 400 at once rather than a failed job later. Only the headers are read (milliseconds); the file
    is left at its start.
    """
    import av  # PyAV (faster-whisper decodes with it); loaded by the processes that take uploads only

    fileobj.seek(0)
    try:
        with av.open(fileobj, mode="r") as container:
            kinds = [stream.type for stream in container.streams]
    except (av.FFmpegError, ValueError, OSError, EOFError):
        kinds = []
    finally:
        fileobj.seek(0)
    if "audio" not in kinds:
        found = f" (found: {', '.join(sorted(set(kinds)))})" if kinds else ""
        raise SourceRefused(f"the file is not audio or video with sound that can be decoded{found}")


def _save(key: str, content: File) -> str:
    with translated(key):
        return str(default_storage.save(key, content))


def save_result(content: str | bytes, *, key: str, content_type: str) -> str:
    """Write a result through default_storage, replacing an earlier one at the same key; return the key."""
    check_key(key)
    data = content.encode("utf-8") if isinstance(content, str) else content
    file = ContentFile(data, name=PurePosixPath(key).name)
    file.content_type = content_type  # type: ignore[attr-defined]  # S3Storage sends it as Content-Type
    with translated(key):
        default_storage.delete(key)  # a retried job rewrites its result rather than gaining a suffix
    return _save(key, file)


def url_for(key: str) -> str:
    """Where a client can get a stored file: the storage's URL (for S3 a presigned GET)."""
    check_key(key)
    with translated(key):
        return str(default_storage.url(key))


def fetch(source: str, dest_dir: str) -> str:
    """Worker side: copy the audio (re-checked with check()) to a local file in dest_dir; return its path."""
    normalized = check(source)
    dest = Path(dest_dir) / ("audio" + _suffix(normalized))
    try:
        with dest.open("wb") as out:
            if normalized.startswith("https://"):
                download(normalized, out, timeout=settings.STORAGE_TIMEOUT, max_bytes=settings.TRANSCRIPTION_MAX_BYTES)
            else:
                _copy_from_storage(normalized, out, max_bytes=settings.TRANSCRIPTION_MAX_BYTES)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return str(dest)


def _copy_from_storage(name: str, out: BinaryIO, *, max_bytes: int) -> None:
    storage = default_storage
    with translated(name):
        if s3.is_s3(storage):
            try:
                s3.download(storage, name, out, max_bytes=max_bytes)  # type: ignore[arg-type]
            except s3.TooLarge as exc:
                raise _too_large(exc.size) from exc
            return
        size = storage.size(name)
        if size > max_bytes:
            raise _too_large(size)
        with storage.open(name, "rb") as fh:
            _copy(fh, out, max_bytes)


@contextmanager
def translated(name: str) -> Iterator[None]:
    """Storage errors as SourceErrors (s3.builtin_errors first turns botocore's into builtin ones)."""
    try:
        with s3.builtin_errors(repr(name)):
            yield
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise SourceMissing(f"no stored object {name!r}", extra={"key": name}) from exc
    except PermissionError as exc:
        # S3 answers 403 for a missing key when the credentials may not list the bucket.
        raise SourceMissing(f"stored object {name!r} may not be read: {exc}", extra={"key": name}) from exc
    except (ValueError, SuspiciousOperation) as exc:
        raise SourceRefused(f"storage refused the key {name!r}", extra={"key": name}) from exc
    except OSError as exc:  # TimeoutError, ConnectionError and the rest: the storage may answer later
        raise SourceUnavailable(f"storage not reachable reading {name!r}: {exc}", extra={"key": name}) from exc


# Transport ----------------------------------------------------------------------------------------


def download(url: str, out: BinaryIO, *, timeout: float, max_bytes: int) -> int:
    """Copy an http(s) URL into out: per-operation timeout, size cap, redirects within the same origin only.

    No host policy here: callers run check() first (fetch() does). Redirects may not leave the
    origin (scheme, host, port) that was checked.
    """
    origin = _origin(url)
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(current)
        conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_class(parts.hostname or "", parts.port, timeout=timeout)
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            conn.request("GET", target, headers={"User-Agent": "jobconsole-transcription", "Accept-Encoding": "identity"})
            response = conn.getresponse()
            if response.status in _REDIRECTS:
                location = urljoin(current, response.getheader("Location") or "")
                if _origin(location) != origin:
                    raise SourceRefused("audio URL redirects to another host", extra={"audioUrl": [url], "location": location})
                current = location
                continue
            _raise_for_status(response.status, url)
            return _stream(response, out, max_bytes)
        except (OSError, http.client.HTTPException) as exc:  # timeouts, refused or reset connections, bad responses
            raise SourceUnavailable(f"audio URL not readable now: {type(exc).__name__}: {exc}", extra={"audioUrl": [url]}) from exc
        finally:
            conn.close()
    raise SourceRefused(f"audio URL redirects more than {MAX_REDIRECTS} times", extra={"audioUrl": [url]})


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").rstrip("."), port


def _raise_for_status(status: int, url: str) -> None:
    if status == 200:
        return
    extra = {"audioUrl": [url], "status": status}
    if status in {408, 425, 429} or status >= 500:
        raise SourceUnavailable(f"audio URL answered HTTP {status}", extra=extra)
    if status in {404, 410}:
        raise SourceMissing("audio URL answered HTTP 404: no such file" if status == 404 else "audio URL is gone (HTTP 410)", extra=extra)
    raise SourceMissing(f"audio URL not readable (HTTP {status})", extra=extra)


def _stream(response: http.client.HTTPResponse, out: BinaryIO, max_bytes: int) -> int:
    length = response.getheader("Content-Length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise _too_large(int(length))
    return _copy(response, out, max_bytes)


# Helpers ------------------------------------------------------------------------------------------


def _copy(src: Any, out: Any, max_bytes: int) -> int:
    written = 0
    while chunk := src.read(CHUNK):
        written += len(chunk)
        if written > max_bytes:
            raise _too_large(None)
        out.write(chunk)
    return written


def _size_of(fileobj: Any) -> int | None:
    size = getattr(fileobj, "size", None)
    if isinstance(size, int):
        return size
    try:
        position = fileobj.tell()
        end = fileobj.seek(0, 2)
        fileobj.seek(position)
        return int(end) - int(position)
    except (AttributeError, OSError, ValueError):
        return None


def safe_filename(name: str, *, fallback: str = "audio") -> str:
    """An ASCII file name without path components or control characters, its stem capped at 80 characters."""
    base = PurePosixPath(str(name).replace("\\", "/")).name
    # ASCII only, as check() wants: the worker re-checks the key it is given.
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    try:
        safe = get_valid_filename(base)
    except SuspiciousOperation:
        safe = fallback
    if safe.startswith("."):  # no hidden files: ".mp3" becomes "audio.mp3"
        safe = fallback + safe
    stem, suffix = safe[: -len(_suffix(safe)) or None], _suffix(safe)
    return (stem[:80] or fallback) + suffix


def _suffix(source: str) -> str:
    """The file extension of a key or URL path (kept for decoders that look at it), or ''."""
    suffix = PurePosixPath(urlsplit(source).path if "://" in source else source).suffix
    return suffix.lower() if _SUFFIX.fullmatch(suffix) else ""


def _too_large(size: int | None) -> SourceTooLarge:
    limit = settings.TRANSCRIPTION_MAX_BYTES
    shown = f"{size} bytes" if size is not None else f"more than {limit} bytes"
    return SourceTooLarge(f"audio is too large ({shown}; the limit is {limit} bytes)", extra={"limit": limit, "size": size})


__all__ = [
    "SourceError", "SourceMissing", "SourceRefused", "SourceTooLarge", "SourceUnavailable", "check", "check_https", "check_key", "download",
    "fetch", "job_errors",
    "request_errors", "require_audio", "safe_filename", "save_result", "save_upload", "translated", "url_for",
]
