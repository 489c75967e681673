"""`manage.py transcribe FILE [--model --format --tier --language --owner --wait]`."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from jobs.exceptions import JobsError
from jobs.management.commands._progress import Progress
from jobs.models import Job
from transcription import selectors, services
from transcription.models import Transcription


class Command(BaseCommand):
    help = "Transcribe an audio file through the queue; --wait shows progress and prints the transcript."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file")
        parser.add_argument("--model", default="TINY", choices=Transcription.Model.values)
        parser.add_argument("--format", default="TXT", choices=Transcription.Format.values)
        parser.add_argument("--tier", default="FREE", choices=Transcription.Tier.values)
        parser.add_argument("--language", default=None)
        parser.add_argument("--owner", default=None, help="username (default: the first superuser)")
        parser.add_argument("--wait", action="store_true", help="wait for the result and print it")
        parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait with --wait")

    def handle(self, *args: Any, **opts: Any) -> None:
        path = Path(opts["file"])
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        users = get_user_model().objects
        owner = users.filter(username=opts["owner"]).first() if opts["owner"] else users.filter(is_superuser=True).order_by("pk").first()
        if owner is None:
            raise CommandError("no owner: pass --owner USERNAME (or create a superuser)")
        try:
            with path.open("rb") as fh:
                row, job = services.request_transcription(
                    owner=owner, upload=fh, upload_name=path.name, model=opts["model"], format=opts["format"], tier=opts["tier"], language=opts["language"]
                )
        except JobsError as exc:
            raise CommandError(exc.message) from None
        self.stderr.write(f"transcription {row.id}, job {job.id} ({job.status}) on queue {job.queue}")
        if opts["wait"]:
            self._wait(row, job, opts["timeout"])

    def _wait(self, row: Transcription, job: Job, timeout: float) -> None:
        bar = Progress(100, "transcribe", self.stderr)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job.refresh_from_db()
            bar.done = job.progress
            bar.show()
            if job.status in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.5)
        bar.finish()
        if job.status != "completed":
            raise CommandError(f"job {job.id} is {job.status}: {job.failed_reason or 'still running (timeout)'}")
        row.refresh_from_db()
        self.stdout.write(selectors.result_text(row))
