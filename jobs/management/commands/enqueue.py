"""`manage.py enqueue TYPE [--payload JSON] [--priority P] [--delay S] [--count N]`."""
from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from jobs import services
from jobs.exceptions import JobsError
from jobs.management.commands._progress import Progress


class Command(BaseCommand):
    help = "Enqueue jobs of a registered type."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("type")
        parser.add_argument("--payload", default="{}", help="JSON object")
        parser.add_argument("--priority", default=None, help="integer or FREE/PRO/PAYG/LOW/NORMAL/HIGH/CRITICAL")
        parser.add_argument("--delay", type=float, default=None, help="seconds before the job may run")
        parser.add_argument("--count", type=int, default=1, help="how many identical jobs")
        parser.add_argument("--owner", default=None, help="username")
        parser.add_argument("--idempotency-key", default=None)

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            payload = json.loads(opts["payload"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--payload is not JSON: {exc}") from None
        owner = None
        if opts["owner"]:
            owner = get_user_model().objects.filter(username=opts["owner"]).first()
            if owner is None:
                raise CommandError(f"no user {opts['owner']!r}")
        def spec() -> services.JobSpec:
            return services.JobSpec(type=opts["type"], payload=payload, priority=opts["priority"], delay=opts["delay"], owner=owner)

        try:
            if opts["count"] == 1:
                one = spec()
                one.idempotency_key = opts["idempotency_key"]
                job, created = services.enqueue(one)
                self.stdout.write(f"{job.id} {job.status}{'' if created else ' (existing job for this idempotency key)'}")
                return
            bar = Progress(opts["count"], "enqueue", self.stdout)
            batch = 1000
            for start in range(0, opts["count"], batch):
                n = min(batch, opts["count"] - start)
                services.enqueue_many([spec() for _ in range(n)])
                bar.advance(n)
            bar.finish()
        except JobsError as exc:
            raise CommandError(f"{exc.message} {json.dumps(exc.extra) if exc.extra else ''}".strip()) from None
