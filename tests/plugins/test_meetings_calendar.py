"""Meetings feed: what a calendar app makes of the ICS (parsed by icalendar, expanded by
recurring-ical-events) is exactly copbot's own ``Series.occurrences``, across DST changes, ends,
cancellations and moves; plus the feed's identity (UID, SEQUENCE), its VTIMEZONE and escaped text.

The windows ``[a, b)`` start and end at midnight UTC, away from any meeting: recurring-ical-events returns
what overlaps a window, copbot what starts in it, which differ only for a meeting cut by the window's edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events
from icalendar import Calendar, Event, Timezone
from icalendar.parser import unescape_backslash

from plugins.meetings.calendar import PRODID, CalendarEntry, ics_feed
from plugins.meetings.recurrence import EVERY, Series

NOW = datetime(2026, 1, 12, 8, 0, tzinfo=UTC)
CREATED = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
UPDATED = datetime(2026, 1, 10, 16, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
NEW_YORK = ZoneInfo("America/New_York")

Span = tuple[datetime, datetime]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def entry(series: Series, *, uid: str = "meeting-42@water.copbot", **changes: object) -> CalendarEntry:
    made = CalendarEntry(
        uid=uid,
        title="Water CoP call",
        where="https://meet.example.org/water",
        description="Monthly round of wells and pumps.",
        series=series,
        duration=HOUR,
        sequence=0,
        cancelled=False,
        created=CREATED,
        updated=UPDATED,
    )
    return replace(made, **changes)  # type: ignore[arg-type]


def parse(feed: bytes) -> Calendar:
    return Calendar.from_ical(feed)


def expanded(feed: bytes, a: datetime, b: datetime) -> list[Span]:
    """What a calendar app shows in ``[a, b)``: (start, end) as aware UTC."""
    events = recurring_ical_events.of(parse(feed)).between(a, b)
    return sorted((event.DTSTART.astimezone(UTC), event.DTEND.astimezone(UTC)) for event in events)


def copbots(made: CalendarEntry, a: datetime, b: datetime) -> list[Span]:
    """What copbot says happens in ``[a, b)``."""
    return [(o.start, o.start + made.duration) for o in made.series.occurrences(a, b)]


def assert_same_times(made: CalendarEntry, a: datetime, b: datetime) -> list[Span]:
    feed = ics_feed("Water CoP", [made], now=NOW)
    shown = expanded(feed, a, b)
    assert shown == copbots(made, a, b)
    assert shown, "a test window with no meeting proves nothing"
    return shown


def vevents(feed: bytes) -> list[Event]:
    return parse(feed).events


def main_event(feed: bytes) -> Event:
    (main,) = [event for event in vevents(feed) if "RECURRENCE-ID" not in event]
    return main


def starts_in(spans: list[Span], zone: ZoneInfo) -> list[str]:
    return [start.astimezone(zone).strftime("%Y-%m-%d %H:%M") for start, _ in spans]


# --- the same times as copbot -----------------------------------------------------------------------


def test_weekly_amsterdam_stays_at_15_local_across_both_dst_changes() -> None:
    series = Series(utc(2026, 3, 5, 14, 0), "Europe/Amsterdam", EVERY["weekly"])  # Thursday 15:00 CET
    shown = assert_same_times(entry(series), utc(2026, 3, 1), utc(2026, 11, 16))

    assert set(start.astimezone(AMSTERDAM).strftime("%a %H:%M") for start, _ in shown) == {"Thu 15:00"}
    by_day = {start.date(): start for start, _ in shown}
    assert by_day[utc(2026, 3, 26).date()] == utc(2026, 3, 26, 14, 0)  # CET, before 29 March
    assert by_day[utc(2026, 4, 2).date()] == utc(2026, 4, 2, 13, 0)  # CEST
    assert by_day[utc(2026, 10, 22).date()] == utc(2026, 10, 22, 13, 0)  # CEST, before 25 October
    assert by_day[utc(2026, 10, 29).date()] == utc(2026, 10, 29, 14, 0)  # CET again
    assert len(shown) == 37

    main = main_event(ics_feed("Water CoP", [entry(series)], now=NOW))
    assert main.DTSTART == datetime(2026, 3, 5, 15, 0, tzinfo=AMSTERDAM)
    assert main["DTSTART"].params["TZID"] == "Europe/Amsterdam"
    assert main["DTEND"].params["TZID"] == "Europe/Amsterdam"


def test_biweekly_new_york_across_its_dst_changes() -> None:
    series = Series(utc(2026, 2, 23, 15, 0), "America/New_York", EVERY["biweekly"])  # Monday 10:00 EST
    shown = assert_same_times(entry(series), utc(2026, 2, 1), utc(2026, 12, 1))

    assert starts_in(shown, NEW_YORK)[:3] == ["2026-02-23 10:00", "2026-03-09 10:00", "2026-03-23 10:00"]
    assert [start for start, _ in shown][:3] == [
        utc(2026, 2, 23, 15, 0),  # EST
        utc(2026, 3, 9, 14, 0),  # EDT from 8 March
        utc(2026, 3, 23, 14, 0),
    ]
    assert [start for start, _ in shown][-4:] == [
        utc(2026, 10, 19, 14, 0),  # EDT
        utc(2026, 11, 2, 15, 0),  # EST from 1 November
        utc(2026, 11, 16, 15, 0),
        utc(2026, 11, 30, 15, 0),
    ]
    assert (
        main_event(ics_feed("NY", [entry(series)], now=NOW))["RRULE"].to_ical() == b"FREQ=WEEKLY;INTERVAL=2"
    )


def test_monthly_with_count() -> None:
    series = Series(utc(2026, 1, 20, 17, 30), "Europe/Amsterdam", EVERY["monthly"], count=6)
    shown = assert_same_times(entry(series), utc(2026, 1, 1), utc(2027, 12, 31))

    assert starts_in(shown, AMSTERDAM) == [f"2026-0{month}-20 18:30" for month in range(1, 7)]
    rule = main_event(ics_feed("Water CoP", [entry(series)], now=NOW))["RRULE"]
    assert rule["COUNT"] == [6]
    assert "UNTIL" not in rule


def test_first_tuesday_with_count_counts_from_the_first_meeting_not_the_given_start() -> None:
    """Given on a Wednesday, a first-Tuesday series first meets on a first Tuesday (copbot, dateutil);
    a calendar app would show the DTSTART itself as a meeting, so DTSTART is that first Tuesday."""
    series = Series(utc(2026, 1, 7, 9, 0), "Europe/Amsterdam", "FREQ=MONTHLY;BYDAY=1TU", count=3)
    shown = assert_same_times(entry(series), utc(2026, 1, 1), utc(2026, 12, 31))

    assert starts_in(shown, AMSTERDAM) == ["2026-02-03 10:00", "2026-03-03 10:00", "2026-04-07 10:00"]
    assert main_event(ics_feed("Water CoP", [entry(series)], now=NOW)).DTSTART == datetime(
        2026, 2, 3, 10, 0, tzinfo=AMSTERDAM
    )


def test_until_is_written_in_utc_and_includes_a_meeting_at_that_instant() -> None:
    until = utc(2026, 11, 5, 14, 0)  # exactly the last meeting, 15:00 CET, after the October change
    series = Series(utc(2026, 10, 1, 13, 0), "Europe/Amsterdam", EVERY["weekly"], until=until)
    shown = assert_same_times(entry(series), utc(2026, 9, 1), utc(2027, 3, 1))

    assert starts_in(shown, AMSTERDAM) == [
        f"2026-{day} 15:00" for day in ("10-01", "10-08", "10-15", "10-22", "10-29", "11-05")
    ]
    feed = ics_feed("Water CoP", [entry(series)], now=NOW)
    assert b"RRULE:FREQ=WEEKLY;UNTIL=20261105T140000Z" in feed
    assert main_event(feed)["RRULE"]["UNTIL"] == [until]


def test_a_cancelled_occurrence_is_missing_and_a_moved_one_is_at_its_new_time() -> None:
    cancelled = utc(2026, 4, 9, 13, 0)
    moved_from, moved_to = utc(2026, 4, 16, 13, 0), utc(2026, 4, 17, 8, 30)  # Thursday 15:00 → Friday 10:30
    series = Series(
        utc(2026, 3, 19, 14, 0),
        "Europe/Amsterdam",
        EVERY["weekly"],
        count=8,
        cancelled=frozenset({cancelled}),
        moves={moved_from: moved_to},
    )
    shown = assert_same_times(entry(series), utc(2026, 3, 1), utc(2026, 6, 1))

    starts = [start for start, _ in shown]
    assert cancelled not in starts
    assert moved_from not in starts
    assert (moved_to, moved_to + HOUR) in shown
    assert len(shown) == 7

    feed = ics_feed("Water CoP", [entry(series)], now=NOW)
    main = main_event(feed)
    assert main.exdates == [cancelled.astimezone(AMSTERDAM)]
    assert main["EXDATE"].params["TZID"] == "Europe/Amsterdam"
    (override,) = [event for event in vevents(feed) if "RECURRENCE-ID" in event]
    assert override.uid == main.uid
    assert override["RECURRENCE-ID"].dt == datetime(2026, 4, 16, 15, 0, tzinfo=AMSTERDAM)
    assert override["RECURRENCE-ID"].params["TZID"] == "Europe/Amsterdam"
    assert override.DTSTART == datetime(2026, 4, 17, 10, 30, tzinfo=AMSTERDAM)
    assert override.DTEND == datetime(2026, 4, 17, 11, 30, tzinfo=AMSTERDAM)
    assert "RRULE" not in override


def test_a_move_across_a_dst_change_and_past_the_next_occurrence() -> None:
    moved_from, moved_to = utc(2026, 3, 26, 14, 0), utc(2026, 4, 3, 9, 0)  # 26 March CET → 3 April CEST
    series = Series(
        utc(2026, 3, 12, 14, 0), "Europe/Amsterdam", EVERY["weekly"], count=6, moves={moved_from: moved_to}
    )
    shown = assert_same_times(entry(series), utc(2026, 3, 1), utc(2026, 5, 1))
    assert starts_in(shown, AMSTERDAM)[2:4] == ["2026-04-02 15:00", "2026-04-03 11:00"]


def test_a_cancellation_wins_over_a_move_and_a_move_of_no_occurrence_changes_nothing() -> None:
    both = utc(2026, 4, 9, 13, 0)
    stray = utc(2026, 4, 10, 13, 0)  # not a Thursday: no occurrence of the rule
    series = Series(
        utc(2026, 4, 2, 13, 0),
        "Europe/Amsterdam",
        EVERY["weekly"],
        count=4,
        cancelled=frozenset({both}),
        moves={both: utc(2026, 4, 11, 9, 0), stray: utc(2026, 4, 12, 9, 0)},
    )
    shown = assert_same_times(entry(series), utc(2026, 3, 1), utc(2026, 6, 1))
    assert starts_in(shown, AMSTERDAM) == ["2026-04-02 15:00", "2026-04-16 15:00", "2026-04-23 15:00"]
    assert [
        event for event in vevents(ics_feed("W", [entry(series)], now=NOW)) if "RECURRENCE-ID" in event
    ] == []


def test_a_cancelled_series_is_status_cancelled_with_its_moved_occurrences() -> None:
    series = Series(
        utc(2026, 5, 7, 13, 0),
        "Europe/Amsterdam",
        EVERY["weekly"],
        count=4,
        moves={utc(2026, 5, 14, 13, 0): utc(2026, 5, 15, 13, 0)},
    )
    made = entry(series, cancelled=True, sequence=5)
    assert_same_times(made, utc(2026, 5, 1), utc(2026, 7, 1))  # the times stay, marked cancelled

    feed = ics_feed("Water CoP", [made], now=NOW)
    assert b"STATUS:CANCELLED" in feed
    assert b"STATUS:CONFIRMED" not in feed
    assert [str(event["STATUS"]) for event in vevents(feed)] == ["CANCELLED", "CANCELLED"]
    shown = recurring_ical_events.of(parse(feed)).between(utc(2026, 5, 1), utc(2026, 7, 1))
    assert {str(event["STATUS"]) for event in shown} == {"CANCELLED"}


def test_a_one_off_meeting_in_utc() -> None:
    start = utc(2027, 2, 10, 9, 0)
    made = entry(Series(start, "UTC"), duration=timedelta(minutes=90))
    shown = assert_same_times(made, utc(2027, 1, 1), utc(2027, 12, 31))
    assert shown == [(start, utc(2027, 2, 10, 10, 30))]

    feed = ics_feed("Water CoP", [made], now=NOW)
    main = main_event(feed)
    assert "RRULE" not in main
    assert str(main["STATUS"]) == "CONFIRMED"
    assert b"DTSTART:20270210T090000Z" in feed
    assert b"DTEND:20270210T103000Z" in feed
    assert b"BEGIN:VTIMEZONE" not in feed  # UTC needs none


def test_a_one_off_meeting_in_a_zone_is_at_its_local_time() -> None:
    made = entry(Series(utc(2026, 7, 1, 7, 0), "Europe/Amsterdam"))
    shown = assert_same_times(made, utc(2026, 6, 1), utc(2026, 8, 1))
    assert starts_in(shown, AMSTERDAM) == ["2026-07-01 09:00"]
    assert main_event(ics_feed("W", [made], now=NOW))["DTSTART"].params["TZID"] == "Europe/Amsterdam"


def test_a_local_time_skipped_or_repeated_by_dst_is_read_as_copbot_reads_it() -> None:
    """Daily at 02:30 Amsterdam: on 29 March 02:30 does not exist (→ 03:30 CEST), on 25 October it exists
    twice (→ the first, CEST). Starts only: the app derives each end from DTEND - DTSTART in wall time."""
    for first, a, b in (
        (utc(2026, 3, 27, 1, 30), utc(2026, 3, 26), utc(2026, 4, 2)),
        (utc(2026, 10, 23, 0, 30), utc(2026, 10, 22), utc(2026, 10, 29)),
    ):
        series = Series(first, "Europe/Amsterdam", EVERY["daily"], count=5)
        feed = ics_feed("Water CoP", [entry(series)], now=NOW)
        assert [start for start, _ in expanded(feed, a, b)] == [o.start for o in series.occurrences(a, b)]
    assert [o.start for o in series.occurrences(a, b)][2] == utc(2026, 10, 25, 0, 30)


# --- the feed itself ------------------------------------------------------------------------------------


def test_the_calendar_header() -> None:
    calendar = parse(ics_feed("Water & Sanitation CoP", [], now=NOW))
    assert str(calendar["PRODID"]) == PRODID == "-//copbot//meetings//EN"
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert str(calendar["X-WR-CALNAME"]) == "Water & Sanitation CoP"
    assert calendar.events == []


def test_uid_is_stable_and_sequence_carried() -> None:
    moves: Mapping[datetime, datetime] = {utc(2026, 3, 12, 14, 0): utc(2026, 3, 13, 14, 0)}
    series = Series(utc(2026, 3, 5, 14, 0), "Europe/Amsterdam", EVERY["weekly"], count=4, moves=moves)
    before = entry(series, sequence=2)
    assert ics_feed("W", [before], now=NOW) == ics_feed("W", [before], now=NOW)  # the same bytes every time

    edited = replace(
        before,
        title="Water CoP call (new room)",
        sequence=3,
        updated=utc(2026, 2, 1, 9, 0),
        series=replace(
            series, start=utc(2026, 3, 5, 15, 0), moves={utc(2026, 3, 12, 15, 0): utc(2026, 3, 13, 8)}
        ),
    )
    for made in (before, edited):
        events = vevents(
            ics_feed("W", [made, entry(Series(NOW + HOUR, "UTC"), uid="meeting-7@water.copbot")], now=NOW)
        )
        ours = [event for event in events if event.uid == "meeting-42@water.copbot"]
        assert len(ours) == 2  # the series and its moved occurrence
        assert {event.sequence for event in ours} == {made.sequence}
        assert {event.DTSTAMP for event in ours} == {made.updated}
        assert {event.last_modified for event in ours} == {made.updated}
        assert {event.created for event in ours} == {CREATED}
        assert {event.uid for event in events} == {"meeting-42@water.copbot", "meeting-7@water.copbot"}


def test_a_vtimezone_for_every_zone_used_that_agrees_with_the_zone_database() -> None:
    amsterdam = Series(utc(2026, 3, 5, 14, 0), "Europe/Amsterdam", EVERY["weekly"], count=40)
    new_york = Series(utc(2026, 2, 23, 15, 0), "America/New_York", EVERY["biweekly"], count=20)
    entries = [
        entry(amsterdam),
        entry(new_york, uid="meeting-43@water.copbot"),
        entry(Series(utc(2026, 6, 1, 12, 0), "UTC"), uid="meeting-44@water.copbot"),
    ]
    calendar = parse(ics_feed("Water CoP", entries, now=NOW))

    timezones: dict[str, Timezone] = {timezone.tz_name: timezone for timezone in calendar.timezones}
    assert set(timezones) == {"Europe/Amsterdam", "America/New_York"}
    assert calendar.get_missing_tzids() == set()
    for made in entries[:2]:
        own = timezones[made.series.tz].to_tz(lookup_tzid=False)  # the VTIMEZONE alone, not the zone database
        for occurrence in made.series.occurrences(utc(2026, 1, 1), utc(2028, 1, 1)):
            assert (
                occurrence.start.astimezone(own).utcoffset()
                == occurrence.start.astimezone(made.series.zone).utcoffset()
            )


def test_where_is_the_location_and_a_link_is_also_the_url() -> None:
    series = Series(utc(2026, 6, 1, 12, 0), "UTC")
    link = main_event(ics_feed("W", [entry(series, where="https://meet.example.org/water?x=1,2")], now=NOW))
    assert str(link["LOCATION"]) == "https://meet.example.org/water?x=1,2"
    assert str(link["URL"]) == "https://meet.example.org/water?x=1,2"

    room = main_event(ics_feed("W", [entry(series, where="Room 3, Deltares; Delft")], now=NOW))
    assert str(room["LOCATION"]) == "Room 3, Deltares; Delft"
    assert "URL" not in room


def test_hostile_text_round_trips() -> None:
    title = 'Wells, pumps; "filters"\nEND:VEVENT\nBEGIN:VEVENT\nUID:evil — Ünïcødé 💧 \\ back\\slash, ok; '
    where = "Zaal 3, Café ‘De Waag’; 2nd floor\nDTSTART:19700101T000000Z"
    description = (
        "Agenda:\n1. wells, pumps; filters\n2. "
        + "long line with ümlauts and 水 " * 20
        + "\n\\n is not a newline"
    )
    series = Series(utc(2026, 6, 1, 12, 0), "Europe/Amsterdam", EVERY["weekly"], count=2)
    feed = ics_feed(
        "Wells, pumps; & 💧\nX-EVIL:1",
        [entry(series, title=title, where=where, description=description)],
        now=NOW,
    )

    assert all(len(line) <= 75 for line in feed.split(b"\r\n"))  # folded, without splitting a character
    feed.decode("utf-8")
    calendar = parse(feed)
    (event,) = calendar.events
    assert str(event["SUMMARY"]) == title
    assert str(event["LOCATION"]) == where
    assert str(event["DESCRIPTION"]) == description
    assert event.uid == "meeting-42@water.copbot"
    assert event.DTSTART == datetime(2026, 6, 1, 14, 0, tzinfo=AMSTERDAM)
    for key in ("NAME", "X-WR-CALNAME"):  # TEXT, which icalendar reads back verbatim (as UNKNOWN)
        assert unescape_backslash(calendar[key]) == "Wells, pumps; & 💧\nX-EVIL:1"
    assert "X-EVIL" not in calendar
    assert len(recurring_ical_events.of(calendar).between(utc(2026, 5, 1), utc(2026, 7, 1))) == 2


def test_naive_times_are_refused() -> None:
    series = Series(utc(2026, 6, 1, 12, 0), "UTC")
    with pytest.raises(ValueError, match="now must be an aware datetime"):
        ics_feed("W", [entry(series)], now=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="updated must be an aware datetime"):
        ics_feed("W", [entry(series, updated=datetime(2026, 1, 1))], now=NOW)
