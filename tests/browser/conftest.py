"""A real Chromium driven by Playwright against pytest-django's live server.

Uses the system's chromium (never `playwright install`); without it the tests skip locally and fail under CI=true (tests/tools.py).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests import tools

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PASSWORD = "console-test-password"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per module, closed (with Playwright's event loop) before other tests run."""
    tools.require("chromium", why="the browser tests drive it with Playwright")
    executable = shutil.which("chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with pytest.MonkeyPatch.context() as mp:
        # Playwright's sync API keeps an asyncio loop registered on this thread; the test's own ORM
        # calls are still synchronous, so Django's async-safety guard is lifted for these tests only.
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_api.sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
            try:
                yield chromium
            finally:
                chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page, with short default timeouts."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def operator(django_user_model: Any) -> Any:
    """A superuser to log in as; hashed with Django's default hasher, which a server in another process checks
    (the test process itself uses a fast one, conftest.py)."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"]):
        return django_user_model.objects.create_superuser("operator", email="ops@example.com", password=PASSWORD)


@pytest.fixture
def logged_in(page: Any, live_server: Any, operator: Any) -> Any:
    """The page, logged in to the admin as `operator`."""
    return log_in(page, live_server.url, operator)


SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def screenshot(page: Any, name: str, *, full_page: bool = False) -> Path:
    """Save the page at 1400x1000 (or all of it) under var/screenshots/ (not committed) for a reviewer to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": 1000})
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


@contextmanager
def serve_asgi(env: dict[str, str], *, start_timeout: float = 30.0) -> Iterator[str]:
    """The web server (uvicorn, as `manage.py serve` runs it: HTTP and the events WebSocket, which pytest-django's
    WSGI live_server lacks) on a free loopback port, with `env` added; yields its base URL."""
    from launcher import web
    from tests.conftest import ROOT
    from tests.net import free_port

    port = free_port()
    proc = subprocess.Popen(web.command("127.0.0.1", port, access_log=False), cwd=ROOT, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                with urllib.request.urlopen(url + "/admin/login/", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the web server did not start (exit code {proc.poll()})")
                time.sleep(0.2)
        yield url
    finally:
        tools.stop(proc)


def log_in(page: Any, base_url: str, user: Any) -> Any:
    """Log `user` (made by the `operator` fixture, or with PASSWORD) in to the admin at `base_url`."""
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/admin/")
    return page
