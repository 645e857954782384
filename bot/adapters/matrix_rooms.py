"""What the Matrix adapter knows about rooms: which community a room belongs to, which rooms are direct
chats, and who holds which power level — the parts of room state the core's decisions depend on.

A process that resumes from a stored sync token has seen almost none of its rooms' state. So this module
asks the homeserver when it needs to (``/joined_rooms``,
``m.direct`` account data, the power-levels state event) and keeps the answers up to date from the
timeline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from bot.adapters.matrix_client import MatrixClient
from bot.adapters.matrix_http import RawResult, call, path
from bot.config import CommunityConfig

log = logging.getLogger(__name__)
MEMBER_CHECK_ROOMS = 200
CREATOR_POWER = 2**53
"""Above any power level a room can give: a room creator's, from room version 12 on."""


@dataclass(frozen=True, slots=True)
class Invite:
    """What the stripped state of an invite tells: who invited, and what kind of room it is."""

    room_id: str
    inviter: str | None
    encrypted: bool
    is_direct: bool
    aliases: tuple[str, ...]
    name: str

    @property
    def looks_direct(self) -> bool:
        """Flagged direct, or a room without name or alias, which is how clients open a direct chat."""
        return self.is_direct or (not self.name and not self.aliases)


def read_invite(room_id: str, own_id: str, state: list[Mapping[str, Any]]) -> Invite:
    """Summarise an invite from its stripped state events (raw JSON)."""
    inviter, encrypted, is_direct, name = None, False, False, ""
    aliases: list[str] = []
    for event in state:
        kind, content = event.get("type"), event.get("content") or {}
        # Synapse may strip the content of member events in invite state; the sender still says who invited.
        if kind == "m.room.member" and event.get("state_key") == own_id:
            if content.get("membership", "invite") == "invite":
                inviter = event.get("sender")
                is_direct = bool(content.get("is_direct"))
        elif kind == "m.room.encryption":
            encrypted = True
        elif kind == "m.room.canonical_alias":
            aliases += [
                a for a in [content.get("alias"), *(content.get("alt_aliases") or [])] if isinstance(a, str)
            ]
        elif kind == "m.room.name" and isinstance(content.get("name"), str):
            name = content["name"]
    return Invite(room_id, inviter, encrypted, is_direct, tuple(aliases), name)


def listed(entries: list[str], user_id: str) -> bool:
    """Config lists may name users as ``@ana:example.org`` or ``matrix:@ana:example.org``."""
    return user_id in entries or f"matrix:{user_id}" in entries


class RoomDirectory:
    """Joined rooms, direct rooms, configured rooms and power levels for one Matrix account."""

    def __init__(self, client: MatrixClient, communities: list[CommunityConfig]) -> None:
        self.client = client
        self.communities = [c for c in communities if c.matrix is not None]
        self.joined: set[str] = set()
        self.direct: dict[str, list[str]] = {}  # user id → direct room ids (the m.direct account data)
        self.configured: dict[str, str] = {}  # room id → community slug (configured rooms and spaces)
        self.spaces: dict[str, str] = {}  # space room id → community slug
        self._power: dict[str, dict[str, Any]] = {}
        self._creators: dict[str, frozenset[str]] = {}

    # --- loading ----------------------------------------------------------------------------------------

    async def load(self) -> None:
        """Joined rooms, m.direct, and configured aliases resolved to room ids.

        The requests are independent, so they are sent together: every start waits for them before its
        first sync, and one after the other they cost a round trip each. The answers are used in the same
        order as before; a request that failed for good raises as it did (the first in that order).
        """
        named: list[tuple[str, str, bool]] = []  # (room or alias, community slug, is a space)
        for community in self.communities:
            assert community.matrix is not None
            named += [(room, community.slug, False) for room in community.matrix.rooms]
            if community.matrix.space:
                named.append((community.matrix.space, community.slug, True))
        answers = await asyncio.gather(
            call(self.client.joined_rooms, what="joined_rooms"),
            call(lambda: self.client.account_data("m.direct"), what="m.direct"),
            *(self.resolve(room) for room, _, _ in named),
            return_exceptions=True,
        )
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        joined, direct, *room_ids = answers
        assert isinstance(joined, RawResult) and isinstance(direct, RawResult)
        rooms = joined.body.get("joined_rooms")
        if joined.ok and isinstance(rooms, list):
            self.joined = {room for room in rooms if isinstance(room, str)}
        if direct.ok:
            self.direct = {}
            self._merge_direct(direct.body)
        for (_, slug, is_space), room_id in zip(named, room_ids, strict=True):
            if isinstance(room_id, str):
                if is_space:
                    self.spaces[room_id] = slug
                self.configured[room_id] = slug

    async def resolve(self, room: str) -> str | None:
        """A room id as is; an alias resolved by the homeserver (None, logged, if it does not exist)."""
        if room.startswith("!"):
            return room
        answer = await call(lambda: self.client.resolve_alias(room), what=f"resolve {room}")
        room_id = answer.body.get("room_id")
        if answer.ok and isinstance(room_id, str):
            return room_id
        log.warning("matrix: the configured room alias %s does not resolve: %s", room, answer.body)
        return None

    # --- communities ------------------------------------------------------------------------------------

    async def community_for_invite(self, invite: Invite) -> str | None:
        """The community whose config covers the invited room or its inviter; None = decline."""
        if invite.room_id in self.configured:
            return self.configured[invite.room_id]
        for community in self.communities:
            assert community.matrix is not None
            if any(alias in community.matrix.rooms for alias in invite.aliases):
                return community.slug
            if community.matrix.space and community.matrix.space in invite.aliases:
                return community.slug
        for space_id, slug in self.spaces.items():
            if invite.room_id in await self.space_children(space_id):
                return slug
        for community in self.communities:
            assert community.matrix is not None
            if invite.inviter and listed(community.matrix.accept_invites_from, invite.inviter):
                return community.slug
        return None

    async def space_children(self, space_id: str) -> set[str]:
        """Rooms a space lists as children (``m.space.child`` with a non-empty ``via``)."""
        events = await call(lambda: self.client.room_state(space_id), what=f"state of {space_id}")
        return {
            event["state_key"]
            for event in events
            if event.get("type") == "m.space.child"
            and isinstance(event.get("state_key"), str)
            and (event.get("content") or {}).get("via")
        }

    async def shares_room_with(self, user_id: str) -> bool:
        """Whether ``user_id`` is in a (non-direct) room the bot is in: used to accept a member's DM invite.

        The homeserver is asked room by room (invites are rare; at most ``MEMBER_CHECK_ROOMS`` rooms): no
        member list is kept in memory for this, it would grow with every community's members.
        """
        rooms = [room_id for room_id in sorted(self.joined) if not self.is_direct(room_id)]
        for room_id in rooms[:MEMBER_CHECK_ROOMS]:
            answer = await call(partial(self.client.joined_members, room_id), what=f"members of {room_id}")
            if answer.ok and user_id in (answer.body.get("joined") or {}):
                return True
        return False

    # --- direct rooms -----------------------------------------------------------------------------------

    def is_direct(self, room_id: str) -> bool:
        return any(room_id in rooms for rooms in self.direct.values())

    def direct_room_for(self, user_id: str) -> str | None:
        """The newest direct room with ``user_id`` that the bot is still in."""
        for room_id in reversed(self.direct.get(user_id, [])):
            if room_id in self.joined:
                return room_id
        return None

    async def mark_direct(self, user_id: str, room_id: str) -> None:
        """Record a direct room in ``m.direct``, so the bot's other sessions (and a restart) see it.

        Other copbot processes on the same account write it too: what the homeserver has is read first
        and kept, so one process never drops another's direct rooms."""
        rooms = self.direct.setdefault(user_id, [])
        if room_id in rooms:
            return
        rooms.append(room_id)
        api_path = path("user", self.client.user_id, "account_data", "m.direct")
        stored = await call(lambda: self.client.request("GET", api_path), what="m.direct")
        if stored.ok:
            self._merge_direct(stored.body)
        result = await call(lambda: self.client.request("PUT", api_path, self.direct), what="m.direct")
        if not result.ok:
            log.warning("matrix: could not store m.direct: %s %s", result.status, result.body)

    def account_data(self, events: list[Mapping[str, Any]]) -> None:
        """The account's data from a sync: a new ``m.direct`` (another session or copbot process opened a
        direct chat) is taken in, so replies in that chat are known to be direct here too."""
        for event in events:
            if event.get("type") == "m.direct" and isinstance(event.get("content"), dict):
                self._merge_direct(event["content"])

    def _merge_direct(self, content: Mapping[str, Any]) -> None:
        for user, rooms in content.items():
            if isinstance(user, str) and isinstance(rooms, list):
                known = self.direct.setdefault(user, [])
                known += [room for room in rooms if isinstance(room, str) and room not in known]

    # --- power levels -----------------------------------------------------------------------------------

    async def power_level(self, room_id: str, user_id: str) -> int:
        """``user_id``'s power level in ``room_id``, from the room's current m.room.power_levels (a room
        creator's is unlimited from room version 12 on: they are not listed there)."""
        if user_id in await self.creators(room_id):
            return CREATOR_POWER
        return user_power(await self.power_levels(room_id), user_id)

    async def creators(self, room_id: str) -> frozenset[str]:
        """The room's creators where the room version gives them unlimited power (12 on), else nobody.

        Such a room's id is the hash of its m.room.create event, so the creator is read from that event;
        if it cannot be read (history hidden), from the room's whole state. Asked once per room.
        """
        if room_id in self._creators:
            return self._creators[room_id]
        create = await call(
            lambda: self.client.state_event(room_id, "m.room.create"), what=f"creation of {room_id}"
        )
        if not create.ok:
            log.warning("matrix: could not read how %s was created: %s", room_id, create.body)
            return frozenset()  # asked again next time
        content = create.body
        version = str(content.get("room_version", "1"))
        if not (version.isdigit() and int(version) >= 12):
            self._creators[room_id] = frozenset()
            return self._creators[room_id]
        event = await call(
            lambda: self.client.request("GET", path("rooms", room_id, "event", "$" + room_id[1:])),
            what=f"creation of {room_id}",
        )
        sender = event.body.get("sender") if event.ok else None
        if not isinstance(sender, str):
            events = await call(lambda: self.client.room_state(room_id), what=f"state of {room_id}")
            sender = next((e.get("sender") for e in events if e.get("type") == "m.room.create"), None)
        extra = content.get("additional_creators")
        listed = [sender, *(extra if isinstance(extra, list) else [])]
        found = frozenset(user for user in listed if isinstance(user, str))
        if not isinstance(sender, str):
            log.warning("matrix: could not read who created %s; its creators' power is not known", room_id)
            return found  # asked again next time
        self._creators[room_id] = found
        return found

    async def power_levels(self, room_id: str) -> dict[str, Any]:
        """The content of the room's m.room.power_levels, as cached (kept current from the timeline)."""
        levels = self._power.get(room_id)
        if levels is None:
            answer = await call(
                lambda: self.client.state_event(room_id, "m.room.power_levels"),
                what=f"power levels of {room_id}",
            )
            levels = answer.body if answer.ok else {}
            self._power[room_id] = levels
        return levels

    def power_levels_changed(self, room_id: str, content: dict[str, Any]) -> None:
        """A new m.room.power_levels event in the timeline replaces what is cached."""
        self._power[room_id] = content

    def left(self, room_id: str) -> None:
        self.joined.discard(room_id)
        self._power.pop(room_id, None)


def user_power(levels: Mapping[str, Any], user_id: str) -> int:
    """A user's power level in an m.room.power_levels content (the room's ``users_default`` if unlisted)."""
    users = levels.get("users") or {}
    try:
        return int(users.get(user_id, levels.get("users_default", 0)))
    except (TypeError, ValueError):
        return 0


def needed_for(levels: Mapping[str, Any], event_type: str) -> int:
    """The power level a state event of ``event_type`` needs in that room."""
    events = levels.get("events") or {}
    try:
        return int(events.get(event_type, levels.get("state_default", 50)))
    except (TypeError, ValueError):
        return 50


def needed_to_send(levels: Mapping[str, Any], event_type: str) -> int:
    """The power level a (non-state) event of ``event_type`` needs in that room: its own entry in
    ``events``, else ``events_default`` (Element's "Send messages")."""
    events = levels.get("events") or {}
    try:
        return int(events.get(event_type, levels.get("events_default", 0)))
    except (TypeError, ValueError):
        return 0
