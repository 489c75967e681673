"""The operator console: the engine's pages in the Django admin, with their templates and static files.

Two app configs: `jobs.console` itself (its templates, static files and admin registrations), and
ConsoleAdminConfig, which installs django.contrib.admin with the console's site as the default
site, so that the engine's own pages (the Queues page) live at admin URLs such as /admin/jobs/queues/.
"""
from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ConsoleConfig(AppConfig):
    name = "jobs.console"
    label = "jobs_console"
    verbose_name = "Job console"


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin, with jobs.console.site.ConsoleSite as `admin.site` (list it instead of django.contrib.admin)."""

    default = False
    default_site = "jobs.console.site.ConsoleSite"
