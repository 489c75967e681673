"""The review panel in a real browser: the STT transcript's segments played from the source audio and edited in
place, the edit approved into MT's input, then MT's translation shown side by side, all without a reload.

Served like test_project_page.py: uvicorn (HTTP, the events WebSocket, the source media with Range) and a
real `manage.py worker` for the stt and mt queues, on the test database, with the loopback provider.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest
from django.urls import reverse

from pipelines.models import StageReview, StageRun
from tests.browser.conftest import log_in, screenshot
from tests.browser.test_project_page import STAGE_TIMEOUT, asgi_server, stage_env  # noqa: F401 (fixtures)
from tests.pipelines.conftest import Provider, make_project, media, provider, video  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

EDITED = "Please send the weekly figures to the whole team."


def test_a_reviewer_plays_edits_and_approves_a_transcript_then_reviews_the_translation(
    page: Any, asgi_server: str, operator: Any, make_project: Callable[..., Any],  # noqa: F811 (fixtures)
    worker_process: Callable[..., subprocess.Popen], stage_env: dict[str, str], media: Path, provider: Provider,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    project = make_project(operator)
    log_in(page, asgi_server, operator)
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(asgi_server + reverse("admin:pipelines_project_live", args=[project.pk]))
    expect(page.locator("#jc-socket")).to_have_attribute("data-state", "live")
    expect(page.locator("#jc-review")).to_be_hidden()
    page.evaluate("window.__sameDocument = true")

    # The real STT stage runs; the panel appears with its segments, without a reload.
    worker_process("stt", "mt", env=stage_env)
    panel = page.locator('#jc-review .jc-review-panel[data-stage="STT"]')
    expect(panel).to_be_visible(timeout=STAGE_TIMEOUT)
    stt = StageRun.objects.get(project=project, stage="STT")
    segments = stt.output["segments"]
    rows = panel.locator("tr[data-segment]")
    expect(rows).to_have_count(len(segments))
    expect(rows.first.locator('textarea[data-field="text"]')).to_have_value(segments[0]["text"])
    expect(rows.first.locator('textarea[data-field="text"]')).to_be_editable()  # review.js lifted readonly

    # Play the last segment: the audio seeks to its start (from elsewhere), plays, and stops at its end.
    index = len(segments) - 1
    start, end = segments[index]["start"], segments[index]["end"]
    audio = page.locator("#jc-source-audio")
    audio.evaluate("(a, t) => { a.currentTime = t; }", min(end - 0.2, start + 2.5))  # not at the segment's start
    rows.nth(index).locator("button.jc-play").click()
    page.wait_for_function("() => { const a = document.getElementById('jc-source-audio'); return !a.paused && a.currentTime > 0; }", timeout=15_000)
    position = page.evaluate("document.getElementById('jc-source-audio').currentTime")
    assert start <= position < start + 1.5, (position, start, end)
    page.wait_for_function("() => document.getElementById('jc-source-audio').paused", timeout=int((end - start) * 1000) + 10_000)
    stopped = page.evaluate("document.getElementById('jc-source-audio').currentTime")
    assert end - 0.05 <= stopped < end + 0.5, (stopped, end)
    # Seeking works because the source is served by ranges: the whole file is seekable.
    assert audio.evaluate("a => a.seekable.length === 1 && a.seekable.end(0) >= 3.5") is True

    # Edit the first segment in place and approve.
    text = rows.first.locator('textarea[data-field="text"]')
    text.fill(EDITED)
    expect(text).to_have_class("jc-edited")
    screenshot(page, "stage_review_stt")
    page.locator('#jc-review form[data-op="approve"] button').click()
    expect(page.locator("#jc-review-result")).to_contain_text("stage STT approved with edits")
    mt_run = StageRun.objects.get(project=project, stage="MT")
    assert mt_run.input["segments"][0]["text"] == EDITED  # the next stage's input holds the edit
    assert [(s["start"], s["end"]) for s in mt_run.input["segments"]] == [(s["start"], s["end"]) for s in segments]
    assert StageReview.objects.get(stage_run=stt).approved_output == mt_run.input
    assert StageRun.objects.get(pk=stt.pk).output == stt.output  # the transcript as the job returned it is kept

    # MT translates the edited text; its panel shows source and target side by side, still without a reload.
    mt_panel = page.locator('#jc-review .jc-review-panel[data-stage="MT"]')
    expect(mt_panel).to_be_visible(timeout=STAGE_TIMEOUT)
    first = mt_panel.locator("tr[data-segment]").first
    expect(first.locator('[data-field="source"]')).to_have_text(EDITED)
    expect(first.locator('textarea[data-field="text"]')).to_have_value(EDITED.upper())
    expect(mt_panel.locator("thead")).to_contain_text("Source (en)")
    expect(mt_panel.locator("thead")).to_contain_text("Target (fr)")
    assert provider.requests[0]["segments"][0]["text"] == EDITED
    assert page.evaluate("window.__sameDocument") is True
    screenshot(page, "stage_review_mt")
    project.refresh_from_db()
    assert (project.status, project.current_stage) == ("awaiting_review", "MT")
