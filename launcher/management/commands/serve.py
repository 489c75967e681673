"""`manage.py serve`: the whole platform in one terminal, supervised by honcho.

First, in this process: migrate the database and make sure a first admin exists (`migrate`
and `ensure_admin`, without starting Python twice more). Then it starts uvicorn (config.asgi),
one `worker --group G --processes N` per queue group and the scheduler; when no Redis answers
at REDIS_URL it first starts the embedded one (launcher.embedded) and hands its URL to every
child. Ctrl-C or SIGTERM stops the children, then the embedded Redis, which the workers may
still need while they finish their jobs.
"""
from __future__ import annotations

import datetime
import shlex
import socket
import sys
import threading
from typing import Any

import honcho.manager
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from honcho.printer import Message

from config.env import BASE_DIR, VAR_DIR
from jobs import selectors
from launcher import embedded, web


def plan(*, host: str, port: int) -> list[tuple[str, list[str]]]:
    """The processes to run: (name, argv), in start order."""
    manage = [sys.executable, "manage.py"]
    procs = [("web", web.command(host, port, processes=settings.WEB_PROCESSES))]
    for group in selectors.worker_groups():
        procs.append((f"worker-{group.name}", [*manage, *group.argv]))
    procs.append(("scheduler", [*manage, "scheduler"]))
    return procs


class Command(BaseCommand):
    help = "Run the web server, one worker per queue group and the scheduler (and Redis if none answers)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address the web server binds (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=None, help="HTTP port (default: PORT, else 8000)")
        parser.add_argument("--redis-port", type=int, default=embedded.DEFAULT_PORT, help="port of the embedded Redis")
        parser.add_argument("--no-setup", action="store_true", help="do not migrate or ensure a first admin before starting")

    def handle(self, *args: Any, **opts: Any) -> None:
        port = opts["port"] or settings.SERVE_PORT
        if not opts["no_setup"]:
            call_command("migrate", interactive=False, verbosity=0)
            shown = "127.0.0.1" if opts["host"] in ("0.0.0.0", "::", "") else opts["host"]
            call_command("ensure_admin", url=f"http://{shown}:{port}/admin/", stdout=self.stdout)
        try:
            redis_url, redis = embedded.ensure_redis(settings.REDIS_URL, directory=VAR_DIR / "redis", port=opts["redis_port"])
        except embedded.EmbeddedError as exc:
            raise CommandError(str(exc)) from exc
        if redis is not None:
            self.stdout.write(f"no Redis at {settings.REDIS_URL}: started the embedded one at {redis_url} (data in var/redis/)")
        try:
            returncode = self._run(host=opts["host"], port=port, redis_url=redis_url)
        finally:
            if redis is not None:
                redis.stop()
                self.stdout.write("embedded Redis stopped")
        if returncode:
            sys.exit(returncode)

    def _run(self, *, host: str, port: int, redis_url: str) -> int:
        connections.close_all()  # honcho forks: children must not share our sockets
        # honcho SIGKILLs what is left KILL_WAIT s after the first child exits; give workers their grace.
        honcho.manager.KILL_WAIT = int(settings.JOBS_SHUTDOWN_GRACE) + 5
        manager = honcho.manager.Manager()
        env = embedded.child_environ(redis_url)
        for name, argv in plan(host=host, port=port):
            manager.add_process(name, "exec " + shlex.join(argv), env=env, cwd=str(BASE_DIR))
        done = threading.Event()
        threading.Thread(target=_announce, args=(manager, host, port, done), daemon=True).start()
        try:
            manager.loop()
        finally:
            done.set()
        # Stopped by Ctrl-C or SIGTERM with every child gone: a clean stop, not a failure.
        return 0 if manager.returncode in (130, 143) else int(manager.returncode or 0)


def _announce(manager: Any, host: str, port: int, done: threading.Event) -> None:
    """Once the web server accepts connections, print where the console is."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    base = f"http://{shown}:{port}"
    while not done.wait(0.2):
        try:
            with socket.create_connection((shown, port), timeout=0.5):
                break
        except OSError:
            continue
    else:
        return
    lines = [
        "jobconsole is up:",
        f"  console     {base}/admin/",
        f"  queues      {base}/admin/jobs/queues/",
        f"  API docs    {base}/api/docs/",
        "  Ctrl-C stops everything",
    ]
    for line in lines:
        manager.events.put(Message(type="line", data=line + "\n", time=datetime.datetime.now(), name="serve", colour=None))
