"""`manage.py create_api_key USER [--name NAME] [--create]`: print a new API key once."""
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
        parser.add_argument("--create", action="store_true", help="create the user first if there is none: a plain account (not staff, no password)")

    def handle(self, *args: Any, **opts: Any) -> None:
        users = get_user_model()._default_manager
        user = users.filter(username=opts["username"]).first()
        if user is None and opts["create"]:
            user = users.create_user(opts["username"])  # type: ignore[attr-defined]
            self.stderr.write(f"created user {user} (not staff: sees only its own jobs)")
        if user is None:
            raise CommandError(f"no user {opts['username']!r} (--create makes one)")
        key, raw = create_api_key(user=user, name=opts["name"])
        self.stdout.write(raw)
        self.stderr.write(f"API key {key.prefix}… for {user}: send it as 'Authorization: Bearer <key>'. It will not be shown again.")
