from django.apps import AppConfig


class TranscriptionConfig(AppConfig):
    name = "transcription"
    verbose_name = "Transcription"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the hook that records each transcription job's changes on its row."""
        from jobs import services as job_services
        from transcription import services

        job_services.register_hook("transcription.outcome", services.record_outcome)
