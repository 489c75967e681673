"""The one module that speaks boto3/botocore: S3 reads through django-storages' S3Storage, errors made builtin.

Everything here goes through the storage backend's own connection (its bucket, endpoint, credentials
and the botocore Config of settings.STORAGES), so there is one S3 configuration. botocore's errors
stop at this boundary: callers see FileNotFoundError (no such object), PermissionError (refused,
permanent), ValueError (a key S3 will not take) and ConnectionError (timeouts, connection errors,
5xx and throttling after botocore's own retries: transient).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, BinaryIO, Iterator

from botocore import exceptions as boto_errors
from django.core.files.storage import Storage
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

CHUNK = 1024 * 1024
_MISSING_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
_TRANSIENT_CODES = {"RequestTimeout", "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "ServiceUnavailable", "InternalError"}


class TooLarge(Exception):
    """The object is bigger than the caller's limit; carries its size when known."""

    def __init__(self, size: int | None) -> None:
        super().__init__(f"object is larger than allowed ({size} bytes)" if size is not None else "object is larger than allowed")
        self.size = size


def is_s3(storage: Storage) -> bool:
    """Whether a storage is django-storages' S3 backend (or a subclass)."""
    return isinstance(storage, S3Storage)


def object_key(storage: S3Storage, name: str) -> str:
    """The S3 key of a storage name (the backend's own cleaning and location prefix)."""
    return str(storage._normalize_name(clean_name(name)))


def storage_name(storage: S3Storage, key: str) -> str | None:
    """The storage name of an S3 key in the storage's bucket, or None when it lies outside its location."""
    location = str(storage.location or "").strip("/")
    if not location:
        return key
    return key[len(location) + 1 :] if key.startswith(location + "/") else None


@contextmanager
def builtin_errors(what: str) -> Iterator[None]:
    """Turn botocore's errors inside the block into FileNotFoundError, PermissionError, ValueError or ConnectionError."""
    try:
        yield
    except boto_errors.ClientError as exc:
        error: dict[str, Any] = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _MISSING_CODES or status == 404:
            raise FileNotFoundError(f"{what}: no such object") from exc
        if status >= 500 or status in {408, 429} or code in _TRANSIENT_CODES:
            raise ConnectionError(f"{what}: storage answered {status or code}") from exc
        if status in {401, 403}:
            raise PermissionError(f"{what}: access denied by storage ({code or status})") from exc
        raise ValueError(f"{what}: storage refused the request ({code or status})") from exc
    except (boto_errors.NoCredentialsError, boto_errors.PartialCredentialsError) as exc:
        raise PermissionError(f"{what}: no storage credentials configured") from exc
    except boto_errors.ParamValidationError as exc:
        raise ValueError(f"{what}: {exc}") from exc
    except (boto_errors.ConnectionError, boto_errors.HTTPClientError, boto_errors.ResponseStreamingError) as exc:
        # ConnectTimeoutError, ReadTimeoutError, EndpointConnectionError, ConnectionClosedError, ...
        raise ConnectionError(f"{what}: {type(exc).__name__}: {exc}") from exc
    except boto_errors.BotoCoreError as exc:
        raise ConnectionError(f"{what}: {type(exc).__name__}: {exc}") from exc


def download(storage: S3Storage, name: str, out: BinaryIO, *, max_bytes: int) -> int:
    """Stream one object into `out` without holding it in memory; refuse past max_bytes; return the bytes written."""
    with builtin_errors(f"reading {name!r}"):
        response = storage.bucket.Object(object_key(storage, name)).get()
        body = response["Body"]
        try:
            length = response.get("ContentLength")
            if length is not None and length > max_bytes:
                raise TooLarge(int(length))
            written = 0
            for chunk in body.iter_chunks(CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise TooLarge(None)
                out.write(chunk)
            return written
        finally:
            body.close()


def create_bucket(storage: S3Storage) -> None:
    """Create the storage's bucket if it does not exist yet (tests, first deployment)."""
    with builtin_errors(f"creating bucket {storage.bucket_name!r}"):
        client = storage.connection.meta.client
        try:
            client.head_bucket(Bucket=storage.bucket_name)
        except boto_errors.ClientError as exc:
            if int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0) != 404:
                raise
            region = client.meta.region_name
            extra = {"CreateBucketConfiguration": {"LocationConstraint": region}} if region and region != "us-east-1" else {}
            client.create_bucket(Bucket=storage.bucket_name, **extra)
