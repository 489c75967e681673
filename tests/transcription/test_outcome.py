"""A transcription owns its outcome: the job may go, the row still tells how it ended."""
from __future__ import annotations

import pytest


@pytest.mark.django_db(transaction=True)
def test_a_transcription_whose_job_retention_removed_still_shows_its_outcome(alice, burst) -> None:
    """The row records status, attempts, error and times from the hook; after the job is removed the API still says them."""
    from rest_framework.test import APIClient

    from jobs import services as job_services
    from transcription import services

    row, job = services.request_transcription(owner=alice, audio_url="audio/not-there/talk.wav")
    burst("transcription")
    job.refresh_from_db()
    assert (job.status, job.error_kind) == ("failed", "VALIDATION")  # no such stored audio: no retry helps
    assert job_services.clean("transcription", status="failed", grace=0) == 1  # what retention does later

    client = APIClient()
    client.force_authenticate(alice)
    body = client.get(f"/api/transcriptions/{row.id}").json()
    assert (body["jobId"], body["status"], body["errorKind"], body["attemptsMade"], body["progress"]) == (None, "failed", "VALIDATION", 1, 0)
    assert "no stored object" in body["failedReason"] and body["startedAt"] and body["completedAt"] >= body["startedAt"]
