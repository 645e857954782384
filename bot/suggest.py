"""Suggestions for an option being typed (Discord's autocomplete): the rows a number stands for.

A plugin offers them for its commands' ``<id>`` options with :func:`bot.plugin.suggests`; these helpers
keep every plugin's suggestions alike — the row's number first, as the command wants it, then what a
member recognises it by — and its search the same: what was typed, word by word, anywhere in the title,
or the start of the number (``#3``, ``31``). Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, String, and_, cast, or_
from sqlalchemy.sql.elements import ColumnElement

Query = TypeVar("Query", bound="Select[*tuple[Any, ...]]")  # any row shape: the caller's stays

MAX_SUGGESTIONS = 25
"""Discord shows at most 25 choices."""

LABEL_LIMIT = 100
"""Discord cuts a choice's name at 100 characters; a longer one is refused."""


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One choice: what the member sees, and the value the option then takes."""

    label: str
    value: int | str


def suggestion(number: int, title: str, note: str = "") -> Suggestion:
    """``#3 Which day for the workshop? · closed``, on one line and within Discord's length."""
    label = " ".join(f"#{number} {title}".split())
    if note:
        label = f"{label} · {note}"
    if len(label) > LABEL_LIMIT:
        label = label[: LABEL_LIMIT - 1].rstrip() + "…"
    return Suggestion(label, number)


def matching(number: Any, title: Any, typed: str) -> ColumnElement[bool] | None:
    """The rows whose title holds every word typed, or whose number starts with it (``#3`` or ``3``);
    None when nothing is typed yet (then the newest rows are the suggestions)."""
    words = typed.split()
    if not words:
        return None
    holds = and_(*(title.ilike(f"%{_escaped(word)}%", escape="\\") for word in words))
    digits = typed.strip().removeprefix("#")
    if digits.isdigit() and digits.isascii():
        return or_(cast(number, String).like(f"{digits}%"), holds)
    return holds


def narrowed(query: Query, number: Any, title: Any, typed: str) -> Query:
    """``query`` kept to the rows :func:`matching` finds, at most :data:`MAX_SUGGESTIONS` of them."""
    match = matching(number, title, typed)
    return (query if match is None else query.where(match)).limit(MAX_SUGGESTIONS)


def _escaped(word: str) -> str:
    """A word as LIKE reads it literally: ``50%`` finds "50%", not every title with "50"."""
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
