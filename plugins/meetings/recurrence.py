"""When a meeting happens: recurrence rules, expanded in the meeting's own zone. Pure, no I/O.

A weekly call at 15:00 Europe/Amsterdam is at 15:00 in Amsterdam in winter and in summer, so its UTC time
changes twice a year. The rule is therefore expanded on the *local* wall-clock time (dateutil's rrule on a
naive local start) and each occurrence is then placed in the zone; a local time that does not exist on a
spring-forward day moves on by the gap, one that exists twice on a fall-back day is its first instance.

An occurrence is named by its *original* start (UTC), even after it is moved: that is its RECURRENCE-ID in
the calendar feed, and what RSVPs, reminders and notes of that occurrence hang on.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from dateutil.rrule import rrule

# dateutil is imported where a rule is parsed, not here: the plain weekly, biweekly and monthly series
# never need it (see _simple_starts), and a community without recurring meetings never loads it (~0.4 MB).

MAX_SPAN = timedelta(days=731)
"""How far ahead an explicit end (--until, --count) may reach; a series without an end rolls on for ever."""
EVERY = {
    "daily": "FREQ=DAILY",
    "weekly": "FREQ=WEEKLY",
    "biweekly": "FREQ=WEEKLY;INTERVAL=2",
    "fortnightly": "FREQ=WEEKLY;INTERVAL=2",
    "monthly": "FREQ=MONTHLY",
    "quarterly": "FREQ=MONTHLY;INTERVAL=3",
    "yearly": "FREQ=YEARLY",
    "annually": "FREQ=YEARLY",
}
NAMED = "daily, weekly, biweekly, monthly, quarterly, yearly"
"""The series a word names (``--every quarterly``), as error messages list them."""
RULE_EXAMPLE = "FREQ=MONTHLY;BYDAY=1TU (the first Tuesday of every month)"
_ALLOWED_FREQ = {"DAILY", "WEEKLY", "MONTHLY", "YEARLY"}
_NOT_ALLOWED = {"DTSTART": "the meeting's time", "UNTIL": "--until", "COUNT": "--count"}
MAX_RULE = 500
"""Characters of a rule a meeting keeps (its column's size: PostgreSQL refuses a longer one)."""
_RULE_TEXT = re.compile(r"[A-Z0-9=;,+\-]+")
"""What an RRULE's parts are written with (upper-cased, spaces taken out)."""


class RecurrenceError(ValueError):
    """A rule or an end copbot cannot use; the message says what to write instead."""


@dataclass(frozen=True, slots=True)
class Occurrence:
    original: datetime  # the start the rule gives (UTC): the occurrence's name
    start: datetime  # when it happens (UTC): the original, or where it was moved

    @property
    def moved(self) -> bool:
        return self.start != self.original


@dataclass(frozen=True, slots=True)
class MoveWindow:
    """The times one meeting of a series may move to: strictly between ``after`` and ``before`` (None:
    no bound on that side). ``ends``: ``before`` is the end of the series, not a meeting."""

    after: datetime | None
    before: datetime | None
    ends: bool


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

    def _rule(self, near: datetime | None = None) -> rrule | None:
        """The rule on the local start; with ``near``, restarted a whole number of periods later, so
        finding next week's meeting of a series that began years ago does not walk every week since."""
        if self.rule is None:
            return None
        local_start = self.start.astimezone(self.zone).replace(tzinfo=None)
        if near is not None and self.count is None:
            local_start = _closer_start(
                self.rule, local_start, near.astimezone(self.zone).replace(tzinfo=None)
            )
        # UNTIL is compared with each start's real instant (RFC 5545), not its wall time, so it is applied
        # in originals(); on a daylight-saving day the two differ.
        return _parsed(self.rule, local_start, self.count)

    def originals(self, after: datetime | None = None) -> Iterator[datetime]:
        """Original starts in order (UTC), those after ``after`` (or all)."""
        if self.rule is None:
            if after is None or self.start > after:
                yield self.start.astimezone(UTC)
            return
        zone = self.zone
        local_start = self.start.astimezone(zone).replace(tzinfo=None)
        # a day's margin: the local and UTC dates differ by the zone's offset
        local_after = after.astimezone(zone).replace(tzinfo=None) - timedelta(days=1) if after else None
        locals_ = _simple_starts(self.rule, local_start, local_after) if self.count is None else None
        if locals_ is None:
            rule = self._rule(near=after)
            assert rule is not None
            locals_ = iter(rule) if local_after is None else rule.xafter(local_after, inc=True)
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

    def key(self) -> tuple[object, ...]:
        """Everything the times depend on, hashable: two series with one key happen at the same times."""
        return series_key(self.start, self.tz, self.rule, self.until, self.count, self.cancelled, self.moves)

    def has(self, original: datetime) -> bool:
        """Whether ``original`` is one of the rule's starts (cancelled ones included)."""
        return next(self.originals(after=original - timedelta(microseconds=1)), None) == original

    def on_day(self, day: date, zone: ZoneInfo | None = None) -> Occurrence | None:
        """The occurrence whose original start falls on ``day`` in ``zone`` (the meeting's own by
        default), if any."""
        zone = zone or self.zone
        begin = datetime.combine(day, time(0), zone).astimezone(UTC)
        for original in self.originals(after=begin - timedelta(microseconds=1)):
            if original.astimezone(zone).date() != day:
                return None
            return Occurrence(original, self.moves.get(original, original))
        return None

    def named_by_day(self, day: date, zone: ZoneInfo | None = None) -> Occurrence | None:
        """The occurrence a member means by ``day`` (in ``zone``): the one that takes place that day, as
        ``meeting list`` shows it — a meeting moved to Thursday is Thursday's — or, when none does, the
        one planned for that day before it was moved (its original day, as it was named before). Of two
        that day (one moved onto another's day), the one planned for it; a cancelled one only when none
        is held."""
        zone = zone or self.zone
        begin = datetime.combine(day, time(0), zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
        planned = self.on_day(day, zone)
        held = [occurrence for occurrence in self.occurrences(begin, end) if occurrence != planned]
        kept = planned is not None and planned.original not in self.cancelled
        if planned is not None and kept and planned.start == planned.original:
            return planned
        return held[0] if held else planned

    def move_window(self, target: Occurrence, now: datetime) -> MoveWindow:
        """Where ``target`` may be moved to: after the meeting before it and before the one after it, so
        the series keeps its order and its end. A move past the next meeting, or past the last one, is
        more likely a wrong date (or a move meant for the whole series) than a wish to swap two meetings
        or lengthen the series, which ``meeting move`` does not do. Cancelled meetings leave their turn
        free. The last meeting of a series that ends moves up to ``--until``, or (with ``--count``) up to
        when the rule would have its next meeting."""
        if self.rule is None:
            return MoveWindow(None, None, ends=False)
        previous = None
        for original in self.originals(after=min(now, target.original) - self._reach):
            if original >= target.original:
                break
            if original not in self.cancelled:
                previous = self.moves.get(original, original)
        for original in self.originals(after=target.original):
            if original not in self.cancelled:
                return MoveWindow(previous, self.moves.get(original, original), ends=False)
        if self.until is not None:
            return MoveWindow(previous, self.until, ends=True)
        last = self.last()
        assert last is not None  # a series without an end always has a meeting after
        unbounded = Series(self.start, self.tz, self.rule)
        return MoveWindow(previous, next(unbounded.originals(after=last), None), ends=True)

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


@functools.lru_cache(maxsize=1024)
def _parsed(rule: str, local_start: datetime, count: int | None) -> rrule:
    """Parsing a rule costs more than expanding it: a meeting list asks the same rules again and again.
    (~1.5 kB a rule: the bound keeps it under 2 MB, and a listing of a thousand series within it.)"""
    from dateutil.rrule import rrule, rrulestr

    parsed = rrulestr(rule, dtstart=local_start, cache=False)
    assert isinstance(parsed, rrule)
    return parsed.replace(count=count) if count is not None else parsed


_PERIOD_DAYS = {"DAILY": 1, "WEEKLY": 7}
_PERIOD_MONTHS = {"MONTHLY": 1, "YEARLY": 12}


def _closer_start(rule: str, local_start: datetime, near: datetime) -> datetime:
    """``local_start`` moved on by whole periods (``INTERVAL`` × a day, week, month or year) to at least
    two periods before ``near``. The rule gives the same times from there: its grid of periods, its
    weekday and day of the month, and its time of day all stay. Rules whose set depends on where they
    started (COUNT, BYSETPOS across years, a start day some months lack) are left as they are."""
    parts = dict(part.split("=", 1) for part in rule.split(";") if "=" in part)
    interval = int(parts.get("INTERVAL", "1"))
    frequency = parts.get("FREQ", "")
    if frequency in _PERIOD_DAYS:
        period = timedelta(days=_PERIOD_DAYS[frequency] * interval)
        whole = (near - local_start) // period - 2
        return local_start + whole * period if whole > 0 else local_start
    if frequency in _PERIOD_MONTHS and "BYWEEKNO" not in parts:
        step = _PERIOD_MONTHS[frequency] * interval
        months = (near.year - local_start.year) * 12 + near.month - local_start.month
        whole = months // step - 2
        if whole <= 0:
            return local_start
        from dateutil.relativedelta import relativedelta

        moved = local_start + relativedelta(months=whole * step)
        return moved if moved.day == local_start.day else local_start
    return local_start


_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def _simple_starts(
    rule: str, local_start: datetime, local_after: datetime | None
) -> Iterator[datetime] | None:
    """The local starts of the most common rules — daily, or weekly on some weekdays, every N — computed
    directly (dateutil's general engine costs ~50 µs a call, and a meeting list asks a thousand series).
    The same times as dateutil's: weeks begin on Monday, nothing before the start. None: not such a rule."""
    parts = dict(part.split("=", 1) for part in rule.split(";") if "=" in part)
    frequency = parts.get("FREQ")
    interval = int(parts.get("INTERVAL", "1"))
    if set(parts) - {"FREQ", "INTERVAL", "BYDAY"} or interval < 1:
        return None
    if frequency == "DAILY" and "BYDAY" not in parts:
        return _every(local_start, local_after, timedelta(days=interval), (0,))
    if frequency == "MONTHLY":
        return _monthly(local_start, local_after, interval, parts.get("BYDAY"))
    if frequency != "WEEKLY":
        return None
    codes = parts["BYDAY"].split(",") if "BYDAY" in parts else [_WEEKDAYS[local_start.weekday()]]
    if not all(code in _WEEKDAYS for code in codes):
        return None  # "1TU" and friends: dateutil's
    monday = local_start - timedelta(days=local_start.weekday())
    offsets = tuple(sorted({_WEEKDAYS.index(code) for code in codes}))
    return _every(monday, local_after, timedelta(days=7 * interval), offsets, not_before=local_start)


def _every(
    first: datetime,
    after: datetime | None,
    period: timedelta,
    day_offsets: tuple[int, ...],
    *,
    not_before: datetime | None = None,
) -> Iterator[datetime]:
    """``first`` + k·``period`` + each day offset, in order, from the period holding ``after``."""
    not_before = not_before or first
    k = max(0, (after - first) // period - 1) if after is not None else 0
    while True:
        base = first + k * period
        for offset in day_offsets:
            moment = base + timedelta(days=offset)
            if moment >= not_before and (after is None or moment >= after):
                yield moment
        k += 1


_NTH_DAY = re.compile(r"^([+-]?[1-5])(MO|TU|WE|TH|FR|SA|SU)$")


def _monthly(
    local_start: datetime, after: datetime | None, interval: int, byday: str | None
) -> Iterator[datetime] | None:
    """Monthly on the start's day of the month (months without it are skipped), or on the nth weekday
    (``1TU``, ``-1FR``; a month without a fifth Tuesday has none)."""
    nth: list[tuple[int, int]] = []
    for code in byday.split(",") if byday else []:
        match = _NTH_DAY.match(code)
        if match is None:
            return None  # a plain weekday in a monthly rule means every such day: dateutil's
        nth.append((int(match.group(1)), _WEEKDAYS.index(match.group(2))))

    def generate() -> Iterator[datetime]:
        months = 0
        if after is not None:
            behind = (after.year - local_start.year) * 12 + after.month - local_start.month
            months = max(0, behind // interval - 1) * interval
        while True:
            year, month = divmod(local_start.month - 1 + months, 12)
            year += local_start.year
            month += 1
            days_in_month = calendar.monthrange(year, month)[1]
            if nth:
                days = sorted(
                    day for n, weekday in nth if (day := _nth_weekday(year, month, n, weekday, days_in_month))
                )
            else:
                days = [local_start.day] if local_start.day <= days_in_month else []
            for day in days:
                moment = local_start.replace(year=year, month=month, day=day)
                if moment >= local_start and (after is None or moment >= after):
                    yield moment
            months += interval

    return generate()


def _nth_weekday(year: int, month: int, n: int, weekday: int, days_in_month: int) -> int | None:
    """The day of the month of its nth ``weekday`` (n < 0 counts from the end), or None."""
    first = (weekday - calendar.weekday(year, month, 1)) % 7 + 1
    candidates = list(range(first, days_in_month + 1, 7))
    index = n - 1 if n > 0 else n
    return candidates[index] if -len(candidates) <= index < len(candidates) else None


def _place(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall-clock time in ``zone``, as UTC. With fold=0, zoneinfo reads a time in a
    spring-forward gap with the offset before the gap, which lands it just after the gap (02:30 → 03:30
    summer time), and a time that exists twice as its first instance."""
    return local.replace(tzinfo=zone).astimezone(UTC)


CLOCK_LOOKAHEAD = timedelta(days=366)
"""How far from a series' start :func:`clock_shifts` looks: a year holds each change of the clocks."""


@dataclass(frozen=True, slots=True)
class ClockShift:
    """A meeting of a series whose time of day the clocks skip (held just after the gap, as
    :func:`_place` places it) or show twice (held at the first of the two)."""

    wall: datetime  # the local time the rule gives, naive
    start: datetime  # when it is held (UTC)
    skipped: bool


def clock_shifts(series: Series, within: timedelta = CLOCK_LOOKAHEAD) -> list[ClockShift]:
    """The first meeting the clocks skip and the first they repeat, within ``within`` of the start: what
    a planner is told, since a one-off at such a time is refused (timeparse) and a series would otherwise
    move that meeting without a word. Only for rules that keep the start's time of day (no BYHOUR …)."""
    if series.rule is None or any(part in series.rule for part in ("BYHOUR", "BYMINUTE", "BYSECOND")):
        return []
    zone = series.zone
    planned = series.start.astimezone(zone).time()
    end = series.start + within
    found: dict[bool, ClockShift] = {}
    for original in series.originals():
        if original > end or len(found) == 2:
            break
        local = original.astimezone(zone)
        wall = datetime.combine(local.date(), planned)
        if wall.replace(tzinfo=zone, fold=0).utcoffset() == wall.replace(tzinfo=zone, fold=1).utcoffset():
            continue
        skipped = local.replace(tzinfo=None) != wall
        found.setdefault(skipped, ClockShift(wall, original, skipped))
    return sorted(found.values(), key=lambda shift: shift.start)


_WINDOWS: OrderedDict[tuple[object, ...], tuple[Occurrence, ...]] = OrderedDict()
WINDOW_CACHE = 2048
"""Whole-day windows of series remembered: listing a thousand series again within the day costs nothing.
An entry is ~0.8 kB, so the bound is ~1.6 MB; yesterday's windows, of no use today, age out."""


def series_key(
    start: datetime,
    tz: str,
    rule: str | None,
    until: datetime | None,
    count: int | None,
    cancelled: frozenset[datetime] = frozenset(),
    moves: Mapping[datetime, datetime] | None = None,
) -> tuple[object, ...]:
    """:meth:`Series.key` from the fields, so a stored meeting's key can be had without building its
    Series (``meeting list`` over a thousand series whose windows are remembered)."""
    return (start, tz, rule, until, count, cancelled, tuple(sorted(moves.items())) if moves else ())


@functools.lru_cache(maxsize=16)
def _whole_days(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The UTC days ``[start, end)`` touches, from midnight to midnight: the same for every series of one
    list (``replace`` is slow enough to count a thousand times over)."""
    first = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    last = end.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return first, last


def occurrences_between(series: Series, start: datetime, end: datetime) -> list[Occurrence]:
    """``series.occurrences(start, end)``, expanded over whole UTC days and remembered (bounded)."""
    return remembered_between(series.key(), lambda: series, start, end)


def remembered_between(
    key: tuple[object, ...], series: Callable[[], Series], start: datetime, end: datetime
) -> list[Occurrence]:
    """:func:`occurrences_between` for the series with this :meth:`Series.key`, made by ``series()`` only
    when its window is not remembered: listing a thousand series builds none of them again."""
    first, last = _whole_days(start, end)
    key = (key, first, last)
    found = _WINDOWS.get(key)
    if found is None:
        found = tuple(series().occurrences(first, last))
        _WINDOWS[key] = found
        if len(_WINDOWS) > WINDOW_CACHE:
            _WINDOWS.popitem(last=False)
    else:
        _WINDOWS.move_to_end(key)
    return [occurrence for occurrence in found if start <= occurrence.start < end]


def rule_from_every(text: str) -> str:
    """A named series (``weekly``, ``quarterly`` …, :data:`EVERY`) or an RRULE (with or without ``RRULE:``)
    → a checked RRULE."""
    typed = text.strip()
    named = EVERY.get(typed.lower())
    if named is not None:
        return named
    body = re.sub(r"^RRULE:", "", typed, flags=re.IGNORECASE).upper().replace(" ", "")
    # dateutil reads any other whitespace as a new line of its own (a DTSTART, another RRULE, an EXDATE):
    # let through, it became part of the stored rule, which the calendar feed then could not write
    if not _RULE_TEXT.fullmatch(body):
        raise RecurrenceError(f"'{typed}' is not a rule; use {NAMED} or an RRULE like {RULE_EXAMPLE}")
    if len(body) > MAX_RULE:
        raise RecurrenceError(f"the rule has {len(body)} characters; at most {MAX_RULE}")
    parts: dict[str, str] = {}
    for part in body.split(";"):
        key, _, value = part.partition("=")
        if not key or not value:
            raise RecurrenceError(f"'{typed}' is not a rule; use {NAMED} or an RRULE like {RULE_EXAMPLE}")
        parts[key] = value
    if parts.get("FREQ") not in _ALLOWED_FREQ:
        raise RecurrenceError(f"'{typed}' needs FREQ=DAILY, WEEKLY, MONTHLY or YEARLY; e.g. {RULE_EXAMPLE}")
    given = _NOT_ALLOWED.keys() & set(parts)
    if given:
        key = sorted(given)[0]
        raise RecurrenceError(f"give {key} as {_NOT_ALLOWED[key]}, not inside the rule")
    interval = parts.get("INTERVAL", "1")
    if not (interval.isascii() and interval.isdigit()) or int(interval) < 1:
        raise RecurrenceError(
            f"INTERVAL must be a whole number from 1 up (INTERVAL=2: every other time); e.g. {RULE_EXAMPLE}"
        )
    from dateutil.rrule import rrulestr

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
    first = next(series.originals(), None)
    if first is None:
        raise RecurrenceError("that rule gives no meeting at all")
    if first != series.start:  # dateutil leaves out a start the rule does not have; the series would too
        local = first.astimezone(series.zone)
        raise RecurrenceError(
            f"the rule has no meeting at the time given; its first would be {local:%a} {local.day} "
            f"{local:%b %H:%M}: give that time, or a rule that has the day you gave"
        )
