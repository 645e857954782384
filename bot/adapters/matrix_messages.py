"""Matrix messages read back from the homeserver: one looked up again and linked to, which saving a
message (a 📌 reaction) needs, and the events a sync left out after downtime (``page_back``).

A reaction names only an event id, so the message is read back from the homeserver (``GET
/rooms/{room}/event/{event}``) as it is now: an edited message gives its latest text, a redacted one is
gone. Reading the event JSON here, apart from the adapter, keeps the rules testable without a homeserver.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from bot.adapters.matrix_client import MatrixClient
from bot.adapters.matrix_events import PLATFORM, NameOf, relation
from bot.adapters.matrix_http import MatrixUnavailable, call, path
from bot.adapters.matrix_render import strip_reply_fallback
from bot.adapters.matrix_roster import Roster
from bot.arguments import storable
from bot.model import Member, Message, Room

log = logging.getLogger(__name__)

TEXT_MSGTYPES = ("m.text", "m.notice")


async def fetch_message(
    client: MatrixClient, room: Room, event_id: str, *, own_id: str, roster: Roster
) -> Message | None:
    """The message ``event_id`` in ``room`` as it reads now, or None: not found, not readable by copbot,
    redacted, or not a text message (a reaction, a poll, a file).

    Its sender may have said nothing since copbot started: their name comes with their member event,
    which no sync has brought yet (a sync brings those of the senders of its events). It is asked of the
    room then — else their id's localpart would be shown, and stored over their name."""
    source = await _get_event(client, room.id, event_id)
    if source is None:
        return None
    replacement = await _replacement(client, room.id, source)
    sender = source.get("sender")
    if isinstance(sender, str) and sender != own_id and not roster.knows(room.id, sender):
        await _learn_name(client, roster, room.id, sender)
    name_of = functools.partial(roster.display_name, room.id)
    return message_of(source, room, own_id=own_id, name_of=name_of, replacement=replacement)


async def _learn_name(client: MatrixClient, roster: Roster, room_id: str, user_id: str) -> None:
    """The member's current member event in the room, read into the roster (nothing if it cannot be read:
    the localpart stands in)."""
    api_path = path("rooms", room_id, "state", "m.room.member", user_id)
    try:
        answer = await call(functools.partial(client.request, "GET", api_path), what="member event")
    except MatrixUnavailable:
        return
    if answer.ok and isinstance(answer.body, dict):
        roster.read(room_id, [{"type": "m.room.member", "state_key": user_id, "content": answer.body}])


def message_of(
    source: Mapping[str, Any],
    room: Room,
    *,
    own_id: str,
    name_of: NameOf,
    replacement: Mapping[str, Any] | None = None,
) -> Message | None:
    """A text message's event (and its latest edit, if any) → the core Message, else None.

    The text is the edit's ``m.new_content`` when there is one (an edit's own body is a ``* `` fallback),
    else the body without the quoted fallback a reply carries.
    """
    sender, event_id, content = source.get("sender"), source.get("event_id"), source.get("content")
    if not isinstance(sender, str) or not isinstance(event_id, str) or not isinstance(content, dict):
        return None
    if source.get("type") != "m.room.message" or _redacted(source):
        return None
    newest = _new_content(replacement, sender) or _new_content(source, sender)
    body = newest.get("body") if newest else content.get("body")
    msgtype = newest.get("msgtype") if newest else content.get("msgtype")
    if msgtype not in TEXT_MSGTYPES or not isinstance(body, str):
        return None
    if newest is None and "m.in_reply_to" in (content.get("m.relates_to") or {}):
        body = strip_reply_fallback(body)
    member = Member(PLATFORM, sender, name_of(sender), is_bot=sender == own_id)
    return Message(id=event_id, room=room, author=member, text=storable(body), raw=dict(source))


async def page_back(
    client: MatrixClient, room_id: str, start: str, since: str | None, *, limit: int, pages: int
) -> list[dict[str, Any]]:
    """The events a limited timeline left out, oldest first, from ``start`` back to ``since`` (the stored
    sync token): at most ``limit`` × ``pages`` of them.

    Raw JSON, a thousand events a page (the most Synapse gives): a hundred at a time, each event
    parsed into objects, made a catch-up of 10,000 events take minutes instead of seconds."""
    older: list[dict[str, Any]] = []
    for _ in range(pages):
        query = {"dir": "b", "from": start, "limit": str(limit)}
        if since:
            query["to"] = since
        api_path = path("rooms", room_id, "messages", query=query)
        answer = await call(
            functools.partial(client.request, "GET", api_path),
            what=f"messages of {room_id}",
        )
        if not answer.ok:
            log.warning("matrix: could not page back in %s: %s %s", room_id, answer.status, answer.body)
            break
        chunk = [event for event in answer.body.get("chunk") or [] if isinstance(event, dict)]
        older += chunk
        end = answer.body.get("end")
        if not chunk or not isinstance(end, str) or end == start:
            break
        start = end
    older.reverse()
    log.info("matrix: caught up %d earlier events in %s", len(older), room_id)
    return older


def permalink(room_id: str, event_id: str, via: str = "") -> str:
    """A matrix.to link to an event, each identifier percent-encoded as matrix.to asks (``!`` → ``%21``,
    ``$`` → ``%24``, ``:`` → ``%3A``); ``via`` names a server in the room, since a room id alone does
    not say where to find the room."""
    link = f"https://matrix.to/#/{quote(room_id, safe='')}/{quote(event_id, safe='')}"
    return f"{link}?via={quote(via, safe='')}" if via else link


async def _get_event(client: MatrixClient, room_id: str, event_id: str) -> dict[str, Any] | None:
    api_path = path("rooms", room_id, "event", event_id)
    answer = await call(lambda: client.request("GET", api_path), what="get event")
    if answer.ok:
        return answer.body
    if answer.status not in (400, 403, 404):  # 404 unknown, 403 not visible to copbot, 400 not an id
        log.warning("matrix: could not read %s in %s: %s %s", event_id, room_id, answer.status, answer.body)
    return None


async def _replacement(
    client: MatrixClient, room_id: str, source: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """The latest edit the homeserver aggregated under the event: given whole by current homeservers
    (MSC3925), by its id alone by older ones, which costs one more request."""
    relations = (source.get("unsigned") or {}).get("m.relations") or {}
    replace = relations.get("m.replace") if isinstance(relations, dict) else None
    if not isinstance(replace, dict):
        return None
    if isinstance(replace.get("content"), dict):
        return replace
    edit_id = replace.get("event_id")
    return await _get_event(client, room_id, edit_id) if isinstance(edit_id, str) else None


def _new_content(edit: Mapping[str, Any] | None, sender: str) -> dict[str, Any] | None:
    """An edit's ``m.new_content``, if ``edit`` is a live ``m.replace`` by the original's sender (clients
    ignore edits by anyone else)."""
    if edit is None or edit.get("sender") != sender or _redacted(edit):
        return None
    content = edit.get("content")
    if not isinstance(content, dict) or relation(content)[0] != "m.replace":
        return None
    new = content.get("m.new_content")
    return new if isinstance(new, dict) else None


def _redacted(source: Mapping[str, Any]) -> bool:
    return "redacted_because" in (source.get("unsigned") or {})
