"""Seed 5's email on real servers: a loopback SMTP server (aiosmtpd), a real worker in burst mode, and for the
inbox a real IMAP server (Dovecot) on loopback."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from assistant import mail, services
from assistant.exceptions import AssistantInputError
from assistant.models import Email
from jobs import services as job_services
from jobs.engine import scheduler
from jobs.models import DeadLetter, Job
from jobs.services import JobSpec
from tests.assistant.smtp import (
    Dovecot,
    Mailbox,
    dovecot_server,
    point_django_at,
    smtp_server,
)
from tests.jobs.engine_support import make_due
from tests.net import free_port

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE = "email-processing"



def run_email_jobs(burst: Callable[..., Any]) -> None:
    burst(QUEUE)


def retry_now(job: Job, burst: Callable[..., Any]) -> Job:
    """The delayed retry, made due, promoted and run."""
    make_due(job.id)
    scheduler.promote_due()
    burst(QUEUE)
    job.refresh_from_db()
    return job


def test_a_queued_email_arrives_with_its_recipients_subject_body_and_message_id(alice: Any, smtp: Mailbox, burst: Callable[..., Any]) -> None:
    alice.email = "alice@example.org"
    alice.save()
    row, job = mail.queue_email(
        owner=alice, to=["ana@example.com", " bo@example.com ", "Ana@Example.com"], subject="  Lunch on Friday — à midi  ", body="See you at noon.\nAna",
    )
    assert (job.queue, job.type, job.payload, job.owner_id) == (QUEUE, mail.SEND, {"emailId": row.id}, alice.pk)
    assert Email.objects.get().job_id == job.id and row.to == ["ana@example.com", "bo@example.com"]  # one copy per mailbox
    run_email_jobs(burst)
    (got,) = smtp.received
    row.refresh_from_db()
    assert (row.status, row.error) == (Email.Status.SENT, "") and row.sent_at is not None
    assert got.rcpt_tos == ["ana@example.com", "bo@example.com"] and got.mail_from == "assistant@jobconsole.test"
    assert got.message["To"] == "ana@example.com, bo@example.com"
    assert got.message["Subject"] == "Lunch on Friday — à midi"  # encoded on the wire, decoded by the receiver
    assert got.message.get_content().replace("\r\n", "\n").rstrip("\n") == "See you at noon.\nAna"
    assert got.message["Message-ID"] == row.message_id and row.message_id.endswith("@jobconsole.test>")
    assert got.message["Reply-To"] == "alice@example.org"  # replies go to the person, not the assistant
    job.refresh_from_db()
    assert job.status == "completed" and job.result == {"emailId": row.id, "messageId": row.message_id, "recipients": 2}


def test_a_spoken_send_email_command_reaches_the_server_as_a_job_of_the_command(alice: Any, smtp: Mailbox, burst: Callable[..., Any]) -> None:
    command, _ = services.process_command(owner=alice, text="send an email to ana@example.com about Lunch saying see you at noon", conversation_id="c1")
    burst("voice-processing")
    burst(QUEUE)
    row = Email.objects.get()
    job = Job.objects.get(pk=row.job_id)
    assert (row.command_id, job.group_ref, row.status) == (command.id, command.group_ref, Email.Status.SENT)
    (got,) = smtp.received
    assert (got.rcpt_tos, got.message["Subject"], got.message.get_content().strip()) == (["ana@example.com"], "Lunch", "see you at noon")


@pytest.mark.parametrize(
    ("to", "subject", "body", "fields"),
    [
        (["not-an-address"], "", "hi", {"to", "subject"}),
        ("ana@example.com", "Hello\r\nBcc: victim@example.com", "hi", {"subject"}),
        ("ana@example.com", "Hello\nthere", "", {"subject", "body"}),
        ([], "x" * 999, "hi", {"to", "subject"}),
        ([f"u{i}@example.com" for i in range(51)], "Hi", "hi", {"to"}),
        ("ana@example.com", "Hi", "x" * (mail.MAX_BODY_BYTES + 1), {"body"}),
        ("ana@example.com", "Hi", "nul\x00here", {"body"}),
        ("ana@example.com\r\nBcc: x@example.com", "Hi", "hi", {"to"}),
    ],
)
def test_bad_input_names_every_bad_field_and_writes_nothing(alice: Any, to: Any, subject: str, body: str, fields: set[str]) -> None:
    with pytest.raises(AssistantInputError) as caught:
        mail.queue_email(owner=alice, to=to, subject=subject, body=body)
    assert set(caught.value.extra) == fields, caught.value.extra
    assert (Email.objects.count(), Job.objects.count()) == (0, 0)


def test_a_refused_recipient_fails_the_job_for_good_into_the_dead_letters(alice: Any, smtp: Mailbox, burst: Callable[..., Any]) -> None:
    smtp.refuse = {"nobody@example.com"}
    row, job = mail.queue_email(owner=alice, to="nobody@example.com", subject="Hi", body="Hello")
    run_email_jobs(burst)
    job.refresh_from_db()
    row.refresh_from_db()
    assert (job.status, job.attempts_made, job.error_kind) == ("failed", 1, "VALIDATION")
    assert DeadLetter.objects.filter(job_id=job.id).exists()
    assert row.status == Email.Status.FAILED and "550" in row.error and "nobody@example.com" in row.error
    assert smtp.received == []


def test_a_message_refused_after_data_554_is_not_retried(alice: Any, smtp: Mailbox, burst: Callable[..., Any]) -> None:
    smtp.reject_data = True
    row, job = mail.queue_email(owner=alice, to="ana@example.com", subject="Hi", body="Hello")
    run_email_jobs(burst)
    job.refresh_from_db()
    row.refresh_from_db()
    assert (job.status, job.attempts_made, job.error_kind) == ("failed", 1, "VALIDATION")
    assert row.status == Email.Status.FAILED and "554" in row.error


def test_a_deferred_recipient_450_is_retried(alice: Any, smtp: Mailbox, burst: Callable[..., Any]) -> None:
    smtp.defer = {"grey@example.com"}
    _, job = mail.queue_email(owner=alice, to="grey@example.com", subject="Hi", body="Hello")
    run_email_jobs(burst)
    job.refresh_from_db()
    assert (job.status, job.attempts_made, job.error_kind) == ("delayed", 1, "TRANSIENT")
    smtp.defer = set()
    assert retry_now(job, burst).status == "completed" and len(smtp.received) == 1


def test_smtp_down_retries_and_once_up_the_retry_sends_exactly_one_message(alice: Any, settings: Any, burst: Callable[..., Any]) -> None:
    port = free_port()
    point_django_at(settings, port)  # nothing listens there yet
    row, job = mail.queue_email(owner=alice, to="ana@example.com", subject="Hi", body="Hello")
    run_email_jobs(burst)
    job.refresh_from_db()
    row.refresh_from_db()
    assert (job.status, job.attempts_made, job.error_kind) == ("delayed", 1, "TRANSIENT")
    assert row.status == Email.Status.QUEUED and "mail not sent" in row.error
    first_id = row.message_id
    assert first_id  # stored before the first try
    with smtp_server(port) as (_, box):
        job = retry_now(job, burst)
        assert (job.status, job.attempts_made) == ("completed", 2)
        assert [m.message["Message-ID"] for m in box.received] == [first_id]
    row.refresh_from_db()
    assert (row.status, row.message_id, row.error) == (Email.Status.SENT, first_id, "")


def test_after_three_attempts_with_the_server_down_the_email_is_failed(alice: Any, settings: Any, burst: Callable[..., Any]) -> None:
    point_django_at(settings, free_port())
    row, job = mail.queue_email(owner=alice, to="ana@example.com", subject="Hi", body="Hello")
    run_email_jobs(burst)
    for _ in range(2):
        job = retry_now(job, burst)
    row.refresh_from_db()
    assert (job.status, job.attempts_made) == ("failed", 3) and DeadLetter.objects.filter(job_id=job.id).exists()
    assert row.status == Email.Status.FAILED


def test_a_second_run_for_a_sent_email_sends_nothing_and_a_lost_sent_mark_resends_the_same_id(alice: Any, smtp: Mailbox, burst: Callable[..., Any]) -> None:
    row, _ = mail.queue_email(owner=alice, to="ana@example.com", subject="Hi", body="Hello")
    run_email_jobs(burst)
    again, _ = job_services.enqueue(JobSpec(type=mail.SEND, payload={"emailId": row.id}, owner=alice))  # the job delivered twice
    run_email_jobs(burst)
    again.refresh_from_db()
    assert again.status == "completed" and (again.result or {}).get("skipped") == "already sent" and len(smtp.received) == 1
    # A worker that died between the server's 250 and the SENT write: the rerun sends, with the same Message-ID.
    Email.objects.filter(pk=row.pk).update(status=Email.Status.QUEUED)
    job_services.enqueue(JobSpec(type=mail.SEND, payload={"emailId": row.id}, owner=alice))
    run_email_jobs(burst)
    ids = {m.message["Message-ID"] for m in smtp.received}
    assert len(smtp.received) == 2 and ids == {Email.objects.get().message_id}


def test_without_smtp_the_file_backend_writes_the_message(alice: Any, settings: Any, tmp_path: Any, burst: Callable[..., Any]) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    row, _ = mail.queue_email(owner=alice, to="ana@example.com", subject="Offline", body="Written to a file")
    run_email_jobs(burst)
    row.refresh_from_db()
    (written,) = tmp_path.iterdir()
    assert row.status == Email.Status.SENT and row.message_id in written.read_text()


# The inbox -------------------------------------------------------------------------------------------


def sync(burst: Callable[..., Any]) -> Job:
    job, _ = job_services.enqueue(JobSpec(type="assistant.sync_email"))
    run_email_jobs(burst)
    job.refresh_from_db()
    return job


def imap_settings(settings: Any, port: int, *, password: str = Dovecot.PASSWORD) -> None:
    settings.ASSISTANT_IMAP = {"host": "127.0.0.1", "port": port, "ssl": False, "user": Dovecot.USER, "password": password}
    settings.EMAIL_TIMEOUT = 5


def test_inbox_sync_without_imap_is_skipped(settings: Any, burst: Callable[..., Any]) -> None:
    settings.ASSISTANT_IMAP = {"host": "", "port": 993, "ssl": True, "user": "", "password": ""}
    job = sync(burst)
    assert (job.status, job.result) == ("completed", {"skipped": "IMAP is not configured (IMAP_HOST)"})


def test_inbox_sync_with_the_server_down_is_retried(settings: Any, burst: Callable[..., Any]) -> None:
    imap_settings(settings, free_port())
    job = sync(burst)
    assert (job.status, job.attempts_made, job.error_kind) == ("delayed", 1, "TRANSIENT")


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with dovecot_server() as server:
        yield server


def test_inbox_sync_reads_unseen_headers_from_a_real_imap_server_and_leaves_them_unseen(
    dovecot: Dovecot, settings: Any, burst: Callable[..., Any],
) -> None:
    dovecot.clear()
    dovecot.deliver(b"From: Ana <ana@example.com>\r\nTo: tester@localhost\r\nSubject: =?utf-8?q?Caf=C3=A9?= tomorrow\r\n"
                    b"Date: Tue, 02 Jan 2024 10:00:00 +0100\r\nMessage-ID: <one@example.com>\r\n\r\nSee you.\r\n")
    dovecot.deliver(b"From: bo@example.com\r\nSubject: Invoice\r\nMessage-ID: <two@example.com>\r\n\r\nAttached.\r\n")
    dovecot.deliver(b"From: old@example.com\r\nSubject: Already read\r\n\r\nOld.\r\n", seen=True)
    imap_settings(settings, dovecot.port)
    job = sync(burst)
    assert job.status == "completed", job.failed_reason
    result = job.result or {}
    assert (result["unseen"], result["fetched"]) == (2, 2)
    newest, oldest = result["messages"]
    assert (newest["subject"], newest["messageId"], newest["from"]) == ("Invoice", "<two@example.com>", "bo@example.com")
    assert (oldest["subject"], oldest["from"], oldest["date"]) == ("Café tomorrow", "Ana <ana@example.com>", "2024-01-02T10:00:00+01:00")
    assert (sync(burst).result or {}).get("unseen") == 2  # read-only: the user's unread mail stays unread


def test_inbox_sync_with_a_wrong_password_fails_for_good(dovecot: Dovecot, settings: Any, burst: Callable[..., Any]) -> None:
    imap_settings(settings, dovecot.port, password="wrong")
    job = sync(burst)
    assert (job.status, job.attempts_made, job.error_kind) == ("failed", 1, "VALIDATION"), job.failed_reason


def test_an_email_whose_send_job_is_cancelled_is_failed_by_the_outcome_hook(alice: Any) -> None:
    email, job = mail.queue_email(owner=alice, to="ana@example.com", subject="Later", body="never mind")
    job_services.cancel(job.id)
    email.refresh_from_db()
    assert (email.status, email.error) == (Email.Status.FAILED, "cancelled before it ran")
    assert email.sent_at is None
