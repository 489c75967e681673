"""An operator retries a whole group of dead letters (the same error) in one click, in a real browser."""
from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from jobs import services
from jobs.models import AuditEntry, DeadLetter, Job
from jobs.services import JobSpec
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]



def test_operator_retries_a_whole_group_in_one_click(logged_in: Any, live_server: Any, burst: Any) -> None:
    from playwright.sync_api import expect

    bad_rows = [services.enqueue(JobSpec(type="fail", payload={"kind": "PERMANENT", "message": f"bad row {i} in /data/batch-{i}.csv"}))[0] for i in range(4)]
    services.enqueue(JobSpec(type="fail", payload={"kind": "VALIDATION", "message": "the codec is missing for stream 2"}))
    burst()
    fp = DeadLetter.objects.get(job=bad_rows[0]).fingerprint

    page = logged_in
    page.set_viewport_size({"width": 1400, "height": 1000})
    # From the dead-letter list to its groups.
    page.goto(live_server.url + reverse("admin:jobs_deadletter_changelist"))
    page.click("#groups-link")
    rows = page.locator("#groups-table tbody tr")
    expect(rows).to_have_count(2)
    group = page.locator(f'tr[data-fingerprint="{fp}"]')
    expect(group.locator('[data-field="count"]')).to_have_text("4")
    expect(group).to_contain_text("JobError: bad row <n> in <path> @ samples.py in fail")

    # One click (and the confirmation) retries all four.
    page.once("dialog", lambda dialog: dialog.accept())
    group.locator('form[data-op="retry"] button').click()
    expect(page.locator("ul.messagelist")).to_contain_text("Retried 4 dead letter(s)")
    expect(page.locator(f'tr[data-fingerprint="{fp}"]')).to_have_count(0)
    expect(rows).to_have_count(1)
    assert Job.objects.filter(retry_of__in=bad_rows, status="waiting").count() == 4
    assert AuditEntry.objects.get().count == 4

    rows.first.locator("details summary").click()  # the remaining group's latest letter, with its traceback
    expect(rows.first.locator("pre.jc-traceback")).to_contain_text("the codec is missing")
    screenshot(page, "deadletter_groups", full_page=True)
