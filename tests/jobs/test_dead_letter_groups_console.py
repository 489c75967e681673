"""Dead letters by error in the console (/admin/jobs/deadletter/groups/, "all matching" on the list) and the API
(/api/queue/dead-letter/groups...): operators retry or discard a whole group; read-only accounts are refused."""
from __future__ import annotations

from typing import Any, Callable

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from jobs import services
from jobs.models import AuditEntry, DeadLetter, Job
from jobs.services import JobSpec

pytestmark = pytest.mark.django_db(transaction=True)

GROUPS = reverse("admin:jobs_deadletter_groups")
LETTERS = reverse("admin:jobs_deadletter_changelist")
API_GROUPS = "/api/queue/dead-letter/groups"


def dead(burst: Callable[..., Any], *messages: str, queue: str = "default") -> list[Job]:
    jobs = [services.enqueue(JobSpec(type="fail", queue=queue, payload={"kind": "PERMANENT", "message": m}))[0] for m in messages]
    burst(queue)
    return jobs


def fingerprint(job: Job) -> str:
    return DeadLetter.objects.get(job=job).fingerprint


@pytest.fixture
def viewer(client: Client, django_user_model: Any) -> Client:
    """A staff account that may view jobs and dead letters but not change them."""
    user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_job", "view_deadletter"]))
    client.force_login(user)
    return client


# -- the console --------------------------------------------------------------------------------


def test_the_groups_page_lists_each_error_with_its_figures_and_buttons(admin_client: Client, burst: Any) -> None:
    rows = dead(burst, "bad row 1", "bad row 22", "disk full")
    assert GROUPS == "/admin/jobs/deadletter/groups/"
    page = admin_client.get(GROUPS)
    html = page.content.decode()
    assert page.status_code == 200
    assert [(r["group"].count, r["group"].signature) for r in page.context["groups"]] == [
        (2, "JobError: bad row <n> @ samples.py in fail"), (1, "JobError: disk full @ samples.py in fail"),
    ]
    fp = fingerprint(rows[0])
    assert f'href="{LETTERS}?fingerprint={fp}"' in html  # the group's letters, one by one
    assert reverse("admin:jobs_deadletter_group_retry", args=[fp]) in html and "Discard all" in html
    assert "<details>" in html and "Traceback (most recent call last)" in html
    listed = admin_client.get(LETTERS, {"fingerprint": fp})
    assert {d.job_id for d in listed.context["cl"].result_list} == {rows[0].id, rows[1].id}
    assert f'href="{GROUPS}"' in listed.content.decode()  # linked from the list


def test_an_operator_retries_and_discards_a_group_from_the_page(admin_client: Client, admin_user: Any, burst: Any) -> None:
    rows = dead(burst, "bad row 1", "bad row 2", "disk full")
    response = admin_client.post(reverse("admin:jobs_deadletter_group_retry", args=[fingerprint(rows[0])]), follow=True)
    assert "Retried 2 dead letter(s) of “JobError: bad row &lt;n&gt; @ samples.py in fail” as new jobs." in response.content.decode()
    assert Job.objects.filter(retry_of__in=rows[:2], status="waiting").count() == 2
    assert [r["group"].count for r in response.context["groups"]] == [1]
    admin_client.post(reverse("admin:jobs_deadletter_group_discard", args=[fingerprint(rows[2])]))
    assert DeadLetter.objects.get(job=rows[2]).resolution == "discarded"
    assert list(AuditEntry.objects.order_by("at").values_list("action", "actor", "source", "count")) == [
        ("dlq_retry_group", admin_user.pk, "admin", 2), ("dlq_discard_group", admin_user.pk, "admin", 1),
    ]


def test_a_read_only_account_sees_the_groups_but_is_refused_their_operations(viewer: Client, burst: Any) -> None:
    rows = dead(burst, "bad row 1")
    page = viewer.get(GROUPS)
    assert page.status_code == 200 and "bad row &lt;n&gt;" in page.content.decode()
    assert "Retry all" not in page.content.decode()
    fp = fingerprint(rows[0])
    assert viewer.post(reverse("admin:jobs_deadletter_group_retry", args=[fp])).status_code == 403
    assert viewer.post(reverse("admin:jobs_deadletter_group_discard", args=[fp])).status_code == 403
    assert viewer.post(reverse("admin:jobs_deadletter_matching_retry"), {"query": ""}).status_code == 403
    listed = viewer.get(LETTERS).content.decode()
    assert 'id="all-matching"' not in listed
    assert DeadLetter.objects.get(job=rows[0]).resolved_at is None and not AuditEntry.objects.exists()


def test_group_operations_need_post_and_csrf(admin_user: Any, burst: Any) -> None:
    rows = dead(burst, "bad row 1")
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    url = reverse("admin:jobs_deadletter_group_retry", args=[fingerprint(rows[0])])
    assert client.post(url).status_code == 403
    assert client.get(url).status_code == 405
    assert DeadLetter.objects.get(job=rows[0]).resolved_at is None


def test_retry_all_matching_the_lists_filter_takes_every_match_not_only_checked_rows(admin_client: Client, burst: Any, queues: Any) -> None:
    queues(media={"attempts": 1})
    media = dead(burst, "bad row 1", "disk full", queue="media")
    plain = dead(burst, "bad row 2")
    listed = admin_client.get(LETTERS, {"queue": "media"})
    assert listed.context["matching"]["usable"] and "Retry all 2 matching" in listed.content.decode()
    response = admin_client.post(reverse("admin:jobs_deadletter_matching_retry"), {"query": "queue=media"}, follow=True)
    assert "Retried 2 dead letter(s) matching the filter as new jobs." in response.content.decode()
    assert Job.objects.filter(retry_of__in=media).count() == 2 and DeadLetter.objects.get(job=plain[0]).resolved_at is None
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.count, entry.detail["queue"]) == ("dlq_retry_matching", 2, "media")

    # A list narrowed by a search shows fewer letters than "all matching" would take: refused, nothing changes.
    assert not admin_client.get(LETTERS, {"q": "bad"}).context["matching"]["usable"]
    refused = admin_client.post(reverse("admin:jobs_deadletter_matching_discard"), {"query": "q=bad"}, follow=True)
    assert "clear the other filters first" in refused.content.decode()
    assert DeadLetter.objects.get(job=plain[0]).resolved_at is None
    admin_client.post(reverse("admin:jobs_deadletter_matching_discard"), {"query": f"fingerprint={fingerprint(plain[0])}"})
    assert DeadLetter.objects.get(job=plain[0]).resolution == "discarded"


# -- the API ------------------------------------------------------------------------------------


def test_api_lists_groups_and_retries_and_discards_one(as_staff: Any, staff: Any, burst: Any) -> None:
    rows = dead(burst, "bad row 1", "bad row 2", "disk full")
    body = as_staff.get(API_GROUPS).json()
    big = body["groups"][0]
    assert (big["fingerprint"], big["count"], big["queues"]) == (fingerprint(rows[0]), 2, {"default": 2})
    assert big["signature"] == "JobError: bad row <n> @ samples.py in fail"
    assert big["sample"]["jobId"] == rows[1].id and "Traceback" in big["sample"]["traceback"]
    assert {"firstSeen", "lastSeen"} <= set(big)

    retried = as_staff.post(f"{API_GROUPS}/{big['fingerprint']}/retry")
    assert retried.status_code == 200 and retried.json() == {"fingerprint": big["fingerprint"], "retried": 2, "skipped": {}}
    discarded = as_staff.post(f"{API_GROUPS}/{fingerprint(rows[2])}/discard")
    assert discarded.json() == {"fingerprint": fingerprint(rows[2]), "discarded": 1}
    assert as_staff.get(API_GROUPS).json() == {"groups": []}
    assert list(AuditEntry.objects.order_by("at").values_list("action", "source", "count")) == [("dlq_retry_group", "api", 2), ("dlq_discard_group", "api", 1)]

    gone = as_staff.post(f"{API_GROUPS}/{big['fingerprint']}/retry")
    assert gone.status_code == 404 and gone.json()["extra"] == {"fingerprint": big["fingerprint"]}
    bad = as_staff.post(f"{API_GROUPS}/NOT-HEX/retry")
    assert bad.status_code == 400 and "fingerprint" in bad.json()["extra"]
    assert as_staff.get(API_GROUPS, {"errorKind": "nope"}).status_code == 400


def test_api_refuses_a_non_operator(as_alice: Any, burst: Any) -> None:
    rows = dead(burst, "bad row 1")
    for response in (as_alice.get(API_GROUPS), as_alice.post(f"{API_GROUPS}/{fingerprint(rows[0])}/retry"), as_alice.post(f"{API_GROUPS}/{fingerprint(rows[0])}/discard")):
        assert response.status_code == 403 and response.json() == {"message": "staff only", "extra": {}}
    assert DeadLetter.objects.get(job=rows[0]).resolved_at is None
