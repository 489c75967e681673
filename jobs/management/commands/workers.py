"""`manage.py workers [--json] [--state alive|stale|stopped]`: the console's Workers page from a shell."""
from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand
from django.template.defaultfilters import filesizeformat

from jobs.workers import STATES, WorkerRow, worker_rows


def job_cell(w: WorkerRow) -> str:
    """The running job: its short id and type, with progress and message when the job row is still there."""
    job = w["job"]
    if job is None:
        return w["current_job"][:8] or "-"
    text = f"{job['id'][:8]} {job['type']} {job['progress']}%"
    return f"{text} {job['message']}" if job["message"] else text


class Command(BaseCommand):
    help = "List the workers seen in the last hour (alive, stale, stopped) with their current job, memory and heartbeats."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--state", choices=STATES, help="only workers in this state")
        parser.add_argument("--json", action="store_true", help="the rows as JSON (the Workers page's data)")

    def handle(self, *args: Any, **opts: Any) -> None:
        rows = [w for w in worker_rows() if opts.get("state") in (None, w["state"])]
        if opts.get("json"):
            self.stdout.write(json.dumps(rows, indent=2))
            return
        header = f"{'state':<8} {'host':<20} {'pid':>7} {'mode':<9} {'queues':<24} {'done':>7} {'rss':>9} {'beat':>8}  {'started':<19}  current job"
        self.stdout.write(header)
        for w in sorted(rows, key=lambda r: STATES.index(r["state"])):
            rss = str(filesizeformat(w["rss"])).replace("\xa0", " ") if w["rss"] is not None else "-"
            self.stdout.write(
                f"{w['state']:<8} {w['hostname'][:20]:<20} {w['pid']:>7} {w['mode']:<9} {','.join(w['queues'])[:24]:<24} "
                f"{w['jobs_done']:>7} {rss:>9} {w['age']:>7.1f}s  {w['started_at'][:19]:<19}  {job_cell(w)}"
            )
        self.stdout.write(f"{len(rows)} worker(s); names: " + ", ".join(w["name"] for w in rows) if rows else "no worker seen in the last hour")
