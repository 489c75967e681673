"""The admin console, through Django's test client on real PostgreSQL, Redis and a burst worker."""
from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs import services
from jobs.api import auth
from jobs.console import admin as jobs_admin
from jobs.engine import broker
from jobs.models import ApiKey, AuditEntry, DeadLetter, Job, QueueState, WorkerHeartbeat
from jobs.services import JobSpec

pytestmark = pytest.mark.django_db(transaction=True)

JOBS = reverse("admin:jobs_job_changelist")
LETTERS = reverse("admin:jobs_deadletter_changelist")
QUEUES = reverse("admin:jobs_queues")
COUNTS = reverse("admin:jobs_queues_counts")


def failed(burst: Any, n: int = 1, kind: str = "PERMANENT", **payload: Any) -> list[Job]:
    """Jobs that a real worker failed for good (so they are in the dead letters)."""
    jobs = [services.enqueue(JobSpec(type="fail", payload={"kind": kind, **payload}))[0] for _ in range(n)]
    burst()
    for job in jobs:
        job.refresh_from_db()
        assert job.status == "failed", (job.status, job.failed_reason)
    return jobs


def action(client: Client, url: str, name: str, ids: list[str], **extra: Any) -> Any:
    return client.post(url, {"action": name, "index": "0", "_selected_action": ids, **extra}, follow=True)


def shown(response: Any) -> set[str]:
    return {obj.pk for obj in response.context["cl"].result_list}


def today() -> str:
    """Midnight today, as the admin's date filter links write it."""
    return str(timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0))


def counts(client: Client) -> dict[str, Any]:
    return {q["name"]: q for q in client.get(COUNTS).json()["queues"]}


# -- access ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [JOBS, LETTERS, QUEUES, COUNTS, reverse("admin:jobs_auditentry_changelist")])
def test_anonymous_and_non_staff_are_sent_to_login(client: Client, django_user_model: Any, url: str) -> None:
    assert client.get(url).status_code == 302
    client.force_login(django_user_model.objects.create_user("plain", password="x"))
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_non_staff_cannot_pause(client: Client, django_user_model: Any) -> None:
    client.force_login(django_user_model.objects.create_user("plain", password="x"))
    client.post(reverse("admin:jobs_queues_pause", args=["default"]))
    assert not QueueState.objects.filter(paused=True).exists()
    assert broker.paused_queues() == set()


def test_staff_without_change_permission_sees_but_cannot_operate(client: Client, django_user_model: Any) -> None:
    user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_job", "view_deadletter"]))
    client.force_login(user)
    assert client.get(QUEUES).status_code == 200
    assert client.post(reverse("admin:jobs_queues_pause", args=["default"])).status_code == 403
    page = client.get(JOBS)
    assert page.status_code == 200
    assert "retry_jobs" not in page.content.decode()


def test_pause_needs_csrf_token(admin_user: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(reverse("admin:jobs_queues_pause", args=["default"])).status_code == 403
    assert not QueueState.objects.filter(paused=True).exists()


def test_index_and_app_index_link_the_queues_page(admin_client: Client) -> None:
    assert QUEUES == "/admin/jobs/queues/"  # the address the README and `make run` print
    assert admin_client.get(QUEUES).status_code == 200
    for url in (reverse("admin:index"), reverse("admin:app_list", args=["jobs"])):
        assert f'href="{QUEUES}"' in admin_client.get(url).content.decode()


# -- jobs -------------------------------------------------------------------------------------


def test_job_changelist_filters_and_search(admin_client: Client, admin_user: Any) -> None:
    a, _ = services.enqueue(JobSpec(type="echo", payload={"customer": "acme-42"}, owner=admin_user, priority="HIGH"))
    b, _ = services.enqueue(JobSpec(type="noop", payload={"customer": "globex"}, priority="LOW"))
    c, _ = services.enqueue(JobSpec(type="echo", payload={}, delay=3600))
    assert shown(admin_client.get(JOBS)) == {a.pk, b.pk, c.pk}
    assert shown(admin_client.get(JOBS, {"type": "echo"})) == {a.pk, c.pk}
    assert shown(admin_client.get(JOBS, {"queue": "default"})) == {a.pk, b.pk, c.pk}
    assert shown(admin_client.get(JOBS, {"status__exact": "delayed"})) == {c.pk}
    assert shown(admin_client.get(JOBS, {"priority": "10"})) == {a.pk}
    assert shown(admin_client.get(JOBS, {"priority": "1"})) == {b.pk}
    assert shown(admin_client.get(JOBS, {"owner__id__exact": admin_user.pk})) == {a.pk}
    assert shown(admin_client.get(JOBS, {"created_at__gte": today()})) == {a.pk, b.pk, c.pk}
    assert shown(admin_client.get(JOBS, {"q": a.pk})) == {a.pk}
    assert shown(admin_client.get(JOBS, {"q": b.pk[:10]})) == {b.pk}
    assert shown(admin_client.get(JOBS, {"q": "ACME-42"})) == {a.pk}
    assert shown(admin_client.get(JOBS, {"q": "globex", "type": "echo"})) == set()
    body = admin_client.get(JOBS).content.decode()
    assert 'class="jc-status jc-status-delayed"' in body and 'class="jc-progress"' in body


def test_retry_action_on_selected_jobs(admin_client: Client, admin_user: Any, burst: Any) -> None:
    one, two, three = failed(burst, 3)
    response = action(admin_client, JOBS, "retry_jobs", [one.pk, two.pk])
    assert "Retried 2 job(s)." in response.content.decode()
    assert {j.status for j in Job.objects.filter(pk__in=[one.pk, two.pk])} == {"waiting"}
    assert Job.objects.get(pk=three.pk).status == "failed"
    assert broker.carried_ids("default") == {one.pk, two.pk}
    entry = AuditEntry.objects.get(action="retry")
    assert (entry.actor, entry.source, entry.count, set(entry.job_ids)) == (admin_user, "admin", 2, {one.pk, two.pk})


def test_cancel_all_matching_the_filter_walks_ids_in_chunks(admin_client: Client, admin_user: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(jobs_admin, "ID_CHUNK", 7)
    sleepers = services.enqueue_many([services.JobSpec(type="sleep") for _ in range(25)])
    others = services.enqueue_many([services.JobSpec(type="echo") for _ in range(3)])
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.post(
            f"{JOBS}?type=sleep",
            {"action": "cancel_jobs", "index": "0", "select_across": "1", "_selected_action": [sleepers[0].pk]},
            follow=True,
        )
    assert "Cancelled (or asked to stop) 25 job(s)." in response.content.decode()
    assert set(Job.objects.filter(type="sleep").values_list("status", flat=True)) == {"cancelled"}
    assert set(Job.objects.filter(type="echo").values_list("status", flat=True)) == {"waiting"}
    assert broker.carried_ids("default") == {j.pk for j in others}
    pages = [q["sql"] for q in queries.captured_queries if "LIMIT 7" in q["sql"]]
    assert len(pages) == 5  # 7 + 7 + 7 + 4, then an empty page
    entry = AuditEntry.objects.get(action="cancel")
    assert (entry.actor, entry.count, entry.source) == (admin_user, 25, "admin")


def test_job_page_is_read_only_with_events_traceback_and_payload(admin_client: Client, burst: Any) -> None:
    (job,) = failed(burst, message="disk on fire")
    url = reverse("admin:jobs_job_change", args=[job.pk])
    body = admin_client.get(url).content.decode()
    for text in ("disk on fire", "Traceback (most recent call last)", "jobs.exceptions.JobError", "PERMANENT", "created", "jc-progress"):
        assert text in body, text
    assert '&quot;message&quot;: &quot;disk on fire&quot;' in body  # the payload, pretty-printed
    events = body[body.index('id="job-events"'):]
    assert events.index(">waiting<") < events.index(">active<") < events.index(">failed<")  # in order
    assert admin_client.post(url, {"status": "completed"}).status_code == 403
    assert admin_client.get(reverse("admin:jobs_job_add")).status_code == 403
    assert Job.objects.get(pk=job.pk).status == "failed"


def test_retry_button_on_the_job_page(admin_client: Client, burst: Any) -> None:
    (job,) = failed(burst)
    response = action(admin_client, JOBS, "retry_jobs", [job.pk], _job=job.pk)
    assert response.redirect_chain[-1][0] == reverse("admin:jobs_job_change", args=[job.pk])
    assert Job.objects.get(pk=job.pk).status == "waiting"


# -- dead letters -----------------------------------------------------------------------------


def test_dead_letters_are_counted_by_kind_and_filtered(admin_client: Client, burst: Any) -> None:
    perm = failed(burst, 2, "PERMANENT")
    (bad,) = failed(burst, 1, "VALIDATION")
    response = admin_client.get(LETTERS)
    assert {r["kind"]: r["count"] for r in response.context["kind_counts"]} == {"PERMANENT": 2, "VALIDATION": 1}
    assert 'id="kind-counts"' in response.content.decode()
    assert {d.job_id for d in response.context["cl"].result_list} == {j.pk for j in [*perm, bad]}
    filtered = admin_client.get(LETTERS, {"kind": "VALIDATION"})
    assert [d.job_id for d in filtered.context["cl"].result_list] == [bad.pk]


def test_dead_letter_retry_and_discard(admin_client: Client, admin_user: Any, burst: Any) -> None:
    first, second = failed(burst, 2, note="keep me")
    letters = {d.job_id: d.pk for d in DeadLetter.objects.all()}
    response = action(admin_client, LETTERS, "retry_letters", [letters[first.pk]])
    assert "Retried (as new jobs) 1 job(s)." in response.content.decode()
    new = Job.objects.get(retry_of=first)
    assert (new.type, new.payload, new.status) == ("fail", first.payload, "waiting")
    assert DeadLetter.objects.get(job=first).resolution == "retried"
    assert AuditEntry.objects.get(action="dlq_retry").job_ids == [first.pk, new.pk]

    action(admin_client, LETTERS, "discard_letters", [letters[second.pk]])
    letter = DeadLetter.objects.get(job=second)
    assert letter.resolution == "discarded" and letter.resolved_at is not None
    assert Job.objects.get(pk=second.pk).status == "failed"
    entry = AuditEntry.objects.get(action="dlq_discard")
    assert (entry.actor, entry.source, entry.job_ids) == (admin_user, "admin", [second.pk])

    assert shown(admin_client.get(LETTERS)) == set()  # open by default
    assert shown(admin_client.get(LETTERS, {"state": "resolved"})) == set(letters.values())


# -- the Queues page --------------------------------------------------------------------------


def test_queues_page_pause_and_resume(admin_client: Client, admin_user: Any) -> None:
    page = admin_client.get(QUEUES).content.decode()
    assert 'data-queue="default"' in page and 'id="workers-table"' in page
    services.enqueue(JobSpec(type="noop"))
    assert counts(admin_client)["default"]["counts"]["waiting"] == 1

    assert admin_client.get(reverse("admin:jobs_queues_pause", args=["default"])).status_code == 405
    response = admin_client.post(reverse("admin:jobs_queues_pause", args=["default"]), follow=True)
    assert "Queue default paused" in response.content.decode()
    assert QueueState.objects.get(name="default").paused
    assert broker.paused_queues() == {"default"}
    row = counts(admin_client)["default"]
    assert row["is_paused"] and row["counts"]["paused"] == 1 and row["counts"]["waiting"] == 0

    admin_client.post(reverse("admin:jobs_queues_resume", args=["default"]))
    assert not QueueState.objects.get(name="default").paused
    assert broker.paused_queues() == set()
    assert [(e.action, e.queue, e.actor, e.source) for e in AuditEntry.objects.order_by("at")] == [
        ("pause", "default", admin_user, "admin"),
        ("resume", "default", admin_user, "admin"),
    ]
    assert admin_client.post(reverse("admin:jobs_queues_pause", args=["nope"])).status_code == 404


def test_clean_form_removes_old_final_jobs(admin_client: Client, admin_user: Any, burst: Any) -> None:
    for _ in range(3):
        services.enqueue(JobSpec(type="noop"))
    burst()
    url = reverse("admin:jobs_queues_clean", args=["default"])
    response = admin_client.post(url, {"status": "completed", "grace": "0", "limit": "0"}, follow=True)
    assert "Nothing cleaned from default" in response.content.decode()
    assert Job.objects.count() == 3

    response = admin_client.post(url, {"status": "completed", "grace": "0", "limit": "2"}, follow=True)
    assert "Removed 2 completed job(s)" in response.content.decode()
    assert Job.objects.count() == 1
    entry = AuditEntry.objects.get(action="clean")
    assert (entry.actor, entry.count, entry.detail["limit"]) == (admin_user, 2, 2)
    assert counts(admin_client)["default"]["counts"]["completed"] == 1


def test_workers_table_shows_heartbeats(admin_client: Client, burst: Any) -> None:
    worker = burst()
    now = timezone.now()
    WorkerHeartbeat.objects.create(name="w-alive", hostname="h", pid=1, queues=["default"], started_at=now, last_seen=now, current_job_id="abc123")
    WorkerHeartbeat.objects.create(name="w-stale", hostname="h", pid=2, queues=["default"], started_at=now, last_seen=now - timezone.timedelta(minutes=5))
    WorkerHeartbeat.objects.create(name="w-gone", hostname="h", pid=3, queues=["default"], started_at=now, last_seen=now - timedelta(hours=2), stopped_at=now - timedelta(hours=2))
    WorkerHeartbeat.objects.create(name="w-killed-long-ago", hostname="h", pid=4, queues=["default"], started_at=now, last_seen=now - timedelta(hours=2))
    data = admin_client.get(COUNTS).json()
    assert {w["name"]: w["state"] for w in data["workers"]} == {"w-alive": "alive", "w-stale": "stale"}
    assert {w["name"]: w["state"] for w in data["stopped"]} == {worker.name: "stopped"}  # apart, and only for an hour
    page = admin_client.get(QUEUES).content.decode()
    running, stopped = page.split('id="stopped-workers"')
    assert "w-alive" in running and reverse("admin:jobs_job_change", args=["abc123"]) in running and worker.name not in running
    assert "<details" in running[-40:] and worker.name in stopped and "w-gone" not in page and "w-killed-long-ago" not in page


# -- API keys and the audit log ---------------------------------------------------------------


def test_api_key_is_shown_once_stored_hashed_and_revocable(admin_client: Client, admin_user: Any, django_user_model: Any) -> None:
    bot = django_user_model.objects.create_user("bot", password="x")
    form = admin_client.get(reverse("admin:jobs_apikey_add")).content.decode()
    assert 'name="user"' in form and 'name="name"' in form and 'name="key_hash"' not in form
    response = admin_client.post(reverse("admin:jobs_apikey_add"), {"user": bot.pk, "name": "ci"}, follow=True)
    raw = re.search(r"(jc_[A-Za-z0-9_\-]{20,})", response.content.decode()).group(1)
    key = ApiKey.objects.get()
    assert (key.user, key.name, key.key_hash) == (bot, "ci", hashlib.sha256(raw.encode()).hexdigest())
    assert raw not in str(ApiKey.objects.values().get())
    assert auth.user_for_key(raw) == bot
    assert raw not in admin_client.get(reverse("admin:jobs_apikey_changelist")).content.decode()
    assert raw not in admin_client.get(reverse("admin:jobs_apikey_change", args=[key.pk])).content.decode()

    action(admin_client, reverse("admin:jobs_apikey_changelist"), "revoke", [key.pk])
    assert ApiKey.objects.get().revoked_at is not None
    assert auth.user_for_key(raw) is None
    assert AuditEntry.objects.get(action="revoke_api_key").actor == admin_user


def test_audit_log_is_read_only_and_filterable(admin_client: Client, admin_user: Any, burst: Any) -> None:
    (job,) = failed(burst)
    action(admin_client, JOBS, "retry_jobs", [job.pk])
    services.set_paused("default", paused=True, source="cli")
    url = reverse("admin:jobs_auditentry_changelist")
    retry = AuditEntry.objects.get(action="retry")
    pause = AuditEntry.objects.get(action="pause")
    assert shown(admin_client.get(url, {"action": "retry"})) == {retry.pk}
    assert shown(admin_client.get(url, {"source": "cli"})) == {pause.pk}
    assert shown(admin_client.get(url, {"actor__id__exact": admin_user.pk})) == {retry.pk}
    assert shown(admin_client.get(url, {"at__gte": today()})) == {retry.pk, pause.pk}
    assert shown(admin_client.get(url, {"q": job.pk})) == {retry.pk}
    assert admin_client.get(reverse("admin:jobs_auditentry_add")).status_code == 403
    change = reverse("admin:jobs_auditentry_change", args=[retry.pk])
    assert admin_client.get(change).status_code == 200
    assert admin_client.post(change, {"action": "forged"}).status_code == 403
    assert admin_client.post(reverse("admin:jobs_auditentry_delete", args=[retry.pk])).status_code == 403


def test_job_list_counts_exactly_when_small_and_estimates_past_the_limit(admin_client: Client, monkeypatch: Any) -> None:
    from jobs.console.paginators import EstimatedCountPaginator

    services.enqueue_many([services.JobSpec(type="noop") for _ in range(30)])
    paginator = EstimatedCountPaginator(Job.objects.order_by("-created_at"), 10)
    assert paginator.count == 30 and paginator.num_pages == 3
    monkeypatch.setattr(EstimatedCountPaginator, "EXACT_LIMIT", 5)
    estimated = EstimatedCountPaginator(Job.objects.order_by("-created_at"), 10).count
    assert estimated >= 6  # never below what the bounded count saw
    response = admin_client.get(JOBS)
    assert response.status_code == 200


# -- django-rq: the carrier's view --------------------------------------------------------------


def test_the_django_rq_page_shows_the_lists_and_workers_the_engine_uses(admin_client: Client, worker_process: Any) -> None:
    """django-rq's queues are generated from the declarations (every queue and level), so its page shows
    the engine's waiting ids and its live workers, labelled as the carrier's view."""
    from tests.jobs.engine_support import wait_worker_ready

    services.set_paused("default", paused=True)  # the worker registers but takes nothing
    services.enqueue_many([JobSpec(type="noop") for _ in range(3)] + [JobSpec(type="noop", priority="CRITICAL")])
    proc = worker_process("default")
    wait_worker_ready(proc)

    page = admin_client.get(reverse("admin:django_rq_dashboard_changelist"))
    assert page.status_code == 200
    assert 'id="carrier-note"' in page.content.decode()
    rows = {q["name"]: q for q in page.context["queues"]}
    assert {f"{q}.p{lv:03d}" for q in settings_queues() for lv in (0, 1, 5, 10, 20)} <= set(rows)
    assert (rows["default.p005"]["jobs"], rows["default.p020"]["jobs"], rows["default.p010"]["jobs"]) == (3, 1, 0)
    assert all(rows[f"default.p{lv:03d}"]["workers"] == 1 for lv in (0, 1, 5, 10, 20))
    assert rows["transcription.p005"]["workers"] == 0

    # Its drill-down pages work on the engine's RQ jobs and workers too.
    index = rows["default.p005"]["index"]
    listed = admin_client.get(reverse("admin:django_rq_jobs", args=[index]))
    assert listed.status_code == 200 and len(listed.context["jobs"]) == 3
    workers = admin_client.get(reverse("admin:django_rq_workers", args=[index]))
    assert workers.status_code == 200 and len(workers.context["workers"]) == 1


def settings_queues() -> list[str]:
    from jobs import selectors

    return selectors.queue_names()
