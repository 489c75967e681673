"""An operator's path through the console in a real browser: Queues page, live counts, a failed job, the dead letters."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from jobs import services
from jobs.engine import broker
from jobs.models import DeadLetter, Job, QueueState
from jobs.services import JobSpec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

SCREENSHOT = Path(tempfile.gettempdir()) / "jobconsole-queues.png"


def test_operator_pauses_watches_counts_and_retries_a_dead_letter(logged_in: Any, live_server: Any, burst: Any, queues: Any) -> None:
    from playwright.sync_api import expect

    queues(media={"attempts": 1, "group": "media"})
    page = logged_in
    # The Queues page is linked from the admin index.
    page.click("#jobs-console-module a:text('Queues')")
    row = page.locator('tr[data-queue="default"]')
    waiting = row.locator('[data-field="waiting"]')
    expect(waiting).to_have_text("0")

    # A job enqueued behind the page's back shows up without a reload.
    page.evaluate("window.__sameDocument = true")
    services.enqueue(JobSpec(type="noop"))
    expect(waiting).to_have_text("1")
    expect(page.locator("#jc-updated")).to_have_attribute("data-state", "live")
    assert page.evaluate("window.__sameDocument") is True

    # Pause, see it paused (in the page, the database and Redis), then resume.
    row.locator('form[data-op="pause"] button').click()
    expect(page.locator("ul.messagelist")).to_contain_text("Queue default paused")
    expect(row.locator('[data-field="state"]')).to_have_text("paused")
    expect(row.locator('[data-field="paused"]')).to_have_text("1")
    assert QueueState.objects.get(name="default").paused
    assert broker.paused_queues() == {"default"}
    row.locator('form[data-op="resume"] button').click()
    expect(row.locator('[data-field="state"]')).to_have_text("running")
    assert broker.paused_queues() == set()

    # A job that fails for good: its page shows the traceback.
    job, _ = services.enqueue(JobSpec(type="fail", payload={"kind": "PERMANENT", "message": "the codec is missing"}))
    burst()
    page.goto(live_server.url + reverse("admin:jobs_job_change", args=[job.pk]))
    expect(page.locator("pre.jc-traceback")).to_contain_text("Traceback (most recent call last)")
    expect(page.locator("pre.jc-traceback")).to_contain_text("the codec is missing")
    expect(page.locator("#job-events")).to_contain_text("PERMANENT")

    # Retry it from the dead-letter list.
    page.goto(live_server.url + reverse("admin:jobs_deadletter_changelist"))
    expect(page.locator("#kind-counts")).to_contain_text("PERMANENT 1")
    page.locator("#result_list tbody tr", has_text=job.pk[:8]).locator("input.action-select").check()
    page.select_option("select[name=action]", "retry_letters")
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist")).to_contain_text("Retried (as new jobs) 1 job(s).")
    assert DeadLetter.objects.get(job=job).resolution == "retried"
    assert Job.objects.get(retry_of=job).status == "waiting"

    # Back on the Queues page: one completed, one failed, one waiting, and the worker that ran them.
    page.goto(live_server.url + reverse("admin:jobs_queues"))
    expect(row.locator('[data-field="failed"]')).to_have_text("1")
    expect(page.locator('tr[data-queue="media"] [data-field="state"]')).to_have_text("running")
    expect(page.locator("#workers-table tbody tr")).to_have_count(1)
    page.screenshot(path=SCREENSHOT, full_page=True)
