"""`manage.py create_api_key USER [--name NAME]`: print a new API key once."""
from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from jobs.api.auth import create_api_key


class Command(BaseCommand):
    help = "Create an API key for a user and print it; only its hash is stored, so it cannot be shown again."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="cli")

    def handle(self, *args: Any, **opts: Any) -> None:
        user = get_user_model().objects.filter(username=opts["username"]).first()
        if user is None:
            raise CommandError(f"no user {opts['username']!r}")
        key, raw = create_api_key(user=user, name=opts["name"])
        self.stdout.write(raw)
        self.stderr.write(f"API key {key.prefix}… for {user}: send it as 'Authorization: Bearer <key>'. It will not be shown again.")
