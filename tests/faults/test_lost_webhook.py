"""A worker killed right after an AI job's completion commits, before its hooks run: the scheduler's sweep still
sends the job's webhook, once, and a second telling of the same change makes no second delivery."""
from __future__ import annotations

from typing import Any, Callable

import pytest
from django.conf import settings
from standardwebhooks import Webhook

from ai import services as ai_services
from ai.models import AiJob
from jobs.api.auth import create_api_key
from jobs.models import Job, JobEvent
from jobs.services import JobChange
from tests.ai.conftest import Receiver, receiver  # noqa: F401 (a fixture: a real HTTP receiver on loopback)
from tests.clients import bearer
from tests.faults.conftest import Fleet, main_db_url, wait_until
from webhooks.models import Delivery

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_a_worker_killed_before_its_hooks_still_leads_to_exactly_one_delivery(alice: Any, receiver: Receiver, fleet: Callable[..., Fleet], settings: Any) -> None:  # noqa: F811
    settings.WEBHOOKS_ALLOW_HTTP, settings.WEBHOOKS_ALLOWED_NETWORKS = True, ["127.0.0.0/8"]
    client = bearer(create_api_key(user=alice)[1])
    secret = client.post("/v1/webhooks", {"url": receiver.url}, format="json").json()["secret"]
    job_id = client.post("/v1/jobs/sentiment", {"text": "A wonderful result."}, format="json").json()["id"]
    env = {"DATABASE_URL": main_db_url(), "REDIS_URL": settings.REDIS_URL, "WEBHOOKS_ALLOW_HTTP": "true", "WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.0/8"}

    killed = fleet(**env, JOBS_FAULT_POINT="before-hooks:completed").worker("ai-jobs")
    assert killed.wait(120) == 137  # exited at the fault point: the completion is committed, its hooks never ran
    engine_job = Job.objects.get(group_ref=job_id)
    assert (engine_job.status, AiJob.objects.get(pk=job_id).status) == ("completed", "SUCCEEDED")
    assert not Delivery.objects.exists() and not JobEvent.objects.get(job_id=engine_job.id, to_status="completed").delivered

    rest = fleet(**env)
    rest.scheduler()  # its sweep finds the completion that nobody delivered
    rest.worker("webhooks")
    wait_until(lambda: Delivery.objects.filter(status="delivered").exists(), timeout=60, what=f"the webhook\n{rest.output()}")

    event = JobEvent.objects.get(job_id=engine_job.id, to_status="completed")
    change = JobChange(
        job_id=engine_job.id, queue="ai-jobs", type=engine_job.type, event="completed", status="completed",
        group_ref=job_id, owner_id=alice.pk, event_id=event.id,
    )
    ai_services.record_outcome(change)  # the same change told again (at least once): no second delivery
    assert Delivery.objects.count() == 1
    (got,) = receiver.received
    assert Webhook(secret).verify(got.body, got.headers)["data"]["id"] == job_id
