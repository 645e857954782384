"""The digest as people read it, pure: plain text (console, Matrix's body), escaped HTML (Matrix, the
Atom feed), one whole card (Matrix, which splits only at an event's size), and cards within Discord's
embed limits — split between lines, never in the middle of a word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot import escaping
from bot.model import Card
from bot.plugin import DigestEntry, DigestSection
from bot.render import BULLET

FIELD_LIMIT = 1024  # Discord: an embed field's value
NAME_LIMIT = 256  # an embed field's name, and an embed's title
CARD_LIMIT = 5500  # Discord allows 6,000 characters per message's embeds: room for the title and footer
FIELDS_PER_CARD = 25
# Member text is escaped by the platform after the split: on Discord a backslash goes before each markdown
# character and each "[" (and one at a line's start), a zero-width space into @everyone/@here and role
# mentions. Measured as escaped, a field never grows past its limit there (and is never cut).
_DOUBLED = frozenset("\\*_~|`@[")
_PER_LINE = 2


@dataclass(frozen=True)
class Digest:
    community: str
    start: datetime
    end: datetime
    tz: str
    sections: tuple[DigestSection, ...]

    @property
    def quiet(self) -> bool:
        return not any(section.lines for section in self.sections if section.order < 90)

    @property
    def title(self) -> str:
        return f"📰 {self.community} — {period(self.start, self.end, self.tz)}"

    def for_web(self) -> Digest:
        """The digest as copbot keeps it for the web: members in chat see each other's names, but the
        dashboard and the Atom feed name only those who chose to show their name there."""
        return replace(
            self,
            sections=tuple(
                replace(section, lines=section.web_lines) if section.web_lines is not None else section
                for section in self.sections
            ),
        )


def period(start: datetime, end: datetime, tz: str) -> str:
    """``23–30 Nov 2026``, ``28 Nov – 5 Dec 2026``, ``3 Mar 2026``, in the community's zone. The end is
    exclusive: a period that ends at midnight ends with the day before (November's monthly digest, from
    1 Nov 00:00 to 1 Dec 00:00, is ``1–30 Nov 2026``, not ``1 Nov – 1 Dec``)."""
    zone = ZoneInfo(tz)
    first, last = start.astimezone(zone), end.astimezone(zone)
    if last > first and last.time() == time(0):
        last -= timedelta(days=1)  # the day before (wall-clock arithmetic: whatever its length)
    if first.date() == last.date():
        return f"{first.day} {first:%b %Y}"
    if first.year != last.year:
        return f"{first.day} {first:%b %Y} – {last.day} {last:%b %Y}"
    if first.month != last.month:
        return f"{first.day} {first:%b} – {last.day} {last:%b %Y}"
    return f"{first.day}–{last.day} {last:%b %Y}"


def quiet_line(community: str) -> str:
    return (
        f"A quiet period in {community}: nothing new to report. "
        "Say hello, share something, or plan a meeting!"
    )


def as_text(digest: Digest) -> str:
    if digest.quiet:
        return f"{digest.title}\n{quiet_line(digest.community)}"
    parts = [digest.title]
    for section in _ordered(digest.sections):
        parts.append("")
        parts.append(section.title)
        parts += [f"• {line}" for line in section.lines]
    return "\n".join(parts)


def placed(digest: Digest) -> list[tuple[int, int, str, DigestEntry]]:
    """Where each entry's line stands in :func:`as_text` (its row, split at newlines) and in
    :func:`as_html` (which ``<li>``), with the line: laid out as those two lay the digest out."""
    if digest.quiet:
        return []
    found: list[tuple[int, int, str, DigestEntry]] = []
    row, item = 1, 0  # the title's row
    for section in _ordered(digest.sections):
        row += 2  # a blank row, the section's title
        for entry in section.entries:
            if 0 <= entry.line < len(section.lines):
                found.append((row + entry.line, item + entry.line, section.lines[entry.line], entry))
        row += len(section.lines)
        item += len(section.lines)
    return found


def as_html(digest: Digest) -> str:
    """Escaped HTML: member-written text can never become markup (the Atom feed, Matrix)."""
    if digest.quiet:
        return f"<p>{escaping.escape(quiet_line(digest.community))}</p>"
    blocks = []
    for section in _ordered(digest.sections):
        items = "".join(f"<li>{escaping.escape(line)}</li>" for line in section.lines)
        blocks.append(f"<h3>{escaping.escape(section.title)}</h3><ul>{items}</ul>")
    return "".join(blocks)


def as_card(digest: Digest) -> Card:
    """The whole digest as one card, each section one field, nothing clipped: for a platform that splits
    a message only at its own size limit (Matrix), not at Discord's embed limits."""
    if digest.quiet:
        return Card(title=digest.title, fields=(("", quiet_line(digest.community)),))
    fields = tuple(
        (section.title, "\n".join(f"{BULLET}{line}" for line in section.lines))
        for section in _ordered(digest.sections)
    )
    return Card(title=digest.title, fields=fields)


def as_cards(digest: Digest) -> list[Card]:
    """Cards within embed limits: each section a field (continued in further fields when long), cards
    split so none passes the per-message total."""
    if digest.quiet:
        return [Card(title=_clip(digest.title, NAME_LIMIT), fields=(("", quiet_line(digest.community)),))]
    fields: list[tuple[str, str]] = []
    for section in _ordered(digest.sections):
        for index, chunk in enumerate(_chunks([f"{BULLET}{line}" for line in section.lines], FIELD_LIMIT)):
            name = section.title if index == 0 else f"{section.title} (continued)"
            fields.append((_clip(name, NAME_LIMIT), chunk))
    cards: list[Card] = []
    current: list[tuple[str, str]] = []
    size = escaped_size(digest.title)
    for name, value in fields:
        cost = escaped_size(name) + escaped_size(value)
        if current and (size + cost > CARD_LIMIT or len(current) == FIELDS_PER_CARD):
            cards.append(_card(digest, current, len(cards)))
            current, size = [], escaped_size(digest.title)
        current.append((name, value))
        size += cost
    if current:
        cards.append(_card(digest, current, len(cards)))
    return cards


def _card(digest: Digest, fields: list[tuple[str, str]], index: int) -> Card:
    title = digest.title if index == 0 else f"{digest.title} (continued)"
    return Card(title=_clip(title, NAME_LIMIT), fields=tuple(fields))


def _ordered(sections: Sequence[DigestSection]) -> list[DigestSection]:
    return sorted((s for s in sections if s.lines), key=lambda s: (s.order, s.title))


def escaped_size(text: str) -> int:
    """The most characters ``text`` can take once escaped for the platform's markup (at least its length)."""
    return len(text) + sum(ch in _DOUBLED for ch in text) + _PER_LINE * (text.count("\n") + 1)


def _chunks(lines: list[str], limit: int) -> list[str]:
    """Lines joined into pieces of at most ``limit`` characters once escaped, breaking between lines — and
    inside a line only at a space, when one line alone is longer than the limit."""
    pieces: list[str] = []
    current, size = "", 0
    for line in lines:
        for part in _split_long(line, limit):
            cost = escaped_size(part)
            if current and size + 1 + cost > limit:
                pieces.append(current)
                current, size = part, cost
            elif current:
                current, size = f"{current}\n{part}", size + 1 + cost
            else:
                current, size = part, cost
    if current:
        pieces.append(current)
    return pieces


def _split_long(line: str, limit: int) -> list[str]:
    parts: list[str] = []
    while escaped_size(line) > limit:
        fits = _fitting(line, limit)
        cut = line.rfind(" ", 0, fits + 1)
        if cut <= 0:  # one word longer than the limit: nothing better than a hard cut
            cut = max(fits, 1)
        parts.append(line[:cut].rstrip())
        line = line[cut:].lstrip()
    if line:
        parts.append(line)
    return parts


def _fitting(line: str, limit: int) -> int:
    """How many leading characters of ``line`` (one line) fit in ``limit`` once escaped."""
    used = _PER_LINE
    for index, ch in enumerate(line):
        used += 2 if ch in _DOUBLED else 1
        if used > limit:
            return index
    return len(line)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 1)
    return text[: cut if cut > 0 else limit - 1] + "…"
