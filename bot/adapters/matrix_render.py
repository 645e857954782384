"""Core ``Content`` → Matrix event content, as pure functions (no network, no nio), so they are easy to test.

Everything a member wrote may end up in ``text``, so the HTML body is built by escaping the whole text
first and only then turning the intended mentions into pills: member text can never inject markup, and
``m.mentions`` lists only the intended members, so "@room" typed by a member never pings the room. Every
event with a body carries ``m.mentions`` (polls too, empty): without it, clients and servers fall back to
reading mentions from the body, and copbot may have the power to notify the room.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any

from bot import escaping
from bot.model import Card, Content, Member, PollSpec
from bot.render import BULLET, plain_text

POLL_START = "m.poll.start"
POLL_START_UNSTABLE = "org.matrix.msc3381.poll.start"
POLL_RESPONSE_TYPES = ("m.poll.response", "org.matrix.msc3381.poll.response")
POLL_END = "m.poll.end"
TEXT_UNSTABLE = "org.matrix.msc1767.text"
HTML_FORMAT = "org.matrix.custom.html"
CONTENT_LIMIT = 60_000
"""Bytes an event's content may take as JSON. Matrix refuses an event over 64 KiB (M_TOO_LARGE) counting
what the homeserver wraps around it (sender, room, signatures, hashes, the events it follows); the rest of
the 65,536 is left for that. The body and ``formatted_body`` both count, and escaping can make the HTML up
to six times as long as the text."""


def pill(member: Member) -> str:
    """A matrix.to link, which Matrix clients show as a pill with the member's name."""
    name = escaping.escape(member.display_name or member.id)
    return f'<a href="https://matrix.to/#/{escaping.escape(member.id, quote=True)}">{name}</a>'


def html_text(content: Content) -> str:
    """The HTML body: escaped text with the intended mentions (written as their Matrix ids) as pills."""
    body = escaping.escape(content.text)
    if content.mentions:
        # all ids in one pass: replaced one after another, an id inside a pill made before (a member named
        # after another's id) became a pill nested in that one
        pills = {escaping.escape(member.id): pill(member) for member in content.mentions}
        ids = re.compile("|".join(re.escape(each) for each in sorted(pills, key=len, reverse=True)))
        body = ids.sub(lambda match: pills[match.group(0)], body)
    body = body.replace("\n", "<br>")
    if content.card is not None:
        body += ("<br>" if body else "") + _card_html(content.card)  # no blank line above a card alone
    if content.select is not None:
        items = "".join(f"<li>{escaping.escape(label)}</li>" for _, label in content.select.options)
        body += f"<ol>{items}</ol>"
    if content.buttons:
        labels = " · ".join(f"[{escaping.escape(button.label)}]" for button in content.buttons)
        body += f"<br>{labels}"
    return body


def _card_html(card: Card) -> str:
    """The title, then the fields: ``name: value`` rows in a list, and a field whose value is a list of
    its own (the digest's sections) as its name on a line with its items below — Element draws one bullet
    per item, where a row starting with "•" showed two."""
    blocks: list[str] = []
    rows: list[str] = []
    for name, value in card.fields:
        if not value.startswith(BULLET):
            label = f"<b>{escaping.escape(name)}</b>: " if name else ""
            rows.append(f"<li>{label}{_lines(value)}</li>")
            continue
        if rows:
            blocks.append(f"<ul>{''.join(rows)}</ul>")
            rows = []
        heading = f"<p><b>{escaping.escape(name)}</b></p>" if name else ""
        items = "".join(f"<li>{_lines(item)}</li>" for item in _items(value))
        blocks.append(f"{heading}<ul>{items}</ul>")
    if rows:
        blocks.append(f"<ul>{''.join(rows)}</ul>")
    footer = f"<br><i>{_lines(card.footer)}</i>" if card.footer else ""
    return f"<b>{escaping.escape(card.title)}</b>{''.join(blocks)}{footer}"


def _items(value: str) -> list[str]:
    """A bulleted value's items, bullets taken off; a line without one continues the item before it (a
    long item split to fit a platform's limit)."""
    items: list[str] = []
    for line in value.splitlines():
        if line.startswith(BULLET) or not items:
            items.append(line.removeprefix(BULLET))
        else:
            items[-1] += "\n" + line
    return items


def _lines(text: str) -> str:
    """Escaped, with its line breaks kept (HTML would run a multi-line field's lines together)."""
    return escaping.escape(text).replace("\n", "<br>")


def mentions_field(members: tuple[Member, ...]) -> dict[str, Any]:
    """MSC3952 intentional mentions: exactly these users, never the room."""
    return {"user_ids": sorted({member.id for member in members})}


def message_content(
    content: Content, *, reply_to: str | None = None, msgtype: str = "m.notice", thread: str | None = None
) -> dict[str, Any]:
    """An ``m.room.message``; ``m.notice`` by default, the type bots use so other bots never answer them.

    ``thread``: the root of the thread the replied-to message is in; the reply goes into that thread (a
    plain reply would land in the room's main timeline, away from the conversation it answers)."""
    message: dict[str, Any] = {
        "msgtype": msgtype,
        "body": plain_text(content),
        "format": HTML_FORMAT,
        "formatted_body": html_text(content),
        "m.mentions": mentions_field(content.mentions),
    }
    if thread:
        message["m.relates_to"] = thread_relation(thread, reply_to)
    elif reply_to:
        message["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
    return message


def message_contents(
    content: Content,
    *,
    reply_to: str | None = None,
    thread: str | None = None,
    limit: int = CONTENT_LIMIT,
) -> list[dict[str, Any]]:
    """The message as ``m.room.message`` events: one whenever it fits Matrix's event size (a long digest
    too, which Discord would cut at its 6,000 characters), else as few as fit, in order.

    The split is made on the message before it is rendered: between the text's lines and between a card's
    fields and its items, so every part's HTML is built whole and no tag or entity is ever cut; a single
    line too long for one event is cut at a space. The first part is the reply; in a thread, every part
    goes into the thread. Each part mentions only the members named in it.
    """
    whole = message_content(content, reply_to=reply_to, thread=thread)
    if _size(whole) <= limit:
        return [whole]

    def fits(part: Content) -> bool:
        return _size(message_content(part, reply_to=reply_to, thread=thread)) <= limit

    parts = split_content(content, fits)
    return [
        message_content(part, reply_to=reply_to if index == 0 else None, thread=thread)
        for index, part in enumerate(parts)
    ]


def _size(event_content: dict[str, Any]) -> int:
    """Bytes as the homeserver counts them: compact JSON in UTF-8 (Matrix's canonical form)."""
    return len(json.dumps(event_content, ensure_ascii=False, separators=(",", ":")).encode())


def split_content(content: Content, fits: Callable[[Content], bool]) -> list[Content]:
    """``content`` as consecutive parts that each ``fits``: its text by lines, then its card by fields
    (a field too long for one part continues in the next under "(continued)", by lines), packed so that
    parts are as few as possible; buttons, a menu and the card's footer go with the last part."""
    parts: list[Content] = []
    if content.text:
        mentions = content.mentions  # as pills they are longer than the ids they replace: counted
        for lines in _pack(
            content.text.split("\n"), lambda ls: fits(Content("\n".join(ls), mentions=mentions))
        ):
            parts.append(Content("\n".join(lines)))
    card = content.card
    if card is not None:
        fields: list[tuple[str, str]] = []
        for name, value in card.fields:
            chunks = _pack(value.split("\n"), _field_fits(fits, card.title, name))
            fields += [
                (name if i == 0 else f"{name} (continued)", "\n".join(c)) for i, c in enumerate(chunks)
            ]
        cards: list[list[tuple[str, str]]] = []
        for field in fields:
            title = card.title if len(cards) <= 1 else f"{card.title} (continued)"
            if cards and fits(Content("", card=Card(title, (*cards[-1], field)))):
                cards[-1].append(field)
            else:
                cards.append([field])
        for index, group in enumerate(cards):
            title = card.title if index == 0 else f"{card.title} (continued)"
            piece = Content("", card=Card(title, tuple(group)))
            joined = dataclasses.replace(parts[-1], card=piece.card) if index == 0 and parts else None
            if joined is not None and fits(joined):  # the card right below the text's last lines
                parts[-1] = joined
            else:
                parts.append(piece)
    if not parts:
        return [content]
    last = parts[-1]
    if last.card is not None and card is not None and card.footer:
        last = dataclasses.replace(last, card=dataclasses.replace(last.card, footer=card.footer))
    parts[-1] = dataclasses.replace(last, buttons=content.buttons, select=content.select)
    return [
        dataclasses.replace(part, mentions=tuple(m for m in content.mentions if m.id in _words(part)))
        for part in parts
    ]


def _field_fits(fits: Callable[[Content], bool], title: str, name: str) -> Callable[[list[str]], bool]:
    """Whether a field ``name`` of these lines fits on a card alone."""
    return lambda lines: fits(Content("", card=Card(title, ((name, "\n".join(lines)),))))


def _words(part: Content) -> str:
    fields = part.card.fields if part.card is not None else ()
    return "\n".join([part.text, *(value for _, value in fields)])


def _pack(lines: list[str], fits: Callable[[list[str]], bool]) -> list[list[str]]:
    """Consecutive lines grouped so each group ``fits``, as few groups as that allows; a line that does not
    fit alone is cut first (:func:`_cut`)."""
    groups: list[list[str]] = []
    for line in lines:
        for piece in _cut(line, lambda text: fits([text])):
            if groups and fits([*groups[-1], piece]):
                groups[-1].append(piece)
            else:
                groups.append([piece])
    return groups


def _cut(line: str, fits: Callable[[str], bool]) -> list[str]:
    """One line in pieces that each ``fits``: cut at the last space that allows, else between characters
    (a line of one word longer than an event). Found by bisection: each try renders the piece."""
    pieces: list[str] = []
    while line and not fits(line):
        low, high = 1, len(line)  # the longest prefix that fits is in [low, high)
        while low + 1 < high:
            middle = (low + high) // 2
            if fits(line[:middle]):
                low = middle
            else:
                high = middle
        space = line.rfind(" ", 0, low + 1)
        cut = space if space > low // 2 else low
        pieces.append(line[:cut])
        line = line[cut:].lstrip(" ") if cut == space else line[cut:]
    return [*pieces, line] if line or not pieces else pieces


def thread_relation(thread: str, reply_to: str | None) -> dict[str, Any]:
    """In ``thread`` (its root's id), as a reply to ``reply_to``; without one, clients that show no threads
    see a reply to the root (``is_falling_back``), as the thread relation asks."""
    return {
        "rel_type": "m.thread",
        "event_id": thread,
        "is_falling_back": reply_to is None,
        "m.in_reply_to": {"event_id": reply_to or thread},
    }


def edit_content(original_event_id: str, content: Content) -> dict[str, Any]:
    """An ``m.replace`` edit of a message copbot sent: ``m.new_content`` is the whole new message (its
    ``m.mentions`` the final set, as the spec asks), the outer body a ``* `` fallback for clients without
    edits. The outer ``m.mentions`` lists the members to notify now — nobody: an updated count must not
    ping the members it names again."""
    new = message_content(content)
    return {
        "msgtype": new["msgtype"],
        "body": f"* {new['body']}",
        "format": HTML_FORMAT,
        "formatted_body": f"* {new['formatted_body']}",
        "m.new_content": new,
        "m.mentions": {},
        "m.relates_to": {"rel_type": "m.replace", "event_id": original_event_id},
    }


def answer_ids(spec: PollSpec) -> list[str]:
    """Stable, index-bearing answer ids; the adapter also stores them keyed by the poll's event id."""
    return [f"a{index}" for index in range(len(spec.answers))]


def poll_fallback(spec: PollSpec, intro: str = "") -> str:
    """What clients without polls show: the question and numbered answers."""
    lines = [intro] if intro else []
    lines.append(spec.question)
    lines += [f"{index}. {answer}" for index, answer in enumerate(spec.answers, start=1)]
    return "\n".join(lines)


def poll_start_content(spec: PollSpec, intro: str = "") -> dict[str, Any]:
    """An MSC3381 poll in its stable form plus the unstable keys older clients (and Element) read."""
    ids = answer_ids(spec)
    fallback = poll_fallback(spec, intro)
    disclosed = not spec.anonymous
    max_selections = len(spec.answers) if spec.multi else 1
    return {
        "m.poll": {
            "question": {"m.text": [{"body": spec.question}]},
            "kind": "m.disclosed" if disclosed else "m.undisclosed",
            "max_selections": max_selections,
            "answers": [
                {"m.id": answer_id, "m.text": [{"body": answer}]}
                for answer_id, answer in zip(ids, spec.answers, strict=True)
            ],
        },
        "m.text": [{"body": fallback}],
        POLL_START_UNSTABLE: {
            "question": {TEXT_UNSTABLE: spec.question},
            "kind": "org.matrix.msc3381.poll." + ("disclosed" if disclosed else "undisclosed"),
            "max_selections": max_selections,
            "answers": [
                {"id": answer_id, TEXT_UNSTABLE: answer}
                for answer_id, answer in zip(ids, spec.answers, strict=True)
            ],
        },
        TEXT_UNSTABLE: fallback,
        "body": fallback,
        "m.mentions": {},  # a poll mentions nobody: without this, an "@room" in its question pings the room
    }


def poll_end_content(poll_event_id: str, results: str) -> dict[str, Any]:
    """Closes a poll in clients that render polls; ``results`` is the text fallback."""
    return {
        "m.relates_to": {"rel_type": "m.reference", "event_id": poll_event_id},
        "m.text": [{"body": results}],
        "org.matrix.msc3381.poll.end": {},
        TEXT_UNSTABLE: results,
        "body": results,
        "m.mentions": {},
    }


def poll_selections(content: dict[str, Any]) -> list[str] | None:
    """The answer ids of a poll response, stable (``m.selections``) or unstable form; None if malformed."""
    selections = content.get("m.selections")
    if selections is None:
        unstable = content.get("org.matrix.msc3381.poll.response")
        selections = unstable.get("answers") if isinstance(unstable, dict) else None
    if not isinstance(selections, list) or not all(isinstance(item, str) for item in selections):
        return None
    return selections


def strip_reply_fallback(body: str) -> str:
    """Drop the quoted ``> <@user> …`` lines older clients put in front of a reply's body."""
    if not body.startswith("> "):
        return body
    lines = body.split("\n")
    index = 0
    while index < len(lines) and lines[index].startswith(">"):
        index += 1
    return "\n".join(lines[index:]).lstrip("\n")
