"""`manage.py schedules [list|show|add|edit|enable|disable|run|delete]`: recurring jobs from a shell (audited as cli)."""
from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from jobs import selectors, services
from jobs.engine import schedules
from jobs.exceptions import JobsError


class Command(BaseCommand):
    help = "List, show, add, edit, enable, disable, run now or delete recurring jobs (schedules)."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action")
        sub.add_parser("list")
        show = sub.add_parser("show", help="a schedule and its next 5 times in its timezone")
        show.add_argument("name")
        for verb in ("add", "edit"):
            p = sub.add_parser(verb)
            p.add_argument("name")
            if verb == "add":
                p.add_argument("job_type")
                p.add_argument("cron", help="five fields, or six with seconds first; quote it")
            else:
                p.add_argument("--job-type", dest="job_type")
                p.add_argument("--cron")
            p.add_argument("--payload", help="a JSON object")
            p.add_argument("--queue")
            p.add_argument("--priority")
            p.add_argument("--timezone")
            p.add_argument("--missed", choices=["skip", "run_once"])
            p.add_argument("--grace", type=float, help="seconds a missed slot may be late and still run once")
            if verb == "add":
                p.add_argument("--disabled", action="store_true")
        for verb in ("enable", "disable", "run", "delete"):
            sub.add_parser(verb).add_argument("name")

    def handle(self, *args: Any, **opts: Any) -> None:
        action = opts.get("action") or "list"
        try:
            getattr(self, f"_{action}")(opts)
        except JobsError as exc:
            raise CommandError(f"{exc.message}: {json.dumps(exc.extra)}" if exc.extra else exc.message) from None

    def _list(self, opts: dict[str, Any]) -> None:
        rows = selectors.schedules()
        self.stdout.write(f"{len(rows)} schedules")
        for s in rows:
            state = "on " if s.enabled else "off"
            nxt = f"{s.next_fire_at:%Y-%m-%d %H:%M:%S}" if s.next_fire_at else "-"
            last = f"{s.last_job.status}" if s.last_job else "-"
            self.stdout.write(f"{state} {s.name:<24} {s.cron:<18} {s.timezone:<16} next {nxt} UTC  last {last}  -> {s.job_type}")

    def _show(self, opts: dict[str, Any]) -> None:
        s = selectors.schedule(name=opts["name"])
        self.stdout.write(f"{s.name}: {s.job_type} {json.dumps(s.payload)} every {s.cron!r} ({s.timezone}), {'enabled' if s.enabled else 'disabled'}, missed: {s.missed}")
        for t in schedules.next_times(s.cron, s.timezone):
            self.stdout.write(f"  {t.isoformat()}")

    def _options(self, opts: dict[str, Any]) -> dict[str, Any]:
        out = {k: opts[k] for k in ("queue", "priority", "timezone", "missed", "grace", "job_type", "cron") if opts.get(k) is not None}
        if opts.get("payload") is not None:
            try:
                out["payload"] = json.loads(opts["payload"])
            except json.JSONDecodeError as exc:
                raise CommandError(f"--payload is not JSON: {exc}") from None
        return out

    def _add(self, opts: dict[str, Any]) -> None:
        s = services.create_schedule(name=opts["name"], enabled=not opts["disabled"], source="cli", **self._options(opts))
        self.stdout.write(f"added {s.name}; next {s.next_fire_at.isoformat() if s.next_fire_at else '- (disabled)'}")

    def _edit(self, opts: dict[str, Any]) -> None:
        s = services.update_schedule(selectors.schedule(name=opts["name"]).pk, source="cli", **self._options(opts))
        self.stdout.write(f"changed {s.name}; next {s.next_fire_at.isoformat() if s.next_fire_at else '- (disabled)'}")

    def _enable(self, opts: dict[str, Any]) -> None:
        s = services.set_schedule_enabled(selectors.schedule(name=opts["name"]).pk, enabled=True, source="cli")
        self.stdout.write(f"enabled {s.name}; next {s.next_fire_at.isoformat() if s.next_fire_at else '-'}")

    def _disable(self, opts: dict[str, Any]) -> None:
        s = services.set_schedule_enabled(selectors.schedule(name=opts["name"]).pk, enabled=False, source="cli")
        self.stdout.write(f"disabled {s.name}")

    def _run(self, opts: dict[str, Any]) -> None:
        job = services.run_schedule_now(selectors.schedule(name=opts["name"]).pk, source="cli")
        self.stdout.write(f"enqueued job {job.id} on {job.queue}")

    def _delete(self, opts: dict[str, Any]) -> None:
        services.delete_schedule(selectors.schedule(name=opts["name"]).pk, source="cli")
        self.stdout.write(f"deleted {opts['name']}")
