"""Discord users as the core's members, and the members who came or went while copbot was down.

The gateway sends no joins or leaves for the time copbot was not connected, so at start each served
guild's member list is compared with the members recorded: a newcomer gets the welcome a live join would
have got, and whoever left is no longer counted. A join's event id is made of its guild, member and join
time (``stamp``) whichever way it is seen, so one seen live and found again at start is handled once.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

import discord

from bot import store
from bot.adapters.base import Dispatch
from bot.adapters.discord_events import utc
from bot.clock import Clock
from bot.db import Database
from bot.model import Member, MemberJoined, MemberLeft

if TYPE_CHECKING:
    from bot.adapters.discord_rooms import Rooms  # which imports this module's PLATFORM

log = logging.getLogger(__name__)

PLATFORM = "discord"
STATE_SCOPE = "discord"
"""copbot's own keys about Discord in the state table: commands synced, guilds reconciled."""


def member_of(user: discord.abc.User) -> Member:
    return Member(PLATFORM, str(user.id), user.display_name, user.bot)


def stamp(moment: datetime | None) -> str:
    """A join time as its event id has it, the same whether the join is seen live or at start."""
    return f"{moment.timestamp():.0f}" if moment else "unknown"


class MemberReconciler:
    """Catches up the joins and leaves of the served guilds once, when the gateway is first ready."""

    def __init__(
        self,
        client: discord.Client,
        db: Database,
        clock: Clock,
        rooms: Rooms,
    ) -> None:
        self.client = client
        self.db = db
        self.clock = clock
        self.rooms = rooms
        """The guilds' communities, those this process serves (another reconciles the rest) and where a
        guild's joins and leaves are announced."""

    async def reconcile(self, dispatch: Dispatch) -> None:
        """Members who joined while copbot was down get the same join handling; those who left are marked.

        The very first start only takes note of who is there: existing members are not newcomers.
        """
        now = self.clock.now()
        for guild_id, community in self.rooms.communities.items():
            if community.slug not in self.rooms.served:
                continue  # another process's
            guild = self.client.get_guild(int(guild_id))
            if guild is None:
                log.warning("discord: the bot is not in guild %s (community %s)", guild_id, community.slug)
                continue
            community_id = dispatch.community_id(community.slug)
            present = {str(m.id): m for m in guild.members if not m.bot}
            marker = f"reconciled:{guild_id}"
            async with self.db.session() as session:
                first = await store.get_state(session, STATE_SCOPE, marker) is None
                known = await store.current_members(session, community_id, PLATFORM)
                if first:
                    for member in present.values():
                        row = await store.ensure_member(session, member_of(member), now)
                        await store.join_community(
                            session,
                            community_id,
                            row.id or 0,
                            utc(member.joined_at) if member.joined_at else now,
                        )
                await store.put_state(session, STATE_SCOPE, marker, now.isoformat(), now)
            if first:
                continue
            room = self.rooms.of_guild(guild)
            if room is None:
                continue
            for user_id in sorted(set(present) - set(known)):
                member = present[user_id]
                await dispatch(
                    MemberJoined(
                        event_id=f"join:{guild_id}:{user_id}:{stamp(member.joined_at)}",
                        room=room,
                        at=utc(member.joined_at) if member.joined_at else now,
                        member=member_of(member),
                    )
                )
            for user_id in sorted(set(known) - set(present)):
                user = self.client.get_user(int(user_id))
                name = user.display_name if user else user_id
                await dispatch(
                    MemberLeft(
                        event_id=f"leave:{guild_id}:{user_id}:{now.timestamp():.0f}",
                        room=room,
                        at=now,
                        member=Member(PLATFORM, user_id, name),
                    )
                )
