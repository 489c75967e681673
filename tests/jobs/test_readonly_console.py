"""A read-only operator: a staff account with only the `view_*` permissions of the jobs app's models sees every
console page and acts on nothing. Buttons and action menus are left out of the pages, and every operation,
posted by hand, is refused on the server with nothing changed in PostgreSQL or Redis.

Each page is also checked as a superuser sees it, so that "no button" is never true of a page that has none.
"""
from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs import services
from jobs.engine import broker
from jobs.models import ApiKey, AuditEntry, DeadLetter, HookDelivery, Job, QueueState, Schedule
from jobs.services import JobSpec

pytestmark = pytest.mark.django_db(transaction=True)

#: All an admin action the user may not run answers, if anything: Django leaves it out of the choices (none
#: left: the changelist is shown again, as if nothing was posted).
NO_ACTION = "No action selected."


@pytest.fixture
def viewer(django_user_model: Any) -> Any:
    """A staff account with every `view_*` permission of the jobs app and nothing else."""
    user = django_user_model.objects.create_user("viewer", is_staff=True)
    perms = Permission.objects.filter(content_type__app_label="jobs", codename__startswith="view_")
    assert perms.count() >= 8
    user.user_permissions.add(*perms)
    assert not any(p.startswith("jobs.") and not p.startswith("jobs.view_") for p in user.get_all_permissions())
    return user


@pytest.fixture
def as_viewer(viewer: Any) -> Client:
    client = Client()
    client.force_login(viewer)
    return client


@pytest.fixture
def world(burst: Any, admin_user: Any) -> dict[str, Any]:
    """Something to act on for every operation: a failed job (and its dead letter), a waiting one, a paused queue,
    a schedule, a stuck hook delivery, an API key."""
    failed, _ = services.enqueue(JobSpec(type="fail", payload={"kind": "PERMANENT"}))
    burst()
    waiting, _ = services.enqueue(JobSpec(type="noop"))
    services.set_paused("transcription", paused=True, actor=admin_user)
    schedule = services.create_schedule(name="nightly", job_type="noop", cron="0 3 * * *", actor=admin_user)
    delivery = HookDelivery.objects.create(event_id=1, job_id=failed.pk, consumer="test.hook", next_at=timezone.now(), stuck=True, attempts=5)
    key = ApiKey.objects.create(user=admin_user, name="ci", prefix="abcd1234", key_hash="0" * 64)
    return {"failed": failed, "waiting": waiting, "schedule": schedule, "delivery": delivery, "key": key, "letter": DeadLetter.objects.get(job=failed)}


def pages(w: dict[str, Any]) -> dict[str, str]:
    return {
        "index": reverse("admin:index"),
        "jobs app": reverse("admin:app_list", args=["jobs"]),
        "queues": reverse("admin:jobs_queues"),
        "queue counts": reverse("admin:jobs_queues_counts"),
        "workers": reverse("admin:jobs_workers"),
        "workers data": reverse("admin:jobs_workers_data"),
        "jobs": reverse("admin:jobs_job_changelist"),
        "job": reverse("admin:jobs_job_change", args=[w["failed"].pk]),
        "dead letters": reverse("admin:jobs_deadletter_changelist"),
        "dead letter": reverse("admin:jobs_deadletter_change", args=[w["letter"].pk]),
        "schedules": reverse("admin:jobs_schedule_changelist"),
        "schedule": reverse("admin:jobs_schedule_change", args=[w["schedule"].pk]),
        "hook deliveries": reverse("admin:jobs_hookdelivery_changelist"),
        "audit": reverse("admin:jobs_auditentry_changelist"),
        "api keys": reverse("admin:jobs_apikey_changelist"),
        "carrier": reverse("admin:django_rq_dashboard_changelist"),
        "dashboard data": reverse("admin:jobs_dashboard") + "?range=24h",
        "queue": reverse("admin:jobs_queue", args=["default"]),
        "queue data": reverse("admin:jobs_queue_data", args=["default"]) + "?range=7d",
        "dead letter groups": reverse("admin:jobs_deadletter_groups"),
    }


#: What shows that a page offers an operation: an action menu, a save or add button, the Queues page's
#: pause/resume/clean forms, the job page's retry and cancel buttons.
OPERATE_MARKS = [
    re.compile(r'<select name="action"'),
    re.compile(r'name="_save"'),
    re.compile(r'class="[^"]*addlink'),
    re.compile(r'data-op="(pause|resume|clean|override)"'),
    re.compile(r'id="job-(retry|cancel)"'),
]


def post_forms(html: str) -> list[str]:
    """The `<form method="post">` tags of a page other than the admin's logout and its changelist and change-page wrappers."""
    forms = re.findall(r"<form\b[^>]*>", html)
    wrappers = re.compile(r'id="(logout-form|changelist-form|\w+_form)"')  # a view-only change page keeps its form, without a submit
    return [f for f in forms if 'method="post"' in f.lower() and not wrappers.search(f)]


def test_every_console_page_answers_the_viewer_without_an_operation(as_viewer: Client, admin_client: Client, world: dict[str, Any]) -> None:
    offered = set()
    for name, url in pages(world).items():
        response = as_viewer.get(url)
        assert response.status_code == 200, (name, response.status_code, response.get("Location"))
        if response["Content-Type"].startswith("application/json"):
            continue
        html = response.content.decode()
        marks = [m.pattern for m in OPERATE_MARKS if m.search(html)]
        assert marks == [] and post_forms(html) == [], (name, marks, post_forms(html))
        as_admin = admin_client.get(url).content.decode()
        offered |= {m.pattern for m in OPERATE_MARKS if m.search(as_admin)}
    assert offered == {m.pattern for m in OPERATE_MARKS}  # a superuser sees every one of them


def unchanged(world: dict[str, Any]) -> None:
    """Nothing the viewer tried left a trace: jobs, dead letters, queues, schedules, deliveries, keys, audit log, Redis."""
    assert Job.objects.get(pk=world["failed"].pk).status == "failed"
    assert Job.objects.get(pk=world["waiting"].pk).status == "waiting"
    assert Job.objects.count() == 2 and not Job.objects.filter(cancel_requested_at__isnull=False).exists()
    assert DeadLetter.objects.get(pk=world["letter"].pk).resolved_at is None
    assert set(QueueState.objects.filter(paused=True).values_list("name", flat=True)) == {"transcription"} == broker.paused_queues()
    schedule = Schedule.objects.get(pk=world["schedule"].pk)
    assert (schedule.enabled, schedule.cron, schedule.last_job_id, Schedule.objects.count()) == (True, "0 3 * * *", None, 1)
    delivery = HookDelivery.objects.get(pk=world["delivery"].pk)
    assert (delivery.stuck, delivery.attempts) == (True, 5)
    assert ApiKey.objects.get(pk=world["key"].pk).revoked_at is None and ApiKey.objects.count() == 1
    assert not AuditEntry.objects.filter(actor__username="viewer").exists()


def test_queue_operations_are_refused(as_viewer: Client, world: dict[str, Any]) -> None:
    for op, queue in [("pause", "default"), ("resume", "transcription"), ("clean", "default")]:
        response = as_viewer.post(reverse(f"admin:jobs_queues_{op}", args=[queue]), {"status": "failed", "grace": "0", "limit": "10"})
        assert response.status_code == 403, op
    override = as_viewer.post(reverse("admin:jobs_queue_override", args=["default"]), {"concurrency": "9"})
    assert override.status_code == 403 and not QueueState.objects.filter(concurrency__isnull=False).exists()
    unchanged(world)


@pytest.mark.parametrize(
    "changelist, action, target",
    [
        ("jobs_job", "retry_jobs", "failed"),
        ("jobs_job", "cancel_jobs", "waiting"),
        ("jobs_deadletter", "retry_letters", "letter"),
        ("jobs_deadletter", "discard_letters", "letter"),
        ("jobs_hookdelivery", "retry_deliveries", "delivery"),
        ("jobs_schedule", "enable_schedules", "schedule"),
        ("jobs_schedule", "disable_schedules", "schedule"),
        ("jobs_schedule", "run_now", "schedule"),
        ("jobs_schedule", "delete_selected", "schedule"),
        ("jobs_apikey", "revoke", "key"),
        ("jobs_job", "delete_selected", "failed"),
    ],
)
def test_admin_actions_are_refused(as_viewer: Client, world: dict[str, Any], changelist: str, action: str, target: str) -> None:
    pk = world[target].pk
    data = {"action": action, "index": "0", "_selected_action": [pk], "post": "yes"}
    if changelist == "jobs_job":
        data["_job"] = pk  # as the job page's own Retry and Cancel buttons post it
    response = as_viewer.post(reverse(f"admin:{changelist}_changelist"), data, follow=True)
    assert response.status_code == 200
    assert {str(m) for m in response.context["messages"]} <= {NO_ACTION}
    unchanged(world)


def test_edits_adds_and_deletes_through_the_admin_forms_are_refused(as_viewer: Client, world: dict[str, Any]) -> None:
    schedule = world["schedule"]
    fields = {"name": "hacked", "job_type": "noop", "payload": "{}", "queue": "", "priority": "NORMAL", "cron": "* * * * *", "timezone": "UTC", "missed": "skip", "grace": "3600"}
    refused = [
        (reverse("admin:jobs_schedule_change", args=[schedule.pk]), fields),
        (reverse("admin:jobs_schedule_add"), fields),
        (reverse("admin:jobs_schedule_delete", args=[schedule.pk]), {"post": "yes"}),
        (reverse("admin:jobs_job_change", args=[world["failed"].pk]), {}),
        (reverse("admin:jobs_deadletter_change", args=[world["letter"].pk]), {}),
        (reverse("admin:jobs_apikey_add"), {"user": world["key"].user_id, "name": "mine"}),
        (reverse("admin:jobs_auditentry_delete", args=[AuditEntry.objects.first().pk]), {"post": "yes"}),  # type: ignore[union-attr]
    ]
    for url, data in refused:
        assert as_viewer.post(url, data).status_code == 403, url
    unchanged(world)


def test_the_carriers_pages_refuse_to_empty_a_queue(as_viewer: Client, admin_client: Client, world: dict[str, Any]) -> None:
    """django-rq's own pages let any staff account empty a Redis list; the console's site asks for the operate permission."""
    rows = {q["name"]: q for q in as_viewer.get(reverse("admin:django_rq_dashboard_changelist")).context["queues"]}
    index = rows["default.p005"]["index"]
    assert rows["default.p005"]["jobs"] == 1  # the waiting job's id
    assert as_viewer.post(reverse("admin:django_rq_clear", args=[index])).status_code == 403
    assert as_viewer.post(reverse("admin:django_rq_actions", args=[index]), {"action": "delete", "job_ids": [world["waiting"].pk]}).status_code == 403
    assert as_viewer.get(reverse("admin:django_rq_clear", args=[index])).status_code == 200  # the confirmation page only reads
    assert broker.connection().llen(f"rq:queue:{rows['default.p005']['name']}") == 1
    unchanged(world)
    # An operator still may (the lists are rebuilt from the database by reconcile).
    assert admin_client.post(reverse("admin:django_rq_clear", args=[index])).status_code == 302


def test_the_api_refuses_the_viewers_console_session_too(viewer: Any, world: dict[str, Any]) -> None:
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(viewer)  # the session a browser has after logging in to the console
    assert client.get(reverse("queue-stats")).status_code == 200  # it reads what an operator reads
    refused = client.post(reverse("queue-pause", args=["default"]))
    assert refused.status_code == 403 and "read-only" in refused.json()["message"]
    assert client.post(f"/api/jobs/{world['failed'].pk}/retry").status_code == 403  # nor through the owner's endpoints
    assert client.post(f"/api/jobs/{world['waiting'].pk}/cancel").status_code == 403
    assert not QueueState.objects.filter(name="default", paused=True).exists()
    assert Job.objects.get(pk=world["waiting"].pk).status == "waiting"
    assert not AuditEntry.objects.filter(actor=viewer).exists()


def test_staff_without_the_view_permission_get_no_engine_page(django_user_model: Any, world: dict[str, Any]) -> None:
    bare = django_user_model.objects.create_user("bare", is_staff=True)
    client = Client()
    client.force_login(bare)
    for name in ("queues", "queue counts", "workers", "workers data", "dashboard data", "queue", "queue data", "dead letter groups"):
        assert client.get(pages(world)[name]).status_code == 403, name
    assert "jc-dashboard" not in client.get(reverse("admin:index")).content.decode()
