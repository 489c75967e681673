"""An operator's path through the recurring-jobs page in a real browser: add (a bad cron first), edit, run now, disable."""
from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from jobs.models import AuditEntry, Job, Schedule

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

LIST_SCREENSHOT = Path(tempfile.gettempdir()) / "jobconsole-schedules.png"
CHANGE_SCREENSHOT = Path(tempfile.gettempdir()) / "jobconsole-schedule-change.png"
NAME = "half-hourly-noop"
#: One of the change page's "next 5 times": 9:00 in Berlin, on either side of a daylight-saving change.
NINE_IN_BERLIN = re.compile(r"^\d{4}-\d{2}-\d{2} 09:00:00 CES?T$")


def test_operator_adds_edits_runs_and_disables_a_schedule(logged_in: Any, live_server: Any, operator: Any) -> None:
    from playwright.sync_api import expect

    page = logged_in
    changelist = live_server.url + reverse("admin:jobs_schedule_changelist")

    # The page is linked from the admin index; its add form refuses a cron expression that is not one.
    page.click("tr.model-schedule th a")
    page.wait_for_url(changelist)
    page.click("ul.object-tools a.addlink")
    page.wait_for_url(live_server.url + reverse("admin:jobs_schedule_add"))
    page.fill("#id_name", NAME)
    page.select_option("#id_job_type", "noop")
    page.fill("#id_cron", "every day")
    page.fill("#id_timezone", "Europe/Berlin")
    page.click("input[name=_save]")
    expect(page.locator("p.errornote")).to_be_visible()
    expect(page.locator(".field-cron ul.errorlist")).to_contain_text("not a cron expression")
    expect(page.locator(".field-timezone ul.errorlist")).to_have_count(0)
    assert not Schedule.objects.exists()
    assert not AuditEntry.objects.filter(action="schedule-create").exists()

    # Fixed (the form kept the other fields), it is saved and listed.
    expect(page.locator("#id_name")).to_have_value(NAME)
    page.fill("#id_cron", "0 */30 * * * *")
    page.click("input[name=_save]")
    page.wait_for_url(changelist)
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    row = page.locator("#result_list tbody tr", has_text=NAME)
    expect(row).to_have_count(1)
    expect(row.locator("td.field-cron")).to_have_text("0 */30 * * * *")
    expect(row.locator("td.field-timezone")).to_have_text("Europe/Berlin")
    expect(row.locator("td.field-job_type")).to_have_text("noop")
    expect(row.locator("td.field-next_local")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:(00|30):00 CES?T$"))  # in its own timezone
    schedule = Schedule.objects.get(name=NAME)
    assert (schedule.job_type, schedule.cron, schedule.timezone, schedule.enabled) == ("noop", "0 */30 * * * *", "Europe/Berlin", True)
    assert schedule.next_fire_at is not None
    created = AuditEntry.objects.get(action="schedule-create")
    assert (created.source, created.actor_id, created.detail["cron"]) == ("admin", operator.pk, "0 */30 * * * *")

    # Edited on its change page: the next five times are at 9:00 Berlin time, and the audit log holds before and after.
    row.locator("th.field-name a").click()
    page.wait_for_url(live_server.url + reverse("admin:jobs_schedule_change", args=[schedule.pk]))
    expect(page.locator("#id_cron")).to_have_value("0 */30 * * * *")
    page.fill("#id_cron", "0 9 * * *")
    page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("was changed successfully")
    expect(page.locator("#id_cron")).to_have_value("0 9 * * *")
    next_times = page.locator(".field-next_times div.readonly")
    expect(next_times).to_contain_text("09:00:00")
    times = next_times.inner_text().splitlines()
    assert len(times) == 5, times
    assert all(NINE_IN_BERLIN.match(t) for t in times), times
    assert times == sorted(times) and len(set(times)) == 5, times
    schedule.refresh_from_db()
    assert schedule.cron == "0 9 * * *"
    updated = AuditEntry.objects.get(action="schedule-update")
    assert updated.source == "admin"
    assert (updated.detail["before"]["cron"], updated.detail["after"]["cron"]) == ("0 */30 * * * *", "0 9 * * *")
    page.screenshot(path=CHANGE_SCREENSHOT, full_page=True)

    # Run now, from the list's actions: a noop job is enqueued, and the list's "last run" links to it.
    page.goto(changelist)
    row.locator("input.action-select").check()
    page.select_option("select[name=action]", label="Run selected schedules now")
    page.click("button[name=index]")
    message = page.locator("ul.messagelist li.success")
    expect(message).to_contain_text("Enqueued 1 job(s): ")
    job = Job.objects.get(type="noop")
    expect(message).to_contain_text(job.id[:8])
    last_run = row.locator("td.field-last_outcome a")
    expect(last_run).to_have_attribute("href", reverse("admin:jobs_job_change", args=[job.pk]))
    expect(last_run).to_have_text(job.status)
    schedule.refresh_from_db()
    assert schedule.last_job_id == job.pk
    assert AuditEntry.objects.get(action="schedule-run").job_ids == [job.pk]
    page.screenshot(path=LIST_SCREENSHOT, full_page=True)

    # Disabled through the action: it has no next time any more.
    row.locator("input.action-select").check()
    page.select_option("select[name=action]", label="Disable selected schedules")
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist li.success")).to_contain_text("Disabled 1 schedule(s).")
    expect(row.locator("td.field-enabled img")).to_have_attribute("alt", "False")
    expect(row.locator("td.field-next_local")).to_have_text("-")
    schedule.refresh_from_db()
    assert schedule.enabled is False
    assert schedule.next_fire_at is None
    last = AuditEntry.objects.filter(action="schedule-update").order_by("-at", "-pk").first()
    assert last is not None and last.detail["after"]["enabled"] is False
