"""Time-zone names as people type them: ``europe/amsterdam``, ``CET``, ``Europe/Amsterdm``.

The IANA database is the only truth: a name is accepted when it is an IANA entry, whatever its case, and
returned in its canonical spelling (``Europe/Amsterdam``). Abbreviations are accepted only where they are
IANA entries themselves (``CET``, ``EST``, ``UTC``); one that is not (``CEST``, ``PST``) is refused with
the closest real names, never guessed, since the same letters mean different zones in different places.
"""

from __future__ import annotations

import functools
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


class UnknownZone(ValueError):
    """A name that is no IANA zone; the message says so and suggests the closest ones."""

    def __init__(self, text: str, suggestions: tuple[str, ...]) -> None:
        self.text = text
        self.suggestions = suggestions
        if suggestions:
            message = f"'{shown(text)}' is not a time zone — did you mean {' or '.join(suggestions)}?"
        else:
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
    raise UnknownZone(typed, suggest_zones(typed))


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
