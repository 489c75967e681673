"""The Workers page and a read-only operator in a real browser: a real worker's job moving on the page without a
reload; a viewer who sees the Queues and Workers pages without buttons, and whose forged POST is refused."""
from __future__ import annotations

import re
import subprocess
from typing import Any, Callable

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from jobs import services
from jobs.engine import broker
from jobs.models import AuditEntry, QueueState
from jobs.services import JobSpec
from tests.browser.conftest import PASSWORD, log_in, screenshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

VIEWPORT = {"width": 1400, "height": 1000}


@pytest.fixture
def viewer(django_user_model: Any) -> Any:
    """A staff account with only the jobs app's `view_*` permissions (hashed as the live server checks, see `operator`)."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"]):
        user = django_user_model.objects.create_user("viewer", password=PASSWORD, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="jobs", codename__startswith="view_"))
    return user


def test_a_read_only_operator_sees_the_pages_without_buttons_and_a_forged_post_is_refused(page: Any, live_server: Any, viewer: Any) -> None:
    from playwright.sync_api import expect

    services.enqueue(JobSpec(type="noop"))
    page.set_viewport_size(VIEWPORT)
    log_in(page, live_server.url, viewer)

    # From the index to the Queues page: counts, live, and no operation offered.
    page.click("#jobs-console-module a:text('Queues')")
    expect(page.locator('tr[data-queue="default"] [data-field="waiting"]')).to_have_text("1")
    expect(page.locator("#jc-updated")).to_have_attribute("data-state", "live")
    assert page.locator('form[data-op="pause"], form[data-op="resume"], form[data-op="clean"], .jc-clean-box').count() == 0
    assert page.locator("#queues-table th:text('Operations')").count() == 0
    screenshot(page, "readonly_queues")

    # The Workers page, linked from there, offers nothing either.
    page.click("#jc-workers-link")
    expect(page.locator("#jc-updated")).to_have_attribute("data-state", "live")
    assert page.locator("#content-main form").count() == 0

    # A POST forged with the session's CSRF token (so only the permission check is left to refuse it).
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    for op in ("pause", "clean"):
        response = page.request.post(
            live_server.url + reverse(f"admin:jobs_queues_{op}", args=["default"]),
            form={"csrfmiddlewaretoken": token, "status": "completed", "grace": "0", "limit": "10"},
            headers={"X-CSRFToken": token, "Referer": live_server.url + reverse("admin:jobs_queues")},
            max_redirects=0,
        )
        assert response.status == 403, (op, response.status)
    assert not QueueState.objects.filter(paused=True).exists() and broker.paused_queues() == set()
    assert not AuditEntry.objects.exists()
    # Without the token the same POST is refused before that (CSRF), so the 403s above were the permission's.
    assert page.request.post(live_server.url + reverse("admin:jobs_queues_pause", args=["default"]), max_redirects=0).status == 403


def test_the_workers_page_shows_a_real_workers_job_moving(
    logged_in: Any, live_server: Any, worker_process: Callable[..., subprocess.Popen],
) -> None:
    from playwright.sync_api import expect

    from tests.jobs.engine_support import wait_worker_ready

    page = logged_in
    page.set_viewport_size(VIEWPORT)
    page.click("#jobs-console-module a:text('Workers')")
    assert page.url == live_server.url + reverse("admin:jobs_workers")
    expect(page.locator("#workers-alive-table tbody")).to_contain_text("No worker is running.")
    page.evaluate("window.__sameDocument = true")

    proc = worker_process("default", env={"JOBS_HEARTBEAT_INTERVAL": "0.5"})
    wait_worker_ready(proc)
    job, _ = services.enqueue(JobSpec(type="sleep", payload={"seconds": 12, "steps": 24}))
    row = page.locator("#workers-alive-table tr[data-worker]")
    expect(row).to_have_count(1, timeout=15_000)
    expect(row.locator('[data-field="mode"]')).to_have_text("processes")
    expect(row.locator('[data-field="pid"]')).to_have_text(str(proc.pid))
    expect(row.locator(f'a[href="{reverse("admin:jobs_job_change", args=[job.pk])}"]')).to_be_visible(timeout=15_000)
    expect(row.locator('[data-field="rss"]')).to_have_text(re.compile(r"^\d+(\.\d)? MB$"))

    progress = row.locator('[data-field="progress"]')
    expect(progress).to_have_text(re.compile(r"^([1-9]\d?)%$"), timeout=15_000)
    first = int(progress.inner_text().rstrip("%"))
    page.wait_for_function(
        "([sel, n]) => { const el = document.querySelector(sel); return el && parseInt(el.textContent) > n; }",
        arg=['#workers-alive-table [data-field="progress"]', first],
        timeout=15_000,
    )
    expect(row.locator('[data-field="message"]')).to_have_text(re.compile(r"^step \d+/24$"))
    assert page.evaluate("window.__sameDocument") is True  # moved without a reload
    screenshot(page, "workers")
