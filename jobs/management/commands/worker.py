"""`manage.py worker [queues] [--processes N | --threads N] [--burst]`: run engine workers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from jobs.engine import broker, conf, overrides
from jobs.exceptions import NotFound


class Command(BaseCommand):
    help = "Run a worker on the given queues (default: all); --processes N runs and supervises N worker processes."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("queues", nargs="*", help="queue names (default: every declared queue)")
        parser.add_argument("--group", help="run the queues of this worker group")
        parser.add_argument("--processes", type=int, default=1, help="worker processes to run and restart (default 1)")
        parser.add_argument("--threads", type=int, default=None, help="run one process of N job threads (default for a group of threads-mode queues: their largest concurrency)")
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
        if opts["threads"] or all(conf.get_queue(n).mode == "threads" for n in names):
            self._threads(names, opts)
            return
        if opts["processes"] > 1:
            self._supervise(names, opts)
            return
        from jobs.engine.worker import EngineWorker, wait_for_redis

        connections.close_all()
        wait_for_redis(broker.connection())
        worker = EngineWorker(names, name=opts["name"])
        self.stdout.write(f"worker {worker.name} listening on {', '.join(names)}")
        worker.work(burst=opts["burst"], logging_level="INFO", max_jobs=opts["max_jobs"])

    def _threads(self, names: list[str], opts: dict[str, Any]) -> None:
        """One process of job threads; replaced by a fresh one (exec, same pid) when a job's thread would not stop."""
        from jobs.engine.threads import RECYCLE, ThreadsWorker
        from jobs.engine.worker import wait_for_redis

        connections.close_all()
        wait_for_redis(broker.connection())
        worker = ThreadsWorker(names, threads=opts["threads"], name=opts["name"])
        self.stdout.write(f"worker {worker.name} running {len(worker.slots)} threads on {', '.join(names)}")
        self.stdout.flush()
        if worker.work(burst=opts["burst"], max_jobs=opts["max_jobs"]) == RECYCLE and not opts["burst"]:
            self.stderr.write(f"worker {worker.name}: a job's thread did not stop; replacing the process")
            sys.stdout.flush()
            sys.stderr.flush()
            os.execv(sys.executable, [sys.executable, *sys.argv])

    def _supervise(self, names: list[str], opts: dict[str, Any]) -> None:
        """Keep N single-process workers running; pass SIGTERM/SIGINT on and wait for them.

        A child that exits soon after it started (a database or Redis it cannot reach, a bad
        setting) is restarted after a wait that doubles each time, up to MAX_BACKOFF seconds; one
        that ran a while is restarted at once.
        """
        cmd = [sys.executable, sys.argv[0], "worker", *names]
        if opts["burst"]:
            cmd.append("--burst")
        stopping = False
        slots: list[Slot] = []

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True
            for slot in slots:
                if slot.proc is not None and slot.proc.poll() is None:
                    slot.proc.send_signal(signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        slots = [Slot(cmd) for _ in range(opts["processes"])]
        for slot in slots:
            slot.start()
        self.stdout.write(f"supervising {len(slots)} worker processes on {', '.join(names)}")
        next_check = time.monotonic() + overrides.TTL
        while True:
            alive = False
            now = time.monotonic()
            if not (stopping or opts["burst"]) and now >= next_check:
                next_check = now + overrides.TTL
                self._scale(slots, cmd, names, started_with=opts["processes"])
            for slot in list(slots):
                if slot.proc is not None and slot.proc.poll() is None:
                    alive = True
                    continue
                if slot.retiring:
                    slots.remove(slot)
                    continue
                if stopping or opts["burst"]:
                    continue
                alive = True
                if slot.proc is not None:
                    wait = slot.exited(now)
                    self.stderr.write(f"worker process {slot.proc.pid} exited with {slot.proc.returncode}; starting another in {wait:g}s")
                    slot.proc = None
                if now >= slot.restart_at:
                    slot.start()
            if not alive:
                return
            time.sleep(0.5)

    def _scale(self, slots: list["Slot"], cmd: list[str], names: list[str], *, started_with: int) -> None:
        """Match the number of processes to a concurrency override (jobs.engine.overrides): start more, or ask the
        newest to stop (SIGTERM: each finishes its job first)."""
        try:
            want = overrides.processes_for(names, started_with=started_with)
        except Exception as exc:  # the database is away: keep what runs
            self.stderr.write(f"overrides not read ({exc}); keeping {len(slots)} processes")
            connections.close_all()
            return
        serving = [s for s in slots if not s.retiring]
        if want > len(serving):
            for _ in range(want - len(serving)):
                slot = Slot(cmd)
                slot.start()
                slots.append(slot)
            self.stdout.write(f"concurrency override: {want} worker processes")
        elif want < len(serving):
            for slot in serving[want:]:
                slot.retiring = True
                if slot.proc is not None and slot.proc.poll() is None:
                    slot.proc.send_signal(signal.SIGTERM)
            self.stdout.write(f"concurrency override: {want} worker processes (stopping {len(serving) - want})")
        self.stdout.flush()


#: Longest wait before restarting a worker process that keeps exiting at once.
MAX_BACKOFF = 30.0
#: A child that ran at least this long was healthy: its next restart waits nothing.
HEALTHY_AFTER = 60.0


class Slot:
    """One supervised worker process and its restart backoff."""

    def __init__(self, cmd: list[str]) -> None:
        self.cmd = cmd
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.backoff = 0.0
        self.restart_at = 0.0
        #: Asked to stop for a smaller concurrency: not restarted, dropped once it exits.
        self.retiring = False

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd)
        self.started = time.monotonic()

    def exited(self, now: float) -> float:
        """Note an exit; returns how long to wait before the next start."""
        self.backoff = 0.0 if now - self.started >= HEALTHY_AFTER else min(max(self.backoff * 2, 1.0), MAX_BACKOFF)
        self.restart_at = now + self.backoff
        return self.backoff
