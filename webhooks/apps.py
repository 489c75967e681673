from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the hook that marks a delivery failed once its job has given up."""
        from jobs import services as job_services
        from webhooks import services

        job_services.register_hook("webhooks.outcome", services.record_outcome)
