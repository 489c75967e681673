"""`manage.py worker [queues] [--processes N] [--burst]`: run engine workers."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from jobs.engine import conf
from jobs.exceptions import NotFound


class Command(BaseCommand):
    help = "Run a worker on the given queues (default: all); --processes N runs and supervises N worker processes."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("queues", nargs="*", help="queue names (default: every declared queue)")
        parser.add_argument("--group", help="run the queues of this worker group")
        parser.add_argument("--processes", type=int, default=1, help="worker processes to run and restart (default 1)")
        parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
        parser.add_argument("--name", help="worker name (default host.pid.random)")
        parser.add_argument("--max-jobs", type=int, default=None)

    def handle(self, *args: Any, **opts: Any) -> None:
        names = list(opts["queues"])
        if opts["group"]:
            group = conf.groups().get(opts["group"])
            if not group:
                raise CommandError(f"no worker group {opts['group']!r}; groups: {sorted(conf.groups())}")
            names += [q.name for q in group]
        names = names or list(conf.all_queues())
        try:
            names = [conf.get_queue(n).name for n in names]
        except NotFound as exc:
            raise CommandError(exc.message) from None
        if opts["processes"] > 1:
            self._supervise(names, opts)
            return
        from jobs.engine.worker import EngineWorker

        connections.close_all()
        worker = EngineWorker(names, name=opts["name"])
        self.stdout.write(f"worker {worker.name} listening on {', '.join(names)}")
        worker.work(burst=opts["burst"], logging_level="INFO", max_jobs=opts["max_jobs"])

    def _supervise(self, names: list[str], opts: dict[str, Any]) -> None:
        """Keep N single-process workers running; pass SIGTERM/SIGINT on and wait for them."""
        cmd = [sys.executable, sys.argv[0], "worker", *names]
        if opts["burst"]:
            cmd.append("--burst")
        procs: list[subprocess.Popen[bytes]] = []
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        procs = [subprocess.Popen(cmd) for _ in range(opts["processes"])]
        self.stdout.write(f"supervising {len(procs)} worker processes on {', '.join(names)}")
        while True:
            alive = False
            for i, p in enumerate(procs):
                code = p.poll()
                if code is None:
                    alive = True
                elif not stopping and not opts["burst"]:
                    self.stderr.write(f"worker process {p.pid} exited with {code}; starting another")
                    procs[i] = subprocess.Popen(cmd)
                    alive = True
            if not alive:
                return
            time.sleep(0.5)
