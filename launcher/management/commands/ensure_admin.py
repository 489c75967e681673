"""`manage.py ensure_admin`: make sure a first superuser exists and say how to log in.

Username and password come from ADMIN_USERNAME / ADMIN_PASSWORD (settings, read by config.env);
without a password one is generated and written, mode 0600, to var/admin-password.txt. It is
printed once, when the user is created; later runs only point at the file, and drop the file
once the password has been changed so that a stale password is never shown again.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from config.env import VAR_DIR
from jobs.access import User
from launcher.embedded import admin_request

PASSWORD_FILE = VAR_DIR / "admin-password.txt"


class Command(BaseCommand):
    help = "Create the first admin user if there is none (ADMIN_USERNAME, ADMIN_PASSWORD) and print how to log in."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000/admin/", help="console URL to print")
        parser.add_argument("--password-file", type=Path, default=PASSWORD_FILE)

    def handle(self, *args: Any, **opts: Any) -> None:
        request = admin_request(settings.ADMIN_USERNAME, settings.ADMIN_PASSWORD)
        users = get_user_model()._default_manager
        password_file: Path = opts["password_file"]
        user = users.filter(username=request.username).first()
        if user is None and not request.username_given:
            others = list(users.filter(is_superuser=True).values_list("username", flat=True)[:5])
            if others:
                self.stdout.write(f"admin users exist ({', '.join(others)}); log in at {opts['url']}")
                return
        if user is not None:
            self._report_existing(user, password_file, opts["url"])
            return
        users.create_superuser(username=request.username, email="", password=request.password)
        where = ""
        if request.generated:
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.touch(mode=0o600)
            password_file.chmod(0o600)
            password_file.write_text(request.password + "\n")
            where = f" (saved in {_shown(password_file)})"
        self.stdout.write(self.style.SUCCESS(f"created admin user {request.username!r}"))
        self.stdout.write(f"log in at {opts['url']} as {request.username} / {request.password}{where}")

    def _report_existing(self, user: User, password_file: Path, url: str) -> None:
        saved = password_file.read_text().strip() if password_file.exists() else ""
        if saved and user.check_password(saved):
            self.stdout.write(f"log in at {url} as {user.username}; password in {_shown(password_file)}")
            return
        if saved:
            password_file.unlink()  # changed since we generated it: never show the old one again
        self.stdout.write(f"log in at {url} as {user.username} with the password you set")


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
