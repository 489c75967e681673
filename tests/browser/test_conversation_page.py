"""The assistant's conversation page in a real browser: a command, the jobs it fanned out to, and its spoken reply."""
from __future__ import annotations

from typing import Any, Callable

import pytest
from django.urls import reverse

from assistant import services
from tests.assistant.conftest import ASSISTANT_QUEUES
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]



def test_a_command_page_shows_its_fanned_out_jobs_and_plays_the_reply(
    logged_in: Any, live_server: Any, operator: Any, burst: Callable[..., Any],
) -> None:
    from playwright.sync_api import expect

    first, _ = services.process_command(owner=operator, text="Create a task to order new chairs", conversation_id="kitchen-7")
    second, _ = services.process_command(owner=operator, text="add a to-do: sign the lease", conversation_id="kitchen-7")
    services.process_command(owner=operator, text="create a task to be elsewhere", conversation_id="another")
    burst(*ASSISTANT_QUEUES)

    page = logged_in
    page.goto(live_server.url + reverse("admin:assistant_command_change", args=[first.id]))
    jobs = page.locator("table.command-jobs tr[data-job-queue]")
    expect(jobs).to_have_count(3)
    assert [jobs.nth(i).get_attribute("data-job-queue") for i in range(3)] == ["voice-processing", "task-processing", "synthesis"]
    expect(jobs.filter(has_text="synthesis")).to_contain_text("completed")
    expect(page.locator(".field-reply_text")).to_contain_text("Added a task: order new chairs.")
    player = page.locator("audio[data-reply-audio]")
    expect(player).to_have_count(1)
    # The player's source answers with the WAV the synthesis job stored (fetched with the page's session).
    got = page.evaluate("async (src) => { const r = await fetch(src); const b = await r.arrayBuffer(); return [r.status, r.headers.get('content-type'), b.byteLength]; }", player.get_attribute("src"))
    assert got[0] == 200 and got[1] == "audio/wav" and got[2] > 10_000
    page.set_viewport_size({"width": 1400, "height": 1000})
    screenshot(page, "assistant-command", full_page=True)

    # A job links to its page; the conversation link lists the conversation's commands only.
    page.locator(".field-conversation a").click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#result_list")).to_contain_text("sign the lease")
    expect(page.locator("#result_list")).not_to_contain_text("be elsewhere")
    page.goto(live_server.url + reverse("admin:assistant_command_change", args=[second.id]))
    page.locator("table.command-jobs tr[data-job-queue=task-processing] a").click()
    expect(page.locator("body")).to_contain_text("assistant.sync_task")
