"""Reads of the webhooks app: an owner's endpoints and their deliveries (each program sees its own owner's only)."""
from __future__ import annotations

from typing import Any

from jobs.access import Viewer, account
from jobs.exceptions import NotFound
from webhooks.models import Endpoint


def endpoints(*, user: Viewer) -> Any:
    """The caller's endpoints, newest first (deleted ones are gone); an operator's key sees its own too, not everyone's."""
    return Endpoint.objects.filter(owner=account(user), deleted_at__isnull=True).order_by("-created_at")


def endpoint(endpoint_id: str, *, user: Viewer) -> Endpoint:
    found = endpoints(user=user).filter(pk=endpoint_id).first()
    if found is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return found


def deliveries(endpoint_id: str, *, user: Viewer) -> Any:
    return endpoint(endpoint_id, user=user).deliveries.order_by("-created_at").prefetch_related("attempts")
