"""Meetings' pure rules: times in several zones and across DST, recurrence with exceptions, RSVPs with a
cap, and when reminders are due — no server, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest

from bot.timeparse import TimeParseError, parse_when
from plugins.meetings.queries import series_of, unchanged_key
from plugins.meetings.recurrence import (
    EVERY,
    Occurrence,
    RecurrenceError,
    Series,
    check_series,
    rule_from_every,
)
from plugins.meetings.reminders import Reminder, next_reminder, still_worth_sending, time_left_words
from plugins.meetings.render import repeats
from plugins.meetings.rsvp import Answer, moved_up, roster

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
DAY, HOUR, MINUTE = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# --- reading times --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("2026-03-10 15:00", "Europe/Amsterdam", utc(2026, 3, 10, 14)),
        ("2026-07-10 15:00", "Europe/Amsterdam", utc(2026, 7, 10, 13)),  # summer time
        ("2026-03-10 15:00", "America/New_York", utc(2026, 3, 10, 19)),  # New York is on EDT by the 8th
        ("2026-03-06 15:00", "America/New_York", utc(2026, 3, 6, 20)),
        ("next tuesday 15:00", "Europe/Amsterdam", utc(2026, 3, 3, 14)),
        ("in 2 days 10:00", "Asia/Tokyo", utc(2026, 3, 4, 1)),
        ("tomorrow 09:30", "America/New_York", utc(2026, 3, 3, 14, 30)),
        ("25/12/2026 18:00", "Europe/Lisbon", utc(2026, 12, 25, 18)),
        ("tomorrow at 9", "Europe/Amsterdam", utc(2026, 3, 3, 8)),  # 9:00, not 9 at this minute
        ("friday at 23", "UTC", utc(2026, 3, 6, 23)),
        ("friday at 7 pm", "UTC", utc(2026, 3, 6, 19)),
        ("at 8", "UTC", utc(2026, 3, 3, 8)),  # passed today: tomorrow
        ("thursday 17h30", "Europe/Paris", utc(2026, 3, 5, 16, 30)),  # as much of Europe writes it
        ("tomorrow 17", "UTC", utc(2026, 3, 3, 17)),  # an hour of the afternoon: no doubt
        ("tomorrow 9.30", "Europe/London", utc(2026, 3, 3, 9, 30)),  # a time as Britain writes it
        ("friday at 7.45pm", "UTC", utc(2026, 3, 6, 19, 45)),
        ("tonight 9", "UTC", utc(2026, 3, 2, 21)),
        ("24.12 18:00", "UTC", utc(2026, 12, 24, 18)),  # a dotted date beside a time
        ("2028-02-29 10:00", "UTC", utc(2028, 2, 29, 10)),  # a leap day, in a leap year
    ],
)
def test_times_are_read_in_the_callers_zone(text: str, zone: str, expected: datetime) -> None:
    assert parse_when(text, now=NOW, tz=zone) == expected


@pytest.mark.parametrize(
    ("text", "zone", "message"),
    [
        ("2026-03-29 02:30", "Europe/Amsterdam", "02:30 does not exist on 29 Mar 2026 in Europe/Amsterdam"),
        ("2026-11-01 01:30", "America/New_York", "01:30 happens twice on 1 Nov 2026 in America/New_York"),
        ("3/12/2026 15:00", "UTC", "'3/12/2026' could be 3 December or 12 March"),
        ("someday", "UTC", "'someday' is not a time I understand"),
        # a day no calendar has: said so, and why, not "not a time I understand"
        ("2027-02-29 10:00", "UTC", "'2027-02-29' is not a date: February 2027 has 28 days"),
        ("2026-04-31", "UTC", "'2026-04-31' is not a date: April 2026 has 30 days"),
        ("2026-13-01T09:00", "UTC", "'2026-13-01' is not a date: there is no month 13"),
        ("29/02/2027 10:00", "UTC", "'29/02/2027' is not a date: February 2027 has 28 days"),
        # a time of day that cannot be: dateparser would drop it and read the rest (tomorrow, at this time)
        ("tomorrow 25:00", "UTC", "'25:00' is not a time of day"),
        ("next tuesday 14:60", "UTC", "'14:60' is not a time of day"),
        ("tomorrow at 24", "UTC", "'at 24' is not a time of day"),
        # an hour alone: morning or evening; after a weekday also a day of the month (friday 3 → 2 March)
        ("tomorrow 9", "UTC", "'tomorrow 9' could be 9:00 or 21:00; write the time as 09:00, 21:00 or 9pm"),
        ("friday 3", "UTC", r"'friday 3' could be a time or a day of the month; .* \(3 March\)"),
        ("10.30", "UTC", "'10.30' could be the time 10:30 or a date; write 10:30 for the time"),
        # in words as in ISO: dateparser alone made 02:30 in the gap 03:30, and of a time that happens twice
        # took the summer instance in Berlin but the winter one in Sydney
        ("29 march 02:30", "Europe/Berlin", "02:30 does not exist on 29 Mar 2026 in Europe/Berlin"),
        ("march 8 2:30am", "America/New_York", "02:30 does not exist on 8 Mar 2026 in America/New_York"),
        ("25 october 02:30", "Europe/Berlin", "02:30 happens twice on 25 Oct 2026 in Europe/Berlin"),
        ("5 april 02:30", "Australia/Sydney", "02:30 happens twice on 5 Apr 2026 in Australia/Sydney"),
    ],
)
def test_times_that_mean_two_things_or_nothing_are_refused(text: str, zone: str, message: str) -> None:
    with pytest.raises(TimeParseError, match=message):
        parse_when(text, now=NOW, tz=zone)


def test_words_near_a_daylight_saving_change_read_as_written() -> None:
    """The day before the change, ``tomorrow 02:30`` is refused like 2026-03-29 02:30; the times around
    it, one that names its zone, and one counted from now are what they say."""
    saturday = utc(2026, 3, 28, 12)  # 13:00 in Berlin, the day before the clocks go forward
    with pytest.raises(TimeParseError, match="02:30 does not exist on 29 Mar 2026 in Europe/Berlin"):
        parse_when("tomorrow 02:30", now=saturday, tz="Europe/Berlin")
    assert parse_when("tomorrow 03:30", now=saturday, tz="Europe/Berlin") == utc(2026, 3, 29, 1, 30)
    assert parse_when("tomorrow 01:30", now=saturday, tz="Europe/Berlin") == utc(2026, 3, 29, 0, 30)
    assert parse_when("29 march 02:30 UTC", now=saturday, tz="Europe/Berlin") == utc(2026, 3, 29, 2, 30)
    night = utc(2026, 3, 29, 0, 30)  # 01:30 in Berlin: ninety minutes on is 04:00 summer time
    assert parse_when("in 90 minutes", now=night, tz="Europe/Berlin") == utc(2026, 3, 29, 2)
    at_half_past_two = utc(2026, 3, 28, 1, 30)  # a day alone takes now's time, which nobody wrote
    assert parse_when("tomorrow", now=at_half_past_two, tz="Europe/Berlin") == utc(2026, 3, 29, 1, 30)


# --- recurrence -------------------------------------------------------------------------------------------


def test_a_weekly_meeting_keeps_its_local_time_across_both_dst_changes() -> None:
    weekly = Series(utc(2026, 3, 17, 14), "Europe/Amsterdam", rule_from_every("weekly"))
    spring = weekly.occurrences(utc(2026, 3, 17), utc(2026, 4, 1))
    assert [o.start for o in spring] == [utc(2026, 3, 17, 14), utc(2026, 3, 24, 14), utc(2026, 3, 31, 13)]
    autumn = weekly.occurrences(utc(2026, 10, 20), utc(2026, 11, 4))
    assert [o.start for o in autumn] == [utc(2026, 10, 20, 13), utc(2026, 10, 27, 14), utc(2026, 11, 3, 14)]
    assert all(o.start.astimezone(weekly.zone).hour == 15 for o in spring + autumn)


def test_new_york_changes_on_its_own_dates() -> None:
    biweekly = Series(utc(2026, 3, 3, 15), "America/New_York", rule_from_every("biweekly"))  # 10:00 EST
    times = [o.start for o in biweekly.occurrences(utc(2026, 3, 1), utc(2026, 4, 1))]
    assert times == [utc(2026, 3, 3, 15), utc(2026, 3, 17, 14), utc(2026, 3, 31, 14)]  # 10:00 EDT


def test_exceptions_cancel_and_move_occurrences() -> None:
    first = utc(2026, 3, 3, 14)
    series = Series(
        first,
        "Europe/Amsterdam",
        "FREQ=WEEKLY",
        cancelled=frozenset({utc(2026, 3, 10, 14)}),
        moves={utc(2026, 3, 17, 14): utc(2026, 3, 19, 9)},
    )
    found = series.occurrences(utc(2026, 3, 1), utc(2026, 3, 25))
    assert found == [
        Occurrence(first, first),
        Occurrence(utc(2026, 3, 17, 14), utc(2026, 3, 19, 9)),
        Occurrence(utc(2026, 3, 24, 14), utc(2026, 3, 24, 14)),
    ]
    assert series.next(utc(2026, 3, 4)) == found[1]
    assert series.on_day(date(2026, 3, 17)) == found[1]
    assert series.on_day(date(2026, 3, 18)) is None


def test_a_monthly_series_on_a_day_some_months_lack_says_it_skips_them() -> None:
    """RFC 5545 (and every calendar app) skips a month without the series' day: said where it is shown."""
    on_31 = Series(utc(2027, 1, 31, 10), "UTC", EVERY["monthly"])
    assert [o.start.date() for o in on_31.occurrences(utc(2027, 1, 1), utc(2027, 6, 1))] == [
        date(2027, 1, 31),
        date(2027, 3, 31),
        date(2027, 5, 31),
    ]

    def shown(start: datetime, tz: str, rule: str) -> str:
        meeting = SimpleNamespace(starts_at=start, tz=tz, rule=rule, count=None, until_at=None)
        return repeats(meeting)  # type: ignore[arg-type]

    assert (
        shown(utc(2027, 1, 31, 10), "UTC", EVERY["monthly"])
        == "monthly on the 31st (not in months without one)"
    )
    # the day is the local one: 23:30 UTC on the 29th is the 30th in Amsterdam
    assert shown(utc(2027, 1, 29, 23, 30), "Europe/Amsterdam", EVERY["monthly"]).startswith(
        "monthly on the 30th"
    )
    assert shown(utc(2027, 1, 28, 10), "UTC", EVERY["monthly"]) == "monthly"
    assert shown(utc(2028, 2, 29, 10), "UTC", "FREQ=YEARLY") == "yearly on 29 February (leap years only)"
    assert shown(utc(2027, 1, 31, 10), "UTC", "FREQ=MONTHLY;BYDAY=1TU").startswith("monthly (FREQ=")


def test_count_until_and_monthly_rules() -> None:
    monthly = Series(
        utc(2026, 3, 3, 14), "Europe/Amsterdam", rule_from_every("FREQ=MONTHLY;BYDAY=1TU"), count=3
    )
    assert [o.start.date() for o in monthly.occurrences(NOW, NOW + 400 * DAY)] == [
        date(2026, 3, 3),
        date(2026, 4, 7),
        date(2026, 5, 5),
    ]
    until = Series(utc(2026, 3, 3, 14), "UTC", "FREQ=WEEKLY", until=utc(2026, 3, 17, 23, 59))
    assert len(until.occurrences(NOW, NOW + 400 * DAY)) == 3
    assert monthly.last() == utc(2026, 5, 5, 13)


@pytest.mark.parametrize(
    ("every", "message"),
    [
        ("hourly", "'hourly' is not a rule"),
        ("FREQ=SECONDLY", "needs FREQ=DAILY, WEEKLY, MONTHLY or YEARLY"),
        ("FREQ=WEEKLY;BYDAY=XX", "is not a valid RRULE"),
        ("FREQ=WEEKLY;COUNT=5", "give COUNT as --count, not inside the rule"),
        ("FREQ=WEEKLY;UNTIL=20270101", "give UNTIL as --until, not inside the rule"),
    ],
)
def test_bad_rules_say_what_to_write(every: str, message: str) -> None:
    with pytest.raises(RecurrenceError, match=message):
        rule_from_every(every)


def test_a_start_the_rule_does_not_have_is_refused_with_the_rules_first() -> None:
    """dateutil leaves such a start out, so the series would begin later than the meeting announced."""
    thursday = Series(utc(2026, 3, 5, 10), "Europe/Amsterdam", rule_from_every("FREQ=WEEKLY;BYDAY=MO,WE"))
    with pytest.raises(RecurrenceError, match="its first would be Mon 9 Mar 11:00: give that time"):
        check_series(thursday, NOW)
    check_series(Series(utc(2026, 3, 3, 14), "UTC", rule_from_every("FREQ=MONTHLY;BYDAY=1TU")), NOW)
    check_series(
        Series(utc(2026, 3, 9, 10), "Europe/Amsterdam", rule_from_every("FREQ=WEEKLY;BYDAY=MO,WE")), NOW
    )


def test_a_series_ends_within_two_years_or_not_at_all() -> None:
    start = utc(2026, 3, 3, 14)
    check_series(Series(start, "UTC", "FREQ=WEEKLY"), NOW)  # no end: it simply goes on
    check_series(Series(start, "UTC", "FREQ=WEEKLY", count=100), NOW)
    with pytest.raises(RecurrenceError, match="beyond two years"):
        check_series(Series(start, "UTC", "FREQ=WEEKLY", until=utc(2029, 1, 1)), NOW)
    with pytest.raises(RecurrenceError, match="not both"):
        check_series(Series(start, "UTC", "FREQ=WEEKLY", until=utc(2026, 5, 1), count=3), NOW)
    with pytest.raises(RecurrenceError, match="are for repeating meetings"):
        check_series(Series(start, "UTC", None, count=3), NOW)


def test_a_long_running_series_is_cheap_to_ask() -> None:
    weekly = Series(utc(2026, 1, 6, 14), "Europe/Amsterdam", "FREQ=WEEKLY")
    later = utc(2028, 6, 1)
    assert weekly.next(later) is not None and weekly.next(later).start > later  # type: ignore[union-attr]


# --- answers and the cap -----------------------------------------------------------------------------------


def test_an_occurrence_answer_overrides_the_series_answer() -> None:
    answers = [
        Answer(1, "yes", NOW, for_series=True),
        Answer(1, "no", NOW + MINUTE),
        Answer(2, "maybe", NOW, for_series=True),
    ]
    team = roster(answers, None)
    assert (team.coming, team.maybe, team.declined) == ((), (2,), (1,))


def test_the_cap_keeps_a_waiting_list_that_moves_up() -> None:
    answers = [Answer(member, "yes", NOW + member * MINUTE) for member in (1, 2, 3, 4)]
    before = roster(answers, 2)
    assert (before.coming, before.waiting) == ((1, 2), (3, 4))
    after = roster([*answers[1:], Answer(1, "no", NOW + 10 * MINUTE)], 2)
    assert (after.coming, after.waiting) == ((2, 3), (4,))
    assert moved_up(before, after) == [3]
    assert after.reminded == (2, 3)  # those waiting are not reminded
    assert after.counts() == "✅ 2 · ❔ 0 · ❌ 1 · ⏳ 1 waiting"


# --- reminders ---------------------------------------------------------------------------------------------

LEADS = (DAY, 15 * MINUTE)


def test_reminders_come_in_order_and_roll_on_with_the_series() -> None:
    weekly = Series(utc(2026, 3, 10, 14), "Europe/Amsterdam", "FREQ=WEEKLY")
    first = next_reminder(weekly, LEADS, NOW)
    assert first is not None and (first.due, first.lead) == (utc(2026, 3, 9, 14), DAY)
    second = next_reminder(weekly, LEADS, first.due)
    assert second is not None and (second.due, second.lead) == (utc(2026, 3, 10, 13, 45), 15 * MINUTE)
    third = next_reminder(weekly, LEADS, second.due)
    assert third is not None and third.occurrence.start == utc(2026, 3, 17, 14) and third.lead == DAY


def test_a_late_reminder_is_sent_only_while_it_still_helps() -> None:
    occurrence = Occurrence(utc(2026, 3, 10, 14), utc(2026, 3, 10, 14))
    day_before = Reminder(occurrence, DAY)
    assert still_worth_sending(day_before, LEADS, utc(2026, 3, 9, 20))  # six hours late: still useful
    assert not still_worth_sending(day_before, LEADS, utc(2026, 3, 10, 13, 50))  # the 15-minute one is due
    assert not still_worth_sending(Reminder(occurrence, 15 * MINUTE), LEADS, utc(2026, 3, 10, 14, 1))


def test_after_a_long_downtime_the_next_reminder_is_one_of_a_meeting_still_to_come() -> None:
    weekly = Series(utc(2026, 3, 10, 14), "Europe/Amsterdam", "FREQ=WEEKLY")  # 15:00 in Amsterdam
    handled = utc(2026, 3, 9, 14)
    back = utc(2026, 4, 28, 13, 30)  # during the meeting of Tue 28 Apr (13:00 UTC in summer time)
    found = next_reminder(weekly, LEADS, handled, back)
    assert found is not None and (found.due, found.lead) == (utc(2026, 5, 4, 13), DAY)
    stepped = next_reminder(weekly, LEADS, handled)  # without now: the one after the last handled
    assert stepped is not None and stepped.due == utc(2026, 3, 10, 13, 45)
    late = utc(2026, 5, 4, 20)  # back after the 24-hour reminder was due: found, and still sent
    again = next_reminder(weekly, LEADS, utc(2026, 4, 28, 12, 45), late)
    assert again == found and still_worth_sending(found, LEADS, late)
    assert next_reminder(weekly, LEADS, utc(2026, 5, 4, 13), back) == Reminder(found.occurrence, 15 * MINUTE)


def test_the_fast_expansion_of_common_rules_agrees_with_dateutil() -> None:
    """Daily, weekly (on weekdays) and monthly (on a day or the nth weekday) rules are expanded without
    dateutil's general engine, for speed; they must give exactly its times, in any zone, from any point."""
    import itertools
    import random

    from plugins.meetings import recurrence

    rng = random.Random(11)
    zones = ("Europe/Amsterdam", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC")
    rules = (
        "FREQ=DAILY;INTERVAL=5",
        "FREQ=WEEKLY",
        "FREQ=WEEKLY;INTERVAL=3;BYDAY=SU,SA,WE",
        "FREQ=MONTHLY",
        "FREQ=MONTHLY;INTERVAL=2;BYDAY=-1FR,2MO",
        "FREQ=MONTHLY;BYDAY=5WE",
    )
    for _ in range(600):
        start = utc(2025, 1, 1) + timedelta(minutes=rng.randrange(0, 60 * 24 * 700))
        until = start + timedelta(days=rng.randrange(1, 500)) if rng.random() < 0.3 else None
        series = Series(start, rng.choice(zones), rng.choice(rules), until=until)
        after = start + timedelta(days=rng.randrange(-10, 600), minutes=rng.randrange(0, 1440))
        fast = list(itertools.islice(series.originals(after=after), 8))
        rule = series._rule()
        assert rule is not None
        local_after = after.astimezone(series.zone).replace(tzinfo=None) - DAY
        expected = []
        for local in rule.xafter(local_after, inc=True):
            moment = recurrence._place(local, series.zone)
            if until is not None and moment > until:
                break
            if moment > after:
                expected.append(moment)
            if len(expected) == 8:
                break
        assert fast == expected, (series, after)


def test_an_unchanged_meetings_key_read_off_its_row_is_its_series_key() -> None:
    """`meeting list` looks a series' remembered window up by this key without building the series: the
    two must never differ, or a list would show another series' times."""
    for rule, until, count in (("FREQ=WEEKLY", None, None), (None, None, None), ("FREQ=MONTHLY", None, 5)):
        row = SimpleNamespace(
            starts_at=datetime(2026, 3, 10, 14, 0, tzinfo=UTC),
            tz="Europe/Amsterdam",
            rule=rule,
            until_at=datetime(2026, 9, 1, tzinfo=UTC) if until else None,
            count=count,
        )
        assert unchanged_key(row) == series_of(row, ()).key()


@pytest.mark.parametrize(
    ("left", "words"),
    [
        (timedelta(hours=23, minutes=30, seconds=59), "23 hours 30 minutes"),
        (timedelta(days=2, hours=1, minutes=7), "2 days 1 hour"),
        (timedelta(days=1, minutes=5), "1 day"),
        (timedelta(minutes=5, seconds=30), "5 minutes"),
        (timedelta(seconds=40), "less than a minute"),
    ],
)
def test_the_time_left_is_said_in_at_most_two_units_never_more_than_there_is(
    left: timedelta, words: str
) -> None:
    assert time_left_words(left) == words


def test_a_late_reminder_says_the_time_left_and_one_on_time_its_lead() -> None:
    start = datetime(2026, 3, 3, 10, tzinfo=UTC)
    reminder = Reminder(Occurrence(start, start), timedelta(minutes=15))
    assert reminder.label_at(start - timedelta(minutes=15)) == "15 minutes"
    assert reminder.label_at(start - timedelta(minutes=14, seconds=10)) == "15 minutes"  # within a minute
    assert reminder.label_at(start - timedelta(minutes=5)) == "5 minutes"


def test_a_day_names_the_meeting_that_takes_place_on_it_before_the_one_planned_for_it() -> None:
    """``--occurrence <day>``: a daily series whose Tuesday meeting moved to Thursday afternoon."""

    def day(d: int, h: int = 9) -> datetime:
        return datetime(2026, 3, d, h, tzinfo=UTC)

    moved = Series(day(9), "UTC", "FREQ=DAILY", moves={day(10): day(12, 16)})
    assert moved.named_by_day(date(2026, 3, 12)) == Occurrence(day(12), day(12))  # the one planned for it
    assert moved.named_by_day(date(2026, 3, 10)) == Occurrence(day(10), day(12, 16))  # as named before
    cancelled = Series(day(9), "UTC", "FREQ=DAILY", cancelled=frozenset({day(12)}), moves=moved.moves)
    assert cancelled.named_by_day(date(2026, 3, 12)) == Occurrence(day(10), day(12, 16))  # the one held
    weekly = Series(day(10), "UTC", "FREQ=WEEKLY", moves={day(17): day(19, 16)})
    assert weekly.named_by_day(date(2026, 3, 19)) == Occurrence(day(17), day(19, 16))  # the day it is held
    assert weekly.named_by_day(date(2026, 3, 18)) is None
