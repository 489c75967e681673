"""The AI console pages in a real browser: usage per key and per user with totals for a period, and a dead
webhook delivery with its attempts, redelivered from the Deliveries page."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from ai import services
from ai.models import UsageDay
from jobs.api.auth import create_api_key
from tests.ai.conftest import Receiver, loopback_webhooks, receiver  # noqa: F401 (fixtures)
from webhooks import services as webhooks
from webhooks.models import Delivery

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

SCREENSHOT = Path(tempfile.gettempdir()) / "ai-usage-console.png"


def _jobs(owner: Any, key: Any, n: int, kind: str = "sentiment") -> None:
    for i in range(n):
        services.create(owner=owner, api_key=key, kind=kind, data={"text": f"A good day, number {i}."})


def test_usage_totals_per_key_and_per_user_for_the_filtered_period(logged_in: Any, live_server: Any, burst: Callable[..., Any]) -> None:
    from playwright.sync_api import expect

    users = get_user_model().objects
    ann, ben = users.create_user("ann"), users.create_user("ben")
    ann_ci, ann_web, ben_key = create_api_key(user=ann, name="ci")[0], create_api_key(user=ann, name="web")[0], create_api_key(user=ben, name="main")[0]
    _jobs(ann, ann_ci, 3)
    _jobs(ann, ann_web, 1, kind="extract")
    _jobs(ben, ben_key, 2)
    burst("ai-jobs")
    tokens = {k.pk: sum(UsageDay.objects.filter(api_key=k).values_list("tokens", flat=True)) for k in (ann_ci, ann_web, ben_key)}
    assert all(tokens.values())

    page = logged_in
    page.goto(live_server.url + reverse("admin:ai_usageday_changelist"))
    totals = page.locator("#usage-totals")
    expect(totals.locator("h2")).to_contain_text(f"6 jobs, {sum(tokens.values())} tokens")
    by_key = totals.locator("tr.usage-key")
    expect(by_key).to_have_count(3)
    expect(by_key.filter(has_text="ci").locator("td").nth(2)).to_have_text("3")
    expect(by_key.filter(has_text="ci").locator("td").nth(3)).to_have_text(str(tokens[ann_ci.pk]))
    by_user = totals.locator("tr.usage-user")
    expect(by_user.filter(has_text="ann").locator("td").nth(1)).to_have_text("4")
    expect(by_user.filter(has_text="ben").locator("td").nth(1)).to_have_text("2")
    page.screenshot(path=SCREENSHOT, full_page=True)

    # The filters narrow the totals: one type, then one period.
    page.locator("#changelist-filter a", has_text="EXTRACT").first.click()
    expect(totals.locator("h2")).to_contain_text(f"1 jobs, {tokens[ann_web.pk]} tokens")
    expect(totals.locator("tr.usage-key")).to_have_count(1)
    page.goto(live_server.url + reverse("admin:ai_usageday_changelist") + "?day__gte=2020-01-01&day__lt=2020-02-01")
    expect(totals).to_contain_text("no usage in this period")


def test_a_dead_delivery_shows_its_attempts_and_is_redelivered_from_the_console(
    logged_in: Any, live_server: Any, operator: Any, receiver: Receiver, burst: Callable[..., Any],  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    webhooks.register(owner=operator, url=receiver.url)
    receiver.script = [(410, {})]  # gone: not retried, straight to the dead letters
    _jobs(operator, create_api_key(user=operator)[0], 1)
    burst("ai-jobs")
    burst("webhooks")
    delivery = Delivery.objects.get()
    assert delivery.status == "failed"

    page = logged_in
    page.goto(live_server.url + reverse("admin:webhooks_delivery_changelist"))
    row = page.locator("#result_list tbody tr").filter(has_text=delivery.id)
    expect(row.locator("td.field-status")).to_have_text("Failed")
    expect(row.locator("td.field-last_status_code")).to_have_text("410")
    row.locator("a").first.click()
    expect(page.locator("td.field-status_code")).to_have_text(["410"])  # its one attempt, with what the receiver said

    page.goto(live_server.url + reverse("admin:webhooks_delivery_changelist"))
    page.locator("#result_list tbody tr").filter(has_text=delivery.id).locator("input.action-select").check()
    page.select_option("select[name=action]", "redeliver")
    page.click("button[name=index]")
    expect(page.locator(".messagelist")).to_contain_text("1 of 1 deliveries queued again")
    burst("webhooks")
    page.reload()
    expect(page.locator("#result_list tbody tr").filter(has_text=delivery.id).locator("td.field-status")).to_have_text("Delivered")
    assert receiver.received[-1].headers["webhook-id"] == delivery.id
