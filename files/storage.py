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
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Callable, Iterator

import filetype
from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage, storages

from transcription import s3
from transcription.sources import SourceMissing, SourceRefused, translated

CHUNK = 1024 * 1024
SNIFF_BYTES = 8192
PREFIX = "files/"
STAGING = "files/staging/"
#: A staged upload in settings.FILES_STAGING_DIR, on the machine that took the request.
LOCAL_STAGING = "local-staging:"


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


def _read_through(src: IO[bytes], out: IO[bytes] | None, on_chunk: Callable[[int], None] | None) -> Digest:
    """Read `src` to its end in chunks, hashing and sniffing, copying each chunk to `out` when given."""
    sha, size, head = hashlib.sha256(), 0, b""
    while chunk := src.read(CHUNK):
        if len(head) < SNIFF_BYTES:
            head += chunk[: SNIFF_BYTES - len(head)]
        sha.update(chunk)
        if out is not None:
            out.write(chunk)
        size += len(chunk)
        if on_chunk:
            on_chunk(size)
    return Digest(size=size, sha256=sha.hexdigest(), content_type=sniff(head))


def digest(fileobj: IO[bytes], *, on_chunk: Callable[[int], None] | None = None) -> Digest:
    """Hash and sniff a seekable file in chunks, from its start; leaves it at its start."""
    fileobj.seek(0)
    found = _read_through(fileobj, None, on_chunk)
    fileobj.seek(0)
    return found


def is_media(content_type: str) -> bool:
    """Audio or video, which ffprobe and ffmpeg can read."""
    return content_type.startswith(("audio/", "video/"))


def save(key: str, fileobj: IO[bytes], *, content_type: str, replace: bool = False) -> str:
    """Write a seekable file at `key` (a new, unique key; `replace`: remove what a failed attempt may
    have left there first); return the key storage used."""
    if replace:
        delete(key)
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
    with translated(key), default_storage.open(key, "rb") as src:
        found = _read_through(src, out, on_chunk)
    out.flush()
    return found


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


def modified_at(key: str) -> datetime:
    with translated(key):
        return default_storage.get_modified_time(key)


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


def presigned_url(key: str, *, filename_header: str, content_type: str) -> str | None:
    """On S3, a time-limited GET URL that answers with this file's name and type; None on other storages."""
    if not s3.is_s3(default_storage):
        return None
    with translated(key):
        params = {"ResponseContentDisposition": filename_header, "ResponseContentType": content_type}
        return str(default_storage.url(key, parameters=params))  # type: ignore[call-arg]  # S3Storage.url takes them


# -- staging: in storage (workers anywhere), or in a local folder (workers on this machine) ----------


def stage(file_id: str, fileobj: IO[bytes], *, content_type: str) -> str:
    """Keep an upload until its file-upload job stores it; returns the staged key.

    With settings.FILES_STAGING_DIR the bytes go to that folder (one local write; the workers must
    share it), else to `files/staging/<id>` in storage (any worker can read it).
    """
    folder = settings.FILES_STAGING_DIR
    if not folder:
        return save(f"{STAGING}{file_id}", fileobj, content_type=content_type)
    key = f"{LOCAL_STAGING}{file_id}"
    path = _local(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    fileobj.seek(0)
    with translated(key), path.open("xb") as out:
        shutil.copyfileobj(fileobj, out, CHUNK)
    return key


def _local(key: str) -> Path:
    name = key[len(LOCAL_STAGING):]
    if not name or "/" in name or name.startswith("."):
        raise SourceRefused(f"not a staged file: {key!r}", extra={"key": key})
    return Path(settings.FILES_STAGING_DIR or ".") / name


@contextlib.contextmanager
def staged_file(key: str, *, on_chunk: Callable[[int], None] | None = None) -> Iterator[tuple[IO[bytes], Digest]]:
    """A seekable local file of a staged upload and its digest: the staged file itself when local,
    else a spooled copy of the staged object."""
    if key.startswith(LOCAL_STAGING):
        with translated(key), _local(key).open("rb") as fh:
            yield fh, digest(fh, on_chunk=on_chunk)
        return
    with spooled() as tmp:
        found = copy_to_temp(key, tmp, on_chunk=on_chunk)
        tmp.seek(0)
        yield tmp, found


def remove(key: str) -> None:
    """Remove a stored or staged object; one already gone is not an error."""
    if key.startswith(LOCAL_STAGING):
        with translated(key):
            _local(key).unlink(missing_ok=True)
    else:
        delete(key)


def present(key: str) -> bool:
    """Whether a stored or staged object exists."""
    if key.startswith(LOCAL_STAGING):
        with translated(key):
            return _local(key).exists()
    return exists(key)


def local_staged(older_than: float) -> Iterator[str]:
    """The keys of files in FILES_STAGING_DIR last changed before the epoch time `older_than`."""
    folder = settings.FILES_STAGING_DIR
    if not folder or not Path(folder).is_dir():
        return
    for path in Path(folder).iterdir():
        if path.is_file() and path.stat().st_mtime < older_than:
            yield f"{LOCAL_STAGING}{path.name}"


def spooled() -> IO[bytes]:
    """A local temporary file for a copy in transit (on disk past 1 MB)."""
    return tempfile.SpooledTemporaryFile(max_size=CHUNK)  # type: ignore[return-value]
