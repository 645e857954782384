"""Matrix timeline events (their raw JSON) → core events, as pure functions.

Working on the raw event JSON (``event.source``) instead of nio's classes keeps this independent of which
event types a given nio version knows: polls, for one, arrive as ``UnknownEvent``.

A message's text and a display name are stored (a 📌 saves a message, a member's row keeps their name), so
both are made storable here (:func:`bot.arguments.storable`): Synapse takes a NUL in either, PostgreSQL
refuses one in text, and every command of a member named so failed. A display name is also cut to what a
member's row keeps (:data:`NAME_LIMIT`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from bot import escaping
from bot.adapters.matrix_render import POLL_RESPONSE_TYPES, poll_selections, strip_reply_fallback
from bot.arguments import storable
from bot.model import (
    Event,
    Member,
    MemberJoined,
    MemberLeft,
    MemberRenamed,
    Message,
    MessageCreated,
    PollVoted,
    ReactionAdded,
    Room,
)

PLATFORM = "matrix"
NAME_LIMIT = 255
"""Characters of a display name a member's row keeps; Synapse allows 256, and PostgreSQL refuses more."""
_PILL = re.compile(r'<a href="https://matrix\.to/#/(@[^"]+)">([^<]+)</a>')
NameOf = Callable[[str], str]


def event_time(source: Mapping[str, Any]) -> datetime:
    """When the homeserver received the event (``origin_server_ts``, ms), in UTC."""
    stamp = source.get("origin_server_ts")
    if not isinstance(stamp, int | float):
        return datetime.now(UTC)
    return datetime.fromtimestamp(stamp / 1000, tz=UTC)


def relation(content: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(rel_type, event_id)`` of ``m.relates_to``, or ``(None, None)``."""
    relates = content.get("m.relates_to")
    if not isinstance(relates, dict):
        return None, None
    return relates.get("rel_type"), relates.get("event_id")


def poll_target(source: Mapping[str, Any]) -> str | None:
    """The poll a poll response refers to, if ``source`` is a poll response."""
    if source.get("type") not in POLL_RESPONSE_TYPES:
        return None
    rel_type, event_id = relation(source.get("content") or {})
    return event_id if rel_type == "m.reference" else None


def translate(
    source: Mapping[str, Any],
    room: Room,
    *,
    own_id: str,
    name_of: NameOf,
    poll_answers: Mapping[str, list[str]],
) -> Event | None:
    """The core event for one timeline event, or None for what the core does not see.

    Ignored on purpose: copbot's own events; ``m.notice`` (other bots: answering them could loop);
    edits (``m.replace``), so that correcting a typo never runs a command twice; redactions and redacted
    events; membership changes that are not a join, a leave or a new display name (avatars, invites).
    """
    sender = source.get("sender")
    event_id = source.get("event_id")
    content = source.get("content")
    if not isinstance(sender, str) or not isinstance(event_id, str) or not isinstance(content, dict):
        return None
    kind = source.get("type")
    at = event_time(source)
    if kind == "m.room.member":
        return _membership(source, content, room, own_id=own_id, name_of=name_of, at=at)
    if sender == own_id or "redacted_because" in (source.get("unsigned") or {}):
        return None
    member = Member(PLATFORM, sender, name_of(sender))
    if kind == "m.room.message":
        rel_type, _ = relation(content)
        body = content.get("body")
        if content.get("msgtype") != "m.text" or rel_type == "m.replace":
            return None
        if not isinstance(body, str):
            return None
        if "m.in_reply_to" in (content.get("m.relates_to") or {}):
            body = strip_reply_fallback(body)
        message = Message(id=event_id, room=room, author=member, text=storable(body), raw=source)
        return MessageCreated(event_id=event_id, room=room, at=at, message=message)
    if kind == "m.reaction":
        relates = content.get("m.relates_to") or {}
        target, key = relates.get("event_id"), relates.get("key")
        if (
            relates.get("rel_type") != "m.annotation"
            or not isinstance(target, str)
            or not isinstance(key, str)
        ):
            return None
        return ReactionAdded(event_id=event_id, room=room, at=at, member=member, message_id=target, emoji=key)
    if kind in POLL_RESPONSE_TYPES:
        return _poll_vote(source, content, room, member, at, poll_answers)
    return None


def _membership(
    source: Mapping[str, Any],
    content: Mapping[str, Any],
    room: Room,
    *,
    own_id: str,
    name_of: NameOf,
    at: datetime,
) -> Event | None:
    user = source.get("state_key")
    if not isinstance(user, str) or user == own_id:
        return None
    membership = content.get("membership")
    before = (source.get("unsigned") or {}).get("prev_content") or {}
    previous = before.get("membership")
    name = storable_name(content["displayname"]) if isinstance(content.get("displayname"), str) else None
    member = Member(PLATFORM, user, name or name_of(user))
    if membership == "join" and previous != "join":
        return MemberJoined(event_id=source["event_id"], room=room, at=at, member=member)
    if membership in ("leave", "ban") and previous == "join":
        return MemberLeft(event_id=source["event_id"], room=room, at=at, member=member)
    if (
        membership == "join"
        and previous == "join"
        and before.get("displayname") != content.get("displayname")
    ):
        return MemberRenamed(event_id=source["event_id"], room=room, at=at, member=member)
    return None


def _poll_vote(
    source: Mapping[str, Any],
    content: Mapping[str, Any],
    room: Room,
    member: Member,
    at: datetime,
    poll_answers: Mapping[str, list[str]],
) -> Event | None:
    """A vote on a poll copbot sent; answer ids become the 0-based indexes the core uses.

    A response to someone else's poll, or naming an answer the poll does not have, is not a vote here.
    """
    target = poll_target(source)
    selections = poll_selections(dict(content))
    ids = poll_answers.get(target or "")
    if target is None or selections is None or ids is None:
        return None
    if any(selection not in ids for selection in selections):
        return None
    answers = tuple(ids.index(selection) for selection in dict.fromkeys(selections))
    return PollVoted(
        event_id=source["event_id"], room=room, at=at, member=member, poll_message_id=target, answers=answers
    )


def localpart(user_id: str) -> str:
    """``@ana:example.org`` → ``ana``: the name to show when no display name is known."""
    return user_id.removeprefix("@").split(":", 1)[0]


def display_name(member_event: Mapping[str, Any]) -> str:
    """The name a member event gives, else the localpart of its user id."""
    name = (member_event.get("content") or {}).get("displayname")
    stored = storable_name(name) if isinstance(name, str) else ""
    return stored or localpart(str(member_event.get("state_key")))


def storable_name(name: str) -> str:
    """A display name as a member's row can keep it (see the module's docstring)."""
    return storable(name)[:NAME_LIMIT]


def own_join_index(events: list[dict[str, Any]], user_id: str) -> int | None:
    """Where the bot's own join is in a timeline (the last one), if it is there."""
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if (
            event.get("type") == "m.room.member"
            and event.get("state_key") == user_id
            and (event.get("content") or {}).get("membership") == "join"
            and ((event.get("unsigned") or {}).get("prev_content") or {}).get("membership") != "join"
        ):
            return index
    return None


def with_pill_ids(source: Mapping[str, Any]) -> Mapping[str, Any]:
    """Put Matrix ids where a client's pills showed names, so ``!profile @Ana`` names the right member.

    Element writes a mention as ``Ana`` in the body and a matrix.to link in the HTML body.
    """
    content = source.get("content")
    if not isinstance(content, dict) or not isinstance(content.get("formatted_body"), str):
        return source
    body = content.get("body")
    if not isinstance(body, str):
        return source
    for user_id, escaped in _PILL.findall(content["formatted_body"]):
        name = escaping.unescape(escaped)
        if name != user_id and name:
            body = _name_to_id(body, name, user_id)
    if body == content.get("body"):
        return source
    return {**source, "content": {**content, "body": body}}


def _name_to_id(body: str, name: str, user_id: str) -> str:
    """The pill's name, where it stands as a word of its own, becomes the id: a short name such as "ed" or
    "set" must not be taken from inside a word or a command ("!meeting attended 3 ed")."""
    alone = re.search(rf"(?<!\w){re.escape(name)}(?!\w)", body)
    return body if alone is None else body[: alone.start()] + user_id + body[alone.end() :]
