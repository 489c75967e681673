from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Job engine"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from jobs.engine import registry

        registry.autodiscover()
