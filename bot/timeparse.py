"""Durations and times as members type them: ``90m``, ``1h30m``, ``2026-12-03 15:00``, ``tomorrow 15:00``.

Times are read in the caller's zone and returned in UTC. Natural language goes through dateparser, which
is imported only when first needed: it is large, and most commands never parse a time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"^(?:(\d+)([smhdw]))+$")
_PART = re.compile(r"(\d+)([smhdw])")
_DATEPARSER_SETTINGS_BASE = {
    "PREFER_DATES_FROM": "future",
    "RETURN_AS_TIMEZONE_AWARE": True,
}

DURATION_HINT = "use a number and a unit, like 90m, 2h, 3d or 1w"
TIME_HINT = "use a date and time like 2026-12-03 15:00, or words like tomorrow 15:00"


class TimeParseError(ValueError):
    pass


def parse_duration(text: str) -> timedelta:
    """``90m``, ``2h``, ``1h30m``, ``3d``, ``1w`` → timedelta; anything else raises TimeParseError."""
    cleaned = text.strip().lower().replace(" ", "")
    if not cleaned or not _DURATION.match(cleaned):
        raise TimeParseError(f"'{text}' is not a duration ({DURATION_HINT})")
    total = timedelta()
    for amount, unit in _PART.findall(cleaned):
        total += timedelta(**{_UNITS[unit]: int(amount)})
    if total <= timedelta(0):
        raise TimeParseError(f"'{text}' is not a duration longer than zero ({DURATION_HINT})")
    return total


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
    raw = text.strip()
    if not raw:
        raise TimeParseError(f"a time is missing ({TIME_HINT})")
    zone = ZoneInfo(tz)
    stripped = raw[3:] if raw.lower().startswith("in ") else raw
    try:
        return now + parse_duration(stripped)
    except TimeParseError:
        pass
    iso = _parse_iso(raw, zone)
    if iso is not None:
        return iso.astimezone(UTC)
    import dateparser  # deferred: large import, see module docstring

    settings = dict(_DATEPARSER_SETTINGS_BASE)
    settings["TIMEZONE"] = tz
    settings["TO_TIMEZONE"] = "UTC"
    settings["RELATIVE_BASE"] = now.astimezone(zone).replace(tzinfo=None)
    parsed = dateparser.parse(raw, languages=["en"], settings=settings)  # type: ignore[arg-type]
    if parsed is None:
        raise TimeParseError(f"'{text}' is not a time I understand ({TIME_HINT})")
    return parsed.astimezone(UTC)


def _parse_iso(raw: str, zone: ZoneInfo) -> datetime | None:
    try:
        value = datetime.fromisoformat(raw.replace("T", " ") if "T" in raw else raw)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value


def is_valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except Exception:
        return False
    return True


def format_when(moment: datetime, tz: str) -> str:
    """A time as a member reads it, in their own zone: ``Thu 3 Dec 15:00 CET``."""
    local = moment.astimezone(ZoneInfo(tz))
    return f"{local:%a} {local.day} {local:%b %H:%M} {local.tzname()}"
