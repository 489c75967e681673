from django.apps import AppConfig


class TranscriptionConfig(AppConfig):
    name = "transcription"
    verbose_name = "Transcription"
    default_auto_field = "django.db.models.BigAutoField"
