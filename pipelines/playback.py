"""A project's stored source media for the review panel's <audio>: streamed one byte range at a time
(transcription.ranged), or on S3 a redirect to a presigned URL, which answers ranges itself."""
from __future__ import annotations

import mimetypes

from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponseRedirect
from django.http.response import HttpResponseBase

from pipelines.exceptions import SourceMediaNotFound
from transcription import ranged, s3, sources


def media_response(request: HttpRequest, key: str) -> HttpResponseBase:
    """The stored object `key` as a 200, a 206 for one byte range, a 416 outside it, or on S3 a redirect to a presigned URL."""
    with sources.request_errors(field="source", invalid=SourceMediaNotFound):
        if s3.is_s3(default_storage):
            return HttpResponseRedirect(sources.url_for(key))
        with sources.translated(key):
            size = default_storage.size(key)
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        return ranged.ranged_response(request, key, size=size, content_type=content_type, disposition="inline")
