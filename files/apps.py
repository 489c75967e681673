from django.apps import AppConfig


class FilesConfig(AppConfig):
    name = "files"
    verbose_name = "Files"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the hook that records the outcome of each file job on its file."""
        from files import services
        from jobs import services as job_services

        job_services.register_hook("files.outcome", services.record_outcome)
