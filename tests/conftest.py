from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from jobs.engine import broker, conf
from tests import tools

ROOT = Path(__file__).resolve().parent.parent

#: Fixtures whose users are slow (they start processes) or need media tools: marked from their closure.
SLOW_FIXTURES = {"worker_process"}
MEDIA_FIXTURES = {"video"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by what they use: worker processes make a test `slow`, the pipelines' test video makes it `media`."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)
        if names & MEDIA_FIXTURES:
            item.add_marker(pytest.mark.media)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A `browser` test needs chromium, a `media` test ffmpeg and espeak-ng: skipped locally without them, failed under CI."""
    if item.get_closest_marker("browser"):
        tools.require("chromium", why="browser tests drive it with Playwright")
    if item.get_closest_marker("media"):
        tools.require("ffmpeg", "espeak-ng", why="media tests speak and encode real audio and video")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say plainly what a local run left out for want of a tool (CI fails instead)."""
    for tool, n in sorted(tools.SKIPPED.items()):
        terminalreporter.write_line(
            f"NOTE: {n} test(s) skipped because {tool} is not installed (apt-get install -y {tools.PACKAGES.get(tool, tool)}); CI=true fails them instead",
            yellow=True,
        )


@pytest.fixture(autouse=True)
def clean_redis() -> Iterator[Any]:
    """Every test starts with an empty Redis database of its own."""
    broker.reset_connection()
    conn = broker.connection()
    conn.flushdb()
    yield conn
    conn.flushdb()


@pytest.fixture
def alice() -> Any:
    """A non-staff user."""
    return get_user_model().objects.create_user("alice")


@pytest.fixture
def bob() -> Any:
    """Another non-staff user."""
    return get_user_model().objects.create_user("bob")


@pytest.fixture
def as_alice(alice: Any) -> Any:
    """An API client with a key of alice's."""
    from tests.clients import key_client

    return key_client(alice)


@pytest.fixture
def as_bob(bob: Any) -> Any:
    """An API client with a key of bob's."""
    from tests.clients import key_client

    return key_client(bob)


@pytest.fixture
def staff() -> Any:
    """A staff user (queue-wide operations)."""
    return get_user_model().objects.create_user("ops", is_staff=True)


@pytest.fixture
def as_staff(staff: Any) -> Any:
    """A signed-in operator's API client (session login)."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(staff)
    return client


@pytest.fixture
def queues(settings: Any) -> Callable[..., None]:
    """Declare extra queues for one test: queues(name={...})."""

    def declare(**defs: dict[str, Any]) -> None:
        settings.JOBS_QUEUES = {**settings.JOBS_QUEUES, **defs}
        conf.all_queues.cache_clear()

    yield declare
    conf.all_queues.cache_clear()


@pytest.fixture
def burst() -> Callable[..., Any]:
    """Run a real engine worker in burst mode in this process until its queues are empty."""
    from jobs.engine.worker import EngineWorker

    def run(*queue_names: str, max_jobs: int | None = None, **kwargs: Any) -> EngineWorker:
        worker = EngineWorker(list(queue_names) or ["default"], **kwargs)
        worker.work(burst=True, logging_level="WARNING", max_jobs=max_jobs)
        return worker

    return run


@pytest.fixture
def worker_process() -> Iterator[Callable[..., subprocess.Popen]]:
    """Start `manage.py worker` as a real subprocess; stopped (killed if need be) at the end."""
    procs: list[subprocess.Popen] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        full_env = {**os.environ, "DATABASE_URL": _test_db_url(), **(env or {})}
        p = subprocess.Popen([sys.executable, "manage.py", "worker", *args], cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


def _test_db_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db.get('USER') or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
