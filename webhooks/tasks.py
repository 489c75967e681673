"""What the `webhooks` queue runs."""
from __future__ import annotations

from typing import Any

from jobs.tasks import JobContext, task
from webhooks import services


@task(services.DELIVER, queue=services.QUEUE)
def deliver_webhook(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """POST one signed delivery (payload: deliveryId)."""
    return services.deliver(ctx, delivery_id=payload["deliveryId"])
