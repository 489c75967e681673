"""Calendars (seed 5's calendar-sync queue): a user's iCalendar (ICS) feeds imported into CalendarEvent rows,
idempotent by UID, and the answer to "what's my next meeting".

Three layers, kept apart as in transcription/sources.py:
- policy: `check_url()` accepts only https URLs on a host of settings.CALENDAR_ALLOWED_HOSTS (default port,
  no credentials, no IP literal or localhost), when a feed is added and again before every fetch, so a
  stored row cannot make a worker fetch an internal address after the allow-list changed;
- transport: `_download()` reuses transcription's `sources.download()` (settings.STORAGE_TIMEOUT, a size cap, same-origin
  redirects) and has no policy of its own;
- import: `read_ics()` (pure: bytes in, occurrences out) and `_save()` (one transaction per feed).

Times: an event with a time zone keeps its instant; a floating time is read in the feed's X-WR-TIMEZONE,
else settings.TIME_ZONE. A DATE (all-day) event runs from midnight to midnight in settings.TIME_ZONE:
the zone the assistant says "today" in, so an all-day event is spoken on the day the calendar shows.
"""
from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from datetime import timezone as dt_timezone
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from assistant.exceptions import AssistantInputError
from assistant.models import CalendarEvent, CalendarFeed
from jobs import selectors as job_selectors
from jobs import services as job_services
from jobs.access import User
from jobs.exceptions import ErrorKind, JobError, PermanentError
from jobs.models import Job
from jobs.services import JobSpec
from jobs.tasks import JobContext
from transcription import sources

SYNC = "assistant.sync_calendar"
#: A feed larger than this is refused: a person's calendar is kilobytes, 5 MB is years of meetings.
MAX_FEED_BYTES = 5 * 1024 * 1024
#: Occurrences kept per feed: a FREQ=MINUTELY rule must fail the sync, not fill the table.
MAX_EVENTS = 5000
#: The window imported around now: yesterday (meetings still going on) to two months ahead.
WINDOW_BEFORE, WINDOW_AFTER = timedelta(days=1), timedelta(days=60)
URL_MAX = 2000
UID_MAX = 500
NO_MEETINGS = "You have no upcoming meetings."
#: Spoken in English whatever the process locale (strftime's %A would follow it).
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December")


class FeedUnreadable(PermanentError):
    """The feed is not a usable iCalendar document (or is too large): no retry can fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind=ErrorKind.VALIDATION)


class FeedRefused(PermanentError):
    """The feed's URL fails the URL policy when the worker fetches it, or its server refuses it (4xx)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind=ErrorKind.VALIDATION)


class FeedUnavailable(JobError):
    """The feed's server did not answer in time, or answered 5xx/429: retried with the queue's backoff."""


# Policy -------------------------------------------------------------------------------------------


def check_url(url: str) -> str:
    """The normalized https URL of a calendar feed, or AssistantInputError (400) naming `url`: transcription's
    https rules (`sources.check_https`) against CALENDAR_ALLOWED_HOSTS."""
    text = (url or "").strip()
    if not text:
        raise _refused("required")
    if len(text) > URL_MAX or not re.fullmatch(sources.SOURCE_PATTERN, text):
        raise _refused(f"must be printable ASCII without spaces, at most {URL_MAX} characters (percent-encode URLs)")
    scheme = urlsplit(text).scheme.lower()
    if scheme != "https":
        raise _refused("plain http calendar URLs are not accepted; use https" if scheme == "http" else "calendar URLs must be https URLs")
    try:
        return sources.check_https(text, allowed_hosts=settings.CALENDAR_ALLOWED_HOSTS, field="url", what="calendar")
    except sources.SourceRefused as exc:
        raise _refused(exc.message) from exc


def _refused(message: str) -> AssistantInputError:
    return AssistantInputError(f"invalid calendar URL: {message}", extra={"url": [message]})


# Feeds and their sync jobs ------------------------------------------------------------------------


def add_feed(*, owner: User, url: str, name: str = "") -> tuple[CalendarFeed, Job]:
    """Check the URL (allowed hosts as for transcription audio), write the feed and enqueue its first sync.

    The same owner adding the same URL again gets the existing feed (and a sync of it).
    """
    normalized = check_url(url)
    label = " ".join(str(name or "").split())[:200]
    with transaction.atomic():
        # get_or_create recovers from the unique constraint when the same feed is added twice at once.
        feed, _ = CalendarFeed.objects.get_or_create(owner=owner, url=normalized, defaults={"name": label})
        return feed, enqueue_sync(feed)


def enqueue_sync(feed: CalendarFeed) -> Job:
    """A sync job for the feed; one still waiting is returned instead of queueing a second."""
    waiting = job_selectors.not_started(SYNC, key="feedId", values=[feed.pk])
    if str(feed.pk) in waiting:
        return waiting[str(feed.pk)]
    job, _ = job_services.enqueue(JobSpec(type=SYNC, payload={"feedId": feed.pk}, owner=feed.owner))
    return job


def sync_all(ctx: JobContext) -> dict[str, Any]:
    """Job: enqueue a sync of every feed (seed 5's every-15-minutes schedule), skipping feeds whose sync still waits."""
    feeds = list(CalendarFeed.objects.select_related("owner").order_by("pk"))
    # A sync still waiting is not queued twice; racy on purpose: a duplicate sync is harmless (idempotent).
    waiting = job_selectors.not_started(SYNC, key="feedId", values=[f.pk for f in feeds])
    specs = [JobSpec(type=SYNC, payload={"feedId": f.pk}, owner=f.owner) for f in feeds if str(f.pk) not in waiting]
    jobs = job_services.enqueue_many(specs) if specs else []
    return {"feeds": len(feeds), "enqueued": len(jobs), "alreadyWaiting": len(waiting)}


# The sync job -------------------------------------------------------------------------------------


def sync_feed(ctx: JobContext, *, feed_id: int) -> dict[str, Any]:
    """Job: fetch one feed and upsert its events by UID; the outcome (or the error) is recorded on the feed."""
    feed = CalendarFeed.objects.filter(pk=feed_id).first()
    if feed is None:
        return {"feedId": feed_id, "skipped": "the feed was removed"}
    try:
        ctx.progress(10, "downloading")
        data = _fetch(feed.url)
        ctx.progress(40, "reading")
        now = timezone.now()
        found = read_ics(data, start=now - WINDOW_BEFORE, end=now + WINDOW_AFTER)
        ctx.progress(70, f"saving {len(found)} events")
        counts = _save(feed, found, now)
    except JobError as exc:
        CalendarFeed.objects.filter(pk=feed.pk).update(last_error=str(exc)[:5000])
        raise
    return {"feedId": feed.pk, **counts, "events": len(found)}


def _fetch(url: str) -> bytes:
    """The feed's bytes: the URL policy again (it may have changed since the feed was added), then the transport."""
    try:
        checked = check_url(url)
    except AssistantInputError as exc:
        raise FeedRefused(f"calendar URL refused: {exc.extra['url'][0]}") from exc
    return _download(checked)


def _download(url: str) -> bytes:
    """Transcription's transport (timeout, size cap, same-origin redirects), its errors in the calendar's words."""
    out = io.BytesIO()
    try:
        sources.download(url, out, timeout=settings.STORAGE_TIMEOUT, max_bytes=MAX_FEED_BYTES)
    except sources.SourceUnavailable as exc:
        status, cause = exc.extra.get("status"), exc.__cause__
        if status:
            raise FeedUnavailable(f"calendar URL answered HTTP {status}", kind=ErrorKind.TRANSIENT) from exc
        kind = ErrorKind.TIMEOUT if isinstance(cause, TimeoutError) else ErrorKind.TRANSIENT
        raise FeedUnavailable(f"calendar URL not reachable now: {type(cause).__name__}: {cause}", kind=kind) from exc
    except sources.SourceTooLarge as exc:
        raise FeedUnreadable(f"calendar feed is larger than {MAX_FEED_BYTES} bytes") from exc
    except sources.SourceMissing as exc:
        raise FeedRefused(f"calendar URL answered HTTP {exc.extra.get('status')}") from exc
    except sources.SourceRefused as exc:  # a redirect off the checked origin, or too many
        where = "to another host" if "location" in exc.extra else "too many times"
        raise FeedRefused(f"calendar URL redirects {where}") from exc
    return out.getvalue()


# Reading an ICS document (no database) ------------------------------------------------------------


@dataclass(frozen=True)
class Occurrence:
    """One event, or one occurrence of a recurring event, as a CalendarEvent row holds it."""

    uid: str
    occurrence: str
    summary: str
    location: str
    description: str
    starts_at: datetime
    ends_at: datetime | None
    all_day: bool


def read_ics(data: bytes, *, start: datetime, end: datetime) -> dict[tuple[str, str], Occurrence]:
    """The occurrences of an ICS document that overlap [start, end), by (UID, occurrence); FeedUnreadable if malformed."""
    try:
        cal = icalendar.Calendar.from_ical(data)
        if cal.name != "VCALENDAR":
            raise FeedUnreadable(f"calendar feed is not an iCalendar document (it holds a {cal.name}, not a VCALENDAR)")
        floating = _floating_zone(cal)
        recurring = {str(c.get("UID", "")) for c in cal.walk("VEVENT") if any(p in c for p in ("RRULE", "RDATE", "RECURRENCE-ID"))}
        found: dict[tuple[str, str], Occurrence] = {}
        for component in recurring_ical_events.of(cal).after(start.astimezone(floating)):
            item = _occurrence(component, floating, recurring)
            if item is None:
                continue
            if item.starts_at >= end:
                break  # after() yields in order of start
            found[(item.uid, item.occurrence)] = item
            if len(found) > MAX_EVENTS:
                raise FeedUnreadable(f"calendar feed has more than {MAX_EVENTS} events in the next {WINDOW_AFTER.days} days")
    except (ValueError, KeyError) as exc:  # icalendar's and the recurrence library's errors; an unknown TZID is a KeyError
        raise FeedUnreadable(f"calendar feed is not valid iCalendar: {exc}") from exc
    return found


def _floating_zone(cal: icalendar.Calendar) -> tzinfo:
    """Where floating times are: the feed's X-WR-TIMEZONE (removed when unknown, so that nothing else reads it), else TIME_ZONE."""
    name = str(cal.get("X-WR-TIMEZONE", "")).strip()
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            del cal["X-WR-TIMEZONE"]
    return timezone.get_default_timezone()


def _occurrence(component: Any, floating: tzinfo, recurring: set[str]) -> Occurrence | None:
    """The row for one expanded VEVENT; None for one that cannot be kept (no UID, cancelled)."""
    uid = str(component.get("UID", "")).strip()
    if not uid or str(component.get("STATUS", "")).upper() == "CANCELLED":
        return None
    start, end = component.start, component.end
    all_day = not isinstance(start, datetime)
    if all_day:
        day_zone = timezone.get_default_timezone()
        starts_at = datetime.combine(start, time(), tzinfo=day_zone)
        ends_at: datetime | None = datetime.combine(end, time(), tzinfo=day_zone) if end > start else starts_at + timedelta(days=1)
    else:
        starts_at = _aware(start, floating)
        ends_at = _aware(end, floating) if isinstance(end, datetime) and end > start else None
    return Occurrence(
        uid=uid if len(uid) <= UID_MAX else "sha256:" + hashlib.sha256(uid.encode()).hexdigest(),
        occurrence=_occurrence_key(component, floating) if uid in recurring else "",
        summary=str(component.get("SUMMARY", "")).strip()[:1000],
        location=str(component.get("LOCATION", "")).strip()[:1000],
        description=str(component.get("DESCRIPTION", "")).strip(),
        starts_at=starts_at, ends_at=ends_at, all_day=all_day,
    )


def _occurrence_key(component: Any, floating: tzinfo) -> str:
    """Which occurrence: its RECURRENCE-ID (the original start, stable when the occurrence is moved), ISO in UTC."""
    value = component.get("RECURRENCE-ID")
    moment = value.dt if value is not None else component.start
    if isinstance(moment, datetime):
        return _aware(moment, floating).astimezone(dt_timezone.utc).isoformat()
    return date.isoformat(moment)


def _aware(moment: datetime, floating: tzinfo) -> datetime:
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=floating)


# Saving -------------------------------------------------------------------------------------------

FIELDS = ("summary", "location", "description", "starts_at", "ends_at", "all_day")


def _save(feed: CalendarFeed, found: dict[tuple[str, str], Occurrence], now: datetime) -> dict[str, int]:
    """In one transaction, under the feed's row lock (two syncs of a feed take turns): create, update, delete."""
    with transaction.atomic():
        if not CalendarFeed.objects.select_for_update().filter(pk=feed.pk).exists():
            return {"created": 0, "updated": 0, "deleted": 0}  # removed while we downloaded
        existing = {(e.uid, e.occurrence): e for e in CalendarEvent.objects.filter(feed=feed)}
        new, changed = [], []
        for key, item in found.items():
            row = existing.pop(key, None)
            if row is None:
                new.append(CalendarEvent(owner_id=feed.owner_id, feed=feed, uid=item.uid, occurrence=item.occurrence,
                                         **{f: getattr(item, f) for f in FIELDS}))
            elif _apply(row, item, now):
                changed.append(row)
        CalendarEvent.objects.bulk_create(new, batch_size=500)
        CalendarEvent.objects.bulk_update(changed, [*FIELDS, "updated_at"], batch_size=500)
        gone = CalendarEvent.objects.filter(pk__in=[row.pk for row in existing.values()]).delete()[0] if existing else 0
        CalendarFeed.objects.filter(pk=feed.pk).update(last_synced_at=now, last_error="")
    return {"created": len(new), "updated": len(changed), "deleted": gone}


def _apply(row: CalendarEvent, item: Occurrence, now: datetime) -> bool:
    """Copy what changed onto the row; True when anything did (bulk_update does not touch auto_now fields itself)."""
    changed = [f for f in FIELDS if getattr(row, f) != getattr(item, f)]
    for name in changed:
        setattr(row, name, getattr(item, name))
    if changed:
        row.updated_at = now
    return bool(changed)


# Next meeting -------------------------------------------------------------------------------------


def next_meeting(owner: User, *, now: datetime | None = None) -> CalendarEvent | None:
    """The owner's earliest event that has not ended (one going on now included), or None."""
    now = now or timezone.now()
    not_over = Q(ends_at__gt=now) | Q(ends_at__isnull=True, starts_at__gte=now)
    return CalendarEvent.objects.filter(not_over, owner=owner).order_by("starts_at", "all_day", "pk").first()


def spoken(event: CalendarEvent | None, *, now: datetime | None = None) -> str:
    """The reply to "what's my next meeting" for this event (or for none), in settings.TIME_ZONE."""
    if event is None:
        return NO_MEETINGS
    zone = timezone.get_default_timezone()
    here = timezone.localtime(now or timezone.now(), zone)
    starts = timezone.localtime(event.starts_at, zone)
    title = event.summary or "an untitled event"
    where = f", in {event.location}" if event.location else ""
    if event.all_day:
        return f"Your next meeting is {title}, {_day(max(starts.date(), here.date()), here.date())}, all day{where}."
    if starts <= here:
        until = f", until {_clock(timezone.localtime(event.ends_at, zone))}" if event.ends_at else ""
        return f"Your meeting {title} is on now{until}{where}."
    return f"Your next meeting is {title}, {_day(starts.date(), here.date())} at {_clock(starts)}{where}."


def _day(day: date, today: date) -> str:
    if day == today:
        return "today"
    if day == today + timedelta(days=1):
        return "tomorrow"
    year = f", {day.year}" if day.year != today.year else ""
    return f"on {WEEKDAYS[day.weekday()]}, {MONTHS[day.month - 1]} {day.day}{year}"


def _clock(moment: datetime) -> str:
    """3:30 PM, 9 AM: how the time is said (":00" is not)."""
    hour = moment.hour % 12 or 12
    minutes = f":{moment.minute:02d}" if moment.minute else ""
    return f"{hour}{minutes} {'AM' if moment.hour < 12 else 'PM'}"
