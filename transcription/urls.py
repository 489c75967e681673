from django.urls import path

from transcription import apis

urlpatterns = [
    path("api/transcriptions", apis.TranscriptionListCreateApi.as_view(), name="transcriptions"),
    path("api/transcriptions/<str:transcription_id>", apis.TranscriptionDetailApi.as_view(), name="transcription"),
    path("api/transcriptions/<str:transcription_id>/result", apis.TranscriptionResultApi.as_view(), name="transcription-result"),
]
