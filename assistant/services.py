"""Seed 5's voice commands: take a command (text, or audio transcribed first), read its intent, fan out
the jobs it needs to the other queues, and speak the reply through synthesis.

Every job of a command carries `group_ref = "command:<id>"` (the conversation page lists them by it).
Each step is written so a retried job does it once: the fan-out runs in one transaction with the
command's status change, and a job that finds the command already past its step does nothing.
"""
from __future__ import annotations

import base64
import binascii
import io
import tempfile
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from assistant import calendar, intents, mail, notify, todo
from assistant.exceptions import AssistantInputError
from assistant.intents import Reading
from assistant.models import Command
from jobs import services as job_services
from jobs import access
from jobs.access import User, Viewer
from jobs.exceptions import ErrorKind, PermanentError
from jobs.models import Job
from jobs.services import JobChange, JobSpec
from jobs.tasks import JobContext

MAX_TEXT = 2000
#: The reply's voice: Whisper and people hear espeak-ng's American English at 140 words a minute best.
VOICE, SPEED = "en-us", "140"
REPLY_PREFIX = "assistant/replies/"


def _check_conversation(conversation_id: str | None) -> str:
    conversation = str(conversation_id or "").strip()
    if not conversation or len(conversation) > 200:
        raise AssistantInputError("invalid conversationId", extra={"conversationId": ["required, at most 200 characters"]})
    return conversation


def process_command(*, owner: User, text: str, conversation_id: str, user_ref: str = "") -> tuple[Command, Job]:
    """Seed 5's processVoiceCommand: write the command and enqueue its voice-processing job."""
    errors: dict[str, list[str]] = {}
    text = " ".join(str(text or "").split())
    if not text:
        errors["text"] = ["required"]
    elif len(text) > MAX_TEXT:
        errors["text"] = [f"at most {MAX_TEXT} characters"]
    try:
        conversation = _check_conversation(conversation_id)
    except AssistantInputError as exc:
        errors.update(exc.extra)
    if errors:
        raise AssistantInputError("invalid command", extra=errors)
    with transaction.atomic():
        command = Command.objects.create(owner=owner, text=text, conversation_id=conversation, user_ref=str(user_ref or "")[:200])
        job = _enqueue(command, "assistant.voice_command")
    return command, job


def decode_audio(audio: str | None) -> bytes:
    """The bytes of a base64 `audio` field (seed 5's audioBuffer over JSON); AssistantInputError when it is not base64."""
    try:
        data = base64.b64decode(str(audio or ""), validate=True)
    except (binascii.Error, ValueError):
        raise AssistantInputError("invalid audio", extra={"audio": ["must be base64-encoded audio"]}) from None
    if not data:
        raise AssistantInputError("invalid audio", extra={"audio": ["required"]})
    return data


def transcribe_audio(*, owner: User, audio: bytes, mime_type: str = "", language: str = "", group_ref: str | None = None) -> tuple[Any, Job]:
    """Seed 5's transcribeAudio: the transcription queue's job (seed 1's service) at HIGH, as plain text."""
    from transcription import services as transcription

    suffix = {"audio/mpeg": ".mp3", "audio/mp3": ".mp3", "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/ogg": ".ogg", "audio/webm": ".webm"}
    name = "audio" + suffix.get(str(mime_type or "").lower(), "")
    return transcription.request_transcription(
        owner=owner, upload=io.BytesIO(audio), upload_name=name, language=language or None, format="TXT", priority="HIGH", group_ref=group_ref,
    )


def process_audio_command(
    *, owner: User, audio: bytes, conversation_id: str, mime_type: str = "", language: str = "", user_ref: str = "",
) -> tuple[Command, Job]:
    """An audio command: its transcription job first; when that completes, the voice-processing job (on_job_change)."""
    conversation = _check_conversation(conversation_id)
    with transaction.atomic():
        command = Command.objects.create(
            owner=owner, conversation_id=conversation, user_ref=str(user_ref or "")[:200], status=Command.Status.TRANSCRIBING,
        )
        row, job = transcribe_audio(owner=owner, audio=audio, mime_type=mime_type, language=language, group_ref=command.group_ref)
        command.transcription = row
        command.save(update_fields=["transcription"])
    return command, job


def take_command(
    *, owner: User, conversation_id: str, text: str = "", audio: str = "", mime_type: str = "", language: str = "", user_ref: str = "",
) -> tuple[Command, Job]:
    """A command as a client sends it: base64 `audio` (transcribed first) when given, else `text`; the first job."""
    if audio:
        return process_audio_command(
            owner=owner, audio=decode_audio(audio), conversation_id=conversation_id, mime_type=mime_type, language=language, user_ref=user_ref,
        )
    return process_command(owner=owner, text=text, conversation_id=conversation_id, user_ref=user_ref)


def _enqueue(command: Command, job_type: str, **spec: Any) -> Job:
    """A job of the command (payload commandId), once: a retried step finds the first job by its key."""
    job, _ = job_services.enqueue(JobSpec(
        type=job_type, payload={"commandId": command.id}, owner=command.owner, group_ref=command.group_ref,
        idempotency_key=f"{command.group_ref}:{job_type}", **spec,
    ))
    return job


# -- the worker's side ----------------------------------------------------------------------------


def _take(command_id: str, status: str) -> Command | None:
    """The command locked for its step, or None when it is past `status` (a retried job's step is done)."""
    command = Command.objects.select_for_update().select_related("owner").get(pk=command_id)
    return command if command.status == status else None


def understand(ctx: JobContext, *, command_id: str) -> dict[str, Any]:
    """voice-processing: the intent by rules, then the fan-out; a command the rules miss goes to ai-processing."""
    ctx.progress(10, "reading the intent")
    with transaction.atomic():
        command = _take(command_id, Command.Status.UNDERSTANDING)
        if command is None:
            return {"commandId": command_id, "skipped": "already understood"}
        reading = intents.read(command.text)
        if reading is None:
            job = _enqueue(command, "assistant.understand")
            return {"commandId": command.id, "handedTo": job.queue, "jobId": job.id}
        return act(command, reading, understood_by="rules")


def understand_with_ai(ctx: JobContext, *, command_id: str) -> dict[str, Any]:
    """ai-processing: the AI classifier picks the intent among the assistant's, and entities come from the text."""
    from ai.processors import classify

    ctx.progress(10, "classifying")
    text = Command.objects.values_list("text", flat=True).get(pk=command_id)
    labels = list(intents.AI_LABELS.values())
    best = classify.classify(text, labels)["label"]
    intent = next(name for name, label in intents.AI_LABELS.items() if label == best)
    reading = _entities_for(intent, text)
    with transaction.atomic():
        command = _take(command_id, Command.Status.UNDERSTANDING)
        if command is None:
            return {"commandId": command_id, "skipped": "already understood"}
        return act(command, reading, understood_by="ai")


def _entities_for(intent: str, text: str) -> Reading:
    """What the AI's intent needs, from the text; an intent that lacks it becomes a question back (ask)."""
    if intent == intents.SEND_EMAIL:
        found = intents.emails_in(text)
        return Reading(intent, {"to": found[0], "subject": "A message from your assistant", "body": text}) if found else Reading(intents.ASK, {"missing": "recipient"})
    if intent == intents.CREATE_TASK:
        return Reading(intent, {"title": text[:500]})
    if intent == intents.REMIND:
        return Reading(intents.ASK, {"missing": "when"})
    return Reading(intent, {})


def act(command: Command, reading: Reading, *, understood_by: str) -> dict[str, Any]:
    """Inside the step's transaction: the intent's jobs on their queues, then the reply (spoken by synthesis)."""
    command.intent, command.entities, command.understood_by = reading.intent, reading.entities, understood_by
    e = reading.entities
    out: dict[str, Any] = {"commandId": command.id, "intent": reading.intent, "understoodBy": understood_by}
    if reading.intent == intents.NEXT_MEETING:
        event = calendar.next_meeting(command.owner)
        text = calendar.spoken(event)
        out["eventId"] = event.pk if event else None
    elif reading.intent == intents.SEND_EMAIL:
        email, job = mail.queue_email(owner=command.owner, to=[e["to"]], subject=e["subject"], body=e["body"], command=command)
        text = f"Sending your email to {e['to']}."
        out.update(emailId=email.id, jobs=[job.id])
    elif reading.intent == intents.CREATE_TASK:
        task, job = todo.create_task(owner=command.owner, title=e["title"], command=command)
        text = f"Added a task: {task.title}."
        out.update(taskId=task.id, jobs=[job.id])
    elif reading.intent == intents.REMIND:
        note, job = notify.queue_notification(
            owner=command.owner, title="Reminder", body=e["what"], command=command, delay=float(e["seconds"]),
        )
        text = f"I will remind you to {e['what']} in {_duration(int(e['seconds']))}."
        out.update(notificationId=note.id, jobs=[job.id])
    else:
        text = _cannot_answer(command.text, e.get("missing"))
    reply(command, text)
    out["reply"] = text
    return out


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _cannot_answer(text: str, missing: str | None) -> str:
    if missing == "recipient":
        return "Who should I send that email to? Say the address, for example: send an email to ana at example dot com."
    if missing == "when":
        return "When should I remind you? Say, for example: remind me to call Ana in ten minutes."
    return "I can tell you your next meeting, send an email, add a task or set a reminder. I cannot answer that yet."


def reply(command: Command, text: str) -> Job:
    """The reply is known: save it and enqueue its synthesis (in the caller's transaction)."""
    command.reply_text = text
    command.status = Command.Status.SPEAKING
    command.save(update_fields=["intent", "entities", "understood_by", "reply_text", "status"])
    return _enqueue(command, "assistant.synthesize")


def synthesize(ctx: JobContext, *, command_id: str) -> dict[str, Any]:
    """synthesis: espeak-ng speaks the reply into a WAV, stored under assistant/replies/."""
    from pipelines import media
    from transcription import sources

    command = Command.objects.get(pk=command_id)
    if command.status == Command.Status.REPLIED:
        return {"commandId": command.id, "replyAudioKey": command.reply_audio_key, "skipped": "already spoken"}
    ctx.progress(20, "speaking")
    with tempfile.TemporaryDirectory(prefix="reply-") as tmp:
        out = Path(tmp) / "reply.wav"
        try:
            media.run_tool(["espeak-ng", "-v", VOICE, "-s", SPEED, "-w", str(out), command.reply_text])
        except media.ToolMissing as exc:
            raise PermanentError(str(exc), kind=ErrorKind.VALIDATION) from exc
        ctx.progress(70, "storing")
        key = sources.save_result(out.read_bytes(), key=f"{REPLY_PREFIX}{command.id}.wav", content_type="audio/wav")
    Command.objects.filter(pk=command.pk).update(reply_audio_key=key, status=Command.Status.REPLIED, replied_at=timezone.now())
    return {"commandId": command.id, "replyAudioKey": key, "bytes": out.stat().st_size if out.exists() else None}


def can_see_command(user: Viewer, command_id: str) -> bool:
    """Who may follow a command's jobs over the events WebSocket: its owner, or an operator."""
    return access.can_see(user, Command.objects.all(), command_id)


def on_job_change(change: JobChange) -> None:
    """The engine's hook: an audio command moves on when its transcription completes; a failed step fails the command."""
    ref = change.group_ref or ""
    if not ref.startswith("command:") or change.event not in ("completed", "failed"):
        return
    command_id = ref.removeprefix("command:")
    if change.event == "failed":
        if change.type in ("transcribe", "assistant.voice_command", "assistant.understand", "assistant.synthesize"):
            Command.objects.filter(pk=command_id).exclude(status=Command.Status.REPLIED).update(
                status=Command.Status.FAILED, failed_reason=f"{change.type}: {change.data.get('error', '')}"[:5000],
            )
        return
    if change.type == "transcribe":
        _after_transcription(command_id)


def _after_transcription(command_id: str) -> None:
    from transcription import selectors as transcriptions

    with transaction.atomic():
        command = Command.objects.select_for_update(of=("self",)).select_related("transcription", "owner").filter(pk=command_id).first()
        if command is None or command.status != Command.Status.TRANSCRIBING or command.transcription is None:
            return  # delivered before (the hook runs at least once)
        text = " ".join(transcriptions.result_text(command.transcription).split())[:MAX_TEXT]
        command.text = text
        if not text:
            command.status = Command.Status.FAILED
            command.failed_reason = "the audio held no speech"
            command.save(update_fields=["text", "status", "failed_reason"])
            return
        command.status = Command.Status.UNDERSTANDING
        command.save(update_fields=["text", "status"])
        _enqueue(command, "assistant.voice_command")
