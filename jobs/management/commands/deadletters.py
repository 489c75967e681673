"""`manage.py deadletters [list|groups|retry ID...|retry --all|retry --group FP|discard --group FP]`: review the dead-letter
queue from a shell, one by one or grouped by error fingerprint (the console's Dead letters by error)."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from jobs import deadletters, selectors, services
from jobs.exceptions import JobsError
from jobs.management.commands._progress import Progress


class Command(BaseCommand):
    help = "List open dead letters (one by one, or grouped by error), or retry them (each retry is a new job with the same input) or discard a group."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action")
        ls = sub.add_parser("list")
        ls.add_argument("--queue")
        ls.add_argument("--kind", help="error kind, e.g. TRANSIENT, VALIDATION")
        ls.add_argument("--group", help="an error group's fingerprint (from `groups`)")
        ls.add_argument("--limit", type=int, default=50)
        groups = sub.add_parser("groups", help="open dead letters grouped by error fingerprint, largest first")
        groups.add_argument("--queue")
        groups.add_argument("--kind")
        groups.add_argument("--limit", type=int, default=50)
        retry = sub.add_parser("retry")
        retry.add_argument("job_ids", nargs="*")
        retry.add_argument("--all", action="store_true", help="every open dead letter (with --queue/--kind filters)")
        retry.add_argument("--group", help="every open dead letter of this error group (a fingerprint from `groups`)")
        retry.add_argument("--queue")
        retry.add_argument("--kind")
        discard = sub.add_parser("discard", help="mark a group's open letters reviewed; the failed jobs stay")
        discard.add_argument("--group", required=True, help="the error group's fingerprint (from `groups`)")

    def _open(self, opts: dict[str, Any]) -> Any:
        qs = selectors.open_dead_letters().order_by("created_at")
        if opts.get("queue"):
            qs = qs.filter(queue=opts["queue"])
        if opts.get("kind"):
            qs = qs.filter(error_kind=opts["kind"].upper())
        if opts.get("group"):
            qs = qs.filter(fingerprint=opts["group"])
        return qs

    def handle(self, *args: Any, **opts: Any) -> None:
        action = opts.get("action") or "list"
        try:
            getattr(self, f"_{action}")(opts)
        except JobsError as exc:
            raise CommandError(f"{exc.message} {exc.extra or ''}".strip()) from exc

    def _list(self, opts: dict[str, Any]) -> None:
        qs = self._open(opts)
        self.stdout.write(f"{qs.count()} open dead letters")
        for dl in qs[: opts.get("limit", 50)]:
            self.stdout.write(f"{dl.job_id}  {dl.queue:<16} {dl.error_kind:<11} {dl.created_at:%Y-%m-%d %H:%M:%S}  {dl.reason[:80]}")

    def _groups(self, opts: dict[str, Any]) -> None:
        found = deadletters.groups(queue=opts.get("queue") or "", error_kind=(opts.get("kind") or "").upper(), limit=opts.get("limit", 50))
        largest = " (the largest)" if len(found) == opts.get("limit", 50) else ""
        self.stdout.write(f"{sum(g.count for g in found)} open dead letters in {len(found)} groups{largest}")
        for g in found:
            queues = ", ".join(f"{name} {n}" for name, n in g.queues.items())
            self.stdout.write(f"{g.fingerprint}  {g.count:>7}  {g.first_seen:%Y-%m-%d %H:%M:%S} .. {g.last_seen:%Y-%m-%d %H:%M:%S}  [{queues}]  {g.signature}")

    def _retry(self, opts: dict[str, Any]) -> None:
        if opts.get("group"):
            bar = Progress(deadletters.group(opts["group"]).count, "retry", self.stdout)
            retried, skipped = deadletters.retry_group(opts["group"], source="cli", progress=bar.advance)
        else:
            ids = list(opts["job_ids"])
            if opts["all"]:
                ids += list(self._open(opts).values_list("job_id", flat=True))
            if not ids:
                raise CommandError("name job ids, or use --all or --group")
            bar = Progress(len(ids), "retry", self.stdout)
            retried, skipped = services.retry_dead_letters(ids, source="cli", progress=bar.advance)
        bar.finish()
        for job_id, why in skipped.items():
            self.stderr.write(f"{job_id}: {why}")
        self.stdout.write(f"retried {len(retried)} dead letters as new jobs; {len(skipped)} skipped")

    def _discard(self, opts: dict[str, Any]) -> None:
        bar = Progress(deadletters.group(opts["group"]).count, "discard", self.stdout)
        done = deadletters.discard_group(opts["group"], source="cli", progress=bar.advance)
        bar.finish()
        self.stdout.write(f"discarded {done} dead letters; their failed jobs stay")
