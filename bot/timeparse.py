"""Durations and times as members type them: ``90m``, ``1h30m``, ``2026-12-03 15:00``, ``tomorrow 15:00``.

Times are read in the caller's zone and returned in UTC. Natural language goes through dateparser, which
is imported only when first needed: it is large, and most commands never parse a time. dateparser drops
what it cannot read and makes a time of the rest (``tomorrow 25:00`` is tomorrow at this minute), so the
times of day in the words are checked, and written as it reads them right, before it sees them.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_DURATION = re.compile(r"^(?:(\d+)([smhdw]))+$")
_PART = re.compile(r"(\d+)([smhdw])")
_DATEPARSER_SETTINGS_BASE = {
    "PREFER_DATES_FROM": "future",
    "RETURN_AS_TIMEZONE_AWARE": True,
}

DURATION_HINT = "use a number and a unit, like 90m, 2h, 3d or 1w"
# Shown as the way to write a time, so no fixed date: one soon passes, and whoever copies it is refused.
TIME_HINT = "use words like tomorrow 15:00, or a date and time written year-month-day: YYYY-MM-DD 15:00"
MAX_TIME_TEXT = 100
"""Longer text is no time anyone writes; dateparser is not asked (it takes a while on a long text)."""
MAX_DURATION = timedelta(days=3650)
"""Longer than anything a community plans (ten years), and far from where date arithmetic overflows."""
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Day and month written as numbers (3/12/2026, 3.12.26, 3-12-2026, 3/12): which one comes first differs
# between countries, so a date that reads both ways is refused rather than guessed.
_NUMERIC_DATE = re.compile(r"(?<![\d/.\-])(\d{1,2})([/.\-])(\d{1,2})(?:\2(\d{4}|\d{2}))?(?![\d/.\-])")
_CLOCK = re.compile(r"(?<![\d:])(\d{1,2}):(\d{2})(?![\d:])|\bat\s+(\d{1,2})(?![\d:/.\-])", re.IGNORECASE)
"""A time of day as written (15:00, at 9): dateparser drops one it cannot read, leaving the rest of the
words to mean something else (``tomorrow 25:00`` would be tomorrow at this time), so each is checked."""
_AT_HOUR = re.compile(r"\bat\s+(\d{1,2})(?![\d:/.\-])(?!\s*[ap]\.?m\b)", re.IGNORECASE)
"""``at 9``: an hour alone, which dateparser reads as that hour at the current minute, or not at all."""
_MERIDIEM = re.compile(r"(?<![\d:.])(\d{1,2})(?::\d{2})?\s*[ap]\.?m\b", re.IGNORECASE)
"""``3pm``, ``11:30 am``: the hour of a twelve-hour clock, 1 to 12."""
_H_CLOCK = re.compile(r"(?<![\w:])(\d{1,2})h(\d{2})?(?![\w:])", re.IGNORECASE)
"""``17h``, ``17h30``: how much of Europe writes a time; dateparser reads a day of the month in it."""
_WEEKDAY = (
    r"mon(?:day)?|tue(?:s|sday)?|wed(?:nesday)?|thu(?:rs?|rsday)?|fri(?:day)?|sat(?:urday)?|sun(?:day)?"
)
_TIME_OF_DAY = re.compile(
    r"\d:\d\d|\d\s*[ap]\.?m\b|\b(?:noon|midnight|morning|afternoon|evening|tonight)\b", re.IGNORECASE
)
"""A time of day written some other way than with a dot: then a dotted pair is the date (3.12 15:00)."""
_DOTTED_TIME = re.compile(
    rf"\b(at|today|tonight|tomorrow|{_WEEKDAY})\s+(\d{{1,2}})\.(\d{{2}})(?![\d.])|"
    r"(?<![\d.])(\d{1,2})\.(\d{2})(?=\s*[ap]\.?m\b)",
    re.IGNORECASE,
)
"""``at 10.30``, ``friday 9.30``, ``9.30pm``: a time as Britain and the Netherlands write it, which the
numeric dates would otherwise read as a day and month (10.30 → 30 October)."""
_BARE_HOUR = re.compile(rf"\b(?:(today|tonight|tomorrow)|({_WEEKDAY}))\s+(\d{{1,2}})$", re.IGNORECASE)
"""``tomorrow 9``, ``friday 3``: a number alone after a day, which dateparser reads as the current minute
of that hour, or as a day of the month (friday 3 → 2 March)."""
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?![\d-])")  # at the start: a day, and maybe its time
_MONTHS = ("January February March April May June July August September October November December").split()


class TimeParseError(ValueError):
    pass


class DoubtfulTime(TimeParseError):
    """The words read as a time, but as two different ones or as one that does not exist (3/12/2026,
    02:30 on a spring-forward day): said as it is, never replaced by a shorter reading of the words."""


def parse_duration(text: str) -> timedelta:
    """``90m``, ``2h``, ``1h30m``, ``3d``, ``1w`` → timedelta; anything else raises TimeParseError."""
    cleaned = text.strip().lower().replace(" ", "")
    if not cleaned or not _DURATION.match(cleaned):
        raise TimeParseError(f"'{_clip(text)}' is not a duration ({DURATION_HINT})")
    parts = _PART.findall(cleaned)
    if any(len(amount.lstrip("0")) > _MAX_DIGITS for amount, _ in parts):  # int() refuses 4,300 digits
        raise TimeParseError(f"'{_clip(text)}' is too long; at most {MAX_DURATION.days}d")
    seconds = sum(int(amount) * _SECONDS[unit] for amount, unit in parts)
    if seconds <= 0:
        raise TimeParseError(f"'{_clip(text)}' is not a duration longer than zero ({DURATION_HINT})")
    if seconds > MAX_DURATION.total_seconds():
        raise TimeParseError(f"'{_clip(text)}' is too long; at most {MAX_DURATION.days}d")
    return timedelta(seconds=seconds)


_MAX_DIGITS = 100
# Characters that would break a one-line message or turn the text after them around: control characters
# (NUL, escape, line breaks of every kind), bidirectional overrides and isolates, and lone surrogates.
_UNSHOWABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def shown(text: str, limit: int = 40) -> str:
    """Member-typed text as a one-line message quotes it: whitespace and line breaks of any kind become one
    space, other control and direction characters a visible �, and it is cut to ``limit`` characters."""
    text = _UNSHOWABLE.sub("\ufffd", " ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip(text: str, limit: int = 30) -> str:
    return shown(text, limit)


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def parse_when(text: str, *, now: datetime, tz: str = "UTC") -> datetime:
    """A point in time from a duration (``2h`` = in two hours), ISO 8601, or natural language.

    Returned in UTC. A time without a date that has already passed today means tomorrow, as people mean it.
    """
    raw = " ".join(text.split())
    if not raw:
        raise TimeParseError(f"a time is missing ({TIME_HINT})")
    zone = ZoneInfo(tz)
    stripped = raw[3:] if raw.lower().startswith("in ") else raw
    if _DURATION.match(stripped.lower().replace(" ", "")):
        return now + parse_duration(stripped)  # too long a duration is an error, not some other time
    try:
        iso = _parse_iso(raw, zone)
        if iso is not None:
            return iso.astimezone(UTC)
        raw = _DOTTED_TIME.sub(_colon_time, raw)
        raw = _numeric_date_as_iso(raw, now.astimezone(zone).year)
        iso = _parse_iso(raw, zone)
        if iso is not None:
            return iso.astimezone(UTC)
        raw = _clock_times(raw, f"{now.astimezone(zone):%B}")
        parsed = _natural(raw, now=now, tz=tz, zone=zone) if len(raw) <= MAX_TIME_TEXT else None
    except TimeParseError:
        raise
    except (ValueError, OverflowError, ArithmeticError):  # a year 99999, a day 0: not a time
        parsed = None
    if parsed is None:
        raise TimeParseError(f"'{_clip(text)}' is not a time I understand ({TIME_HINT})")
    return parsed


_RELATIVE = re.compile(
    r"\bnow\b|\b\d+\s*(?:s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)\b|^in\s", re.IGNORECASE
)
"""A time counted from now (``in 2h``, ``in 90 minutes``, ``now``): its time of day is now's, said."""


def says_time_of_day(text: str) -> bool:
    """Whether ``text`` gives a time of day (``15:00``, ``3pm``, ``at 9``, ``17h30``, ``friday 10.30``,
    ``noon``, ``in 2h``), not only a day (``friday``, ``tomorrow``, ``3 december``)."""
    raw = " ".join(text.split())
    return any(
        pattern.search(raw)
        for pattern in (_TIME_OF_DAY, _CLOCK, _H_CLOCK, _DOTTED_TIME, _BARE_HOUR, _RELATIVE)
    ) or bool(_DURATION.match(raw.lower().replace(" ", "")))


def _natural(raw: str, *, now: datetime, tz: str, zone: ZoneInfo) -> datetime | None:
    import dateparser  # deferred: large import, see module docstring
    from dateparser.timezone_parser import pop_tz_offset_from_string

    settings = dict(_DATEPARSER_SETTINGS_BASE)
    local_now = now.astimezone(zone).replace(tzinfo=None)
    settings["RELATIVE_BASE"] = local_now
    if not _RELATIVE.search(raw) and pop_tz_offset_from_string(raw)[1] is None:
        # A wall-clock time in the caller's zone (friday 02:30): read as it is written, and checked as an
        # ISO time is, so 02:30 on a spring-forward day is refused, not quietly made 03:30 (dateparser
        # moves it on, and of a time that happens twice picks one instance or the other by the zone).
        settings["RETURN_AS_TIMEZONE_AWARE"] = False
        wall = dateparser.parse(raw, languages=["en"], settings=settings)
        if wall is None:
            return None
        wall = _today_if_still_ahead(raw, wall, local_now)
        if says_time_of_day(raw):  # a day alone (tomorrow) takes now's time of day, which nobody wrote
            _check_wall_time(wall, zone)
        return wall.replace(tzinfo=zone).astimezone(UTC)
    # Counted from now (in 90 minutes), or in a zone the text names (15:00 UTC): dateparser places it.
    settings["TIMEZONE"] = tz
    settings["TO_TIMEZONE"] = "UTC"
    parsed = dateparser.parse(raw, languages=["en"], settings=settings)
    return parsed.astimezone(UTC) if parsed is not None else None


_STARTS_WITH_WEEKDAY = re.compile(rf"^(?:on\s+)?(?:{_WEEKDAY})\b", re.IGNORECASE)


def _today_if_still_ahead(raw: str, wall: datetime, local_now: datetime) -> datetime:
    """``friday 10:00`` typed on a Friday at 09:00 is in an hour, as anyone means it; dateparser reads a
    weekday named on that same weekday as next week's. Today's is taken while its time is still ahead
    (typed at 11:00, it is next week's); ``next friday`` and a day alone are left as dateparser reads them."""
    if not says_time_of_day(raw) or not _STARTS_WITH_WEEKDAY.match(raw):
        return wall
    today = wall - timedelta(days=7)
    return today if today.date() == local_now.date() and today > local_now else wall


def _clock_times(raw: str, month: str) -> str:
    """The text with each time of day checked, and written as dateparser reads it right (HH:MM)."""
    for match in _CLOCK.finditer(raw):
        hour, minute, at = match.groups()
        _hour_minute(match.group(0), hour or at, minute)  # raises for a time of day that cannot be
    for match in _MERIDIEM.finditer(raw):
        if not 1 <= int(match.group(1)) <= 12:  # 13pm: dateparser drops it, as it drops 25:00
            raise DoubtfulTime(f"'{match.group(0)}' is not a time of day ({TIME_HINT})")
    raw = _AT_HOUR.sub(lambda match: f"at {match.group(1)}:00", raw)
    raw = _H_CLOCK.sub(lambda match: _hour_minute(match.group(0), match.group(1), match.group(2)), raw)
    bare = _BARE_HOUR.search(raw)
    if bare is None:
        return raw
    written, weekday, number = bare.group(0), bare.group(2), int(bare.group(3))
    if bare.group(1) is not None and bare.group(1).lower() == "tonight" and 1 <= number <= 11:
        return raw[: bare.start(3)] + f"{number + 12}:00"  # tonight 9: no doubt which 9
    if weekday is not None:
        raise DoubtfulTime(
            f"'{written}' could be a time or a day of the month; write the time with minutes or am/pm "
            f"({weekday} 15:00, {weekday} 3pm) or the date with its month ({number} {month})"
        )
    if 1 <= number <= 11:
        raise DoubtfulTime(
            f"'{written}' could be {number}:00 or {number + 12}:00; write the time as "
            f"{number:02d}:00, {number + 12}:00 or {number}pm"
        )
    return raw[: bare.start(3)] + _hour_minute(written, bare.group(3), None)


def _colon_time(match: re.Match[str]) -> str:
    before, hour, minute, alone_hour, alone_minute = match.groups()
    if before is None:
        return f"{alone_hour}:{alone_minute}"
    return f"{before} {hour}:{minute}"


def _hour_minute(written: str, hour: str, minute: str | None) -> str:
    if int(hour) > 23 or int(minute or 0) > 59:
        # doubtful, not merely unread: the words before it (friday) would read as a time on their own, and
        # the 25:00 typed would be dropped or taken for the next argument
        raise DoubtfulTime(f"'{written}' is not a time of day ({TIME_HINT})")
    return f"{int(hour):02d}:{minute or '00'}"


def _numeric_date_as_iso(raw: str, this_year: int) -> str:
    """``25/12/2026 15:00`` → ``2026-12-25 15:00``; a date that reads both ways raises TimeParseError."""
    match = _NUMERIC_DATE.search(raw)
    if match is None:
        return raw
    first, separator, second, year_text = match.groups()
    a, b = int(first), int(second)
    year = this_year if year_text is None else int(year_text) + (2000 if len(year_text) == 2 else 0)
    if separator == "." and year_text is None and len(second) == 2 and a <= 23 and b <= 59:
        if not _TIME_OF_DAY.search(raw):  # 10.30 and no other time: half past ten, or 30 October?
            raise DoubtfulTime(
                f"'{match.group(0)}' could be the time {a}:{second} or a date; write {a:02d}:{second} for "
                f"the time, or the date as year-month-day ({year}-MM-DD)"
            )
    if a > 12 and b <= 12:
        day, month = a, b
    elif b > 12 and a <= 12:
        day, month = b, a
    elif a == b and a >= 1:
        day = month = a
    elif 1 <= a <= 12 and 1 <= b <= 12:
        raise DoubtfulTime(
            f"'{match.group(0)}' could be {a} {_MONTHS[b - 1]} or {b} {_MONTHS[a - 1]}; "
            f"write the date as year-month-day: {year}-{b:02d}-{a:02d} for {a} {_MONTHS[b - 1]}"
        )
    else:
        raise TimeParseError(f"'{match.group(0)}' is not a date ({TIME_HINT})")
    _check_day(match.group(0), year, month, day)  # 29/02/2027 quoted as written
    return raw[: match.start()] + f"{year:04d}-{month:02d}-{day:02d}" + raw[match.end() :]


def _parse_iso(raw: str, zone: ZoneInfo) -> datetime | None:
    try:
        value = datetime.fromisoformat(raw.replace("T", " ") if "T" in raw else raw)
    except ValueError:
        _check_iso_date(raw)
        return None
    if value.tzinfo is None:
        if _DATE_ONLY.fullmatch(raw):
            # A day without a time: its first moment, which is 01:00 where the clocks go forward at
            # midnight (Cairo, Havana, Santiago, Beirut) — the day, not a midnight that does not exist.
            return value.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
        _check_wall_time(value, zone)
        value = value.replace(tzinfo=zone)
    return value


def _check_iso_date(raw: str) -> None:
    """A year-month-day that names no day (2027-02-29, 2026-13-01, 2026-04-31) is said to be no date, with
    why: read as words it would only be "not a time I understand"."""
    match = _ISO_DAY.match(raw)
    if match is None:
        return
    year, month, day = (int(part) for part in match.groups())
    _check_day(match.group(0), year, month, day)


def _check_day(written: str, year: int, month: int, day: int) -> None:
    if not 1 <= year <= 9999:
        return  # no year copbot can place: "not a time I understand", as any other
    if not 1 <= month <= 12:
        raise TimeParseError(f"'{written}' is not a date: there is no month {month} ({TIME_HINT})")
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        raise TimeParseError(
            f"'{written}' is not a date: {_MONTHS[month - 1]} {year} has {days} days ({TIME_HINT})"
        )


def _check_wall_time(local: datetime, zone: ZoneInfo) -> None:
    """A local time the clocks skip, or show twice, on a daylight-saving change means two different
    things (or nothing): refused rather than guessed."""
    first, second = local.replace(tzinfo=zone, fold=0), local.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return
    day = f"{local.day} {local:%b %Y}"
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local:
        raise DoubtfulTime(
            f"{local:%H:%M} does not exist on {day} in {zone.key} (the clocks go forward); pick another time"
        )
    raise DoubtfulTime(
        f"{local:%H:%M} happens twice on {day} in {zone.key} (the clocks go back); pick another time"
    )


def format_when(moment: datetime, tz: str) -> str:
    """A time as a member reads it, in their own zone: ``Thu 3 Dec 15:00 CET``."""
    local = moment.astimezone(ZoneInfo(tz))
    return f"{local:%a} {local.day} {local:%b %H:%M} {local.tzname()}"


def format_when_set(moment: datetime, tz: str) -> str:
    """A time just set, in the setter's zone with UTC beside it, so a wrong zone shows at once:
    ``Wed 4 Mar 10:00 CET (09:00 UTC)``; with UTC's day too where it is another (``Tue 3 Mar 23:30 UTC``)."""
    local = moment.astimezone(ZoneInfo(tz))
    shown = format_when(moment, tz)
    if local.utcoffset() == timedelta(0):
        return shown
    utc = moment.astimezone(UTC)
    return f"{shown} ({f'{utc:%H:%M} UTC' if utc.date() == local.date() else format_when(moment, 'UTC')})"
