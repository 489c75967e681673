"""The jobs list and a job's page follow the engine live over the events WebSocket, in a real browser
served by the ASGI server: statuses and progress move without a reload, new jobs are counted."""
from __future__ import annotations

from typing import Any, Iterator

import pytest
from django.conf import settings
from django.urls import reverse

from jobs import services
from jobs.services import JobSpec
from tests import tools
from tests.browser.conftest import log_in, screenshot, serve_asgi
from tests.conftest import _test_db_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def site() -> Iterator[str]:
    with serve_asgi({"DATABASE_URL": _test_db_url(), "REDIS_URL": settings.REDIS_URL}) as url:
        yield url


def test_the_jobs_list_moves_rows_live_and_counts_new_jobs(page: Any, site: str, operator: Any, worker_process: Any) -> None:
    from playwright.sync_api import expect

    jobs = [services.enqueue(JobSpec(type="sleep", payload={"seconds": 1.5, "steps": 3, "i": i}))[0] for i in range(3)]
    log_in(page, site, operator)
    page.goto(site + reverse("admin:jobs_job_changelist") + "?queue=default")
    expect(page.locator("#jc-live-state")).to_have_attribute("data-state", "live")
    rows = {job.pk: page.locator(f'#result_list tr[data-job="{job.pk}"]') for job in jobs}
    for row in rows.values():
        expect(row.locator("td.field-status_col")).to_have_text("waiting")
    page.evaluate("window.__sameDocument = true")

    worker = worker_process("default")
    try:
        first = rows[jobs[-1].pk]  # the oldest: the worker's first job, on the list's last row
        expect(first.locator("td.field-status_col")).to_have_text("active", timeout=30_000)
        page.wait_for_function(
            f"""document.querySelector('#result_list tr[data-job="{jobs[-1].pk}"] td.field-progress_col .jc-progress span').style.width !== '0%'""",
            timeout=30_000,
        )
        for row in rows.values():
            expect(row.locator("td.field-status_col")).to_have_text("completed", timeout=30_000)
            expect(row.locator("td.field-progress_col")).to_contain_text("100%")
        services.enqueue(JobSpec(type="noop"))
        services.enqueue(JobSpec(type="noop"))
        expect(page.locator("#jc-new-jobs [data-count]")).to_have_text("2", timeout=15_000)
        assert page.evaluate("window.__sameDocument") is True
        screenshot(page, "jobs_list_live")
    finally:
        tools.stop(worker)


def test_a_jobs_page_shows_its_progress_and_its_end_without_a_reload(page: Any, site: str, operator: Any, worker_process: Any) -> None:
    from playwright.sync_api import expect

    job = services.enqueue(JobSpec(type="sleep", payload={"seconds": 2.0, "steps": 4}))[0]
    log_in(page, site, operator)
    page.goto(site + reverse("admin:jobs_job_change", args=[job.pk]))
    expect(page.locator("#jc-live-state")).to_have_attribute("data-state", "live")
    expect(page.locator(".field-status_col .readonly")).to_have_text("waiting")
    page.evaluate("window.__sameDocument = true")
    worker = worker_process("default")
    try:
        page.wait_for_function(
            "(() => { const s = document.querySelector('.field-progress_col .jc-progress span');"
            " const w = s && parseInt(s.style.width); return w > 0 && w < 100; })()",
            timeout=30_000,
        )
        expect(page.locator(".field-status_col .readonly")).to_have_text("completed", timeout=30_000)
        expect(page.locator("#job-events")).to_contain_text("completed")
        expect(page.locator(".field-progress_col")).to_contain_text("100%")
        assert page.evaluate("window.__sameDocument") is True
        screenshot(page, "job_page_live")
    finally:
        tools.stop(worker)
