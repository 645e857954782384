"""The repertoire as a file, pure: Markdown to read (grouped by kind), JSON to keep or move elsewhere.

Member-written text goes into Markdown as text, not as markup: characters Markdown would act on are
escaped, so an exported title cannot turn into a link, a heading or an image; control characters are left
out.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from plugins.repertoire.models import KINDS
from plugins.repertoire.rules import day_in

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~=])")  # "=": a line of them under text makes a heading
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Control characters (a tab and a line break are text): nothing in a Markdown file, and escape sequences
on the terminal ``copbot export repertoire`` writes to (retitling the window, clearing the screen)."""
EXPORT_VERSION = 1
PLURALS = {
    "story": "Stories",
    "tool": "Tools",
    "experience": "Experiences",
    "practice": "Practices",
    "resource": "Resources",
}


@dataclass(frozen=True)
class Exported:
    id: int
    kind: str
    title: str
    body: str
    url: str
    tags: list[str]
    author: str
    created_at: str
    updated_at: str
    source_link: str
    upvotes: int
    used: int
    copied_from: int | None = None


def escape(text: str) -> str:
    return _MARKDOWN.sub(r"\\\1", _CONTROL.sub("", text))


def as_json(community: str, items: list[Exported], now: datetime) -> bytes:
    document = {
        "format": "copbot-repertoire",
        "version": EXPORT_VERSION,
        "community": community,
        "exported_at": now.isoformat(),
        "items": [asdict(item) for item in items],
    }
    return json.dumps(document, ensure_ascii=False, indent=2).encode()


def from_json(data: bytes) -> list[Exported]:
    document = json.loads(data)
    return [Exported(**item) for item in document["items"]]


def as_markdown(community: str, items: list[Exported], now: datetime, tz: str = "UTC") -> bytes:
    """The file people read: dated in the community's zone ``tz`` — an item's day as the repertoire's page
    and chat give it (day_in), the export's moment with its zone named. (JSON keeps the exact moments.)"""
    local = now.astimezone(ZoneInfo(tz))
    lines = [
        f"# {escape(community)}: the repertoire",
        "",
        f"Exported {local:%Y-%m-%d %H:%M} {local:%Z}; {len(items)} item{'' if len(items) == 1 else 's'}.",
        "",
    ]
    for kind in KINDS:
        chosen = [item for item in items if item.kind == kind]
        if not chosen:
            continue
        lines += [f"## {PLURALS[kind]}", ""]
        for item in chosen:
            lines.append(f"### #{item.id} {escape(item.title)}")
            lines.append("")
            meta = [f"by {escape(item.author)}", day_in(datetime.fromisoformat(item.created_at), tz)]
            if item.tags:
                meta.append(" ".join(f"\\#{escape(tag)}" for tag in item.tags))
            if item.upvotes:
                meta.append(f"{item.upvotes} upvote{'s' if item.upvotes != 1 else ''}")
            lines.append("*" + " · ".join(meta) + "*")
            lines.append("")
            if item.body:
                lines += [escape(line) if line.strip() else "" for line in item.body.splitlines()]
                lines.append("")
            if item.url:
                lines += [f"Link: <{_CONTROL.sub('', item.url)}>", ""]
            if item.source_link:
                lines += [f"Source: <{_CONTROL.sub('', item.source_link)}>", ""]
    return "\n".join(lines).encode()
