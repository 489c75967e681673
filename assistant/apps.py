from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "assistant"
    verbose_name = "Voice assistant"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the hook that moves a command on when a job it waits for ends (its transcription), and
        the one that fails an email whose send job ended otherwise (a cancel, a timeout); and the events topics: a command's jobs ("command", its id) and a user's notifications."""
        from assistant import mail, notify, services
        from events.topics import register_topic
        from jobs import services as job_services

        job_services.register_hook("assistant.commands", services.on_job_change)
        job_services.register_hook("assistant.emails", mail.record_outcome)
        register_topic("command", services.can_see_command)
        notify.register()
