"""Profile fields as members type them, checked and normalised; errors say what to type instead."""

from __future__ import annotations

import difflib
import re

import pycountry

from bot.errors import UsageError
from bot.timeparse import is_valid_timezone

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
_COUNTRY_ALIASES = {"uk": "GB", "england": "GB", "scotland": "GB", "wales": "GB", "usa": "US"}
MAX_TAGS = 20
MAX_TAG = 40
MAX_ORG = 200
_TAG_CLEAN = re.compile(r"[^\w\s/+&.-]", re.UNICODE)


def org_type(text: str) -> str:
    """``utility``, ``Local/regional authority``, or its number in the list → the stored key."""
    value = " ".join(text.strip().lower().split())
    keys = list(ORG_TYPES)
    if value.isdigit() and 1 <= int(value) <= len(keys):
        return keys[int(value) - 1]
    value = _ORG_ALIASES.get(value, value)
    for key, label in ORG_TYPES.items():
        if value in (key, label.lower()):
            return key
    raise UsageError(f"'{text.strip()}' is not an organisation type; choose one of {', '.join(ORG_TYPES)}")


def country(text: str) -> str:
    """An ISO 3166 code or a country's name → the alpha-2 code; a near miss gets a suggestion."""
    value = text.strip()
    if not value:
        raise UsageError("a country is missing (a name like Netherlands or a code like NL)")
    if value.lower() in _COUNTRY_ALIASES:
        return _COUNTRY_ALIASES[value.lower()]
    try:
        return str(pycountry.countries.lookup(value).alpha_2)
    except LookupError:
        pass
    names = {str(c.name).lower(): c for c in pycountry.countries}
    names.update({str(c.common_name).lower(): c for c in pycountry.countries if hasattr(c, "common_name")})
    close = difflib.get_close_matches(value.lower(), list(names), n=1, cutoff=0.75)
    advice = "a name like Netherlands or a code like NL"
    if close:
        guess = names[close[0]]
        raise UsageError(
            f"'{value}' is not a country I know — did you mean {guess.name} ({guess.alpha_2})? Use {advice}"
        )
    raise UsageError(f"'{value}' is not a country I know; use {advice}")


def country_name(code: str | None) -> str:
    if not code:
        return ""
    found = pycountry.countries.get(alpha_2=code)
    return str(found.name) if found else code


def tags(text: str) -> list[str]:
    """``Leak detection, smart  metering`` → ``["leak detection", "smart metering"]``, deduplicated."""
    found: list[str] = []
    for part in re.split(r"[,;\n]", text):
        tag = " ".join(_TAG_CLEAN.sub(" ", part).lower().split()).strip(".-/")
        if not tag:
            continue
        if len(tag) > MAX_TAG:
            raise UsageError(f"'{tag[:MAX_TAG]}…' is too long for a tag (at most {MAX_TAG} characters)")
        if tag not in found:
            found.append(tag)
    if not found:
        raise UsageError("no tags found; separate them with commas, like: leak detection, smart metering")
    if len(found) > MAX_TAGS:
        raise UsageError(f"{len(found)} tags is too many (at most {MAX_TAGS})")
    return found


def organisation(text: str) -> str:
    value = " ".join(text.split())
    if not value:
        raise UsageError("the organisation's name is missing")
    if len(value) > MAX_ORG:
        raise UsageError(f"an organisation's name has at most {MAX_ORG} characters")
    return value


def timezone(text: str) -> str:
    value = text.strip()
    if value.upper() == "UTC":
        return "UTC"
    if "/" not in value or not is_valid_timezone(value):  # "EST" and friends are valid but misleading
        raise UsageError(f"'{value}' is not a time zone; use an IANA name like Europe/Amsterdam or UTC")
    return value


def switch(text: str) -> bool:
    value = text.strip().lower()
    if value in ("on", "yes", "true"):
        return True
    if value in ("off", "no", "false"):
        return False
    raise UsageError(f"'{text.strip()}' is neither on nor off")


def join_tags(values: list[str]) -> str:
    return ", ".join(values)


def split_tags(stored: str) -> list[str]:
    return [tag.strip() for tag in stored.split(",") if tag.strip()]
