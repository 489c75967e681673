"""App config: registers the pipeline's completion hook with the job engine."""
from __future__ import annotations

from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "pipelines"
    verbose_name = "Pipelines"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from events import topics
        from jobs import services as job_services
        from pipelines import selectors, services

        job_services.register_hook("pipelines.advance", services.on_job_change)
        topics.register_topic("project", selectors.can_see)
