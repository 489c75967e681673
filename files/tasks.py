"""What seed 3's three file queues run."""
from __future__ import annotations

from typing import Any

from files import services
from jobs.tasks import JobContext, task


@task(services.UPLOAD, queue=services.UPLOAD)
def store_upload(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Move a staged upload into storage, checking size and checksum (payload: fileId)."""
    return services.store_staged(ctx, file_id=payload["fileId"])


@task(services.PROCESS, queue=services.PROCESS)
def process_file(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Transcribe, analyze or compress a stored file (payload: fileId, operation)."""
    return services.process(ctx, file_id=payload["fileId"], operation=payload["operation"])


@task(services.DELETE, queue=services.DELETE)
def delete_file(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Remove a file's object, then its row (payload: fileId)."""
    return services.delete(ctx, file_id=payload["fileId"])


@task("file-sweep", queue=services.DELETE)
def sweep_files(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Find objects under files/ without a row (removed when payload.remove) and rows without an object."""
    return services.sweep(remove=bool(payload.get("remove", True))).as_dict()
