"""`manage.py scheduler`: promote delayed jobs, recover stalled ones, reconcile, retention, stats."""
from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand

from jobs.engine.scheduler import Scheduler


class Command(BaseCommand):
    help = "Run the engine's scheduler loop (one per deployment is enough; more are safe)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tick", type=float, default=0.5, help="seconds between ticks")
        parser.add_argument("--reconcile-every", type=float, default=60.0)
        parser.add_argument("--once", action="store_true", help="run one tick and exit")

    def handle(self, *args: Any, **opts: Any) -> None:
        scheduler = Scheduler(tick=opts["tick"], reconcile_every=opts["reconcile_every"])
        if opts["once"]:
            scheduler.tick()
            return

        def stop(signum: int, frame: Any) -> None:
            scheduler.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write("scheduler running")
        scheduler.run()
