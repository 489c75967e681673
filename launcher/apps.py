"""Platform start-up on one machine: `manage.py serve` (web, workers, scheduler, an embedded Redis) and `ensure_admin`."""
from __future__ import annotations

from django.apps import AppConfig


class LauncherConfig(AppConfig):
    name = "launcher"
    verbose_name = "Launcher"
