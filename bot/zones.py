"""Time-zone names as people type them: ``europe/amsterdam``, ``CET``, ``Europe/Amsterdm``, ``UTC+2``.

The IANA database is the only truth: a name is accepted when it is an IANA entry, whatever its case, and
returned in its canonical spelling (``Europe/Amsterdam``). Abbreviations are accepted only where they are
IANA entries themselves (``CET``, ``EST``, ``UTC``); one that is not (``CEST``, ``PST``) is refused with
the closest real names, never guessed, since the same letters mean different zones in different places.
An offset (``UTC+2``, ``GMT-05:00``) is the IANA zone that is that offset all year, ``Etc/GMT-2`` (the
sign inverted, as POSIX has it); an offset between whole hours has no such zone, so the place's own zone
is suggested instead.
"""

from __future__ import annotations

import functools
import re
import zoneinfo

from bot.timeparse import shown

ZONE_EXAMPLE = "Europe/Amsterdam"
DEFAULT_ZONE = "UTC"
"""The zone of every setting nobody set: looked up alone, without listing the whole IANA database."""
_HIDDEN = {"localtime", "Factory"}
# Abbreviations people write that are not IANA entries: the zones they most often mean, as suggestions.
_ABBREVIATIONS = {
    "CEST": ("CET", "Europe/Paris", "Europe/Berlin"),
    "BST": ("Europe/London",),
    "IST": ("Asia/Kolkata", "Europe/Dublin"),
    "PST": ("America/Los_Angeles", "PST8PDT"),
    "PDT": ("America/Los_Angeles", "PST8PDT"),
    "EDT": ("America/New_York", "EST5EDT"),
    "CDT": ("America/Chicago", "CST6CDT"),
    "CST": ("America/Chicago", "CST6CDT", "Asia/Shanghai"),
    "MDT": ("America/Denver", "MST7MDT"),
    "EEST": ("EET", "Europe/Athens"),
    "WEST": ("WET", "Europe/Lisbon"),
    "AEST": ("Australia/Sydney",),
    "JST": ("Asia/Tokyo",),
}


_OFFSET = re.compile(r"(?:UTC|GMT)?\s*([+\-−])\s*(\d{1,2})(?:[:.h]?(\d{2}))?", re.IGNORECASE)
_ETC_OFFSET = re.compile(r"Etc/GMT([+-])(\d{1,2})")
_EAST, _WEST = 14, 12
"""The Etc zones reach from 14 hours ahead of UTC (Kiribati) to 12 behind."""
# Offsets between whole hours have no Etc zone: the places that keep them (in standard or summer time).
_BETWEEN_HOURS: dict[int, tuple[str, ...]] = {
    -570: ("Pacific/Marquesas",),
    -210: ("America/St_Johns",),
    -150: ("America/St_Johns",),
    210: ("Asia/Tehran",),
    270: ("Asia/Kabul",),
    330: ("Asia/Kolkata", "Asia/Colombo"),
    345: ("Asia/Kathmandu",),
    390: ("Asia/Yangon",),
    525: ("Australia/Eucla",),
    570: ("Australia/Darwin", "Australia/Adelaide"),
    630: ("Australia/Adelaide", "Australia/Lord_Howe"),
    765: ("Pacific/Chatham",),
    825: ("Pacific/Chatham",),
}


class UnknownZone(ValueError):
    """A name that is no IANA zone; the message says so and suggests the closest ones."""

    def __init__(self, text: str, suggestions: tuple[str, ...], message: str | None = None) -> None:
        self.text = text
        self.suggestions = suggestions
        if message is None and suggestions:
            message = f"'{shown(text)}' is not a time zone — did you mean {' or '.join(suggestions)}?"
        elif message is None:
            message = f"'{shown(text)}' is not a time zone; use an IANA name like {ZONE_EXAMPLE} or UTC"
        super().__init__(message)


@functools.cache
def _by_folded_name() -> dict[str, str]:
    return {name.casefold(): name for name in zoneinfo.available_timezones() if name not in _HIDDEN}


def resolve_zone(text: str) -> str:
    """The canonical IANA name for ``text``; raises :class:`UnknownZone` with suggestions."""
    if text == DEFAULT_ZONE and _exists(DEFAULT_ZONE):
        # Every start validates the default: listing the database for it (opening each of its ~600 files,
        # and loading the tzdata package) took ~4 ms and kept ~0.1 MB of names for a name already canonical.
        return text
    typed = " ".join(text.split())
    key = typed.replace(" ", "_").casefold()
    if not key:
        raise UnknownZone(text, ())
    names = _by_folded_name()
    if key in names:
        return names[key]
    if (offset := _OFFSET.fullmatch(typed)) is not None:
        return _offset_zone(typed, offset)
    raise UnknownZone(typed, suggest_zones(typed))


def _offset_zone(typed: str, offset: re.Match[str]) -> str:
    sign, hours_text, minutes_text = offset.groups()
    hours, minutes = int(hours_text), int(minutes_text or 0)
    east = sign == "+"
    if minutes >= 60:
        raise UnknownZone(typed, (), f"'{shown(typed)}' is not an offset: its minutes go up to 59")
    if hours > (_EAST if east else _WEST) or (minutes and hours >= (_EAST if east else _WEST)):
        raise UnknownZone(
            typed, (), f"'{shown(typed)}' is not a time zone: offsets go from UTC-{_WEST} to UTC+{_EAST}"
        )
    if minutes:
        total = (hours * 60 + minutes) * (1 if east else -1)
        places = _BETWEEN_HOURS.get(total, ())
        like = " or ".join(places) if places else ZONE_EXAMPLE
        raise UnknownZone(
            typed,
            places,
            f"'{shown(typed)}' is not a whole hour from UTC, and only whole hours have a zone of their own "
            f"(UTC+2 is Etc/GMT-2); use your place's zone, like {like}",
        )
    if hours == 0:
        return DEFAULT_ZONE
    return f"Etc/GMT{'-' if east else '+'}{hours}"  # POSIX's sign: Etc/GMT-2 is two hours *ahead* of UTC


_FIXED_ABBREVIATIONS = {
    "EST": ("UTC-5", "America/New_York"),
    "MST": ("UTC-7", "America/Denver"),
    "HST": ("UTC-10", "Pacific/Honolulu"),
}
"""IANA entries that look like a region's zone but are one offset all year: a New Yorker who sets ``EST``
would see every time an hour off all summer."""


def zone_note(zone: str) -> str:
    """What a zone named only by its offset means, said where it is set or shown: ``Etc/GMT-2`` reads as
    two hours *behind*, and nothing says that it never changes for summer time; nor does ``EST``."""
    if zone in _FIXED_ABBREVIATIONS:
        offset, region = _FIXED_ABBREVIATIONS[zone]
        return f"{offset} all year, no summer time; {region} follows summer time"
    found = _ETC_OFFSET.fullmatch(zone)
    if found is None or int(found.group(2)) == 0:
        return ""
    ahead = "+" if found.group(1) == "-" else "-"
    return f"UTC{ahead}{int(found.group(2))} all year, no summer time"


def zone_label(zone: str) -> str:
    """``Etc/GMT-2 (UTC+2 all year, no summer time)``; any other zone as it is."""
    note = zone_note(zone)
    return f"{zone} ({note})" if note else zone


def _exists(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def suggest_zones(text: str, limit: int = 2) -> tuple[str, ...]:
    upper = text.strip().upper()
    if upper in _ABBREVIATIONS:
        return _ABBREVIATIONS[upper][:limit]
    import difflib  # on use: not loaded at start-up (memory)

    names = _by_folded_name()
    key = text.strip().replace(" ", "_").casefold()
    close = difflib.get_close_matches(key, list(names), n=limit, cutoff=0.75)
    if not close and "/" not in key:  # a city alone: "amsterdam" → Europe/Amsterdam
        cities = {name.rsplit("/", 1)[-1]: name for name in names if "/" in name}
        close = [cities[city] for city in difflib.get_close_matches(key, list(cities), n=limit, cutoff=0.8)]
    return tuple(names.get(name, name) for name in close)


COMMON_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Lisbon",
    "Europe/Madrid",
    "Europe/Paris",
    "Europe/Amsterdam",
    "Europe/Brussels",
    "Europe/Berlin",
    "Europe/Rome",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Europe/Athens",
    "Europe/Helsinki",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Pacific/Auckland",
)
"""What a zone's autocomplete offers before anything is typed (Discord shows at most 25)."""


def complete_zones(typed: str, limit: int = 25) -> list[str]:
    """Zones for what someone has typed so far, best first — a name that starts with it (``europe/am``),
    then a city or region that does (``amst``), then one that has it inside, then the zones an
    abbreviation is often taken for (``CEST``). For a platform's autocomplete: at most ``limit``."""
    key = " ".join(typed.split()).replace(" ", "_").casefold()
    if not key:
        return list(COMMON_ZONES[:limit])
    ranked = sorted(
        (rank, name) for folded, name in _by_folded_name().items() if (rank := _rank(folded, key)) is not None
    )
    found = [name for _, name in ranked]
    found += [name for name in _ABBREVIATIONS.get(key.upper(), ()) if name not in found]
    if not found and _OFFSET.fullmatch(key):  # utc+2: the zone it is stored as, or the places suggested
        try:
            found = [resolve_zone(typed)]
        except UnknownZone as error:
            found = list(error.suggestions)
    return found[:limit]


def _rank(folded: str, key: str) -> int | None:
    """0: the name starts with ``key``; 1: a city or region in it does; 2: it holds it; None: no match."""
    if folded.startswith(key):
        return 0
    if any(part.startswith(key) for part in folded.split("/")[1:]):
        return 1
    return 2 if key in folded else None


def is_zone(text: str) -> bool:
    try:
        resolve_zone(text)
    except UnknownZone:
        return False
    return True
