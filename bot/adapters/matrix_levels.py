"""Participation levels on Matrix: a level's power level in the community's rooms, an invite to its room.

Only the member's entry of ``m.room.power_levels`` changes, and only where it differs: a level not listed
is the room's ``users_default`` (the entry removed). Power copbot could not have given — a room admin's
100, a level set by hand that no participation level has — is left as it is. Matrix lets copbot set
levels up to its own, for members below it; where it cannot, :class:`~bot.errors.RoleRefused` says what
to change in the room's settings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from bot.adapters.matrix_client import MatrixClient
from bot.adapters.matrix_http import MatrixSendError, RawResult, call, path
from bot.adapters.matrix_rooms import CREATOR_POWER, RoomDirectory, needed_for, user_power
from bot.adapters.matrix_roster import Roster
from bot.config import CommunityMatrixConfig, Level, is_level
from bot.errors import RoleRefused

log = logging.getLogger(__name__)


class LevelMirror:
    """Sets members' power levels and invites them to their level's room, for one Matrix account."""

    def __init__(self, client: MatrixClient, rooms: RoomDirectory, roster: Roster) -> None:
        self.client = client
        self.rooms = rooms
        self.roster = roster
        self._power_locks: dict[str, asyncio.Lock] = {}  # room id → one change of its power levels at a time
        self._level_rooms: dict[str, str] = {}  # a level room as configured → its room id

    async def set_level(
        self,
        config: CommunityMatrixConfig,
        room_ids: Iterable[str],
        user_id: str,
        level: str,
        *,
        repair: bool,
    ) -> bool:
        """The level's power level (``level_power_levels``) in each of the community's ``room_ids`` copbot
        is in, and an invite to the level's room (``level_rooms``) unless the member is there or was
        invited; whether the community mirrors the level at all.

        Refusals from several rooms are said together, so the operator fixes them in one go. ``repair``
        (the walk at start-up) does not invite again who left the level's room.
        """
        refusals: list[RoleRefused] = []
        for room_id in room_ids:
            if room_id not in self.rooms.joined or self.rooms.is_direct(room_id):
                continue
            try:
                await self.set_power(room_id, user_id, level, config.level_power_levels)
            except RoleRefused as refused:
                refusals.append(refused)
        room = config.level_rooms.get(level) if is_level(level) else None
        if room:
            try:
                await self.invite_to_level_room(room, user_id, level, repair=repair)
            except RoleRefused as refused:
                refusals.append(refused)
        if refusals:
            raise RoleRefused(
                "; ".join(r.message for r in refusals), role=", ".join(r.role for r in refusals)
            )
        return level in config.level_power_levels or level in config.level_rooms

    async def set_power(self, room_id: str, user_id: str, level: str, powers: Mapping[Level, int]) -> None:
        """Send the room's power levels with ``user_id``'s entry changed, if the level calls for it."""
        own_id = self.client.user_id
        creators = await self.rooms.creators(room_id)
        if user_id in creators:
            return  # a creator's power is unlimited (room version 12 on): no level adds to it
        async with self._power_locks.setdefault(room_id, asyncio.Lock()):
            if power_change(await self.rooms.power_levels(room_id), user_id, level, powers) is None:
                return  # as the timeline keeps it, the room already shows the level: nothing is asked
            levels = await self._fresh_power_levels(room_id)  # never build on a stale copy
            change = power_change(levels, user_id, level, powers)
            if change is None:
                return
            current, target = change
            own = CREATOR_POWER if own_id in creators else user_power(levels, own_id)
            needed = needed_for(levels, "m.room.power_levels")
            if own < needed or own <= current or own < target:
                raise RoleRefused(
                    f"matrix: copbot's power level in {self._room_label(room_id)} is {own}; to set "
                    f"{user_id}'s power level to {target} ({level}) it needs at least "
                    f"{max(needed, current + 1, target)} — raise copbot's power level in the room's "
                    "settings (Roles & Permissions)",
                    role=f"{room_id} {level}",
                )
            users = dict(levels.get("users") or {})
            if is_level(level) and level in powers:
                users[user_id] = powers[level]
            else:
                users.pop(user_id, None)  # the room's users_default
            content = {**levels, "users": users}
            answer = await call(
                lambda: self.client.put_state(room_id, "m.room.power_levels", content),
                what=f"power levels of {room_id}",
            )
            if not answer.ok:
                if answer.errcode == "M_FORBIDDEN":
                    raise RoleRefused(
                        f"matrix: the homeserver refused copbot's change of the power levels in "
                        f"{self._room_label(room_id)} ({said(answer)}); raise copbot's power level there",
                        role=f"{room_id} {level}",
                    )
                raise MatrixSendError(f"could not change the power levels in {room_id}: {said(answer)}")
            self.rooms.power_levels_changed(room_id, content)
            log.info("matrix: %s is now at power level %d in %s (%s)", user_id, target, room_id, level)

    async def _fresh_power_levels(self, room_id: str) -> dict[str, Any]:
        answer = await call(
            lambda: self.client.state_event(room_id, "m.room.power_levels"),
            what=f"power levels of {room_id}",
        )
        if not answer.ok:
            raise MatrixSendError(f"could not read the power levels of {room_id}: {said(answer)}")
        content = answer.body
        self.rooms.power_levels_changed(room_id, content)
        return content

    async def invite_to_level_room(self, room: str, user_id: str, level: str, *, repair: bool) -> None:
        """Invite a member to their level's room, unless they are in it, invited or banned (or, when
        repairing, left it: they chose to)."""
        room_id = self._level_rooms.get(room) or await self.rooms.resolve(room)
        if room_id is None:
            raise RoleRefused(f"matrix: the {level} room {room} (level_rooms) does not exist", role=room)
        self._level_rooms[room] = room_id
        if room_id not in self.rooms.joined:
            raise RoleRefused(
                f"matrix: copbot is not in the {level} room {room}, so it cannot invite members there; "
                "invite copbot to it (or list it in rooms)",
                role=room,
            )
        membership = await self._membership(room_id, user_id)
        if membership in ("join", "invite", "ban") or (repair and membership == "leave"):
            return
        answer = await call(lambda: self.client.invite(room_id, user_id), what=f"invite to {room_id}")
        if not answer.ok:
            if answer.errcode == "M_FORBIDDEN":
                raise RoleRefused(
                    f"matrix: copbot may not invite members to the {level} room {room} ({said(answer)}); "
                    "give it the power level to invite there",
                    role=room,
                )
            raise MatrixSendError(f"could not invite {user_id} to {room_id}: {said(answer)}")
        log.info("matrix: invited %s to the %s room %s", user_id, level, room_id)

    async def _membership(self, room_id: str, user_id: str) -> str | None:
        """A user's membership of a room ("join", "invite", "leave"…), None if they never were in it."""
        api_path = path("rooms", room_id, "state", "m.room.member", user_id)
        answer = await call(lambda: self.client.request("GET", api_path), what="membership")
        membership = answer.body.get("membership") if answer.ok else None
        return membership if isinstance(membership, str) else None

    def _room_label(self, room_id: str) -> str:
        """The room's id, after its name where it has one (m.room.name), for messages to the operator."""
        name = self.roster.room_name(room_id)
        return f"{room_id} ({name})" if name else room_id


def said(answer: RawResult) -> str:
    """What the homeserver said, as a Matrix client shows it: ``M_FORBIDDEN: You don't have permission``."""
    return f"{answer.errcode or answer.status}: {answer.body.get('error', '')}".rstrip(": ")


def power_change(
    levels: Mapping[str, Any], user_id: str, level: str, powers: Mapping[Level, int]
) -> tuple[int, int] | None:
    """(current, wanted) power of a member whose level calls for a change copbot may make, else None.

    A power that is neither the room's default nor one a level gives was given by hand (a room admin, a
    moderator at 75): it is not copbot's to move.
    """
    current = user_power(levels, user_id)
    default = user_power({"users_default": levels.get("users_default", 0)}, "")
    wanted = powers.get(level, default) if is_level(level) else default
    if current == wanted or (current != default and current not in powers.values()):
        return None
    return current, wanted
