"""Profile fields as members type them, checked and normalised; errors say what to type instead."""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import TYPE_CHECKING

from bot.errors import UsageError
from bot.timeparse import shown
from bot.zones import UnknownZone, resolve_zone

if TYPE_CHECKING:
    from pycountry import ExistingCountries

ORG_TYPES: dict[str, str] = {
    "utility": "Utility",
    "industry": "Industry",
    "regulator": "Regulator",
    "authority": "Local/regional authority",
    "research": "Research",
    "technology": "Technology provider",
    "end-user": "End-user",
    "ngo": "NGO",
    "other": "Other",
}
_ORG_ALIASES = {
    "local authority": "authority",
    "regional authority": "authority",
    "local/regional authority": "authority",
    "technology provider": "technology",
    "tech": "technology",
    "end user": "end-user",
    "enduser": "end-user",
    "university": "research",
    "academia": "research",
    "company": "industry",
}
_COUNTRY_ALIASES = {
    "uk": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "britain": "GB",
    "great britain": "GB",
    "usa": "US",
    # the names people use where ISO 3166 (pycountry) has another: "Russian Federation", "Türkiye" …
    "russia": "RU",
    "turkey": "TR",
    "holland": "NL",
    "ivory coast": "CI",
    "uae": "AE",
    "brunei": "BN",
    "cape verde": "CV",
    "swaziland": "SZ",
    "burma": "MM",
    "east timor": "TL",
    "macedonia": "MK",
    "bosnia": "BA",
    "palestine": "PS",
    "vatican": "VA",
    "dr congo": "CD",
    "drc": "CD",
}
MAX_TAGS = 20
TAG_KEYS = 2048
"""Tags whose keys are remembered (~150 bytes each: at most ~0.3 MB)."""
MAX_TAG = 40
MAX_ORG = 200
_NUMBERED = re.compile(r"(\d+)\s?[.)]")
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»", "„": "“"}


def org_type(text: str) -> str:
    """``utility``, ``Local/regional authority``, or its number in the list → the stored key. The number
    may keep the mark it has in the list (``1.``) or that people write after one (``2)``)."""
    value = " ".join(text.strip().lower().split())
    if numbered := _NUMBERED.fullmatch(value):
        value = numbered.group(1)
    keys = list(ORG_TYPES)
    if value.isdecimal() and len(value) <= 3 and 1 <= int(value) <= len(keys):  # not "²": int() refuses it
        return keys[int(value) - 1]
    value = _ORG_ALIASES.get(value, value)
    for key, label in ORG_TYPES.items():
        if value in (key, label.lower()):
            return key
    if value.isdecimal():  # a number, but not one in the list
        raise UsageError(f"'{shown(text)}' is not an organisation type; use a number from 1 to {len(keys)}")
    raise UsageError(f"'{shown(text)}' is not an organisation type; choose one of {', '.join(ORG_TYPES)}")


def _countries() -> ExistingCountries:
    """pycountry's database (~6 MB), loaded when a country is first read or shown, not at start-up."""
    import pycountry

    return pycountry.countries


def country(text: str) -> str:
    """An ISO 3166 code or a country's name → the alpha-2 code; a near miss gets a suggestion."""
    value = text.strip()
    if not value:
        raise UsageError("a country is missing (a name like Netherlands or a code like NL)")
    plain = _folded_name(value)
    if plain in _COUNTRY_ALIASES:
        return _COUNTRY_ALIASES[plain]
    try:
        return str(_countries().lookup(value).alpha_2)
    except LookupError:
        pass
    names = {str(c.name).lower(): c for c in _countries()}
    names.update({str(c.common_name).lower(): c for c in _countries() if hasattr(c, "common_name")})
    # "The Netherlands", "Curacao", "Cote d’Ivoire": as people type them, without the article, the
    # accents or the typographic apostrophe that the ISO names have or lack
    folded = {_folded_name(name): found for name, found in names.items()}
    if plain in folded:
        return str(folded[plain].alpha_2)
    import difflib  # on use: not loaded at start-up (memory)

    close = difflib.get_close_matches(value.lower(), list(names), n=1, cutoff=0.75)
    advice = "a name like Netherlands or a code like NL"
    if close:
        guess = names[close[0]]
        raise UsageError(
            f"'{shown(value)}' is not a country I know — did you mean {guess.name} ({guess.alpha_2})? "
            f"Use {advice}"
        )
    raise UsageError(f"'{shown(value)}' is not a country I know; use {advice}")


def _folded_name(name: str) -> str:
    """A country's name compared without case, accents, a leading "the" or typographic apostrophes."""
    return " ".join(unaccented(name.replace("’", "'")).split()).removeprefix("the ")


def unaccented(text: str) -> str:
    """``text`` without case or accents ("Énergie" is "energie"), as SQLite's full-text index (FTS5's
    unicode61) compares words."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()


def country_name(code: str | None) -> str:
    if not code:
        return ""
    found = _countries().get(alpha_2=code)
    return str(found.name) if found else code


def tags(text: str) -> list[str]:
    """``Leak detection, .NET, l'eau`` → the tags as the member wrote them, deduplicated.

    Tags keep the member's own words (case, apostrophes, dots, any script, emoji): they are shown as
    typed and compared by :func:`tag_key`. Quotes typed around a tag are not part of it. A tag that
    cannot be kept is refused by name, never silently dropped.
    """
    found: list[str] = []
    keys: set[str] = set()
    for part in re.split(r"[,;\n]", text):
        tag = _unwrap(" ".join(part.split()))
        if not tag:
            continue
        _plain(tag)
        if len(tag) > MAX_TAG:
            raise UsageError(f"'{tag[:MAX_TAG]}…' is too long for a tag (at most {MAX_TAG} characters)")
        if not any(char.isalnum() or unicodedata.category(char).startswith("S") for char in tag):
            raise UsageError(f"'{tag}' has no words in it; a tag needs letters, digits or symbols")
        key = tag_key(tag)
        if key not in keys:
            keys.add(key)
            found.append(tag)
    if not found:
        raise UsageError("no tags found; separate them with commas, like: leak detection, smart metering")
    if len(found) > MAX_TAGS:
        raise UsageError(f"{len(found)} tags is too many (at most {MAX_TAGS})")
    return found


@functools.lru_cache(maxsize=TAG_KEYS)
def tag_key(tag: str) -> str:
    """What two tags are compared by: case, accents, typographic apostrophes and spacing do not matter (a
    member writes "réutilisation des eaux", another "reutilisation des eaux", as `experts` finds both).
    Remembered: a community writes the same few hundred tags again and again, and ``match`` reads all its
    profiles."""
    folded = unaccented(tag.replace("’", "'").replace("‘", "'"))
    return " ".join(folded.split())


def _unwrap(tag: str) -> str:
    while len(tag) >= 2 and tag[0] in _QUOTES and tag.endswith(_QUOTES[tag[0]]):
        tag = tag[1:-1].strip()
    return tag


def _plain(text: str) -> None:
    """Refuse control and format characters (a right-to-left override makes a name read backwards, a
    zero-width space makes two equal names differ), shown as ``?``."""
    if any(unicodedata.category(char).startswith("C") for char in text):
        shown_text = "".join(char if not unicodedata.category(char).startswith("C") else "?" for char in text)
        raise UsageError(f"'{shown(shown_text)}' contains control characters; write it as plain text")


def organisation(text: str) -> str:
    value = " ".join(text.split())
    if not value:
        raise UsageError("the organisation's name is missing")
    _plain(value)
    if len(value) > MAX_ORG:
        raise UsageError(f"an organisation's name has at most {MAX_ORG} characters")
    return value


def timezone(text: str) -> str:
    """An IANA name in any case, or an abbreviation that is an IANA entry (CET); canonical spelling."""
    try:
        return resolve_zone(text)
    except UnknownZone as error:
        raise UsageError(str(error)) from None


def switch(text: str) -> bool:
    value = text.strip().lower()
    if value in ("on", "yes", "true"):
        return True
    if value in ("off", "no", "false"):
        return False
    raise UsageError(f"'{shown(text)}' is neither on nor off")


def reminders(text: str) -> str:
    """Where meeting reminders reach the member: ``room`` (mentioned there) or ``dm``."""
    value = text.strip().lower()
    value = {"direct": "dm", "direct message": "dm", "private": "dm", "here": "room", "channel": "room"}.get(
        value, value
    )
    if value not in ("room", "dm"):
        raise UsageError(f"'{shown(text)}' is neither room nor dm")
    return value


def join_tags(values: list[str]) -> str:
    return ", ".join(values)


def split_tags(stored: str) -> list[str]:
    return [tag.strip() for tag in stored.split(",") if tag.strip()]
