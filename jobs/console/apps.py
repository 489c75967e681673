"""The operator console: the engine's pages in the Django admin, with their templates and static files."""
from __future__ import annotations

from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "jobs.console"
    label = "jobs_console"
    verbose_name = "Job console"
