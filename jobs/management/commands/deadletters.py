"""`manage.py deadletters [list|retry ID...|retry --all]`: review the dead-letter queue from a shell."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from jobs import selectors, services
from jobs.management.commands._progress import Progress


class Command(BaseCommand):
    help = "List open dead letters, or retry them (each retry is a new job with the same input)."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action")
        ls = sub.add_parser("list")
        ls.add_argument("--queue")
        ls.add_argument("--kind", help="error kind, e.g. TRANSIENT, VALIDATION")
        ls.add_argument("--limit", type=int, default=50)
        retry = sub.add_parser("retry")
        retry.add_argument("job_ids", nargs="*")
        retry.add_argument("--all", action="store_true", help="every open dead letter (with --queue/--kind filters)")
        retry.add_argument("--queue")
        retry.add_argument("--kind")

    def _open(self, opts: dict[str, Any]) -> Any:
        qs = selectors.open_dead_letters().order_by("created_at")
        if opts.get("queue"):
            qs = qs.filter(queue=opts["queue"])
        if opts.get("kind"):
            qs = qs.filter(error_kind=opts["kind"].upper())
        return qs

    def handle(self, *args: Any, **opts: Any) -> None:
        action = opts.get("action") or "list"
        if action == "list":
            qs = self._open(opts)
            self.stdout.write(f"{qs.count()} open dead letters")
            for dl in qs[: opts.get("limit", 50)]:
                self.stdout.write(f"{dl.job_id}  {dl.queue:<16} {dl.error_kind:<11} {dl.created_at:%Y-%m-%d %H:%M:%S}  {dl.reason[:80]}")
            return
        ids = list(opts["job_ids"])
        if opts["all"]:
            ids += list(self._open(opts).values_list("job_id", flat=True))
        if not ids:
            raise CommandError("name job ids or use --all")
        bar = Progress(len(ids), "retry", self.stdout)
        retried, skipped = services.retry_dead_letters(ids, source="cli", progress=bar.advance)
        bar.finish()
        for job_id, why in skipped.items():
            self.stderr.write(f"{job_id}: {why}")
        self.stdout.write(f"retried {len(retried)} dead letters as new jobs; {len(skipped)} skipped")
