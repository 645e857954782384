"""What an item is made of, pure: the limits, tags, links, and a title for a saved message.

``share tool "Leak map" https://example.org/map #gis #leakage`` → kind, title, the link, the text around it
and the tags at the end. Tags are lower-case words or phrases without spaces (``#smart-metering``), at most
ten; a member's ``#`` inside the text (``issue #12``) stays text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.errors import UsageError
from bot.timeparse import shown

MAX_TITLE, MAX_BODY, MAX_TAGS, MAX_TAG, MAX_URL = 200, 4000, 10, 40, 1000
_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_TAG = re.compile(r"^#([^\s#]+)$")
_TRAILING_PUNCTUATION = ".,;:!?)]}"
# Embeddings, overrides and isolates: in a title they turn the rest of a line listing it around (its
# author's name, its upvotes). Right-to-left scripts need none of them to read right.
_DIRECTION = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class Draft:
    title: str
    body: str
    url: str
    tags: tuple[str, ...]


def tag_of(word: str) -> str:
    """``#Smart-Metering`` → ``smart-metering``; refused with the reason if it cannot be a tag."""
    tag = unicodedata.normalize("NFKC", word.removeprefix("#")).strip().lower().rstrip(_TRAILING_PUNCTUATION)
    if not tag or all(unicodedata.category(char).startswith("P") for char in tag):  # "#", "##", "#-"
        raise UsageError(f"'{shown(word)}' is an empty tag; write tags like #leakage")
    if len(tag) > MAX_TAG:
        raise UsageError(f"the tag #{tag[:MAX_TAG]}… is too long (at most {MAX_TAG} characters)")
    if any(unicodedata.category(char).startswith("C") for char in tag):
        raise UsageError("a tag contains control characters; write it as plain text")
    return tag


def _tag_words(words: list[str]) -> list[str]:
    """``#gis,#leakage`` and ``#gis`` ``#leakage`` alike: each written tag once, as typed."""
    return [part.strip() for word in words for part in word.split(",") if part.strip()]


def tags_of(words: list[str], existing: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Tags from ``#words`` (added to ``existing``), deduplicated, at most MAX_TAGS."""
    found = list(existing)
    for part in _tag_words(words):
        tag = tag_of(part)
        if tag not in found:
            found.append(tag)
    if len(found) > MAX_TAGS:
        raise UsageError(f"an item has at most {MAX_TAGS} tags; this would make {len(found)}")
    return tuple(found)


def tags_in_message(words: list[str]) -> tuple[str, ...]:
    """The tags at the end of a message saved with 📌, the first :data:`MAX_TAGS` of those that can be
    tags: the member wrote to the community, not to copbot, so nothing they wrote is refused (``#.``, an
    eleventh tag) — that would leave the message unsaved for whoever pinned it."""
    found: list[str] = []
    for part in _tag_words(words):
        try:
            tag = tag_of(part)
        except UsageError:
            continue
        if tag not in found:
            found.append(tag)
    return tuple(found[:MAX_TAGS])


def split_trailing_tags(text: str) -> tuple[str, list[str]]:
    """The text, and the ``#tags`` written at its end."""
    words = text.split()
    tags: list[str] = []
    while words and _TAG.match(words[-1]):
        tags.insert(0, words.pop())
    if not tags:
        return text.strip(), []
    kept = text.strip()
    for tag in reversed(tags):  # cut them off the end, keeping the text's own line breaks
        kept = kept[: kept.rfind(tag)].rstrip()
    return kept, tags


def draft(title: str, text: str) -> Draft:
    """An item from what a member typed; each limit refused with what was wrong."""
    title = title_of(title)
    return Draft(title, *contents(text))


def title_of(typed: str) -> str:
    """A new item's title, on one line; refused if it is empty (or only invisible characters), too long,
    or holds a control or direction character."""
    title = " ".join(typed.split())
    if not any(_visible(char) for char in title):  # "", or only zero-width characters
        raise UsageError("the title is empty")
    if any(unicodedata.category(char) == "Cc" or char in _DIRECTION for char in title):
        raise UsageError("the title has a control or direction character; write it as plain text")
    if len(title) > MAX_TITLE:
        raise UsageError(f"the title has {len(title)} characters; at most {MAX_TITLE}")
    return title


def contents(text: str) -> tuple[str, str, tuple[str, ...]]:
    """An item's text, its link and its tags from what a member typed (``share``, ``repertoire edit``:
    an edit keeps the title as it is, which a saved message or a meeting's notes made, not a member)."""
    body, tag_words = split_trailing_tags(text)
    tags = tags_of(tag_words)
    found = _URL.search(body)
    url = found.group(0).rstrip(_TRAILING_PUNCTUATION) if found else ""
    if len(url) > MAX_URL:
        raise UsageError(f"the link has {len(url)} characters; at most {MAX_URL}")
    if body == url:
        body = ""  # just a link
    if len(body) > MAX_BODY:
        raise UsageError(f"the text has {len(body)} characters; at most {MAX_BODY}")
    if not body and not url:
        raise UsageError("the item has no text and no link; add what you want to share")
    return body, url, tags


def _visible(char: str) -> bool:
    """Whether a character shows: not a space, nor a control or format character (a zero-width space)."""
    return not unicodedata.category(char).startswith(("C", "Z"))


def day_in(moment: datetime, zone: str) -> str:
    """The day of a stored (UTC) moment in a zone, the reader's or the community's: shared at 09:00 on
    3 March in Auckland is the 3rd there, though it was still the 2nd in UTC."""
    return f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%d}"


def first_url(text: str) -> str:
    found = _URL.search(text)
    return found.group(0).rstrip(_TRAILING_PUNCTUATION)[:MAX_URL] if found else ""


def title_from_message(text: str, limit: int = 80) -> str:
    """A saved message's title: its first line, cut at a word before ``limit`` characters; without
    direction or control characters, which a title typed to ``share`` may not have either (the text keeps
    them; a tab is a space)."""
    lines = (_plain_title(line) for line in text.splitlines())
    first = next((line for line in lines if line), "")
    first = _URL.sub(lambda match: match.group(0).split("//", 1)[-1].split("/", 1)[0], first)
    if len(first) <= limit:
        return first or "A saved message"
    cut = first[:limit].rsplit(" ", 1)[0]
    return (cut or first[:limit]).rstrip(",.;:") + "…"


def _plain_title(line: str) -> str:
    kept = "".join(
        " " if unicodedata.category(char) == "Cc" else char for char in line if char not in _DIRECTION
    )
    return " ".join(kept.split())


def join_tags(tags: tuple[str, ...]) -> str:
    return ",".join(tags)


def split_tags(stored: str) -> tuple[str, ...]:
    return tuple(tag for tag in stored.split(",") if tag)


def hashtags(tags: tuple[str, ...]) -> str:
    return " ".join(f"#{tag}" for tag in tags)
