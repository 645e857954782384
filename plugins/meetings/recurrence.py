"""When a meeting happens: recurrence rules, expanded in the meeting's own zone. Pure, no I/O.

A weekly call at 15:00 Europe/Amsterdam is at 15:00 in Amsterdam in winter and in summer, so its UTC time
changes twice a year. The rule is therefore expanded on the *local* wall-clock time (dateutil's rrule on a
naive local start) and each occurrence is then placed in the zone; a local time that does not exist on a
spring-forward day moves on by the gap, one that exists twice on a fall-back day is its first instance.

An occurrence is named by its *original* start (UTC), even after it is moved: that is its RECURRENCE-ID in
the calendar feed, and what RSVPs, reminders and notes of that occurrence hang on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

MAX_SPAN = timedelta(days=731)
"""How far ahead an explicit end (--until, --count) may reach; a series without an end rolls on for ever."""
EVERY = {
    "daily": "FREQ=DAILY",
    "weekly": "FREQ=WEEKLY",
    "biweekly": "FREQ=WEEKLY;INTERVAL=2",
    "fortnightly": "FREQ=WEEKLY;INTERVAL=2",
    "monthly": "FREQ=MONTHLY",
}
RULE_EXAMPLE = "FREQ=MONTHLY;BYDAY=1TU (the first Tuesday of every month)"
_ALLOWED_FREQ = {"DAILY", "WEEKLY", "MONTHLY", "YEARLY"}
_NOT_ALLOWED = {"DTSTART", "UNTIL", "COUNT"}  # given as the meeting's own start, --until and --count


class RecurrenceError(ValueError):
    """A rule or an end copbot cannot use; the message says what to write instead."""


@dataclass(frozen=True, slots=True)
class Occurrence:
    original: datetime  # the start the rule gives (UTC): the occurrence's name
    start: datetime  # when it happens (UTC): the original, or where it was moved

    @property
    def moved(self) -> bool:
        return self.start != self.original


@dataclass(frozen=True)
class Series:
    """A meeting's times: its first start, its zone, and how it repeats (``rule`` None: once)."""

    start: datetime
    tz: str
    rule: str | None = None
    until: datetime | None = None
    count: int | None = None
    cancelled: frozenset[datetime] = frozenset()
    moves: Mapping[datetime, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("a series starts at an aware time")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def _rule(self) -> rrule | None:
        if self.rule is None:
            return None
        local_start = self.start.astimezone(self.zone).replace(tzinfo=None)
        parsed = rrulestr(self.rule, dtstart=local_start, cache=False)
        assert isinstance(parsed, rrule)
        # UNTIL is compared with each start's real instant (RFC 5545), not its wall time, so it is applied
        # in originals(); on a daylight-saving day the two differ.
        return parsed.replace(count=self.count) if self.count is not None else parsed

    def originals(self, after: datetime | None = None) -> Iterator[datetime]:
        """Original starts in order (UTC), those after ``after`` (or all)."""
        rule = self._rule()
        if rule is None:
            if after is None or self.start > after:
                yield self.start.astimezone(UTC)
            return
        zone = self.zone
        if after is None:
            locals_: Iterator[datetime] = iter(rule)
        else:  # a day's margin: the local and UTC dates differ by the zone's offset
            locals_ = rule.xafter(after.astimezone(zone).replace(tzinfo=None) - timedelta(days=1), inc=True)
        for local in locals_:
            moment = _place(local, zone)
            if self.until is not None and moment > self.until:
                return
            if after is None or moment > after:
                yield moment

    @property
    def _reach(self) -> timedelta:
        """How far any occurrence was moved from its original time."""
        return max((abs(new - original) for original, new in self.moves.items()), default=timedelta(0))

    def occurrences(self, start: datetime, end: datetime) -> list[Occurrence]:
        """The occurrences that happen in ``[start, end)``: moves applied, cancellations left out."""
        reach = self._reach
        found: list[Occurrence] = []
        for original in self.originals(after=start - reach - timedelta(microseconds=1)):
            if original >= end + reach:
                break
            if original in self.cancelled:
                continue
            when = self.moves.get(original, original)
            if start <= when < end:
                found.append(Occurrence(original, when))
        return sorted(found, key=lambda occurrence: occurrence.start)

    def next(self, after: datetime) -> Occurrence | None:
        """The first occurrence that starts after ``after`` (None when the series is over)."""
        reach = self._reach
        best: Occurrence | None = None
        for original in self.originals(after=after - reach):
            if best is not None and original > best.start + reach:
                break
            if original in self.cancelled:
                continue
            when = self.moves.get(original, original)
            if when > after and (best is None or when < best.start):
                best = Occurrence(original, when)
                if not reach:
                    break
        return best

    def has(self, original: datetime) -> bool:
        """Whether ``original`` is one of the rule's starts (cancelled ones included)."""
        return next(self.originals(after=original - timedelta(microseconds=1)), None) == original

    def on_day(self, day: date) -> Occurrence | None:
        """The occurrence whose original start falls on ``day`` in the meeting's zone, if any."""
        zone = self.zone
        begin = datetime.combine(day, time(0), zone).astimezone(UTC)
        for original in self.originals(after=begin - timedelta(microseconds=1)):
            if original.astimezone(zone).date() != day:
                return None
            return Occurrence(original, self.moves.get(original, original))
        return None

    def last(self) -> datetime | None:
        """The last original start, or None for a series without end."""
        if self.rule is None:
            return self.start.astimezone(UTC)
        if self.until is None and self.count is None:
            return None
        last = None
        for last in self.originals():  # noqa: B007 - walking to the end is the point
            pass
        return last


def _place(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall-clock time in ``zone``, as UTC. With fold=0, zoneinfo reads a time in a
    spring-forward gap with the offset before the gap, which lands it just after the gap (02:30 → 03:30
    summer time), and a time that exists twice as its first instance."""
    return local.replace(tzinfo=zone).astimezone(UTC)


def rule_from_every(text: str) -> str:
    """``weekly``, ``biweekly``, ``monthly`` or an RRULE (with or without ``RRULE:``) → a checked RRULE."""
    typed = text.strip()
    named = EVERY.get(typed.lower())
    if named is not None:
        return named
    body = re.sub(r"^RRULE:", "", typed, flags=re.IGNORECASE).upper().replace(" ", "")
    parts: dict[str, str] = {}
    for part in body.split(";"):
        key, _, value = part.partition("=")
        if not key or not value:
            raise RecurrenceError(
                f"'{typed}' is not a rule; use weekly, biweekly, monthly or an RRULE like {RULE_EXAMPLE}"
            )
        parts[key] = value
    if parts.get("FREQ") not in _ALLOWED_FREQ:
        raise RecurrenceError(f"'{typed}' needs FREQ=DAILY, WEEKLY, MONTHLY or YEARLY; e.g. {RULE_EXAMPLE}")
    given = _NOT_ALLOWED & set(parts)
    if given:
        raise RecurrenceError(
            f"write {sorted(given)[0]} as the meeting's time, --until or --count, not inside the rule"
        )
    try:
        rrulestr(body, dtstart=datetime(2026, 1, 1))
    except (ValueError, TypeError) as error:
        raise RecurrenceError(f"'{typed}' is not a valid RRULE ({error}); e.g. {RULE_EXAMPLE}") from None
    return body


def check_series(series: Series, now: datetime) -> None:
    """The ends of a recurring meeting: one of --until or --count, within two years, and at least one
    occurrence; a one-off meeting takes neither."""
    if series.rule is None:
        if series.until is not None or series.count is not None:
            raise RecurrenceError("--until and --count are for repeating meetings; add --every weekly")
        return
    if series.until is not None and series.count is not None:
        raise RecurrenceError("give --until or --count, not both")
    if series.count is not None and not 1 <= series.count <= 1000:
        raise RecurrenceError("--count must be from 1 to 1000")
    if series.until is not None and series.until < series.start:
        raise RecurrenceError("--until is before the first meeting")
    last = series.last()
    if last is not None and last - now > MAX_SPAN:
        raise RecurrenceError(
            "the series would run beyond two years; end it sooner, or leave out --until/--count "
            "for a series that simply goes on"
        )
    if next(series.originals(), None) is None:
        raise RecurrenceError("that rule gives no meeting at all")
