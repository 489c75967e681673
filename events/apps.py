"""App config: registers the broadcast hook with the job engine and the built-in topics."""
from __future__ import annotations

from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the jobs hook that forwards every change, and the "job" and "queue" topics."""
        from events import broadcast, topics
        from jobs import services

        topics.register_builtin()
        services.register_hook("events.broadcast", broadcast.on_job_change)
