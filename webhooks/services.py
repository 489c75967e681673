"""Webhooks for every product: endpoints, signed deliveries on the `webhooks` queue, redelivery.

A product calls `send()` from its durable hook (jobs.engine.outbox delivers each job change at
least once): `send` makes at most one Delivery per (event, URL) through its `dedupe_key`, and
enqueues its `webhook-deliver` job in the same transaction. The job POSTs the payload signed by
the Standard Webhooks scheme (`webhook-id` = the delivery's id on every attempt,
`webhook-timestamp`, `webhook-signature: v1,<HMAC-SHA256>`) and records every attempt. Timeouts,
connection errors, 5xx, 408 and 429 (after its Retry-After) are retried with the queue's backoff;
any other answer but 2xx is final. A delivery whose job gave up is `failed` and its job is in the
dead letters; `redeliver` sends it again under the same id.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone as dt_timezone
from typing import Any, Iterable

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from jobs import services as job_services
from jobs.access import User, Viewer
from jobs.exceptions import ErrorKind, JobError, PermanentError
from jobs.models import FINAL, Job
from jobs.services import JobChange, JobSpec
from jobs.tasks import JobContext
from webhooks import net, selectors
from webhooks.exceptions import WebhookUrlRefused
from webhooks.models import Attempt, Delivery, Endpoint, SigningSecret

log = logging.getLogger(__name__)

DELIVER = "webhook-deliver"
QUEUE = "webhooks"
EVENTS = ("job.succeeded", "job.failed", "job.cancelled")
MAX_ENDPOINTS = 20


# -- endpoints ----------------------------------------------------------------------------------


def checked_url(url: str, *, field: str = "url") -> str:
    """`url` if deliveries may go there now; WebhookUrlRefused (400) naming `field` otherwise."""
    try:
        net.check(url)
    except (net.Refused, net.Unreachable) as exc:
        raise WebhookUrlRefused(str(exc), extra={field: [str(exc)]}) from None
    return url


def register(*, owner: User, url: str, events: Iterable[str] | None = None, api_key: Any = None, description: str = "") -> Endpoint:
    """A new endpoint for the owner's events (all of EVENTS unless `events` says); its secret is on the row, shown once."""
    wanted = list(dict.fromkeys(events or EVENTS))
    unknown = [e for e in wanted if e not in EVENTS]
    if unknown or not wanted:
        raise WebhookUrlRefused("unknown events", extra={"events": [f"each one of {', '.join(EVENTS)}"]})
    checked_url(url)
    if Endpoint.objects.filter(owner=owner, deleted_at__isnull=True).count() >= MAX_ENDPOINTS:
        raise WebhookUrlRefused(f"at most {MAX_ENDPOINTS} endpoints per account", extra={"url": [f"delete one of your {MAX_ENDPOINTS} endpoints first"]})
    return Endpoint.objects.create(owner=owner, url=url, events=wanted, api_key=api_key, description=description[:200])


def delete(endpoint_id: str, *, user: Viewer) -> None:
    """Delete an endpoint: hidden at once, and its deliveries not yet made are never sent (they fail as deleted)."""
    row = selectors.endpoint(endpoint_id, user=user)
    Endpoint.objects.filter(pk=row.pk).update(deleted_at=timezone.now())


def has_secret(owner: User) -> bool:
    """Whether the owner has a secret for jobs' own webhookUrl (POST /v1/webhooks/secret)."""
    return SigningSecret.objects.filter(owner=owner).exists()


def rotate_secret(*, owner: User) -> str:
    """A new secret for deliveries to URLs given with a job (the owner's `SigningSecret`); shown once."""
    row, _ = SigningSecret.objects.get_or_create(owner=owner)
    row.secret = SigningSecret._meta.get_field("secret").get_default()
    row.save(update_fields=["secret", "created_at"])
    return row.secret


def _secret_for(delivery: Delivery) -> str:
    """The endpoint's secret, or the owner's for a job's own URL; never one made here, which nobody was shown."""
    if delivery.endpoint is not None:
        return delivery.endpoint.secret
    row = SigningSecret.objects.filter(owner_id=delivery.owner_id).first()
    if row is None:
        raise PermanentError("no signing secret: the owner never created one (POST /v1/webhooks/secret)", kind=ErrorKind.VALIDATION)
    return row.secret


# -- sending ------------------------------------------------------------------------------------


def body(event: str, data: dict[str, Any], *, at: datetime | None = None) -> dict[str, Any]:
    """A Standard Webhooks payload: `{type, timestamp, data}`."""
    return {"type": event, "timestamp": (at or timezone.now()).isoformat().replace("+00:00", "Z"), "data": data}


def send(*, event: str, data: dict[str, Any], owner_id: int, source: str, api_key_id: int | None = None, url: str | None = None) -> list[Delivery]:
    """Queue `event` for the owner's endpoints that want it (those of `api_key_id` or of no key) and for `url`.

    `source` names what happened (e.g. `ai:<job id>:succeeded`): called again for the same source,
    it makes no second delivery. Returns the deliveries made now.
    """
    targets: list[tuple[Endpoint | None, str]] = [
        (ep, ep.url) for ep in Endpoint.objects.filter(owner_id=owner_id, deleted_at__isnull=True).order_by("created_at")
        if event in ep.events and ep.api_key_id in (None, api_key_id)
    ]
    if url and url not in {u for _, u in targets}:
        targets.append((None, url))
    made: list[Delivery] = []
    payload = body(event, data)
    with transaction.atomic():
        for ep, target in targets:
            row, created = Delivery.objects.get_or_create(
                dedupe_key=f"{source}|{ep.pk if ep else target}"[:300],
                defaults=dict(owner_id=owner_id, endpoint=ep, url=target, event=event, payload=payload),
            )
            if created:
                _enqueue(row)
                made.append(row)
    return made


def _enqueue(row: Delivery) -> None:
    job, _ = job_services.enqueue(JobSpec(type=DELIVER, payload={"deliveryId": row.id}, owner=row.owner, group_ref=row.id))
    Delivery.objects.filter(pk=row.pk).update(job_id=job.id)


def redeliver(ids: Iterable[str], *, actor: Viewer | None, source: str = "admin") -> int:
    """Send deliveries again under their own ids, with fresh attempts; audited. Returns how many go out again.

    A delivery whose job is in the dead letters goes out through the letter's retry (which resolves
    it); one whose job ended otherwise gets a new job; one still on its way is left to it. The rows
    are locked throughout, and every new job reaches Redis only after the commit.
    """
    again: list[str] = []
    with transaction.atomic():
        rows = list(Delivery.objects.select_for_update().filter(pk__in=list(ids)))
        jobs = dict(Job.objects.filter(pk__in=[r.job_id for r in rows if r.job_id]).values_list("id", "status"))
        retried, _ = job_services.retry_dead_letters([r.job_id for r in rows if r.job_id in jobs], actor=actor, source=source)
        for row in rows:
            if row.job_id in retried:  # the hook marks it pending when the new job is created
                Delivery.objects.filter(pk=row.pk).update(job_id=retried[row.job_id])
            elif row.job_id in jobs and jobs[row.job_id] not in FINAL:
                continue  # waiting, delayed or running: on its way already
            else:
                Delivery.objects.filter(pk=row.pk).update(status=Delivery.Status.PENDING, delivered_at=None)
                _enqueue(row)
            again.append(row.id)
        job_services.record_action(actor=actor, action="redeliver_webhooks", queue=QUEUE, detail={"delivery_ids": [r.id for r in rows], "sent_again": again}, source=source)
    return len(again)


def deliver(ctx: JobContext, *, delivery_id: str) -> dict[str, Any]:
    """Worker side: one signed POST of the delivery; raises to retry (or to give up) as the answer says."""
    row = Delivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if row is None:
        raise PermanentError(f"delivery {delivery_id} no longer exists", kind=ErrorKind.VALIDATION)
    if row.status == Delivery.Status.DELIVERED:
        return {"deliveryId": row.id, "status": row.last_status_code, "already": True}
    number = row.attempts.count() + 1
    if row.endpoint is not None and row.endpoint.deleted_at is not None:
        _attempt(row, number, error="the endpoint was deleted")
        raise PermanentError(f"endpoint {row.endpoint_id} was deleted; nothing sent", kind=ErrorKind.VALIDATION)
    data = json.dumps(row.payload, separators=(",", ":"), ensure_ascii=False)
    now = datetime.now(dt_timezone.utc)
    headers = {
        "Content-Type": "application/json", "User-Agent": "jobconsole-webhooks",
        "webhook-id": row.id, "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(_secret_for(row)).sign(row.id, now, data),
    }
    try:
        answer = net.post(row.url, data.encode(), headers, timeout=settings.WEBHOOKS_TIMEOUT)
    except net.Refused as exc:
        _attempt(row, number, error=str(exc))
        raise PermanentError(f"webhook URL refused: {exc}", kind=ErrorKind.VALIDATION) from exc
    except net.Unreachable as exc:
        _attempt(row, number, error=str(exc))
        raise JobError(f"webhook not delivered: {exc}", kind=ErrorKind.TIMEOUT if exc.timeout else ErrorKind.TRANSIENT) from exc
    except BaseException as exc:  # the job's timeout or a cancel, inside the call: the attempt still counts
        _attempt(row, number, error=f"interrupted: {type(exc).__name__}")
        raise
    _attempt(row, number, answer=answer)
    if 200 <= answer.status < 300:
        Delivery.objects.filter(pk=row.pk).update(status=Delivery.Status.DELIVERED, delivered_at=timezone.now())
        return {"deliveryId": row.id, "status": answer.status, "attempt": number}
    if answer.status in (408, 429) or answer.status >= 500:
        raise JobError(f"receiver answered {answer.status}", kind=ErrorKind.TRANSIENT, retry_after=answer.retry_after)
    raise PermanentError(f"receiver answered {answer.status}; not retried", kind=ErrorKind.VALIDATION)


def _attempt(row: Delivery, number: int, *, answer: net.Answer | None = None, error: str = "") -> None:
    Attempt.objects.create(
        delivery=row, number=number, status_code=answer.status if answer else None, latency_ms=answer.latency_ms if answer else 0,
        response_excerpt=answer.excerpt[:1000] if answer else "", error=error[:1000],
    )
    Delivery.objects.filter(pk=row.pk).update(last_status_code=answer.status if answer else None, last_error=error[:5000])


def record_outcome(change: JobChange) -> None:
    """The engine's hook: a delivery whose job gave up (or was cancelled) is `failed`; one run again is `pending`."""
    if change.type != DELIVER or not change.group_ref:
        return
    if change.event in ("failed", "cancelled"):
        Delivery.objects.filter(pk=change.group_ref, status=Delivery.Status.PENDING).update(status=Delivery.Status.FAILED)
    elif change.event in ("created", "retried"):  # a retry from the dead letters or the jobs console
        Delivery.objects.filter(pk=change.group_ref, status=Delivery.Status.FAILED).update(status=Delivery.Status.PENDING)


__all__ = ["DELIVER", "EVENTS", "QUEUE", "body", "checked_url", "delete", "deliver", "has_secret", "record_outcome", "redeliver", "register", "rotate_secret", "send"]
