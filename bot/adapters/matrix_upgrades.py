"""Room upgrades on Matrix: when a community's room is upgraded, copbot follows it to its successor.

An upgrade (Element's "upgrade this room", or the homeserver's admin) makes a new room and ends the old one
with an ``m.room.tombstone`` naming the ``replacement_room``; members move over, and the old room usually
becomes read-only. copbot, on the tombstone of a room of a community it serves:

* joins the successor — at once where it may (a public room, or it is already invited), else on the invite
  that someone sends it later, whoever sends it (the tombstone vouches for the room);
* attaches it to the old room's community and lists its members;
* hands the core a :class:`RoomReplaced`, so plugins move what they keep in the old room (meetings are
  announced and reminded in the new one);
* sends what is still aimed at the old room (a digest configured by its id, a queued message) to the new one.

Which room replaced which is stored (the adapter's session state), so all of this holds after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bot.adapters.matrix_client import MatrixClient
from bot.adapters.matrix_events import event_time
from bot.adapters.matrix_http import call
from bot.adapters.matrix_rooms import RoomDirectory
from bot.adapters.matrix_session import SessionState
from bot.model import Room, RoomReplaced

log = logging.getLogger(__name__)

TOMBSTONE = "m.room.tombstone"
MAX_HOPS = 8
"""Upgrades followed from one room id to the newest (a room upgraded again and again, or a loop)."""


def replacement_of(source: Mapping[str, Any]) -> str | None:
    """The room a tombstone event names as its successor; None for any other event."""
    if source.get("type") != TOMBSTONE or source.get("state_key") != "":
        return None
    replacement = (source.get("content") or {}).get("replacement_room")
    return replacement if isinstance(replacement, str) and replacement.startswith("!") else None


def upgrade_event_id(old: str, new: str) -> str:
    """One id for the move from ``old`` to ``new``, however copbot came to join: handled once."""
    return f"upgrade:{old}:{new}"


class RoomUpgrades:
    """Which rooms replaced which, and following a tombstone (see the module's docstring)."""

    def __init__(
        self,
        client: MatrixClient,
        rooms: RoomDirectory,
        state: SessionState,
        *,
        platform: str,
        community_of: Callable[[str], str | None],
        serves_community: Callable[[str], bool],
        joined_community_room: Callable[[str, str], Awaitable[None]],
    ) -> None:
        """``community_of(room id)``: the slug of the community the room belongs to, if any;
        ``joined_community_room(room id, slug)``: attach a joined room to its community."""
        self.client = client
        self.rooms = rooms
        self.state = state
        self.platform = platform
        self._community_of = community_of
        self._serves_community = serves_community
        self._joined_community_room = joined_community_room
        self._successors: dict[str, str | None] = {}
        """Room id → the room that replaced it (None: none), as read or learnt in this run."""

    async def newest(self, room_id: str) -> str:
        """The room that now stands for ``room_id``: itself, or the last of the rooms that replaced it."""
        current = room_id
        for _ in range(MAX_HOPS):
            following = await self._successor(current)
            if following is None or following == room_id:
                break
            current = following
        return current

    async def _successor(self, room_id: str) -> str | None:
        if room_id not in self._successors:
            self._successors[room_id] = await self.state.get(f"successor:{room_id}")
        return self._successors[room_id]

    async def _record(self, old: str, new: str) -> None:
        self._successors[old] = new
        await self.state.put(f"successor:{old}", new)
        await self.state.put(f"predecessor:{new}", old)

    async def follow(self, room_id: str, source: Mapping[str, Any]) -> RoomReplaced | None:
        """A tombstone seen in ``room_id``: join and attach its successor, and say so to the core (None when
        the room is no community's of this process, or the successor cannot be joined yet)."""
        new = replacement_of(source)
        slug = self._community_of(room_id)
        if new is None or new == room_id or slug is None or self.rooms.is_direct(room_id):
            return None
        if not self._serves_community(slug):
            return None  # the process serving the community follows it
        await self._record(room_id, new)
        if new not in self.rooms.joined and not await self._join(new, source.get("sender")):
            return None
        await self._joined_community_room(new, slug)
        log.info("matrix: %s was upgraded; copbot follows community %s to %s", room_id, slug, new)
        return self.replaced(room_id, new, source)

    async def replaced_before(self, room_id: str) -> RoomReplaced | None:
        """A community's room copbot has just joined that had been upgraded before it came: the tombstone is
        history there (no sync hands it over), so it is read from the room's state and followed all the
        same. Asked only on joining, never at a restart."""
        answer = await call(
            lambda: self.client.state_event(room_id, TOMBSTONE), what=f"tombstone of {room_id}"
        )
        if not answer.ok:
            return None  # 404: never upgraded
        return await self.follow(room_id, {"type": TOMBSTONE, "state_key": "", "content": answer.body})

    async def community_for_invite(self, room_id: str) -> tuple[str, str] | None:
        """For an invite to a room that replaced one of a community's rooms: (old room, community slug)."""
        old = await self.state.get(f"predecessor:{room_id}")
        slug = self._community_of(old) if old is not None else None
        return (old, slug) if old is not None and slug is not None else None

    def replaced(self, old: str, new: str, source: Mapping[str, Any] | None = None) -> RoomReplaced:
        return RoomReplaced(
            event_id=upgrade_event_id(old, new),
            room=Room(self.platform, new),
            at=event_time(source or {}),
            previous=Room(self.platform, old),
        )

    async def _join(self, room_id: str, sender: object) -> bool:
        """Join the successor through the server of whoever upgraded (it is in the new room), else the one
        that made the room (a room id names it)."""
        named_by = sender if isinstance(sender, str) and ":" in sender else room_id
        server = named_by.split(":", 1)[1] if ":" in named_by else None
        answer = await call(lambda: self.client.join(room_id, via=server), what=f"join {room_id}")
        if not answer.ok:
            log.info(
                "matrix: could not join %s, the room that replaced a community's room, yet (%s %s); "
                "copbot joins it when invited",
                room_id,
                answer.status,
                answer.body.get("errcode", ""),
            )
            return False
        self.rooms.joined.add(room_id)
        return True
