"""The community's meetings as an iCalendar feed (RFC 5545) that members subscribe to. Pure, no I/O.

Members see a meeting in two places: in copbot (reminders, ``next meeting``, RSVPs) and in their own
calendar app, which reads this feed. Both must show the same times, or people turn up an hour early after
a DST change or at a cancelled call. So the feed says what ``Series.occurrences`` says, in the
standard's own terms, and lets the calendar app do the expansion:

- DTSTART/DTEND in the meeting's own zone (TZID + local wall time) with the RRULE, so a 15:00 Amsterdam
  call stays at 15:00 in Amsterdam in summer and in winter, as copbot expands it; a VTIMEZONE for every
  zone used, for the apps that read it rather than their own zone database;
- UNTIL in UTC (required when DTSTART has a TZID) or COUNT;
- a cancelled occurrence as an EXDATE, a moved one as an extra VEVENT with the same UID and a
  RECURRENCE-ID of its original start (copbot names occurrences by their original start for the same
  reason);
- DTSTART is the series' first *original* start: copbot (dateutil) does not count a start that does not
  fit the rule (e.g. a Wednesday with ``BYDAY=1TU``) as a meeting, while calendar apps always show
  DTSTART, and RFC 5545 leaves such a set undefined;
- UID stays the same across edits and SEQUENCE goes up, so apps update the event instead of adding one.

All text is written by the ``icalendar`` library, which escapes what members typed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vRecur, vText
from icalendar.enums import STATUS

from plugins.meetings.recurrence import Series

PRODID = "-//copbot//meetings//EN"
TIMEZONE_YEARS_AHEAD = 10
"""How many years past ``now`` the VTIMEZONE components spell out (the feed is fetched again long before)."""


@dataclass(frozen=True)
class CalendarEntry:
    """One meeting (one-off or series) as it goes into the feed."""

    uid: str  # stable across restarts and edits, e.g. "meeting-42@water.copbot"
    title: str
    where: str  # text or URL; a URL also goes in URL
    description: str
    series: Series
    duration: timedelta
    sequence: int  # bumped by copbot on every change; goes to SEQUENCE
    cancelled: bool  # the whole series: STATUS:CANCELLED
    created: datetime  # UTC, aware
    updated: datetime  # UTC, aware → DTSTAMP / LAST-MODIFIED


def ics_feed(name: str, entries: Sequence[CalendarEntry], *, now: datetime) -> bytes:
    """The feed called ``name`` with every entry: a VEVENT per meeting, one more per moved occurrence,
    and a VTIMEZONE per zone used. Entries whose rule gives no meeting at all are left out.

    ``now`` only bounds the VTIMEZONE definitions (to ``TIMEZONE_YEARS_AHEAD`` years on); DTSTAMP is each
    entry's ``updated``, so the feed's bytes change when a meeting does, not on every fetch."""
    now = _utc(now, "now")
    calendar = Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", "PUBLISH")
    for key in ("NAME", "X-WR-CALNAME"):  # RFC 7986, and the older name most apps read
        calendar.add(key, vText(name))  # TEXT, escaped: the library takes both as UNKNOWN, written verbatim
    earliest = now
    for entry in entries:
        for event in _events(entry):
            calendar.add_component(event)
            earliest = min(earliest, event.DTSTART)
    calendar.add_missing_timezones(
        first_date=date(earliest.year - 1, 1, 1), last_date=date(now.year + TIMEZONE_YEARS_AHEAD, 1, 1)
    )
    ical: bytes = calendar.to_ical()  # icalendar leaves to_ical() unannotated
    return ical


def _events(entry: CalendarEntry) -> list[Event]:
    """The entry's main VEVENT and one VEVENT per moved occurrence (empty: the series never happens)."""
    series = entry.series
    zone = series.zone
    if series.rule is None:  # a one-off: its start (moved, if the caller moved it that way)
        start = series.moves.get(series.start, series.start)
        main = _event(entry, start, zone)
        if entry.cancelled or series.start in series.cancelled:
            main.status = STATUS.CANCELLED
        return [main]

    first = next(series.originals(), None)
    if first is None:
        return []
    main = _event(entry, first, zone)
    rule = vRecur.from_ical(series.rule.removeprefix("RRULE:"))
    if series.until is not None:
        rule["UNTIL"] = [_utc(series.until, "until").replace(microsecond=0)]
    if series.count is not None:
        rule["COUNT"] = [series.count]
    main.add("RRULE", rule)
    cancelled = sorted(series.cancelled)
    if cancelled:
        main.add("EXDATE", [_local(original, zone) for original in cancelled])

    events = [main]
    for original, new in sorted(series.moves.items()):
        if original in series.cancelled or not _is_original(series, original):
            continue  # as in Series.occurrences: a cancellation wins, and a stale move changes nothing
        moved = _event(entry, new, zone)
        moved.add("RECURRENCE-ID", _local(original, zone))
        events.append(moved)
    return events


def _event(entry: CalendarEntry, start: datetime, zone: ZoneInfo) -> Event:
    """A VEVENT with the entry's text and stamps, from ``start`` for ``entry.duration``."""
    updated = _utc(entry.updated, "updated")
    return Event.new(
        uid=entry.uid,
        summary=entry.title,
        location=entry.where or None,
        url=_url(entry.where),
        description=entry.description or None,
        start=_local(start, zone),
        # exact duration: added in UTC, so a meeting across a DST change lasts as long as copbot says
        end=_local(_utc(start, "start") + entry.duration, zone),
        sequence=entry.sequence,
        status=STATUS.CANCELLED if entry.cancelled else STATUS.CONFIRMED,
        stamp=updated,
        created=_utc(entry.created, "created"),
        last_modified=updated,
    )


def _is_original(series: Series, moment: datetime) -> bool:
    """Whether ``moment`` is an original start of ``series`` (a move refers to one)."""
    return next(series.originals(after=moment - timedelta(microseconds=1)), None) == moment


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    """``moment`` as wall time in ``zone``: icalendar writes it with the zone's TZID (UTC as ``Z``)."""
    return _utc(moment, "a meeting time").astimezone(zone).replace(microsecond=0)


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime, got {moment!r}")
    return moment.astimezone(UTC)


def _url(where: str) -> str | None:
    """``where`` if it is a web link (a call's URL), for the URL property."""
    text = where.strip()
    if any(character.isspace() for character in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:  # "https://[meet…": a stray bracket reads as a broken IPv6 address; a place, no link
        return None
    return text if parts.scheme in {"http", "https"} and parts.netloc else None
