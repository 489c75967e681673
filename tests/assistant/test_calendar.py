"""Calendar sync (seed 5's calendar-sync): ICS feeds served by a real HTTP server on loopback, imported by a real
worker into CalendarEvent rows; the URL policy; the next meeting and how it is said.

The URL policy accepts only https on an allowed public host, so no loopback server can pass it. As in
tests/transcription/test_sources.py (which drives the transport on loopback and tests check() apart),
the job tests swap `calendar.check_url` for one that admits exactly this test's server and hands every
other URL to the real policy; the real policy is tested below, at add time and at fetch time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Iterator
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from assistant import calendar
from assistant.exceptions import AssistantInputError
from assistant.models import CalendarEvent, CalendarFeed
from jobs import services as job_services
from jobs.engine import scheduler
from jobs.models import Job
from jobs.services import JobSpec
from tests.jobs.engine_support import make_due
from tests.net import http_server

pytestmark = pytest.mark.django_db(transaction=True)

ALLOWED = "calendar.example.com"
UTC = dt_timezone.utc


# An ICS document, written the way calendar programs write them ------------------------------------


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def vevent(uid: str, summary: str, start: datetime | date, end: datetime | date | None = None, **props: str) -> str:
    if isinstance(start, datetime):
        when = [f"DTSTART:{stamp(start)}"] + ([f"DTEND:{stamp(end)}"] if isinstance(end, datetime) else [])
    else:
        when = [f"DTSTART;VALUE=DATE:{start:%Y%m%d}"] + ([f"DTEND;VALUE=DATE:{end:%Y%m%d}"] if isinstance(end, date) else [])
    lines = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20240101T000000Z", *when, f"SUMMARY:{summary}", *(f"{k.replace('_', '-')}:{v}" for k, v in props.items()), "END:VEVENT"]
    return "\r\n".join(lines)


def ics(*events: str, header: str = "") -> bytes:
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//jobconsole tests//EN", *([header] if header else [])]
    return "\r\n".join([*head, *events, "END:VCALENDAR", ""]).encode()


def hour(hours: float) -> datetime:
    """A whole minute `hours` from now (ICS times have no fractions)."""
    return (timezone.now() + timedelta(hours=hours)).replace(second=0, microsecond=0)


# The feed server and the worker -------------------------------------------------------------------


@dataclass
class Feed:
    """What the loopback server answers at /feed.ics (`status`, `body`), and the paths it was asked for."""

    base: str = ""
    body: bytes = b""
    status: int = 200
    asked: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.base}/feed.ics"


@pytest.fixture
def feed_server(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[Feed]:
    """A real HTTP server on loopback, and the URL policy opened to exactly its origin (see the module's docstring)."""
    state = Feed()
    settings.CALENDAR_ALLOWED_HOSTS = [ALLOWED]
    settings.STORAGE_TIMEOUT = 2.0

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            state.asked.append(self.path)
            body = state.body if self.path == "/feed.ics" else b"no"
            self.send_response(state.status if self.path == "/feed.ics" else 404)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    real = calendar.check_url
    with http_server(Handler) as base:
        state.base = base
        monkeypatch.setattr(calendar, "check_url", lambda url: url if url.startswith(f"{base}/") else real(url))
        yield state


@pytest.fixture
def sync(burst: Callable[..., Any]) -> Callable[[], None]:
    """Run the calendar-sync queue with a real worker until it is empty."""
    return lambda: burst("calendar-sync")


def events_of(feed: CalendarFeed) -> dict[str, CalendarEvent]:
    return {f"{e.uid}|{e.occurrence}": e for e in CalendarEvent.objects.filter(feed=feed)}


def last_sync_job() -> Job:
    return Job.objects.filter(type=calendar.SYNC).order_by("-created_at").first()  # type: ignore[return-value]


# Import, idempotent by UID ------------------------------------------------------------------------


def test_a_feed_is_imported_and_a_second_import_creates_nothing(alice: Any, feed_server: Feed, sync: Callable[[], None]) -> None:
    standup, review = (hour(2), hour(2.5)), (hour(26), hour(27))
    feed_server.body = ics(vevent("standup@x", "Standup", *standup, LOCATION="Room 1"), vevent("review@x", "Design review", *review))
    feed, job = calendar.add_feed(owner=alice, url=feed_server.url, name="  Work  ")
    sync()
    job.refresh_from_db()
    assert (job.status, job.result) == ("completed", {"feedId": feed.pk, "created": 2, "updated": 0, "deleted": 0, "events": 2})
    rows = events_of(feed)
    assert {k: (e.summary, e.location, e.starts_at, e.ends_at, e.all_day, e.owner_id) for k, e in rows.items()} == {
        "standup@x|": ("Standup", "Room 1", *standup, False, alice.pk),
        "review@x|": ("Design review", "", *review, False, alice.pk),
    }
    feed.refresh_from_db()
    assert feed.name == "Work" and feed.last_error == "" and feed.last_synced_at is not None

    calendar.enqueue_sync(feed)
    sync()
    assert last_sync_job().result == {"feedId": feed.pk, "created": 0, "updated": 0, "deleted": 0, "events": 2}
    assert {k: (e.pk, e.updated_at) for k, e in events_of(feed).items()} == {k: (e.pk, e.updated_at) for k, e in rows.items()}
    assert feed_server.asked == ["/feed.ics", "/feed.ics"]


def test_a_changed_summary_updates_its_row_and_an_event_gone_from_the_feed_is_deleted(alice: Any, feed_server: Feed, sync: Callable[[], None]) -> None:
    a, b = (hour(3), hour(4)), (hour(5), hour(6))
    feed_server.body = ics(vevent("a@x", "Planning", *a), vevent("b@x", "Lunch", *b))
    feed, _ = calendar.add_feed(owner=alice, url=feed_server.url)
    sync()
    before = events_of(feed)

    feed_server.body = ics(vevent("a@x", "Planning (moved to Room 9)", *a), vevent("c@x", "Retro", hour(30), hour(31)))
    calendar.enqueue_sync(feed)
    sync()
    assert last_sync_job().result == {"feedId": feed.pk, "created": 1, "updated": 1, "deleted": 1, "events": 2}
    after = events_of(feed)
    assert sorted(after) == ["a@x|", "c@x|"]
    assert after["a@x|"].pk == before["a@x|"].pk and after["a@x|"].summary == "Planning (moved to Room 9)"
    assert after["a@x|"].updated_at > before["a@x|"].updated_at


def test_a_weekly_event_gives_its_occurrences_in_the_window_and_a_moved_one_keeps_its_key(
    alice: Any, feed_server: Feed, sync: Callable[[], None],
) -> None:
    first = hour(-80)  # over three days ago: its first occurrence is over, before the window
    moved_from = first + timedelta(weeks=2)
    moved = vevent("weekly@x", "1:1 (moved)", moved_from + timedelta(hours=2), moved_from + timedelta(hours=3), RECURRENCE_ID=stamp(moved_from))
    feed_server.body = ics(vevent("weekly@x", "1:1", first, first + timedelta(hours=1), RRULE="FREQ=WEEKLY;COUNT=20"), moved)
    feed, _ = calendar.add_feed(owner=alice, url=feed_server.url)
    sync()

    now = timezone.now()
    expected = [first + timedelta(weeks=n) for n in range(20) if now - timedelta(days=1) < first + timedelta(weeks=n, hours=1) and first + timedelta(weeks=n) < now + timedelta(days=60)]
    rows = sorted(CalendarEvent.objects.filter(feed=feed), key=lambda e: e.occurrence)
    assert len(rows) == len(expected) == 9
    assert [e.occurrence for e in rows] == [s.astimezone(UTC).isoformat() for s in expected]
    by_key = {e.occurrence: e for e in rows}
    shifted = by_key[moved_from.astimezone(UTC).isoformat()]
    assert (shifted.summary, shifted.starts_at) == ("1:1 (moved)", moved_from + timedelta(hours=2))
    assert {e.summary for e in rows} == {"1:1", "1:1 (moved)"} and {e.uid for e in rows} == {"weekly@x"}

    calendar.enqueue_sync(feed)
    sync()
    assert last_sync_job().result == {"feedId": feed.pk, "created": 0, "updated": 0, "deleted": 0, "events": 9}


def test_all_day_events_and_floating_times(settings: Any) -> None:
    settings.TIME_ZONE = "America/New_York"
    start = timezone.now() - timedelta(hours=1)
    tomorrow = timezone.localdate() + timedelta(days=1)
    local = datetime.combine(tomorrow, datetime.min.time()).replace(hour=9)
    floating = f"BEGIN:VEVENT\r\nUID:f@x\r\nDTSTART:{local:%Y%m%dT%H%M%S}\r\nDTEND:{local:%Y%m%dT}100000\r\nSUMMARY:Floating\r\nEND:VEVENT"
    day = vevent("d@x", "Offsite", tomorrow, tomorrow + timedelta(days=2))

    found = calendar.read_ics(ics(floating, day), start=start, end=start + timedelta(days=60))
    new_york = ZoneInfo("America/New_York")
    assert (found["f@x", ""].starts_at, found["f@x", ""].all_day) == (local.replace(tzinfo=new_york), False)
    offsite = found["d@x", ""]
    assert (offsite.all_day, offsite.starts_at, offsite.ends_at) == (
        True, datetime.combine(tomorrow, datetime.min.time(), tzinfo=new_york), datetime.combine(tomorrow + timedelta(days=2), datetime.min.time(), tzinfo=new_york))

    berlin = calendar.read_ics(ics(floating, header="X-WR-TIMEZONE:Europe/Berlin"), start=start, end=start + timedelta(days=60))
    assert berlin["f@x", ""].starts_at == local.replace(tzinfo=ZoneInfo("Europe/Berlin"))
    unknown = calendar.read_ics(ics(floating, header="X-WR-TIMEZONE:Nowhere/Atlantis"), start=start, end=start + timedelta(days=60))
    assert unknown["f@x", ""].starts_at == local.replace(tzinfo=new_york)


def test_cancelled_events_and_events_without_a_uid_are_not_kept() -> None:
    start = timezone.now()
    no_uid = vevent("", "No UID", hour(1), hour(2)).replace("UID:\r\n", "")
    found = calendar.read_ics(ics(vevent("gone@x", "Cancelled", hour(1), hour(2), STATUS="CANCELLED"), no_uid, vevent("ok@x", "Kept", hour(3), hour(4))),
                              start=start, end=start + timedelta(days=60))
    assert list(found) == [("ok@x", "")]


@pytest.mark.parametrize("body", [
    b"this is not a calendar",
    b"",
    b"BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20300101T000000Z\r\nEND:VEVENT\r\n",
    ics("BEGIN:VEVENT\r\nUID:x\r\nDTSTART:yesterday-ish\r\nSUMMARY:Broken\r\nEND:VEVENT"),
    ics(vevent("x@x", "Storm", hour(1), hour(2), RRULE="FREQ=MINUTELY")),
], ids=["text", "empty", "no VCALENDAR", "bad DTSTART", "too many occurrences"])
def test_a_malformed_feed_fails_the_job_at_once_and_is_recorded_on_the_feed(
    body: bytes, alice: Any, feed_server: Feed, sync: Callable[[], None],
) -> None:
    feed_server.body = ics(vevent("keep@x", "Kept", hour(1), hour(2)))
    feed, _ = calendar.add_feed(owner=alice, url=feed_server.url)
    sync()
    feed_server.body = body
    job = calendar.enqueue_sync(feed)
    sync()
    job.refresh_from_db()
    feed.refresh_from_db()
    assert (job.status, job.attempts_made, job.error_kind) == ("failed", 1, "VALIDATION")
    assert feed.last_error.startswith("calendar feed") and feed.last_error in job.failed_reason
    assert list(events_of(feed)) == ["keep@x|"]  # nothing half-imported, nothing lost


def test_a_server_error_is_retried_and_the_retry_imports(alice: Any, feed_server: Feed, sync: Callable[[], None]) -> None:
    feed_server.status, feed_server.body = 503, b"later"
    feed, job = calendar.add_feed(owner=alice, url=feed_server.url)
    sync()
    job.refresh_from_db()
    feed.refresh_from_db()
    assert (job.status, job.attempts_made, job.error_kind) == ("delayed", 1, "TRANSIENT")
    assert feed.last_error == "calendar URL answered HTTP 503"

    feed_server.status, feed_server.body = 200, ics(vevent("a@x", "Back", hour(1), hour(2)))
    make_due(job.id)
    scheduler.promote_due()
    sync()
    job.refresh_from_db()
    feed.refresh_from_db()
    assert (job.status, job.attempts_made, feed.last_error) == ("completed", 2, "")
    assert list(events_of(feed)) == ["a@x|"]


def test_a_missing_feed_fails_at_once(alice: Any, feed_server: Feed, sync: Callable[[], None]) -> None:
    feed_server.status = 404
    feed, job = calendar.add_feed(owner=alice, url=feed_server.url)
    sync()
    job.refresh_from_db()
    feed.refresh_from_db()
    assert (job.status, job.attempts_made) == ("failed", 1) and feed.last_error == "calendar URL answered HTTP 404"


def test_the_transport_caps_the_size_and_keeps_redirects_on_the_origin() -> None:
    big = b"BEGIN:VCALENDAR\r\n" + b"X" * calendar.MAX_FEED_BYTES

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/away":
                self.send_response(302)
                self.send_header("Location", "http://localhost:1/feed.ics")
                body = b""
            else:
                self.send_response(200)
                body = big
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    with http_server(Handler) as base:
        with pytest.raises(calendar.FeedUnreadable, match="larger than"):
            calendar._download(f"{base}/big.ics")
        with pytest.raises(calendar.FeedRefused, match="redirects to another host"):
            calendar._download(f"{base}/away")


# The URL policy -----------------------------------------------------------------------------------

REFUSED = [
    ("http", f"http://{ALLOWED}/a.ics", "use https"),
    ("webcal", f"webcal://{ALLOWED}/a.ics", "https"),
    ("IP literal", "https://93.184.216.34/a.ics", "IP address"),
    ("loopback", "https://127.0.0.1/a.ics", "IP address"),
    ("decimal IP", "https://2130706433/a.ics", "IP address"),
    ("localhost", "https://localhost/a.ics", "localhost"),
    ("a .localhost name", "https://cal.localhost/a.ics", "localhost"),
    ("host not allowed", "https://evil.example.org/a.ics", "not accepted"),
    ("other port", f"https://{ALLOWED}:8443/a.ics", "default port"),
    ("credentials", f"https://user:pw@{ALLOWED}/a.ics", "credentials"),
    ("a space", f"https://{ALLOWED}/my cal.ics", "printable ASCII"),
    ("empty", "", "required"),
]


@pytest.mark.parametrize(("url", "says"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_add_feed_refuses_urls_outside_the_policy(alice: Any, settings: Any, url: str, says: str) -> None:
    settings.CALENDAR_ALLOWED_HOSTS = [ALLOWED]
    with pytest.raises(AssistantInputError) as caught:
        calendar.add_feed(owner=alice, url=url)
    assert caught.value.status_code == 400 and says in caught.value.extra["url"][0]
    assert not CalendarFeed.objects.exists() and not Job.objects.exists()


def test_the_api_answers_a_refused_url_with_400_naming_url(as_alice: APIClient, settings: Any) -> None:
    settings.CALENDAR_ALLOWED_HOSTS = [ALLOWED]
    answer = as_alice.post("/api/assistant/calendars", {"url": "https://169.254.169.254/latest/meta-data"}, format="json")
    assert answer.status_code == 400 and answer.json()["extra"]["url"] == ["calendar URLs may not name an IP address or localhost"]


def test_an_allowed_url_is_normalized_and_the_same_url_twice_is_one_feed_and_one_waiting_sync(alice: Any, bob: Any, settings: Any) -> None:
    settings.CALENDAR_ALLOWED_HOSTS = [ALLOWED]
    feed, job = calendar.add_feed(owner=alice, url="HTTPS://Calendar.Example.COM.:443/team.ics?key=1#today")
    assert feed.url == f"https://{ALLOWED}/team.ics?key=1" and job.payload == {"feedId": feed.pk} and job.queue == "calendar-sync"
    again, job_again = calendar.add_feed(owner=alice, url=f"https://{ALLOWED}/team.ics?key=1")
    assert (again.pk, job_again.id) == (feed.pk, job.id)
    bobs, _ = calendar.add_feed(owner=bob, url=feed.url)  # unique per owner, not per URL
    assert bobs.pk != feed.pk and CalendarFeed.objects.count() == 2


def test_the_worker_checks_the_url_again_before_fetching(alice: Any, settings: Any, sync: Callable[[], None]) -> None:
    settings.CALENDAR_ALLOWED_HOSTS = [ALLOWED]
    feed, job = calendar.add_feed(owner=alice, url=f"https://{ALLOWED}/team.ics")
    settings.CALENDAR_ALLOWED_HOSTS = []  # the operator withdrew the host before the job ran
    sync()
    job.refresh_from_db()
    feed.refresh_from_db()
    assert (job.status, job.attempts_made, job.error_kind) == ("failed", 1, "VALIDATION")
    assert feed.last_error == f"calendar URL refused: calendar URLs from {ALLOWED} are not accepted"


def test_sync_all_enqueues_one_sync_per_feed_but_none_for_a_feed_whose_sync_waits(alice: Any, bob: Any, burst: Callable[..., Any]) -> None:
    mine, theirs = (CalendarFeed.objects.create(owner=owner, url=f"https://{ALLOWED}/{owner.username}.ics") for owner in (alice, bob))
    later, _ = job_services.enqueue(JobSpec(type=calendar.SYNC, payload={"feedId": mine.pk}, owner=alice, delay=3600))
    assert calendar.enqueue_sync(mine) == later  # a sync not yet started is reused
    every, _ = job_services.enqueue(JobSpec(type="assistant.sync_calendars"))
    burst("calendar-sync", max_jobs=1)  # the schedule's job only (the delayed sync is not due)
    every.refresh_from_db()
    assert (every.status, every.result) == ("completed", {"feeds": 2, "enqueued": 1, "alreadyWaiting": 1})
    new = Job.objects.filter(type=calendar.SYNC).exclude(pk=later.pk).get()
    assert (new.payload, new.owner_id, new.status) == ({"feedId": theirs.pk}, bob.pk, "waiting")


def test_next_meeting_picks_the_owners_earliest_event_not_over_and_spoken_reads_it(alice: Any, bob: Any, settings: Any) -> None:
    settings.TIME_ZONE = "UTC"
    now = datetime(2030, 12, 2, 10, 0, tzinfo=UTC)  # a Monday
    mine = CalendarFeed.objects.create(owner=alice, url=f"https://{ALLOWED}/a.ics")
    theirs = CalendarFeed.objects.create(owner=bob, url=f"https://{ALLOWED}/b.ics")

    def add(feed: CalendarFeed, uid: str, start: datetime, end: datetime | None, **more: Any) -> CalendarEvent:
        return CalendarEvent.objects.create(owner=feed.owner, feed=feed, uid=uid, starts_at=start, ends_at=end, summary=uid, **more)

    add(mine, "Over", now - timedelta(hours=3), now - timedelta(hours=2))
    add(mine, "No end, started", now - timedelta(minutes=5), None)
    add(theirs, "Bob's", now + timedelta(minutes=1), now + timedelta(hours=1))
    ongoing = add(mine, "Ongoing", now - timedelta(minutes=30), now + timedelta(minutes=30), location="Room 4")
    later = add(mine, "Design review", now + timedelta(hours=5, minutes=30), now + timedelta(hours=6), location="Room 4")

    assert calendar.next_meeting(alice, now=now) == ongoing
    assert calendar.spoken(ongoing, now=now) == "Your meeting Ongoing is on now, until 10:30 AM, in Room 4."
    assert calendar.next_meeting(alice, now=ongoing.ends_at) == later  # an event ending exactly now is over
    assert calendar.spoken(later, now=now) == "Your next meeting is Design review, today at 3:30 PM, in Room 4."
    assert calendar.next_meeting(bob, now=now).uid == "Bob's"  # type: ignore[union-attr]
    assert calendar.next_meeting(alice, now=now + timedelta(days=1)) is None
    assert calendar.spoken(None, now=now) == "You have no upcoming meetings."


def test_spoken_says_tomorrow_a_weekday_and_date_all_day_and_in_the_configured_zone(alice: Any, settings: Any) -> None:
    settings.TIME_ZONE = "America/New_York"
    now = datetime(2030, 12, 2, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York
    feed = CalendarFeed.objects.create(owner=alice, url=f"https://{ALLOWED}/a.ics")

    def event(start: datetime, **more: Any) -> CalendarEvent:
        return CalendarEvent(owner=alice, feed=feed, uid="x", starts_at=start, summary="Standup", **more)

    assert calendar.spoken(event(datetime(2030, 12, 3, 14, 0, tzinfo=UTC)), now=now) == "Your next meeting is Standup, tomorrow at 9 AM."
    assert calendar.spoken(event(datetime(2030, 12, 6, 20, 15, tzinfo=UTC)), now=now) == "Your next meeting is Standup, on Friday, December 6 at 3:15 PM."
    assert calendar.spoken(event(datetime(2031, 1, 3, 0, 0, tzinfo=UTC)), now=now) == "Your next meeting is Standup, on Thursday, January 2, 2031 at 7 PM."
    new_york = ZoneInfo("America/New_York")
    offsite = event(datetime(2030, 12, 3, tzinfo=new_york), ends_at=datetime(2030, 12, 5, tzinfo=new_york), all_day=True, location="HQ")
    assert calendar.spoken(offsite, now=now) == "Your next meeting is Standup, tomorrow, all day, in HQ."
    assert calendar.spoken(offsite, now=datetime(2030, 12, 4, 15, 0, tzinfo=UTC)) == "Your next meeting is Standup, today, all day, in HQ."


def test_the_next_meeting_comes_from_an_imported_feed(alice: Any, feed_server: Feed, sync: Callable[[], None]) -> None:
    feed_server.body = ics(vevent("old@x", "Yesterday", hour(-20), hour(-19)), vevent("next@x", "Design review", hour(2), hour(3), LOCATION="Room 4"))
    calendar.add_feed(owner=alice, url=feed_server.url)
    sync()
    event = calendar.next_meeting(alice)
    assert event is not None and (event.uid, event.summary) == ("next@x", "Design review")
    assert calendar.spoken(event).startswith("Your next meeting is Design review, ") and calendar.spoken(event).endswith(", in Room 4.")
