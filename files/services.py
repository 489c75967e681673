"""Files: receive uploads, then store, process and delete them through seed 3's three queues.

Where the bytes are at each step (docs/architecture.md, "Files"):
- `upload_async`: the request's temporary file is hashed and sniffed in chunks, then written to
  `files/staging/<id>` in storage; the row (`staged`) and the `file-upload` job commit together.
- the `file-upload` job copies the staged object to `files/<id>/<name>` through a local temporary
  file, checking size and SHA-256 against the row, then marks the row `stored` and removes the
  staged object.
- `upload` writes straight to `files/<id>/<name>` before answering.
- `file-process` reads a stored file into a local temporary file (analyze, compress) or hands its
  key to the transcription app (transcribe); compress stores the Opus object, verifies it, points
  the row at it and only then removes the original.
- `file-delete` removes the object, then the row.
An object that outlives its row (a crash between two steps) is found by `sweep`.
"""
from __future__ import annotations

import logging
import tempfile
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from files import media, storage
from files.exceptions import FileBusy, FileInputError, FileTooLarge
from files.models import StoredFile
from jobs import access
from jobs import services as job_services
from jobs.access import User, Viewer
from jobs.exceptions import ErrorKind, JobError, JobsError, NotFound, PermanentError
from jobs.models import Job
from jobs.services import JobChange, JobSpec
from jobs.tasks import JobContext
from transcription import sources

log = logging.getLogger(__name__)

UPLOAD, PROCESS, DELETE = "file-upload", "file-process", "file-delete"
OPERATIONS = ("transcribe", "analyze", "compress")
NAME_MAX = 255
Status = StoredFile.Status


# -- reads --------------------------------------------------------------------------------------


def get_for(file_id: str, *, user: Viewer) -> StoredFile:
    """The user's file (an operator: any), not being deleted; NotFound otherwise, so ids cannot be probed."""
    qs = access.visible(StoredFile.objects.exclude(status__in=[Status.DELETING, Status.DELETED]), user)
    try:
        return qs.get(pk=file_id)
    except (StoredFile.DoesNotExist, ValueError):
        raise NotFound(f"file {file_id} not found") from None


def listing(*, user: Viewer) -> Any:
    """The user's files, newest first; files being deleted are hidden."""
    return access.visible(StoredFile.objects.exclude(status__in=[Status.DELETING, Status.DELETED]), user)


def downloadable(file_id: str, *, user: Viewer) -> StoredFile:
    """The user's file, once its bytes are at their key (stored, or being processed); FileBusy before."""
    row = get_for(file_id, user=user)
    if row.status not in (Status.STORED, Status.PROCESSING):
        raise FileBusy(f"file {row.id} is {row.status}; it can be downloaded once stored", extra={"status": [row.status]})
    return row


def download_path(file_id: str) -> str:
    return reverse("file-download", args=[file_id])


def jobs_of(row: StoredFile) -> Any:
    """The upload, process and delete jobs of a file that retention has not removed yet."""
    return Job.objects.filter(group_ref=row.id).order_by("created_at")


# -- receiving an upload ------------------------------------------------------------------------


def clean_name(name: str) -> str:
    """The client's file name without path components or control characters, at most 255 characters."""
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in unicodedata.normalize("NFC", base) if unicodedata.category(c)[0] != "C").strip()
    return base[:NAME_MAX] or "file"


def refuse_oversize(content_length: int | None) -> None:
    """FileTooLarge (413) from the request's declared length, before its body is read."""
    limit = settings.FILES_MAX_BYTES
    if content_length is not None and content_length > limit + 64 * 1024:  # room for the multipart envelope
        raise FileTooLarge(f"the upload is over the limit of {limit} bytes", extra={"file": [f"at most {limit} bytes"], "limit": limit})


def _checked(upload: IO[bytes] | None, memo_id: str | None) -> tuple[IO[bytes], uuid.UUID | None]:
    if upload is None:
        raise FileInputError("no file in the request", extra={"file": ["send the file as the multipart field `file`"]})
    size = getattr(upload, "size", None)
    limit = settings.FILES_MAX_BYTES
    if size is not None and size > limit:
        raise FileTooLarge(f"the file is {size} bytes, over the limit of {limit}", extra={"file": [f"at most {limit} bytes"], "limit": limit})
    if size == 0:
        raise FileInputError("the file is empty", extra={"file": ["the file is empty"]})
    memo: uuid.UUID | None = None
    if memo_id not in (None, ""):
        try:
            memo = uuid.UUID(str(memo_id))
        except ValueError:
            raise FileInputError("memoId is not a UUID", extra={"memoId": ["must be a UUID"]}) from None
    return upload, memo


def _receive(owner: User, upload: IO[bytes] | None, memo_id: str | None, *, staged: bool) -> StoredFile:
    upload, memo = _checked(upload, memo_id)
    digest = storage.digest(upload)
    if digest.size == 0:
        raise FileInputError("the file is empty", extra={"file": ["the file is empty"]})
    name = clean_name(getattr(upload, "name", "") or "file")
    row = StoredFile(
        owner=owner, original_name=name, safe_name=sources.safe_filename(name, fallback="file"), size=digest.size,
        content_type=digest.content_type, sha256=digest.sha256, memo_id=memo, status=Status.STAGED if staged else Status.STORED,
    )
    with sources.request_errors(field="file", invalid=FileInputError):
        if staged:
            row.key = storage.stage(row.id, upload, content_type=row.content_type)
        else:
            row.key = storage.save(final_key(row), upload, content_type=row.content_type)
    return row


def final_key(row: StoredFile, name: str | None = None) -> str:
    return f"{storage.PREFIX}{row.id}/{name or row.safe_name}"


def upload_async(*, owner: User, upload: IO[bytes] | None, memo_id: str | None = None) -> tuple[StoredFile, Job]:
    """Stage the bytes and enqueue the file-upload job that stores them (seed 3's upload-async)."""
    row = _receive(owner, upload, memo_id, staged=True)
    with transaction.atomic():
        row.save(force_insert=True)
        job, _ = job_services.enqueue(JobSpec(type=UPLOAD, payload={"fileId": row.id}, owner=owner, group_ref=row.id))
    return row, job


def upload(*, owner: User, upload: IO[bytes] | None, memo_id: str | None = None) -> StoredFile:
    """Store the bytes before answering (seed 3's synchronous upload)."""
    row = _receive(owner, upload, memo_id, staged=False)
    row.save(force_insert=True)
    return row


def upload_result(row: StoredFile) -> dict[str, Any]:
    """Seed 3's body for a stored file: {success, fileId, filename, url}."""
    return {"success": True, "fileId": row.id, "filename": row.original_name, "url": download_path(row.id)}


# -- the file-upload job ------------------------------------------------------------------------


def _row_for_job(file_id: str) -> StoredFile | None:
    return StoredFile.objects.filter(pk=file_id).first()


def store_staged(ctx: JobContext, *, file_id: str) -> dict[str, Any]:
    """Worker side: copy the staged bytes to their final key, checking size and checksum; mark the file stored."""
    row = _row_for_job(file_id)
    if row is None or row.status in (Status.DELETING, Status.DELETED):
        raise PermanentError(f"file {file_id} was deleted before it was stored", kind=ErrorKind.VALIDATION)
    if row.status == Status.STORED:  # a retry after the commit below: done already
        return upload_result(row)
    staged = row.key
    key = final_key(row)
    progress = lambda n: ctx.progress(_tenths(80 * n / max(row.size, 1)), "verifying")  # noqa: E731
    with sources.job_errors("staged upload"), storage.staged_file(staged, on_chunk=progress) as (tmp, found):
        if (found.size, found.sha256) != (row.size, row.sha256):
            raise PermanentError(
                f"the staged bytes do not match the upload (size {found.size} vs {row.size}, sha256 {found.sha256[:12]} vs {row.sha256[:12]})",
                kind=ErrorKind.VALIDATION,
            )
        storage.save(key, tmp, content_type=row.content_type, replace=ctx.attempt > 1)  # the bytes just verified against the row
    moved = StoredFile.objects.filter(pk=row.pk, status=Status.STAGED).update(key=key, status=Status.STORED, updated_at=timezone.now())
    if not moved:  # deleted meanwhile: its delete job removes the staged object; this copy is ours to remove
        _remove_quietly(key)
        raise PermanentError(f"file {file_id} was deleted while it was stored", kind=ErrorKind.VALIDATION)
    _remove_quietly(staged)
    ctx.progress(100, "stored")
    row.refresh_from_db()
    return upload_result(row)


def _tenths(percent: float) -> int:
    """Progress in steps of 10: a large file reports ten times, not once per megabyte."""
    return int(percent // 10 * 10)


def _remove_quietly(key: str) -> None:
    """Remove an object that is no longer needed; if storage fails now, the sweep removes it later."""
    try:
        storage.remove(key)
    except sources.SourceError as exc:
        log.warning("could not remove %s now (the sweep will): %s", key, exc.message)


# -- processing ---------------------------------------------------------------------------------


def request_processing(*, file_id: str, operation: str, user: Viewer) -> tuple[StoredFile, Job]:
    """Check that the operation fits the file, mark it processing and enqueue the file-process job."""
    row = get_for(file_id, user=user)
    if operation not in OPERATIONS:
        raise FileInputError("unknown operation", extra={"operation": [f"must be one of {', '.join(OPERATIONS)}"]})
    if not storage.is_media(row.content_type):
        raise FileInputError(
            f"{operation} needs audio or video; this file is {row.content_type}",
            extra={"operation": [f"{operation} does not apply to {row.content_type}"]},
        )
    with transaction.atomic():
        if not StoredFile.objects.filter(pk=row.pk, status=Status.STORED).update(status=Status.PROCESSING, updated_at=timezone.now()):
            raise FileBusy(f"file {row.id} is {row.status}, not stored", extra={"status": [row.status]})
        job, _ = job_services.enqueue(JobSpec(type=PROCESS, payload={"fileId": row.id, "operation": operation}, owner=row.owner, group_ref=row.id))
    row.refresh_from_db()
    return row, job


def process(ctx: JobContext, *, file_id: str, operation: str) -> dict[str, Any]:
    """Worker side: run one operation on a stored file; the file is `stored` again afterwards."""
    row = _row_for_job(file_id)
    if row is None or row.status != Status.PROCESSING:
        raise PermanentError(f"file {file_id} is not waiting to be processed", kind=ErrorKind.VALIDATION)
    try:
        if operation == "transcribe":
            result = _transcribe(row)
        else:
            with tempfile.TemporaryDirectory(prefix="file-process-") as tmp:
                local = Path(tmp) / ("in" + Path(row.safe_name).suffix)
                with sources.job_errors("file"), local.open("wb") as out:
                    storage.copy_to_temp(row.key, out, on_chunk=lambda n: ctx.progress(_tenths(40 * n / max(row.size, 1)), "downloading"))
                ctx.progress(40, operation)
                result = media.probe(local) if operation == "analyze" else _compress(ctx, row, local, Path(tmp))
    except media.ToolMissing as exc:
        raise JobError(str(exc), kind=ErrorKind.TRANSIENT) from exc  # another worker may have it
    except media.MediaError as exc:
        raise PermanentError(f"{operation}: {exc}", kind=ErrorKind.VALIDATION) from exc
    results = {**StoredFile.objects.get(pk=row.pk).results, operation: result}
    StoredFile.objects.filter(pk=row.pk).update(results=results, status=Status.STORED, failed_reason="", updated_at=timezone.now())
    ctx.progress(100, "done")
    return {"success": True, "fileId": row.id, "operation": operation, "result": result}


def _compress(ctx: JobContext, row: StoredFile, local: Path, tmp: Path) -> dict[str, Any]:
    out = media.to_opus(local, tmp / "out.opus")
    info = media.probe(out)  # verified: ffprobe reads Opus audio back
    if info["codec"] != "opus":
        raise media.MediaError(f"the re-encoded file holds {info['codec']}, not opus")
    ctx.progress(80, "storing")
    with out.open("rb") as fh:
        digest = storage.digest(fh)
        key = final_key(row, f"{Path(row.safe_name).stem or 'file'}.opus")
        if key == row.key:
            key = final_key(row, f"{Path(row.safe_name).stem or 'file'}.{uuid.uuid4().hex[:6]}.opus")
        with sources.job_errors("compressed file"):
            storage.save(key, fh, content_type="audio/ogg", replace=ctx.attempt > 1)  # bytes ffprobe just read back
    StoredFile.objects.filter(pk=row.pk).update(key=key, size=digest.size, sha256=digest.sha256, content_type="audio/ogg")
    _remove_quietly(row.key)  # only now: the new object is stored, verified and the row points at it
    return {
        "originalSize": row.size, "size": digest.size, "ratio": round(digest.size / max(row.size, 1), 4),
        "codec": "opus", "bitRate": info["bitRate"], "durationSeconds": info["durationSeconds"], "originalSha256": row.sha256,
        "originalContentType": row.content_type,
    }


def _transcribe(row: StoredFile) -> dict[str, Any]:
    from transcription import services as transcription

    with transaction.atomic():
        tr, job = transcription.request_transcription(owner=row.owner, audio_url=row.key)
        tr.source_name = row.original_name
        tr.save(update_fields=["source_name"])
        StoredFile.objects.filter(pk=row.pk).update(transcription=tr)
    return {"transcriptionId": tr.id, "jobId": job.id, "url": reverse("transcription", args=[tr.id])}


# -- deleting -----------------------------------------------------------------------------------


def request_delete(*, file_id: str, user: Viewer) -> tuple[StoredFile, Job]:
    """Hide the file at once (`deleting`) and enqueue the file-delete job that removes object and row."""
    row = get_for(file_id, user=user)
    with transaction.atomic():
        deletable = [Status.STORED, Status.STAGED, Status.FAILED]
        if not StoredFile.objects.filter(pk=row.pk, status__in=deletable).update(status=Status.DELETING, updated_at=timezone.now()):
            raise FileBusy(f"file {row.id} is {row.status}; wait until it is stored", extra={"status": [row.status]})
        job, _ = job_services.enqueue(JobSpec(type=DELETE, payload={"fileId": row.id}, owner=row.owner, group_ref=row.id))
    return row, job


def delete(ctx: JobContext, *, file_id: str) -> dict[str, Any]:
    """Worker side: remove the object (a storage that fails is TRANSIENT: retried), then the row."""
    row = _row_for_job(file_id)
    if row is None:
        return {"success": True, "fileId": file_id, "deleted": True}
    with sources.job_errors("file"):
        storage.remove(row.key)
        if storage.present(row.key):
            raise JobError(f"{row.key} is still in storage", kind=ErrorKind.TRANSIENT)
    row.delete()
    ctx.progress(100, "deleted")
    return {"success": True, "fileId": file_id, "deleted": True}


def for_each(file_ids: Any, action: Any, **kwargs: Any) -> tuple[list[str], dict[str, str]]:
    """Run request_processing or request_delete per file (the console's actions): (done ids, {refused id: why})."""
    done: list[str] = []
    refused: dict[str, str] = {}
    for file_id in file_ids:
        try:
            action(file_id=file_id, **kwargs)
        except JobsError as exc:  # the file's own state: refused, not an error
            refused[file_id] = exc.message
        else:
            done.append(file_id)
    return done, refused


# -- the outcome hook ---------------------------------------------------------------------------


def record_outcome(change: JobChange) -> None:
    """The engine's hook: a file job that ended without success leaves its file in a state that says so."""
    if change.type not in (UPLOAD, PROCESS, DELETE) or change.event not in ("failed", "cancelled") or not change.group_ref:
        return
    reason = str(change.data.get("error") or change.event)[:5000]
    rows = StoredFile.objects.filter(pk=change.group_ref)
    if change.type == UPLOAD:
        rows.filter(status=Status.STAGED).update(status=Status.FAILED, failed_reason=reason, updated_at=timezone.now())
    elif change.type == PROCESS:
        rows.filter(status=Status.PROCESSING).update(status=Status.STORED, failed_reason=reason, updated_at=timezone.now())
    else:  # a delete that gave up: shown again, so that an operator sees it and can delete it again
        rows.filter(status=Status.DELETING).update(status=Status.STORED, failed_reason=reason, updated_at=timezone.now())


# -- the sweep ----------------------------------------------------------------------------------


@dataclass
class SweepReport:
    """Objects under files/ that no row names (orphans), and stored rows whose object is gone."""

    orphans: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    removed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"orphans": self.orphans, "missing": self.missing, "removed": self.removed}


def sweep(*, remove: bool = False, grace: float | None = None) -> SweepReport:
    """Compare storage under files/ (and FILES_STAGING_DIR on this machine) with the rows. Orphans
    older than `grace` seconds (an upload or a compress in flight writes its object before its row)
    are removed when `remove`; rows whose object is gone are marked failed."""
    grace = settings.FILES_SWEEP_GRACE if grace is None else grace
    report = SweepReport()
    with sources.job_errors("storage listing"):
        keys = set(storage.keys_under(storage.PREFIX))
        named = set(StoredFile.objects.values_list("key", flat=True))
        cutoff = timezone.now() - timedelta(seconds=grace)
        for key in sorted(keys - named):
            if storage.modified_at(key) > cutoff:
                continue
            report.orphans.append(key)
            if remove:
                storage.delete(key)
                report.removed += 1
        for key in sorted(set(storage.local_staged(cutoff.timestamp())) - named):  # FILES_STAGING_DIR on this machine
            report.orphans.append(key)
            if remove:
                storage.remove(key)
                report.removed += 1
    stored = StoredFile.objects.filter(status=Status.STORED, updated_at__lt=cutoff).exclude(key__in=keys)
    report.missing = list(stored.values_list("id", flat=True))
    if report.missing:
        stored.update(status=Status.FAILED, failed_reason="the object is missing from storage (found by the sweep)")
    if report.orphans or report.missing:
        log.warning("files sweep: %d orphans (%d removed), %d rows without an object", len(report.orphans), report.removed, len(report.missing))
    return report


__all__ = [
    "OPERATIONS", "SweepReport", "clean_name", "delete", "downloadable", "for_each", "download_path", "get_for", "jobs_of", "listing", "process", "record_outcome",
    "refuse_oversize", "request_delete", "request_processing", "store_staged", "sweep", "upload", "upload_async", "upload_result",
]
