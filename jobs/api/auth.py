"""API keys: created once, stored as SHA-256, sent as `Authorization: Bearer <key>`."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any, Iterable

from django.db import transaction
from django.utils import timezone
from rest_framework import authentication, exceptions

from jobs.engine import audit
from jobs.access import User, Viewer
from jobs.models import ApiKey

PREFIX = "jc_"
#: How fresh `last_used_at` is kept.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_api_key(*, user: User, name: str = "default") -> tuple[ApiKey, str]:
    """Make a key for `user`; returns the row and the raw key, which is never stored or shown again."""
    raw = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(user=user, name=name, prefix=raw[:10], key_hash=hash_key(raw))
    return key, raw


def revoke_api_keys(key_ids: Iterable[int], *, actor: Viewer | None = None, source: str = "admin") -> int:
    """Revoke keys that are still active (audited); returns how many were revoked."""
    ids = list(key_ids)
    with transaction.atomic():
        n = ApiKey.objects.filter(pk__in=ids, revoked_at__isnull=True).update(revoked_at=timezone.now())
        audit.record(actor=actor, action="revoke_api_key", detail={"api_key_ids": ids, "revoked": n}, source=source)
    return n


def user_for_key(raw: str) -> Any:
    """The active account behind an active key, or None."""
    key = key_for(raw)
    return None if key is None else key.user


def key_for(raw: str) -> ApiKey | None:
    """The active key `raw` with its active account (select_related), or None; marks it used."""
    try:
        key = ApiKey.objects.select_related("user").get(key_hash=hash_key(raw), revoked_at__isnull=True)
    except ApiKey.DoesNotExist:
        return None
    if not key.user.is_active:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        # Not on every request: a client polling a job would write this row many times a second.
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def request_key(request: Any) -> ApiKey | None:
    """The API key a request came with (ApiKeyAuthentication's `request.auth`), or None (a session, or no one)."""
    return request.auth if isinstance(request.auth, ApiKey) else None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """DRF authentication by bearer API key; answers 401 with a WWW-Authenticate header."""

    keyword = "Bearer"

    def authenticate(self, request: Any) -> tuple[Any, ApiKey] | None:
        """(the key's account, the key): views that meter per key read `request.auth`."""
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <api key>'")
        key = key_for(header[1].decode(errors="replace"))
        if key is None:
            raise exceptions.AuthenticationFailed("invalid or revoked API key")
        return key.user, key

    def authenticate_header(self, request: Any) -> str:
        return self.keyword
