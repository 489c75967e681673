"""Signed webhooks to a real HTTP server on loopback: signature, retry after 503 and 429, dead letter, redelivery, SSRF."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any, Callable

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from ai.models import AiJob
from jobs.api.auth import create_api_key
from jobs.engine import scheduler
from jobs.models import DeadLetter, Job
from tests.ai.conftest import Receiver
from tests.clients import bearer
from tests.jobs.engine_support import make_due
from webhooks import net, services
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(alice: Any) -> APIClient:
    return bearer(create_api_key(user=alice)[1])


def register(client: APIClient, url: str, **body: Any) -> dict[str, Any]:
    answer = client.post("/v1/webhooks", {"url": url, **body}, format="json")
    assert answer.status_code == 201, answer.content
    return dict(answer.json())


def verify_by_hand(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What the README shows a receiver doing, without the library."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body.decode()}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s.split(",", 1)[1]) for s in headers["webhook-signature"].split())


def test_a_succeeded_job_is_delivered_signed_to_the_registered_endpoint(client: APIClient, receiver: Receiver, drain_ai: Callable[[], None]) -> None:
    endpoint = register(client, receiver.url, events=["job.succeeded"])
    assert endpoint["secret"].startswith("whsec_") and client.get("/v1/webhooks").json()["results"][0].get("secret") is None
    job = client.post("/v1/jobs/sentiment", {"text": "What a lovely day!"}, format="json").json()
    drain_ai()
    assert len(receiver.received) == 1
    got = receiver.received[0]
    payload = Webhook(endpoint["secret"]).verify(got.body, got.headers)
    assert verify_by_hand(endpoint["secret"], got.headers, got.body)
    assert not verify_by_hand(services.rotate_secret(owner=AiJob.objects.get().owner), got.headers, got.body)  # another secret does not verify
    assert payload["type"] == "job.succeeded" and payload["data"]["id"] == job["id"] and payload["data"]["status"] == "SUCCEEDED"
    assert payload["data"] == client.get(f"/v1/jobs/{job['id']}").json()
    deliveries = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries").json()["results"]
    assert [(d["id"], d["status"], [a["statusCode"] for a in d["attempts"]]) for d in deliveries] == [(got.headers["webhook-id"], "delivered", [200])]


def test_a_jobs_own_webhook_url_is_signed_with_the_owners_secret(client: APIClient, receiver: Receiver, drain_ai: Callable[[], None]) -> None:
    secret = client.post("/v1/webhooks/secret").json()["secret"]
    client.post("/v1/jobs/extract", {"text": "Mail me at a@example.org.", "webhookUrl": receiver.url}, format="json")
    drain_ai()
    (got,) = receiver.received
    assert Webhook(secret).verify(got.body, got.headers)["type"] == "job.succeeded"


def test_a_failed_job_sends_job_failed(client: APIClient, receiver: Receiver, drain_ai: Callable[[], None], settings: Any) -> None:
    settings.AI_PROVIDER_URL = ""
    register(client, receiver.url)
    client.post("/v1/jobs/translate", {"text": "Hello.", "targetLanguage": "de"}, format="json")
    drain_ai()
    (got,) = receiver.received
    body = json.loads(got.body)
    assert body["type"] == "job.failed" and body["data"]["status"] == "FAILED" and "AI_PROVIDER_URL" in body["data"]["error"]


def _one_delivery_job() -> Job:
    return Job.objects.filter(type=services.DELIVER).order_by("-created_at").first()  # type: ignore[return-value]


def test_retry_after_503_then_delivered_with_the_same_webhook_id(client: APIClient, receiver: Receiver, burst: Callable[..., Any]) -> None:
    register(client, receiver.url)
    receiver.script = [(503, {}), (429, {"Retry-After": "30"})]
    client.post("/v1/jobs/sentiment", {"text": "fine"}, format="json")
    burst("ai-jobs")
    burst("webhooks")
    job = _one_delivery_job()
    assert (job.status, job.attempts_made) == ("delayed", 1)
    make_due(job.id)
    scheduler.promote_due()
    burst("webhooks")
    job.refresh_from_db()
    delay = (job.run_at - job.updated_at).total_seconds() if job.run_at else 0
    assert job.status == "delayed" and 29 <= delay <= 31  # the receiver's Retry-After, longer than the 4 s backoff
    make_due(job.id)
    scheduler.promote_due()
    burst("webhooks")
    job.refresh_from_db()
    assert job.status == "completed"
    assert [r.headers["webhook-id"] for r in receiver.received] == [Delivery.objects.get().id] * 3
    assert [a.status_code for a in Delivery.objects.get().attempts.all()] == [503, 429, 200]


def test_after_five_failures_the_delivery_is_dead_and_an_operator_redelivers_it(client: APIClient, receiver: Receiver, burst: Callable[..., Any], admin_client: Any) -> None:
    register(client, receiver.url)
    receiver.script = [(500, {})] * 5
    client.post("/v1/jobs/sentiment", {"text": "fine"}, format="json")
    burst("ai-jobs")
    burst("webhooks")
    for _ in range(4):
        job = _one_delivery_job()
        make_due(job.id)
        scheduler.promote_due()
        burst("webhooks")
    job = _one_delivery_job()
    delivery = Delivery.objects.get()
    assert (job.status, job.attempts_made, delivery.status, delivery.attempts.count()) == ("failed", 5, "failed", 5)
    assert DeadLetter.objects.filter(job_id=job.id).exists()

    # The admin escapes "_" in ids (a delivery's `msg_2f…` would read as `msg/…` unquoted): its own quote().
    page = admin_client.get(reverse("admin:webhooks_delivery_change", args=[quote(delivery.id)]))
    assert page.status_code == 200 and page.content.count(b"field-status_code") == 5  # every attempt shown
    answer = admin_client.post("/admin/webhooks/delivery/", {"action": "redeliver", "_selected_action": [delivery.id]})
    assert answer.status_code == 302
    burst("webhooks")
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and [a.status_code for a in delivery.attempts.all()][-1] == 200
    assert receiver.received[-1].headers["webhook-id"] == delivery.id
    assert DeadLetter.objects.get(job_id=job.id).resolution == "retried"  # the letter is resolved, not left open


def test_a_4xx_answer_is_not_retried(client: APIClient, receiver: Receiver, burst: Callable[..., Any]) -> None:
    register(client, receiver.url)
    receiver.script = [(410, {})]
    client.post("/v1/jobs/sentiment", {"text": "fine"}, format="json")
    burst("ai-jobs")
    burst("webhooks")
    job = _one_delivery_job()
    assert (job.status, job.attempts_made, Delivery.objects.get().status) == ("failed", 1, "failed")


def test_a_change_told_twice_makes_one_delivery(client: APIClient, receiver: Receiver, drain_ai: Callable[[], None]) -> None:
    from ai import services as ai_services
    from jobs.engine.hooks import JobChange

    register(client, receiver.url)
    client.post("/v1/jobs/sentiment", {"text": "fine"}, format="json")
    drain_ai()
    job = Job.objects.get(queue="ai-jobs")
    event = job.events.filter(to_status="completed").get()
    again = JobChange(job_id=job.id, queue=job.queue, type=job.type, event="completed", status="completed", group_ref=job.group_ref, owner_id=job.owner_id, event_id=event.id)
    ai_services.record_outcome(again)  # the outbox delivering the same change again
    drain_ai()
    assert Delivery.objects.count() == 1 and len(receiver.received) == 1


@pytest.mark.parametrize(
    "url",
    ["http://10.1.2.3/hook", "http://192.168.0.1/hook", "http://169.254.169.254/latest/meta-data", "http://[::1]:8080/hook",
     "http://user:pw@example.org/hook", "file:///etc/passwd", "gopher://example.org/", "http://0.0.0.0/hook"],
)
def test_ssrf_refused_at_registration(client: APIClient, url: str) -> None:
    answer = client.post("/v1/webhooks", {"url": url}, format="json")
    assert answer.status_code == 400 and "url" in answer.json()["extra"], answer.content


def test_loopback_and_plain_http_are_refused_outside_test_settings(client: APIClient, settings: Any, receiver: Receiver) -> None:
    settings.WEBHOOKS_ALLOW_HTTP = False
    assert client.post("/v1/webhooks", {"url": receiver.url}, format="json").json()["extra"]["url"] == ["webhook URLs must use https"]
    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOWED_NETWORKS = []
    assert "inside the network" in client.post("/v1/webhooks", {"url": receiver.url}, format="json").json()["message"]


def test_the_check_runs_again_at_connect_time(client: APIClient, settings: Any, receiver: Receiver, burst: Callable[..., Any]) -> None:
    register(client, receiver.url)  # allowed when registered
    settings.WEBHOOKS_ALLOWED_NETWORKS = []  # no longer: as if its name now resolved to an inside address
    client.post("/v1/jobs/sentiment", {"text": "fine"}, format="json")
    burst("ai-jobs")
    burst("webhooks")
    job = _one_delivery_job()
    assert (job.status, job.error_kind, receiver.received) == ("failed", "VALIDATION", [])
    with pytest.raises(net.Refused):
        net.post(receiver.url, b"{}", {}, timeout=1)


def test_redirects_are_not_followed(client: APIClient, receiver: Receiver, burst: Callable[..., Any]) -> None:
    register(client, receiver.url)
    receiver.script = [(302, {"Location": "http://169.254.169.254/"})]
    client.post("/v1/jobs/sentiment", {"text": "fine"}, format="json")
    burst("ai-jobs")
    burst("webhooks")
    assert (_one_delivery_job().status, len(receiver.received)) == ("failed", 1)


def test_endpoints_are_the_owners_only(client: APIClient, bob: Any, receiver: Receiver) -> None:
    endpoint = register(client, receiver.url)
    as_bob = bearer(create_api_key(user=bob)[1])
    assert as_bob.get(f"/v1/webhooks/{endpoint['id']}").status_code == 404
    assert as_bob.delete(f"/v1/webhooks/{endpoint['id']}").status_code == 404
    assert as_bob.get(f"/v1/webhooks/{endpoint['id']}/deliveries").status_code == 404
    assert APIClient().get("/v1/webhooks").status_code == 401
    assert client.delete(f"/v1/webhooks/{endpoint['id']}").status_code == 204
    assert client.get(f"/v1/webhooks/{endpoint['id']}").status_code == 404


def test_a_receiver_that_does_not_answer_in_time_is_retried_as_a_timeout(client: APIClient, receiver: Receiver, burst: Callable[..., Any], settings: Any) -> None:
    register(client, receiver.url)
    settings.WEBHOOKS_TIMEOUT = 0.3
    receiver.delay = 1.0
    client.post("/v1/jobs/sentiment", {"text": "fine"}, format="json")
    burst("ai-jobs")
    burst("webhooks")
    job = _one_delivery_job()
    (attempt,) = Delivery.objects.get().attempts.all()
    assert (job.status, job.error_kind, attempt.status_code) == ("delayed", "TIMEOUT", None) and "no answer within 0.3s" in attempt.error


def test_a_deleted_endpoint_is_sent_nothing_more(client: APIClient, receiver: Receiver, burst: Callable[..., Any]) -> None:
    endpoint = register(client, receiver.url)
    client.post("/v1/jobs/sentiment", {"text": "fine"}, format="json")
    burst("ai-jobs")  # the delivery is queued
    assert client.delete(f"/v1/webhooks/{endpoint['id']}").status_code == 204
    burst("webhooks")
    delivery = Delivery.objects.get()
    assert (delivery.status, receiver.received, delivery.attempts.get().error) == ("failed", [], "the endpoint was deleted")
    client.post("/v1/jobs/sentiment", {"text": "later"}, format="json")
    burst("ai-jobs")
    assert Delivery.objects.count() == 1  # no delivery is made for it any more


@pytest.mark.parametrize(
    "address",
    ["2002:a9fe:a9fe::1", "2001:0:4136:e378:8000:63bf:f5ff:fffe", "fec0::1", "::ffff:169.254.169.254", "100.64.0.1", "::"],
)
def test_addresses_that_wrap_or_hide_inside_ones_are_refused(address: str) -> None:
    import ipaddress

    assert not net.allowed_address(ipaddress.ip_address(address))


def test_allowed_networks_with_host_bits_and_urls_that_cannot_be_sent(client: APIClient, settings: Any, receiver: Receiver) -> None:
    from config.env import read_env

    assert read_env({"WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.9/8"}).webhooks_allowed_networks == ["127.0.0.0/8"]
    assert client.post("/v1/webhooks", {"url": receiver.url + "/caf\u00e9"}, format="json").status_code == 400
    assert client.post("/v1/webhooks", {"url": "http://127.0.0.1:0/hook"}, format="json").status_code == 400


def test_a_receiver_that_answers_a_byte_at_a_time_is_cut_off_when_the_attempt_time_is_up(settings: Any) -> None:
    """The timeout bounds the whole attempt, not each read."""
    import socket
    import threading
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    stop = threading.Event()

    def drip() -> None:
        peer, _ = server.accept()
        peer.recv(65536)
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 1000:
            if stop.is_set():
                break
            try:
                peer.send(bytes([byte]))
            except OSError:
                break
            time.sleep(0.05)  # each read gets a byte well within the timeout
        peer.close()

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(net.Unreachable) as caught:
            net.post(f"http://127.0.0.1:{server.getsockname()[1]}/hook", b"{}", {}, timeout=0.6)
    finally:
        stop.set()
        server.close()
    assert caught.value.timeout and "within 0.6s" in str(caught.value) and time.monotonic() - started < 2
