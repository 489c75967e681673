"""`manage.py queues [stats|pause Q|resume Q|clean Q]`: what the console's Queues page does."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from jobs import services
from jobs.engine import conf, stats
from jobs.exceptions import JobsError
from jobs.models import QueueState

COLUMNS = ["waiting", "active", "delayed", "completed", "failed", "cancelled"]


class Command(BaseCommand):
    help = "Show queue stats, or pause, resume or clean a queue (recorded in the audit log as source=cli)."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action")
        sub.add_parser("stats", help="counts per queue (default)")
        for name in ("pause", "resume"):
            sub.add_parser(name).add_argument("queue")
        clean = sub.add_parser("clean", help="remove old final jobs")
        clean.add_argument("queue")
        clean.add_argument("--status", default="completed", choices=["completed", "failed", "cancelled"])
        clean.add_argument("--grace", type=float, default=3600.0, help="only jobs that ended more than this many seconds ago")
        clean.add_argument("--limit", type=int, default=1000)

    def handle(self, *args: Any, **opts: Any) -> None:
        action = opts.get("action") or "stats"
        try:
            if action == "stats":
                self._stats()
            elif action in ("pause", "resume"):
                services.set_paused(opts["queue"], paused=action == "pause", source="cli")
                self.stdout.write(f"{opts['queue']}: {'paused' if action == 'pause' else 'resumed'}")
            elif action == "clean":
                n = services.clean(opts["queue"], status=opts["status"], grace=opts["grace"], limit=opts["limit"], source="cli")
                self.stdout.write(f"{opts['queue']}: removed {n} {opts['status']} jobs")
        except JobsError as exc:
            raise CommandError(exc.message) from None

    def _stats(self) -> None:
        counts = stats.counts()
        paused = set(QueueState.objects.filter(paused=True).values_list("name", flat=True))
        self.stdout.write(f"{'queue':<24}" + "".join(f"{c:>11}" for c in COLUMNS) + "  state")
        for name in conf.all_queues():
            row = counts.get(name, {})
            self.stdout.write(f"{name:<24}" + "".join(f"{row.get(c, 0):>11}" for c in COLUMNS) + ("  paused" if name in paused else "  running"))
