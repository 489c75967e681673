"""The console's home and a queue's page in a real browser: the throughput chart gains a point when jobs
complete, the figures move without a reload, and an operator sets a queue's overrides."""
from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from jobs import services
from jobs.engine import stats
from jobs.models import AuditEntry, QueueState
from jobs.services import JobSpec
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]


def test_the_dashboard_chart_gains_a_point_when_jobs_complete(logged_in: Any, live_server: Any, burst: Any) -> None:
    from playwright.sync_api import expect

    page = logged_in
    chart = page.locator('#jc-dashboard [data-chart="throughput"]')
    expect(chart).to_have_attribute("data-points", "0")
    expect(chart.locator("canvas")).to_have_count(1)  # uPlot drew it, from the static file
    expect(page.locator('[data-value="totals.hour.completed"]')).to_have_text("0")

    for i in range(5):
        services.enqueue(JobSpec(type="noop", payload={"i": i}))
    services.enqueue(JobSpec(type="fail", payload={"kind": "PERMANENT", "message": "no codec"}))
    expect(page.locator('#dashboard-queues tr[data-queue="default"] [data-field="waiting"]')).to_have_text("6", timeout=15_000)
    burst()
    stats.fold(lag=0)

    # Without a reload: the chart has a point for this minute, the totals count the jobs.
    page.evaluate("window.__sameDocument = true")
    expect(chart).to_have_attribute("data-points", "1", timeout=15_000)
    expect(page.locator('[data-value="totals.hour.completed"]')).to_have_text("5")
    expect(page.locator('[data-value="totals.hour.failed"]')).to_have_text("1")
    drawn = page.evaluate("window.jcCharts.throughput")
    assert sum(drawn["values"][0]) == 5 and sum(drawn["values"][1]) == 1 and len(drawn["t"]) == 60
    assert page.evaluate("window.__sameDocument") is True

    # Another range redraws from the hourly steps.
    page.click('#jc-dashboard button[data-range="7d"]')
    page.wait_for_function("window.jcCharts.throughput.t.length === 168")
    screenshot(page, "dashboard")


def test_a_queue_page_shows_settings_and_charts_and_takes_overrides(logged_in: Any, live_server: Any, burst: Any) -> None:
    from playwright.sync_api import expect

    page = logged_in
    for i in range(3):
        services.enqueue(JobSpec(type="noop", payload={"i": i}))
    burst()
    stats.fold(lag=0)
    page.click('#dashboard-queues a:text("default")')
    page.wait_for_url(live_server.url + reverse("admin:jobs_queue", args=["default"]))
    expect(page.locator('#queue-settings tr[data-setting="attempts"] td')).to_have_text("3")
    expect(page.locator('[data-chart="latency"]')).to_have_attribute("data-points", "1")
    latency = page.evaluate("window.jcCharts.latency")
    assert latency["series"] == ["wait_p95", "run_p95"] and any(v is not None for v in latency["values"][1])
    expect(page.locator('[data-value="stats.completed"]')).to_have_text("3")

    page.fill("#id_concurrency", "7")
    page.fill("#id_rate_max", "50")
    page.fill("#id_rate_duration", "2")
    page.click('#override-form button[type="submit"]')
    expect(page.locator("ul.messagelist")).to_contain_text("concurrency 7, rate limit 50 per 2 s")
    expect(page.locator('#queue-settings tr[data-setting="concurrency"]')).to_contain_text("7 overridden")
    state = QueueState.objects.get(name="default")
    assert (state.concurrency, state.rate_limit) == (7, {"max": 50, "duration": 2})
    entry = AuditEntry.objects.get(action="override")
    assert entry.detail["after"] == {"concurrency": 7, "rate_limit": {"max": 50, "duration": 2}} and entry.queue == "default"
    screenshot(page, "queue")

    # A half-given rate limit is refused with the reason, and nothing changes.
    page.fill("#id_rate_duration", "")
    page.click('#override-form button[type="submit"]')
    expect(page.locator("ul.messagelist")).to_contain_text("give both the number of jobs and the seconds")
    assert QueueState.objects.get(name="default").rate_limit == {"max": 50, "duration": 2}


def test_a_concurrency_override_set_on_the_queue_page_reaches_a_running_worker(
    logged_in: Any, live_server: Any, queues: Any, worker_process: Any,
) -> None:
    from playwright.sync_api import expect

    from tests import tools
    from tests.jobs.engine_support import queues_env

    io = {"mode": "threads", "concurrency": 2, "timeout": 60, "group": "io"}
    queues(io=io)
    for i in range(40):
        services.enqueue(JobSpec(type="sleep", payload={"seconds": 1.0, "i": i}, queue="io"))
    page = logged_in
    page.goto(live_server.url + reverse("admin:jobs_queue", args=["io"]))
    worker = worker_process("io", "--threads", "6", env=queues_env(io=io))
    try:
        active = page.locator('[data-value="stats.active"]')
        expect(active).to_have_text("2", timeout=30_000)  # the declared concurrency (the counts fold within seconds)
        page.fill("#id_concurrency", "5")
        page.click('#override-form button[type="submit"]')
        expect(page.locator('#queue-settings tr[data-setting="concurrency"]')).to_contain_text("5 overridden")
        expect(active).to_have_text("5", timeout=30_000)  # the running worker took it, without a restart
        screenshot(page, "queue_override")
    finally:
        tools.stop(worker)
