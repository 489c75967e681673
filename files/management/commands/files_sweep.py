"""Find objects under files/ without a row (orphans) and rows whose object is gone; --remove deletes the orphans."""
from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from files import services


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--remove", action="store_true", help="Delete the orphans found (default: report only).")
        parser.add_argument("--grace", type=float, default=None, help="Seconds an orphan must have existed (default: FILES_SWEEP_GRACE, 3600).")

    def handle(self, *args: Any, remove: bool, grace: float | None, **options: Any) -> None:
        report = services.sweep(remove=remove, grace=grace)
        self.stdout.write(json.dumps(report.as_dict()))
