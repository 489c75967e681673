"""The console's jobs list at scale: keyset pages, created-within and run-time filters, a created range."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs import services
from jobs.models import Job
from jobs.services import JobSpec

pytestmark = pytest.mark.django_db(transaction=True)

URL = reverse("admin:jobs_job_changelist")


def _ids(response) -> list[str]:
    return [row.pk for row in response.context["cl"].result_list]


def test_keyset_pages_walk_every_job_once_newest_first(admin_client, settings) -> None:
    jobs = services.enqueue_many([JobSpec(type="noop", payload={"i": i}) for i in range(250)])
    now = timezone.now()
    # Ties on created_at are broken by id, so no job is shown twice or skipped at a page's edge.
    for n, job in enumerate(jobs):
        Job.objects.filter(pk=job.pk).update(created_at=now - timedelta(seconds=n // 3))
    seen: list[str] = []
    url = URL
    pages = 0
    while url:
        response = admin_client.get(url if url.startswith("/") else URL + url)
        assert response.status_code == 200
        cl = response.context["cl"]
        assert cl.keyset and not cl.multi_page
        seen += _ids(response)
        pages += 1
        url = cl.next_cursor
        if pages > 1:
            assert 'id="jc-first"' in response.content.decode()
    assert pages == 3 and len(seen) == 250 and len(set(seen)) == 250
    expected = list(Job.objects.order_by("-created_at", "-pk").values_list("pk", flat=True))
    assert seen == expected


def test_an_ordering_the_operator_picks_pages_by_number(admin_client) -> None:
    services.enqueue_many([JobSpec(type="noop", payload={"i": i}) for i in range(5)])
    response = admin_client.get(URL + "?o=4")  # by priority
    assert response.status_code == 200 and not response.context["cl"].keyset


def test_a_bad_cursor_is_the_admins_bad_lookup_page_not_an_error(admin_client) -> None:
    response = admin_client.get(URL + "?after=yesterday")
    assert response.status_code == 302 and "e=1" in response["Location"]


def test_created_within_run_time_and_a_created_range_filter_the_list(admin_client) -> None:
    now = timezone.now()
    old, new, slow, running = (services.enqueue(JobSpec(type="noop", payload={"i": i}))[0] for i in range(4))
    Job.objects.filter(pk=old.pk).update(created_at=now - timedelta(hours=3))
    Job.objects.filter(pk=new.pk).update(status="completed", started_at=now - timedelta(seconds=2), completed_at=now - timedelta(seconds=1.5))
    Job.objects.filter(pk=slow.pk).update(status="completed", started_at=now - timedelta(minutes=5), completed_at=now - timedelta(seconds=30))
    Job.objects.filter(pk=running.pk).update(status="active", started_at=now - timedelta(minutes=2))

    assert set(_ids(admin_client.get(URL + "?created=1h"))) == {new.pk, slow.pk, running.pk}
    assert set(_ids(admin_client.get(URL + "?created=6h"))) == {old.pk, new.pk, slow.pk, running.pk}
    assert _ids(admin_client.get(URL + "?took=lt1s")) == [new.pk]
    assert _ids(admin_client.get(URL + "?took=1m-10m")) == [slow.pk]
    assert _ids(admin_client.get(URL + "?took=running1m")) == [running.pk]
    local = timezone.localtime(now - timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M:%S")
    until = timezone.localtime(now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    page = admin_client.get(URL + f"?created_from={local}&created_to={until}")
    assert _ids(page) == [old.pk]
    body = page.content.decode()
    assert re.search(r'name="created_from" value="' + local, body)  # the range form keeps what was asked
    assert admin_client.get(URL + "?created_from=soon").status_code == 302  # the admin's bad-lookup page


def test_the_list_and_the_job_page_name_their_live_topics(admin_client) -> None:
    job = services.enqueue(JobSpec(type="noop"))[0]
    body = admin_client.get(URL + "?queue=default").content.decode()
    assert 'data-topics="[[&quot;queue&quot;, &quot;default&quot;]]"' in body and "jobs/live.js" in body
    body = admin_client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    assert f'data-topics="[[&quot;job&quot;, &quot;{job.pk}&quot;]]"' in body


def test_search_finds_a_job_by_id_prefix_and_falls_back_to_the_payload(admin_client) -> None:
    job = services.enqueue(JobSpec(type="noop", payload={"note": "deadbeefcafe"}))[0]
    other = services.enqueue(JobSpec(type="noop", payload={"note": "plain"}))[0]
    assert _ids(admin_client.get(URL + "?q=" + job.pk[:10])) == [job.pk]
    assert _ids(admin_client.get(URL + "?q=" + other.pk)) == [other.pk]
    assert _ids(admin_client.get(URL + "?q=deadbeefcafe")) == [job.pk]  # looks like an id, is payload text
    assert _ids(admin_client.get(URL + "?q=plain")) == [other.pk]
