"""Who may call what (API.md): owners see their own jobs, staff run queue-wide operations."""
from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, permissions

from jobs import access

#: `request.auth` when the caller presented settings.METRICS_TOKEN.
METRICS_TOKEN_AUTH = "metrics-token"


class NotReadOnly(permissions.BasePermission):
    """A read-only operator (jobs.access.is_read_only) reads and changes nothing: 403 on any other method.
    In every view's permissions (the DRF default, and IsStaff)."""

    message = "read-only operator: this account may view, not change"

    def has_permission(self, request: Any, view: Any) -> bool:
        return request.method in permissions.SAFE_METHODS or not access.is_read_only(request.user)


class IsStaff(permissions.BasePermission):
    """Operators (jobs.access) only: 401 without credentials (DRF's NotAuthenticated), 403 for a signed-in non-staff
    caller, and for a read-only operator's change."""

    message = "staff only"

    def has_permission(self, request: Any, view: Any) -> bool:
        if not access.is_operator(request.user):
            return False
        if not NotReadOnly().has_permission(request, view):
            self.message = NotReadOnly.message
            return False
        return True


class MetricsTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <settings.METRICS_TOKEN>` for Prometheus scrapers; anything else falls through to API keys."""

    def authenticate(self, request: Any) -> tuple[Any, str] | None:
        token = getattr(settings, "METRICS_TOKEN", "")
        if not token:
            return None
        header = authentication.get_authorization_header(request).split()
        if len(header) != 2 or header[0].lower() != b"bearer":
            return None
        if hmac.compare_digest(header[1], token.encode()):
            return AnonymousUser(), METRICS_TOKEN_AUTH
        return None

    def authenticate_header(self, request: Any) -> str:
        # Without a header value DRF would turn "no credentials" into 403; scrapers expect 401.
        return "Bearer"


class IsStaffOrMetricsToken(permissions.BasePermission):
    """Staff (session or API key), or a scraper holding the configured metrics token."""

    message = "staff or the metrics token only"

    def has_permission(self, request: Any, view: Any) -> bool:
        if request.auth == METRICS_TOKEN_AUTH:
            return True
        return IsStaff().has_permission(request, view)
