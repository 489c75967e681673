"""Seed 5's voice commands end to end on real workers: text and audio in, jobs fanned out, a spoken reply in storage."""
from __future__ import annotations

import base64
import wave
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from rest_framework.test import APIClient

from assistant import intents, services
from assistant.models import CalendarEvent, CalendarFeed, Command, Task
from jobs import services as job_services
from jobs.models import Job
from jobs.services import JobSpec
from tests.transcription import audio

pytestmark = pytest.mark.django_db(transaction=True)


def command(client: APIClient, **body: Any) -> dict[str, Any]:
    answer = client.post("/api/assistant/commands", {"conversationId": "conv456", "userId": "user123", **body}, format="json")
    assert answer.status_code == 202, answer.content
    return dict(answer.json())


def spoken_seconds(key: str) -> float:
    with default_storage.open(key, "rb") as fh, wave.open(fh) as w:
        return w.getnframes() / w.getframerate()


def test_a_text_command_fans_out_to_task_processing_and_is_answered_aloud(as_alice: APIClient, alice: Any, drain: Callable[[], None]) -> None:
    accepted = command(as_alice, text="Create a task to renew the parking permit")
    assert accepted["status"] == "UNDERSTANDING" and Job.objects.get(pk=accepted["jobId"]).queue == "voice-processing"
    drain()
    got = as_alice.get(f"/api/assistant/commands/{accepted['commandId']}").json()
    assert got["status"] == "REPLIED", got
    assert (got["intent"], got["understoodBy"], got["userId"]) == ("create_task", "rules", "user123")
    assert got["reply"] == "Added a task: renew the parking permit."
    task = Task.objects.get()
    assert (task.owner, task.title, task.command_id) == (alice, "renew the parking permit", accepted["commandId"])
    # The jobs the command fanned out to, each on the seed's queue, all completed; the reply is real audio.
    assert [(j["queue"], j["status"]) for j in got["jobs"]] == [
        ("voice-processing", "completed"), ("task-processing", "completed"), ("synthesis", "completed"),
    ]
    row = Command.objects.get(pk=accepted["commandId"])
    assert row.reply_audio_key.startswith(services.REPLY_PREFIX) and 1.0 < spoken_seconds(row.reply_audio_key) < 10
    assert got["replyAudioUrl"]
    # Each job ran at its queue's priority: voice commands CRITICAL, synthesis HIGH, tasks LOW.
    assert {j.queue: j.priority for j in Job.objects.all()} == {"voice-processing": 20, "task-processing": 1, "synthesis": 10}


@pytest.mark.media
def test_an_audio_command_is_transcribed_first_and_then_understood(as_alice: APIClient, tmp_path: Path, drain: Callable[[], None]) -> None:
    wav = tmp_path / "command.wav"
    audio.speak("Create a task to buy milk.", wav, words_per_minute=140)
    accepted = command(as_alice, audio=base64.b64encode(wav.read_bytes()).decode(), mimeType="audio/wav", language="en")
    assert accepted["status"] == "TRANSCRIBING"
    first = Job.objects.get(pk=accepted["jobId"])
    assert (first.queue, first.type, first.priority) == ("transcription", "transcribe", 10)
    drain()
    got = as_alice.get(f"/api/assistant/commands/{accepted['commandId']}").json()
    assert got["status"] == "REPLIED", got
    assert "buy milk" in got["text"].lower() and got["intent"] == "create_task" and got["transcriptionId"]
    assert [j["queue"] for j in got["jobs"]] == ["transcription", "voice-processing", "task-processing", "synthesis"]
    assert "milk" in Task.objects.get().title.lower()


def test_a_command_the_rules_miss_is_read_by_the_ai_processing_queue(as_alice: APIClient, drain: Callable[[], None]) -> None:
    accepted = command(as_alice, text="How far away is the moon?")
    drain()
    got = as_alice.get(f"/api/assistant/commands/{accepted['commandId']}").json()
    assert got["status"] == "REPLIED" and got["understoodBy"] == "ai", got
    assert got["intent"] in {choice for choice, _ in Command.Intent.choices}
    assert [j["queue"] for j in got["jobs"]][:2] == ["voice-processing", "ai-processing"]
    assert got["jobs"][-1]["queue"] == "synthesis" and got["reply"]


def test_whats_my_next_meeting_is_answered_from_the_imported_events(as_alice: APIClient, alice: Any, bob: Any, drain: Callable[[], None]) -> None:
    now = timezone.now()
    feed = CalendarFeed.objects.create(owner=alice, url="https://calendar.example.com/alice.ics")
    other = CalendarFeed.objects.create(owner=bob, url="https://calendar.example.com/bob.ics")
    CalendarEvent.objects.create(owner=alice, feed=feed, uid="past", summary="Standup", starts_at=now - timedelta(hours=3), ends_at=now - timedelta(hours=2))
    CalendarEvent.objects.create(owner=alice, feed=feed, uid="later", summary="Budget review", starts_at=now + timedelta(days=2), ends_at=now + timedelta(days=2, hours=1))
    CalendarEvent.objects.create(owner=alice, feed=feed, uid="next", summary="Design review", location="Room 4",
                                 starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2))
    CalendarEvent.objects.create(owner=bob, feed=other, uid="bobs", summary="Bob's dentist", starts_at=now + timedelta(minutes=5))
    accepted = command(as_alice, text="What's my next meeting?")
    drain()
    got = as_alice.get(f"/api/assistant/commands/{accepted['commandId']}").json()
    assert got["status"] == "REPLIED" and got["intent"] == "next_meeting"
    assert got["reply"].startswith("Your next meeting is Design review") and "Room 4" in got["reply"], got["reply"]
    assert [j["queue"] for j in got["jobs"]] == ["voice-processing", "synthesis"]
    assert as_alice.get("/api/assistant/next-meeting").json()["reply"] == got["reply"]


def test_a_conversation_lists_its_commands_in_order_and_only_for_their_owner(as_alice: APIClient, as_bob: APIClient, drain: Callable[[], None]) -> None:
    first = command(as_alice, text="Create a task to water the plants")
    second = command(as_alice, text="add a to-do: call the bank")
    drain()
    got = as_alice.get("/api/assistant/conversations/conv456").json()
    assert [c["id"] for c in got["commands"]] == [first["commandId"], second["commandId"]]
    assert [c["reply"] for c in got["commands"]] == ["Added a task: water the plants.", "Added a task: call the bank."]
    assert as_bob.get("/api/assistant/conversations/conv456").status_code == 404
    assert as_bob.get(f"/api/assistant/commands/{first['commandId']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"text": "hello"}, {"conversationId"}),
        ({"conversationId": "c1"}, {"text"}),
        ({"conversationId": "c1", "text": "   "}, {"text"}),
        ({"conversationId": "c1", "text": 42}, {"text"}),
        ({"conversationId": "c1", "audio": "not base64!"}, {"audio"}),
        ({"conversationId": "c1", "text": "x" * (services.MAX_TEXT + 1)}, {"text"}),
    ],
)
def test_bad_commands_are_refused_and_nothing_is_written(as_alice: APIClient, body: dict[str, Any], fields: set[str]) -> None:
    answer = as_alice.post("/api/assistant/commands", body, format="json")
    assert answer.status_code == 400, answer.content
    assert set(answer.json()["extra"]) == fields and answer.json()["message"]
    assert not Command.objects.exists() and not Job.objects.exists()


def test_a_voice_job_run_again_does_not_fan_out_twice(as_alice: APIClient, alice: Any, drain: Callable[[], None]) -> None:
    accepted = command(as_alice, text="create a task to file the taxes")
    drain()
    # At least once: the same step runs again (a worker lost after its work, before its completion was recorded).
    again, _ = job_services.enqueue(JobSpec(type="assistant.voice_command", payload={"commandId": accepted["commandId"]}, owner=alice))
    drain()
    again.refresh_from_db()
    assert again.status == "completed" and again.result["skipped"] == "already understood"
    assert Task.objects.count() == 1 and Job.objects.filter(queue="synthesis").count() == 1


@pytest.mark.parametrize(
    ("text", "intent", "entities"),
    [
        ("What's my next meeting?", "next_meeting", {}),
        ("send an email to ana@example.com about Lunch saying see you at noon", "send_email",
         {"to": "ana@example.com", "subject": "Lunch", "body": "see you at noon"}),
        ("Remind me to stretch in ten minutes.", "remind", {"what": "stretch", "seconds": 600}),
        ("remind me in 2 hours to call mom", "remind", {"what": "call mom", "seconds": 7200}),
        ("add a task: book the flights", "create_task", {"title": "book the flights"}),
    ],
)
def test_the_rules_read_the_seed_intents(text: str, intent: str, entities: dict[str, Any]) -> None:
    reading = intents.read(text)
    assert reading is not None and (reading.intent, reading.entities) == (intent, entities)


def test_rules_leave_other_sentences_to_the_ai() -> None:
    assert intents.read("How far away is the moon?") is None and intents.read("") is None
