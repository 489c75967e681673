"""The live project page in a real browser: progress moving without a reload, then Approve starting the next stage.

pytest-django's live_server speaks WSGI only, so the page is served by uvicorn (config.asgi, HTTP and
the /ws/events WebSocket) in a subprocess on the test database, like the `manage.py worker` that runs
the stages; both get the test's media folder and loopback provider through the environment.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from django.conf import settings
from django.urls import reverse

from tests.browser.conftest import PASSWORD, serve_asgi
from tests.conftest import _test_db_url
from tests.pipelines.conftest import Provider, make_project, media, provider, video  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

STAGE_TIMEOUT = 180_000  # ms for a stage to be seen moving or done (the STT model may load slowly)


@pytest.fixture
def stage_env(media: Path, provider: Provider) -> dict[str, str]:  # noqa: F811 (fixture)
    """What the subprocesses need to see the same data as this test."""
    return {"DATABASE_URL": _test_db_url(), "REDIS_URL": settings.REDIS_URL, "MEDIA_ROOT": str(media), "STORAGE": "local",
            "PIPELINES_PROVIDER_URL": provider.url}


@pytest.fixture
def asgi_server(stage_env: dict[str, str]) -> Iterator[str]:
    """The web server (config.asgi: HTTP and the events WebSocket) seeing the same data as this test; its base URL."""
    with serve_asgi(stage_env) as url:
        yield url


def test_project_page_moves_live_and_approve_starts_the_next_stage(
    page: Any, asgi_server: str, operator: Any, make_project: Callable[..., Any],  # noqa: F811 (fixture)
    worker_process: Callable[..., subprocess.Popen], stage_env: dict[str, str],
) -> None:
    from playwright.sync_api import expect

    project = make_project(operator)  # its STT job waits: no worker runs yet
    page.goto(f"{asgi_server}/admin/login/?next=/admin/")
    page.fill("#id_username", operator.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{asgi_server}/admin/")

    # The project's change page links to its live page.
    page.goto(asgi_server + reverse("admin:pipelines_project_change", args=[project.pk]))
    page.click("#project-live-link")
    assert page.url == asgi_server + reverse("admin:pipelines_project_live", args=[project.pk])
    expect(page.locator("tr[data-stage]")).to_have_count(4)  # not premium: no LIP_SYNC
    stt, mt = page.locator('tr[data-stage="STT"]'), page.locator('tr[data-stage="MT"]')
    expect(stt.locator('[data-field="state"]')).to_have_text("waiting")
    expect(mt.locator('[data-field="state"]')).to_have_text("not started")
    expect(page.locator("#jc-socket")).to_have_attribute("data-state", "live")
    expect(page.locator("#jc-review")).to_be_hidden()
    assert stt.locator("progress").evaluate("p => p.value") == 0

    # A real worker runs STT, then MT, while the page stays open.
    page.evaluate("window.__sameDocument = true")
    worker_process("stt", "mt", env=stage_env)
    page.wait_for_function("document.querySelector('tr[data-stage=\"STT\"] progress').value > 0", timeout=STAGE_TIMEOUT)
    expect(stt.locator('[data-field="state"]')).to_have_text("awaiting review", timeout=STAGE_TIMEOUT)
    assert stt.locator("progress").evaluate("p => p.value") == 100
    expect(page.locator("#jc-project-status")).to_have_text("awaiting_review")
    expect(page.locator("#jc-review")).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True  # no reload

    page.locator('#jc-review form[data-op="approve"] button').click()
    expect(page.locator("#jc-review-result")).to_contain_text("stage STT approved")
    # MT then starts and moves live up to its own review, all in the same document.
    expect(mt.locator('[data-field="state"]')).to_have_text("awaiting review", timeout=STAGE_TIMEOUT)
    expect(mt.locator("progress")).to_have_js_property("value", 100)
    assert page.evaluate("window.__sameDocument") is True
    project.refresh_from_db()
    assert (project.status, project.current_stage) == ("awaiting_review", "MT")
