"""Transcription reads."""
from __future__ import annotations


from django.core.files.storage import default_storage
from django.urls import reverse

from jobs import access
from jobs.access import Viewer
from jobs.exceptions import NotFound
from transcription import s3, sources
from transcription.models import Transcription


def get_for(transcription_id: str, *, user: Viewer) -> Transcription:
    """The user's transcription (jobs.access: an operator any); NotFound otherwise, so ids cannot be probed."""
    qs = access.visible(Transcription.objects.select_related("job"), user)
    try:
        return qs.get(pk=transcription_id)
    except Transcription.DoesNotExist:
        raise NotFound(f"transcription {transcription_id} not found") from None


def result_url(row: Transcription) -> str | None:
    """Where the client gets the transcript: a presigned storage URL on S3, else this API's result path."""
    if not row.result_key:
        return None
    if s3.is_s3(default_storage):
        return sources.url_for(row.result_key)
    return reverse("transcription-result", args=[row.id])


def result_text(row: Transcription) -> str:
    """The stored transcript; NotFound until the job has written it."""
    if not row.result_key:
        raise NotFound(f"transcription {row.id} has no result yet", extra={"status": [row.job.status if row.job else row.status]})
    with default_storage.open(row.result_key, "rb") as fh:
        return fh.read().decode("utf-8")
