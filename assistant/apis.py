"""Seed 5's calls over HTTP: process a voice command, transcribe audio, send an email; and the assistant's
calendars, tasks and notifications. Thin views: the services validate, write and enqueue."""
from __future__ import annotations

from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from assistant import calendar, mail, notify, selectors, services, todo
from assistant.models import Command, Email, Task
from jobs import access
from jobs.api.errors import errors
from jobs.api.inputs import QueryDateTimeField, body, query
from jobs.api.serializers import TextField
from jobs.exceptions import NotFound

TAGS = ["assistant"]


# -- bodies -----------------------------------------------------------------------------------------


class CommandInputSerializer(serializers.Serializer):
    """Seed 5's processVoiceCommand `{userId, text, conversationId}`, or an audio command `{audio, mimeType, language}`."""

    conversationId = TextField(max_length=200, help_text="The conversation the command belongs to (the client's id).")
    text = TextField(required=False, allow_blank=True, max_length=services.MAX_TEXT, help_text="What the user said; or send `audio`.")
    audio = TextField(required=False, allow_blank=True, help_text="Base64 audio (seed 5's audioBuffer): transcribed first.")
    mimeType = TextField(required=False, allow_blank=True, max_length=100, help_text="The audio's type, e.g. audio/wav.")
    language = TextField(required=False, allow_blank=True, max_length=20, help_text="The audio's language code (default: detected).")
    userId = TextField(required=False, allow_blank=True, max_length=200, help_text="The client's id for its user: recorded, not used for access.")


class CommandAcceptedSerializer(serializers.Serializer):
    commandId = serializers.CharField()
    conversationId = serializers.CharField()
    jobId = serializers.CharField(help_text="The first job: voice-processing, or transcription for audio.")
    status = serializers.CharField(help_text="The command's status: UNDERSTANDING, or TRANSCRIBING for audio.")


class CommandJobSerializer(serializers.Serializer):
    id = serializers.CharField()
    queue = serializers.CharField()
    type = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.IntegerField()
    createdAt = serializers.DateTimeField(source="created_at")
    startedAt = serializers.DateTimeField(source="started_at", allow_null=True)
    completedAt = serializers.DateTimeField(source="completed_at", allow_null=True)


class CommandOutputSerializer(serializers.Serializer):
    """A command, the jobs it fanned out to (by queue) and its reply: text, and the spoken WAV's URL once stored."""

    id = serializers.CharField()
    conversationId = serializers.CharField(source="conversation_id")
    userId = serializers.CharField(source="user_ref")
    text = serializers.CharField()
    status = serializers.ChoiceField(choices=Command.Status.choices)
    intent = serializers.CharField()
    entities = serializers.DictField()
    understoodBy = serializers.CharField(source="understood_by", help_text="rules, or ai (the ai-processing queue).")
    reply = serializers.CharField(source="reply_text")
    replyAudioUrl = serializers.SerializerMethodField()
    failedReason = serializers.CharField(source="failed_reason")
    transcriptionId = serializers.CharField(source="transcription_id", allow_null=True)
    jobs = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")
    repliedAt = serializers.DateTimeField(source="replied_at", allow_null=True)

    def get_replyAudioUrl(self, row: Command) -> str | None:
        return selectors.reply_audio_url(row)

    @extend_schema(exclude=True)
    def get_jobs(self, row: Command) -> list[dict[str, Any]]:
        return CommandJobSerializer(selectors.command_jobs(row), many=True).data  # type: ignore[return-value]


class ConversationOutputSerializer(serializers.Serializer):
    conversationId = serializers.CharField()
    commands = CommandOutputSerializer(many=True)


class TranscribeInputSerializer(serializers.Serializer):
    """Seed 5's transcribeAudio `{userId, audioBuffer, mimeType, language}`, the audio as base64."""

    audio = TextField(help_text="Base64 audio.")
    mimeType = TextField(required=False, allow_blank=True, max_length=100)
    language = TextField(required=False, allow_blank=True, max_length=20)
    userId = TextField(required=False, allow_blank=True, max_length=200)


class EmailInputSerializer(serializers.Serializer):
    """Seed 5's sendEmail `{userId, to, subject, body}`; `to` is one address or a list."""

    to = serializers.JSONField(help_text="An address or a list of addresses.")
    subject = TextField(allow_blank=True, max_length=998)
    body = TextField(allow_blank=True, trim_whitespace=False)
    userId = TextField(required=False, allow_blank=True, max_length=200)


class EmailOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    to = serializers.ListField(child=serializers.CharField())
    subject = serializers.CharField()
    status = serializers.ChoiceField(choices=Email.Status.choices)
    messageId = serializers.CharField(source="message_id")
    error = serializers.CharField()
    jobId = serializers.CharField(source="job_id", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")
    sentAt = serializers.DateTimeField(source="sent_at", allow_null=True)


class FeedInputSerializer(serializers.Serializer):
    url = TextField(max_length=2000, help_text="An https iCalendar (ICS) URL on a host of CALENDAR_ALLOWED_HOSTS.")
    name = TextField(required=False, allow_blank=True, max_length=200)


class FeedOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    name = serializers.CharField()
    lastSyncedAt = serializers.DateTimeField(source="last_synced_at", allow_null=True)
    lastError = serializers.CharField(source="last_error")


class EventOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    calendarId = serializers.IntegerField(source="feed_id")
    uid = serializers.CharField()
    summary = serializers.CharField()
    location = serializers.CharField()
    startsAt = serializers.DateTimeField(source="starts_at")
    endsAt = serializers.DateTimeField(source="ends_at", allow_null=True)
    allDay = serializers.BooleanField(source="all_day")


class NextMeetingOutputSerializer(serializers.Serializer):
    event = EventOutputSerializer(allow_null=True)
    reply = serializers.CharField(help_text="What the assistant says.")


class EventsQuerySerializer(serializers.Serializer):
    since = QueryDateTimeField(required=False, help_text="Events starting at or after (ISO 8601).")


class TaskInputSerializer(serializers.Serializer):
    title = TextField(max_length=500)
    dueAt = serializers.DateTimeField(required=False, allow_null=True)


class TaskOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    dueAt = serializers.DateTimeField(source="due_at", allow_null=True)
    done = serializers.BooleanField()
    syncStatus = serializers.ChoiceField(source="sync_status", choices=Task.Sync.choices)
    syncDetail = serializers.CharField(source="sync_detail")
    providerId = serializers.CharField(source="provider_id")
    commandId = serializers.CharField(source="command_id", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")


class NotificationInputSerializer(serializers.Serializer):
    title = TextField(max_length=300)
    body = TextField(required=False, allow_blank=True, max_length=10000)
    channels = serializers.ListField(
        child=serializers.ChoiceField(choices=["websocket", "email"]), required=False, allow_empty=False, min_length=1, max_length=2,
        help_text="websocket, email (default: websocket, and email when the user has an address).",
    )
    delay = serializers.FloatField(required=False, min_value=0, max_value=366 * 86400, help_text="Seconds before delivery (a reminder).")


class NotificationOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    body = serializers.CharField()
    channels = serializers.ListField(child=serializers.CharField())
    delivered = serializers.DictField(help_text="When each channel was delivered (ISO 8601), by channel.")
    jobId = serializers.CharField(source="job_id", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")


class JobAcceptedSerializer(serializers.Serializer):
    id = serializers.CharField()
    jobId = serializers.CharField()
    status = serializers.CharField()


def _accepted(row_id: Any, job: Any, code: int = status.HTTP_202_ACCEPTED) -> Response:
    return Response({"id": str(row_id), "jobId": job.id, "status": job.status}, status=code)


# -- views ------------------------------------------------------------------------------------------


class CommandCreateApi(APIView):
    """Process a voice command (seed 5's processVoiceCommand): text goes to voice-processing; audio to transcription first."""

    @extend_schema(tags=TAGS, summary="Process a voice command", operation_id="assistant_commands_create", request=CommandInputSerializer,
                   responses={202: CommandAcceptedSerializer, **errors(400)})
    def post(self, request: Request) -> Response:
        data = body(CommandInputSerializer, request)
        command, job = services.take_command(
            owner=access.signed_in(request.user), conversation_id=data["conversationId"], text=data.get("text", ""),
            audio=data.get("audio", ""), mime_type=data.get("mimeType", ""), language=data.get("language", ""), user_ref=data.get("userId", ""),
        )
        out = {"commandId": command.id, "conversationId": command.conversation_id, "jobId": job.id, "status": command.status}
        return Response(out, status=status.HTTP_202_ACCEPTED)


class CommandDetailApi(APIView):
    """A command with its jobs and its reply (the reply's audio URL once synthesis stored it)."""

    @extend_schema(tags=TAGS, summary="Get a command", operation_id="assistant_commands_retrieve", responses={200: CommandOutputSerializer, **errors(404)})
    def get(self, request: Request, command_id: str) -> Response:
        return Response(CommandOutputSerializer(selectors.command_get(command_id, user=request.user)).data)


class CommandReplyAudioApi(APIView):
    """The spoken reply as WAV (local storage; on S3 `replyAudioUrl` is a presigned URL instead); 404 until spoken."""

    @extend_schema(tags=TAGS, summary="Get a command's spoken reply", operation_id="assistant_commands_reply",
                   responses={200: OpenApiResponse(description="audio/wav"), **errors(404)})
    def get(self, request: Request, command_id: str) -> FileResponse:
        row = selectors.command_get(command_id, user=request.user)
        if not row.reply_audio_key:
            raise NotFound(f"command {row.id} has no spoken reply yet", extra={"status": [row.status]})
        return FileResponse(default_storage.open(row.reply_audio_key, "rb"), content_type="audio/wav", filename=f"reply-{row.id}.wav")


class ConversationApi(APIView):
    """A conversation: its commands, oldest first, each with its jobs and reply."""

    @extend_schema(tags=TAGS, summary="Get a conversation", operation_id="assistant_conversations_retrieve",
                   responses={200: ConversationOutputSerializer, **errors(404)})
    def get(self, request: Request, conversation_id: str) -> Response:
        rows = selectors.conversation(conversation_id, user=request.user)
        return Response({"conversationId": conversation_id, "commands": CommandOutputSerializer(rows, many=True).data})


class TranscribeApi(APIView):
    """Transcribe audio (seed 5's transcribeAudio) on the transcription queue at HIGH; the result as text at /api/transcriptions/{id}/result."""

    @extend_schema(tags=TAGS, summary="Transcribe audio", operation_id="assistant_transcriptions_create", request=TranscribeInputSerializer,
                   responses={202: JobAcceptedSerializer, **errors(400)})
    def post(self, request: Request) -> Response:
        data = body(TranscribeInputSerializer, request)
        row, job = services.transcribe_audio(
            owner=access.signed_in(request.user), audio=services.decode_audio(data["audio"]),
            mime_type=data.get("mimeType", ""), language=data.get("language", ""),
        )
        return _accepted(row.id, job)


class EmailCreateApi(APIView):
    """Send an email (seed 5's sendEmail) through the email-processing queue."""

    @extend_schema(tags=TAGS, summary="Send an email", operation_id="assistant_emails_create", request=EmailInputSerializer,
                   responses={202: JobAcceptedSerializer, **errors(400)})
    def post(self, request: Request) -> Response:
        data = body(EmailInputSerializer, request)
        email, job = mail.queue_email(owner=access.signed_in(request.user), to=data["to"], subject=data["subject"], body=data["body"])
        return _accepted(email.id, job)


class EmailDetailApi(APIView):
    @extend_schema(tags=TAGS, summary="Get an email", operation_id="assistant_emails_retrieve", responses={200: EmailOutputSerializer, **errors(404)})
    def get(self, request: Request, email_id: str) -> Response:
        return Response(EmailOutputSerializer(selectors.email_get(email_id, user=request.user)).data)


class FeedListCreateApi(APIView):
    """The caller's calendars (ICS feeds); adding one syncs it on the calendar-sync queue."""

    @extend_schema(tags=TAGS, summary="List calendars", operation_id="assistant_calendars_list", responses={200: FeedOutputSerializer(many=True), **errors()})
    def get(self, request: Request) -> Response:
        return Response(FeedOutputSerializer(selectors.feeds(user=request.user), many=True).data)

    @extend_schema(tags=TAGS, summary="Add a calendar", operation_id="assistant_calendars_create", request=FeedInputSerializer,
                   responses={202: JobAcceptedSerializer, **errors(400)})
    def post(self, request: Request) -> Response:
        data = body(FeedInputSerializer, request)
        feed, job = calendar.add_feed(owner=access.signed_in(request.user), url=data["url"], name=data.get("name", ""))
        return _accepted(feed.pk, job)


class FeedSyncApi(APIView):
    """Sync one calendar now."""

    @extend_schema(tags=TAGS, summary="Sync a calendar", operation_id="assistant_calendars_sync", request=None,
                   responses={202: JobAcceptedSerializer, **errors(404)})
    def post(self, request: Request, feed_id: int) -> Response:
        feed = selectors.feed_get(feed_id, user=request.user)
        return _accepted(feed.pk, calendar.enqueue_sync(feed))


class EventListApi(APIView):
    @extend_schema(tags=TAGS, summary="List calendar events", operation_id="assistant_events_list", parameters=[EventsQuerySerializer],
                   responses={200: EventOutputSerializer(many=True), **errors(400)})
    def get(self, request: Request) -> Response:
        params = query(EventsQuerySerializer, request)
        return Response(EventOutputSerializer(selectors.events(user=request.user, since=params.get("since"))[:500], many=True).data)


class NextMeetingApi(APIView):
    """"What's my next meeting": the caller's next event that has not ended, and the sentence the assistant says."""

    @extend_schema(tags=TAGS, summary="Next meeting", operation_id="assistant_next_meeting", responses={200: NextMeetingOutputSerializer, **errors()})
    def get(self, request: Request) -> Response:
        event = calendar.next_meeting(access.signed_in(request.user))
        return Response({"event": EventOutputSerializer(event).data if event else None, "reply": calendar.spoken(event)})


class TaskListCreateApi(APIView):
    @extend_schema(tags=TAGS, summary="List tasks", operation_id="assistant_tasks_list", responses={200: TaskOutputSerializer(many=True), **errors()})
    def get(self, request: Request) -> Response:
        return Response(TaskOutputSerializer(selectors.tasks(user=request.user)[:500], many=True).data)

    @extend_schema(tags=TAGS, summary="Create a task", operation_id="assistant_tasks_create", request=TaskInputSerializer,
                   responses={201: TaskOutputSerializer, **errors(400)})
    def post(self, request: Request) -> Response:
        data = body(TaskInputSerializer, request)
        task, _ = todo.create_task(owner=access.signed_in(request.user), title=data["title"], due_at=data.get("dueAt"))
        return Response(TaskOutputSerializer(task).data, status=status.HTTP_201_CREATED)


class NotificationListCreateApi(APIView):
    @extend_schema(tags=TAGS, summary="List notifications", operation_id="assistant_notifications_list",
                   responses={200: NotificationOutputSerializer(many=True), **errors()})
    def get(self, request: Request) -> Response:
        return Response(NotificationOutputSerializer(selectors.notifications(user=request.user)[:500], many=True).data)

    @extend_schema(tags=TAGS, summary="Notify me", operation_id="assistant_notifications_create", request=NotificationInputSerializer,
                   responses={202: JobAcceptedSerializer, **errors(400)})
    def post(self, request: Request) -> Response:
        data = body(NotificationInputSerializer, request)
        note, job = notify.queue_notification(
            owner=access.signed_in(request.user), title=data["title"], body=data.get("body", ""), channels=data.get("channels"), delay=data.get("delay"),
        )
        return _accepted(note.id, job)

