from django.urls import path

from assistant import apis

urlpatterns = [
    path("api/assistant/commands", apis.CommandCreateApi.as_view(), name="assistant-commands"),
    path("api/assistant/commands/<str:command_id>", apis.CommandDetailApi.as_view(), name="assistant-command"),
    path("api/assistant/commands/<str:command_id>/reply.wav", apis.CommandReplyAudioApi.as_view(), name="assistant-command-reply"),
    path("api/assistant/conversations/<str:conversation_id>", apis.ConversationApi.as_view(), name="assistant-conversation"),
    path("api/assistant/transcriptions", apis.TranscribeApi.as_view(), name="assistant-transcriptions"),
    path("api/assistant/emails", apis.EmailCreateApi.as_view(), name="assistant-emails"),
    path("api/assistant/emails/<str:email_id>", apis.EmailDetailApi.as_view(), name="assistant-email"),
    path("api/assistant/calendars", apis.FeedListCreateApi.as_view(), name="assistant-calendars"),
    path("api/assistant/calendars/<int:feed_id>/sync", apis.FeedSyncApi.as_view(), name="assistant-calendar-sync"),
    path("api/assistant/events", apis.EventListApi.as_view(), name="assistant-events"),
    path("api/assistant/next-meeting", apis.NextMeetingApi.as_view(), name="assistant-next-meeting"),
    path("api/assistant/tasks", apis.TaskListCreateApi.as_view(), name="assistant-tasks"),
    path("api/assistant/notifications", apis.NotificationListCreateApi.as_view(), name="assistant-notifications"),
]
