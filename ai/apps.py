from django.apps import AppConfig


class AiConfig(AppConfig):
    name = "ai"
    verbose_name = "AI text jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the hook that follows each AI job's engine job and sends its webhooks."""
        from ai import services
        from jobs import services as job_services

        job_services.register_hook("ai.outcome", services.record_outcome)
