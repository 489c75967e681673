"""Email for the assistant (seed 5's email-processing queue): send over SMTP with Django's email framework,
and read the inbox's unseen headers over IMAP.

Sending is one path, `deliver_message()`, used by the send job and by notifications' email channel. It
sends with `get_connection()` (settings.EMAIL_*; without EMAIL_HOST, Django's file backend under
var/mail) and translates what the server says into the engine's error kinds once:

| what happened | error | the job |
|---|---|---|
| recipients refused, sender refused, data refused (5xx) | `SendRefused` (VALIDATION) | dead letter at once |
| the same with 4xx (greylisting, mailbox busy) | `SendUnavailable` (TRANSIENT) | retried, 2 s then 4 s |
| nothing listening, connection dropped, timeout | `SendUnavailable` (TRANSIENT or TIMEOUT) | retried |
| the message cannot be encoded | `SendRefused` (VALIDATION) | dead letter |

A send is at least once, like every job: the Message-ID is stored on the row before the first try,
so a retry (after a crash between the server's 250 and the SENT write) resends the same id and the
receiver can drop the duplicate; a job that finds its email SENT sends nothing. Django's SMTP backend
raises only when every recipient is refused; a message that reached some recipients is SENT.
"""
from __future__ import annotations

import email.policy
import imaplib
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.parser import BytesParser
from email.utils import make_msgid, parseaddr, parsedate_to_datetime
from typing import Any, Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from assistant.exceptions import AssistantInputError
from assistant.models import Command, Email, group_ref_of
from jobs import services as job_services
from jobs.access import User
from jobs.exceptions import ErrorKind, JobError, PermanentError
from jobs.models import Job
from jobs.services import JobChange, JobSpec
from jobs.tasks import JobContext

SEND = "assistant.send_email"
MAX_RECIPIENTS = 50
#: RFC 5322's line limit; Django folds and encodes the header, so the subject's own length is the rule.
MAX_SUBJECT = 998
#: A message the assistant writes is a few lines; 100 KB of text is far beyond one and keeps rows small.
MAX_BODY_BYTES = 100 * 1024
#: Headers read per inbox sync (the newest unseen); every unseen message is still counted.
MAX_FETCH = 50
NOT_CONFIGURED = "IMAP is not configured (IMAP_HOST)"
#: IMAP response codes (RFC 5530) that say "later", not "never": a login refused with one is retried.
_TEMPORARY = ("[UNAVAILABLE]", "[INUSE]", "[LIMIT]")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # every control character but TAB


class SendRefused(PermanentError):
    """The mail server refused the message (5xx), or it cannot be encoded: no retry can fix it."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message, kind=ErrorKind.VALIDATION)
        self.code = code


class SendUnavailable(JobError):
    """The mail server did not answer, dropped the connection or deferred (4xx): retried with the queue's backoff."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message, kind=ErrorKind.TIMEOUT if timeout else ErrorKind.TRANSIENT)


class InboxRefused(PermanentError):
    """The IMAP server refused the login or the mailbox: a setting is wrong, a retry will not help."""


class InboxUnavailable(JobError):
    """The IMAP server did not answer or dropped the connection: retried."""


# Queueing ------------------------------------------------------------------------------------------


def check_message(*, to: list[str] | str, subject: str, body: str) -> tuple[list[str], str]:
    """The recipients (deduplicated, in order) and the subject (stripped) of a message that may be sent;
    AssistantInputError naming every bad field otherwise."""
    errors: dict[str, list[str]] = {}
    recipients, problems = _recipients(to)
    if problems:
        errors["to"] = problems
    subject = subject.strip() if isinstance(subject, str) else ""
    if not subject:
        errors["subject"] = ["required"]
    elif len(subject) > MAX_SUBJECT:
        errors["subject"] = [f"at most {MAX_SUBJECT} characters"]
    elif _CONTROL.search(subject):
        errors["subject"] = ["must be one line without CR, LF or other control characters"]
    if not isinstance(body, str) or not body.strip():
        errors["body"] = ["required"]
    elif "\x00" in body:
        errors["body"] = ["must not contain NUL characters"]
    elif len(body.encode()) > MAX_BODY_BYTES:
        errors["body"] = [f"at most {MAX_BODY_BYTES // 1024} KB"]
    if errors:
        raise AssistantInputError("invalid email", extra=errors)
    return recipients, subject


def _recipients(to: list[str] | str) -> tuple[list[str], list[str]]:
    """The distinct addresses of `to` (a string is one address) and what is wrong with them."""
    given: list[Any] = [to] if isinstance(to, str) else list(to) if isinstance(to, (list, tuple)) else []
    if not given:
        return [], ["at least one recipient is required"]
    if len(given) > MAX_RECIPIENTS:
        return [], [f"at most {MAX_RECIPIENTS} recipients"]
    out: list[str] = []
    problems: list[str] = []
    for item in given:
        address = item.strip() if isinstance(item, str) else ""
        try:
            validate_email(address)
        except ValidationError:
            problems.append(f"{str(item)[:100]!r} is not a valid email address")
            continue
        if address.lower() not in (seen.lower() for seen in out):
            out.append(address)
    return out, problems


def queue_email(*, owner: User, to: list[str] | str, subject: str, body: str, command: Command | None = None) -> tuple[Email, Job]:
    """Seed 5's sendEmail: check the message, write the Email row and enqueue its send job (one transaction)."""
    recipients, subject = check_message(to=to, subject=subject, body=body)
    with transaction.atomic():
        row = Email.objects.create(owner=owner, command=command, to=recipients, subject=subject, body=body)
        job, _ = job_services.enqueue(JobSpec(
            type=SEND, payload={"emailId": row.id}, owner=owner, group_ref=group_ref_of(command),
        ))
        row.job = job
        row.save(update_fields=["job"])
    return row, job


# Sending -------------------------------------------------------------------------------------------


def send(ctx: JobContext, *, email_id: str) -> dict[str, Any]:
    """Job: send one Email over SMTP once; errors are recorded on the row and decide retry or dead letter."""
    row = Email.objects.select_related("owner").filter(pk=email_id).first()
    if row is None:
        raise PermanentError(f"email {email_id} no longer exists", kind=ErrorKind.VALIDATION)
    if row.status == Email.Status.SENT:
        return {**_summary(row), "skipped": "already sent"}
    _ensure_message_id(row)
    reply_to = [row.owner.email] if row.owner.email else None
    try:
        deliver_message(to=row.to, subject=row.subject, body=row.body, message_id=row.message_id, reply_to=reply_to)
    except JobError as exc:
        last = not exc.retryable or ctx.attempt >= ctx.max_attempts
        _failed(row, str(exc), final=last)
        raise
    except BaseException as exc:  # a cancel or the job's timeout inside the SMTP conversation, or a bug
        _failed(row, f"{type(exc).__name__}: {exc}", final=False)
        raise
    Email.objects.filter(pk=row.pk).exclude(status=Email.Status.SENT).update(status=Email.Status.SENT, sent_at=timezone.now(), error="")
    return _summary(row)


def record_outcome(change: JobChange) -> None:
    """The engine's hook: a send job that ended without the job's own code saying so (a cancel, its timeout,
    a worker lost for good) leaves its email FAILED, with the job's error, unless it was SENT."""
    if change.type != SEND or change.event not in ("failed", "cancelled"):
        return
    reason = str(change.data.get("error") or change.event)[:5000]
    Email.objects.filter(job_id=change.job_id).exclude(status=Email.Status.SENT).update(status=Email.Status.FAILED, error=reason)


def _summary(row: Email) -> dict[str, Any]:
    return {"emailId": row.id, "messageId": row.message_id, "recipients": len(row.to)}


def _ensure_message_id(row: Email) -> None:
    """Give the row its Message-ID before the first try (committed: the worker runs in autocommit)."""
    if row.message_id:
        return
    mid = make_msgid(domain=sender_domain())
    if not Email.objects.filter(pk=row.pk, message_id="").update(message_id=mid):
        mid = Email.objects.values_list("message_id", flat=True).get(pk=row.pk)  # another run set it first
    row.message_id = mid


def _failed(row: Email, error: str, *, final: bool) -> None:
    status = Email.Status.FAILED if final else Email.Status.QUEUED
    Email.objects.filter(pk=row.pk).exclude(status=Email.Status.SENT).update(status=status, error=error[:5000])


def sender_domain() -> str:
    """The domain of DEFAULT_FROM_EMAIL: Message-IDs must not depend on which worker machine sent them."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2]
    return domain or "localhost"


def deliver_message(*, to: list[str], subject: str, body: str, message_id: str, reply_to: list[str] | None = None) -> None:
    """Send one plain-text message with settings' backend; raises SendRefused or SendUnavailable."""
    message = EmailMessage(
        subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=to, reply_to=reply_to or None,
        headers={"Message-ID": message_id},
    )
    try:
        with get_connection(fail_silently=False) as connection:
            message.connection = connection
            message.send(fail_silently=False)
    except Exception as exc:
        translated = _translate(exc)
        if translated is None:
            raise
        raise translated from exc


def _translate(exc: Exception) -> JobError | None:
    """The engine's error for what the server or the network said; None for a bug (raised as it is)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = exc.recipients.items()
        detail = "; ".join(f"{address}: {code} {_text(reply)}" for address, (code, reply) in refused)
        if refused and all(400 <= code < 500 for _, (code, _reply) in refused):
            return SendUnavailable(f"recipients deferred: {detail}")
        return SendRefused(f"recipients refused: {detail}", code=next((c for _, (c, _r) in refused if c >= 500), None))
    if isinstance(exc, smtplib.SMTPResponseException):  # sender or data refused, auth failed, greeting refused
        what = f"mail server answered {exc.smtp_code} {_text(exc.smtp_error)}"
        return SendRefused(what, code=exc.smtp_code) if exc.smtp_code >= 500 else SendUnavailable(what)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return SendRefused(f"mail server does not support what the settings ask (STARTTLS, AUTH): {exc}")
    if isinstance(exc, (smtplib.SMTPServerDisconnected, smtplib.SMTPException)):
        return SendUnavailable(f"mail server dropped the connection: {exc}")
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since Python 3.10
        return SendUnavailable(f"mail server did not answer in {settings.EMAIL_TIMEOUT:g}s", timeout=True)
    if isinstance(exc, OSError):  # refused, unreachable, TLS, or the file backend's disk
        return SendUnavailable(f"mail not sent: {exc}")
    if isinstance(exc, ValueError):  # an address or header that cannot be encoded
        return SendRefused(f"message cannot be encoded: {exc}")
    return None


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


# The inbox -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImapConfig:
    """settings.ASSISTANT_IMAP, read once per sync."""

    host: str
    port: int
    ssl: bool
    user: str
    password: str

    @classmethod
    def from_settings(cls) -> ImapConfig | None:
        conf = getattr(settings, "ASSISTANT_IMAP", None) or {}
        if not conf.get("host"):
            return None
        return cls(str(conf["host"]), int(conf.get("port") or 993), bool(conf.get("ssl", True)), str(conf.get("user", "")), str(conf.get("password", "")))


def sync_inbox(ctx: JobContext) -> dict[str, Any]:
    """Job: count the inbox's unseen messages and read the headers of the newest (nothing is marked seen)."""
    config = ImapConfig.from_settings()
    if config is None:
        return {"skipped": NOT_CONFIGURED}
    ctx.progress(10, "connecting")
    try:
        with _open(config) as box:
            box.login(config.user, config.password)
            status, detail = box.select("INBOX", readonly=True)  # read-only: the user's unread mail stays unread
            if status != "OK":
                raise imaplib.IMAP4.error(f"SELECT INBOX answered {status}: {detail}")
            uids = _unseen(box)
            ctx.progress(50, f"{len(uids)} unseen")
            headers = _headers(box, uids[-MAX_FETCH:])
    except imaplib.IMAP4.abort as exc:  # a subclass of IMAP4.error: the connection broke
        raise InboxUnavailable(f"IMAP connection lost: {exc}") from exc
    except imaplib.IMAP4.error as exc:
        if any(code in str(exc) for code in _TEMPORARY):
            raise InboxUnavailable(f"IMAP server unavailable: {exc}") from exc
        raise InboxRefused(f"IMAP server refused: {exc}", kind=ErrorKind.VALIDATION) from exc
    except TimeoutError as exc:
        raise InboxUnavailable(f"IMAP server did not answer in {settings.EMAIL_TIMEOUT:g}s", kind=ErrorKind.TIMEOUT) from exc
    except OSError as exc:
        raise InboxUnavailable(f"IMAP server unreachable: {exc}") from exc
    return {"mailbox": "INBOX", "unseen": len(uids), "fetched": len(headers), "messages": headers}


def _open(config: ImapConfig) -> imaplib.IMAP4:
    """A connection: implicit TLS, or plain upgraded with STARTTLS when the server offers it (one that offers
    neither is used in the clear, as IMAP_USE_SSL=false asks: a server on the same host or network)."""
    timeout = float(settings.EMAIL_TIMEOUT)
    if config.ssl:
        return imaplib.IMAP4_SSL(config.host, config.port, ssl_context=ssl.create_default_context(), timeout=timeout)
    box = imaplib.IMAP4(config.host, config.port, timeout=timeout)
    if "STARTTLS" in box.capabilities:
        try:
            box.starttls(ssl.create_default_context())
        except BaseException:
            box.shutdown()
            raise
    return box


def _unseen(box: imaplib.IMAP4) -> list[bytes]:
    """UIDs of unseen messages, oldest first."""
    status, data = box.uid("SEARCH", "UNSEEN")
    if status != "OK":
        raise imaplib.IMAP4.error(f"SEARCH UNSEEN answered {status}")
    return data[0].split() if data and data[0] else []


def _headers(box: imaplib.IMAP4, uids: list[bytes]) -> list[dict[str, Any]]:
    """From, Subject, Date and Message-ID of each message, newest first; BODY.PEEK does not set \\Seen."""
    if not uids:
        return []
    status, data = box.uid("FETCH", b",".join(uids).decode(), "(UID BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE MESSAGE-ID)])")
    if status != "OK":
        raise imaplib.IMAP4.error(f"FETCH answered {status}")
    return sorted(_parse(data), key=lambda m: m["uid"], reverse=True)


def _parse(data: Iterable[Any]) -> Iterable[dict[str, Any]]:
    parser = BytesParser(policy=email.policy.default)
    for part in data:
        if not isinstance(part, tuple) or len(part) < 2:
            continue  # the closing ")" of each message
        uid = re.search(rb"UID (\d+)", part[0])
        msg = parser.parsebytes(part[1], headersonly=True)
        yield {
            "uid": int(uid.group(1)) if uid else 0,
            "from": str(msg.get("From", "")), "subject": str(msg.get("Subject", "")),
            "date": _iso_date(str(msg.get("Date", ""))), "messageId": str(msg.get("Message-ID", "")).strip(),
        }


def _iso_date(value: str) -> str:
    """The Date header in ISO 8601, or as sent when it does not parse."""
    try:
        return parsedate_to_datetime(value).isoformat() if value else ""
    except (TypeError, ValueError):
        return value
