"""Invites on Matrix: copbot joins rooms of the communities it serves, says why it cannot stay in an
encrypted room, takes direct chats from members of its communities, and politely declines the rest.

With several processes on the account, each sees every invite: the one serving the room's community joins
it, and the one answering direct messages takes direct chats and answers the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.adapters.matrix_client import MatrixClient
from bot.adapters.matrix_http import call, path
from bot.adapters.matrix_render import message_content
from bot.adapters.matrix_rooms import Invite, RoomDirectory, read_invite
from bot.adapters.matrix_sending import Sender
from bot.model import Content

log = logging.getLogger(__name__)

ENCRYPTED_NOT_SUPPORTED = (
    "Sorry, I can't work in encrypted rooms yet: I would not be able to read your messages. "
    "Please invite me to an unencrypted room instead."
)
DECLINE_REASON = (
    "copbot only joins rooms of the communities it serves. Ask a coordinator to add this room to its "
    "configuration."
)

DIRECT_CHAT_CLOSED = "the member left this direct chat; copbot opens a new one when it next writes to them"


class InviteAnswerer:
    """Answers the invites a sync brings, each once even if the next sync brings it again meanwhile."""

    def __init__(
        self,
        client: MatrixClient,
        rooms: RoomDirectory,
        sender: Sender,
        *,
        direct_messages: bool,
        serves_community: Callable[[str], bool],
        joined_community_room: Callable[[str, str], Awaitable[None]],
        left: Callable[[str], None],
        successor_community: Callable[[str], Awaitable[str | None]],
    ) -> None:
        """``serves_community(slug)``: whether this process serves it; ``joined_community_room(room id,
        slug)``: what follows joining a community's room; ``left(room id)``: forget a room left;
        ``successor_community(room id)``: the community of the room it replaced, if it replaced one."""
        self.client = client
        self.rooms = rooms
        self.sender = sender
        self.direct_messages = direct_messages
        self._serves_community = serves_community
        self._joined_community_room = joined_community_room
        self._left = left
        self._successor_community = successor_community
        self._in_progress: set[str] = set()

    async def answer(self, sync: dict[str, Any]) -> None:
        """Every invite of a sync answer (raw JSON)."""
        for room_id, info in ((sync.get("rooms") or {}).get("invite") or {}).items():
            if room_id in self._in_progress or room_id in self.rooms.joined:
                continue
            self._in_progress.add(room_id)
            try:
                states = list((info.get("invite_state") or {}).get("events") or [])
                await self._answer(read_invite(room_id, self.client.user_id, states))
            except Exception:
                log.exception("matrix: could not answer the invite to %s", room_id)
            finally:
                self._in_progress.discard(room_id)

    async def _answer(self, invite: Invite) -> None:
        if invite.encrypted:
            if not self.direct_messages:
                return
            if await self._join(invite.room_id):
                await self.sender.event(
                    invite.room_id, "m.room.message", message_content(Content(ENCRYPTED_NOT_SUPPORTED))
                )
                await self.leave(invite.room_id, "encrypted rooms are not supported yet")
            return
        # the room that replaced a community's room is that community's, whoever invites to it
        slug = await self._successor_community(invite.room_id)
        slug = slug or await self.rooms.community_for_invite(invite)
        if slug is not None:
            if not self._serves_community(slug):
                return  # the process serving that community joins it
            if await self._join(invite.room_id):
                await self._joined_community_room(invite.room_id, slug)
                log.info(
                    "matrix: joined %s for community %s (invited by %s)", invite.room_id, slug, invite.inviter
                )
            return
        if not self.direct_messages:
            return
        if invite.inviter and invite.looks_direct and await self.rooms.shares_room_with(invite.inviter):
            await self._accept_direct(invite.room_id, invite.inviter)
            return
        log.info("matrix: declining the invite to %s from %s", invite.room_id, invite.inviter)
        await self.leave(invite.room_id, DECLINE_REASON)

    async def _accept_direct(self, room_id: str, inviter: str) -> None:
        """A member of a community room opens a chat with the bot: joined, and kept as a direct room if
        it is just the two of them (Synapse may strip ``is_direct`` from the invite, so look)."""
        if not await self._join(room_id):
            return
        members = await call(lambda: self.client.joined_members(room_id), what="joined members")
        if members.ok and len(members.body.get("joined") or {}) <= 2:
            await self.rooms.mark_direct(inviter, room_id)
            return
        await self.leave(room_id, DECLINE_REASON)

    async def _join(self, room_id: str) -> bool:
        answer = await call(lambda: self.client.join(room_id), what=f"join {room_id}")
        if not answer.ok:
            log.warning("matrix: could not join %s: %s", room_id, answer.body)
            return False
        self.rooms.joined.add(room_id)
        return True

    async def leave(self, room_id: str, reason: str) -> None:
        """Leave a room, or decline an invite, telling the inviter why (the reason shows in their client)."""
        api_path = path("rooms", room_id, "leave")
        result = await call(lambda: self.client.request("POST", api_path, {"reason": reason}), what="leave")
        if not result.ok:
            log.warning("matrix: could not leave %s: %s %s", room_id, result.status, result.body)
        self._left(room_id)
