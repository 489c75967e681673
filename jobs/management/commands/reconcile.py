"""`manage.py reconcile`: hand waiting jobs that Redis lost back to RQ, restore paused queues."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from jobs.engine import scheduler


class Command(BaseCommand):
    help = "Reconcile Redis with the database now (the scheduler does this every minute)."

    def handle(self, *args: Any, **opts: Any) -> None:
        promoted = scheduler.promote_due()
        recovered = scheduler.recover_stalled()
        report = scheduler.reconcile()
        self.stdout.write(
            f"re-queued {report.pushed} waiting jobs, promoted {promoted} due delayed jobs, "
            f"recovered {recovered} stalled jobs, paused queues synced: {report.paused_synced}"
        )
