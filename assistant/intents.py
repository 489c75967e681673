"""Reading a command's intent by rules (Django-free): next meeting, send email, create task, remind me, or ask.

`read()` returns None when no rule matches: the command then goes to the ai-processing queue, whose
classifier picks the intent (assistant.services.understand_with_ai).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

NEXT_MEETING, SEND_EMAIL, CREATE_TASK, REMIND, ASK = "next_meeting", "send_email", "create_task", "remind", "ask"

#: Labels the AI classifier chooses among, by intent (described in words it can match).
AI_LABELS: dict[str, str] = {
    NEXT_MEETING: "calendar meeting schedule appointment",
    SEND_EMAIL: "send an email message to someone",
    CREATE_TASK: "add a task or to-do item",
    REMIND: "reminder alarm later",
    ASK: "general question",
}

_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "ten": 10, "fifteen": 15, "twenty": 20, "thirty": 30}
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}

_NEXT = re.compile(r"\b(?:next|upcoming|first)\s+(?:meeting|event|appointment|call)\b|\bwhat(?:'s| is) (?:next )?on my calendar\b", re.I)
_EMAIL_CMD = re.compile(
    rf"^(?:please\s+)?(?:send|write|email)\s+(?:an?\s+)?(?:e-?mail\s+|message\s+|note\s+)?to\s+(?P<to>{_EMAIL})"
    r"(?:\s+(?:about|with subject|subject)\s+(?P<subject>.+?))?"
    r"(?:\s*(?:,\s*)?(?:saying|that says|body)\s+(?P<body>.+))?[.!]?$",
    re.I,
)
_TASK = re.compile(r"^(?:please\s+)?(?:create|add|make|new)\s+(?:a\s+)?(?:new\s+)?(?:task|to-?do)(?:\s+(?:to|called|named))?\s*[:,-]?\s+(?P<title>.+?)[.!]?$", re.I)
_AMOUNT = r"(?P<n>\d+|a|an|one|two|three|four|five|ten|fifteen|twenty|thirty)\s+(?P<unit>second|minute|hour|day)s?"
_REMIND = [
    re.compile(rf"^(?:please\s+)?remind me\s+(?:to\s+)?(?P<what>.+?)\s+in\s+{_AMOUNT}[.!]?$", re.I),
    re.compile(rf"^(?:please\s+)?remind me\s+in\s+{_AMOUNT}\s+(?:to\s+)?(?P<what>.+?)[.!]?$", re.I),
]


@dataclass(frozen=True)
class Reading:
    """An intent and what it needs (recipient, subject, title, seconds...)."""

    intent: str
    entities: dict[str, Any] = field(default_factory=dict)


def read(text: str) -> Reading | None:
    """The intent of `text` by rules, or None when no rule matches."""
    text = " ".join(text.split())
    if not text:
        return None
    if m := _EMAIL_CMD.match(text):
        body = (m["body"] or "").strip()
        subject = (m["subject"] or "").strip() or _subject_from(body)
        return Reading(SEND_EMAIL, {"to": m["to"], "subject": subject, "body": body or subject})
    for pattern in _REMIND:
        if m := pattern.match(text):
            return Reading(REMIND, {"what": m["what"].strip(), "seconds": seconds(m["n"], m["unit"])})
    if m := _TASK.match(text):
        return Reading(CREATE_TASK, {"title": m["title"].strip()})
    if _NEXT.search(text):
        return Reading(NEXT_MEETING, {})
    return None


def seconds(n: str, unit: str) -> int:
    """'ten', 'minute' -> 600."""
    count = int(n) if n.isdigit() else _NUMBERS[n.lower()]
    return count * _UNITS[unit.lower().rstrip("s")]


def _subject_from(body: str) -> str:
    words = body.split()
    return " ".join(words[:8]) + ("..." if len(words) > 8 else "") if words else "A message from your assistant"


def emails_in(text: str) -> list[str]:
    """Email addresses in `text`, in order."""
    return re.findall(_EMAIL, text)
