"""What members do on Discord, from the gateway, as the core's events: messages and their deletion, joins
and leaves, new names, reactions and poll votes. (The connection's own events — ready, resumed,
disconnected — are the adapter's; clicks and slash commands are ``discord_interactions``'; "Interested" in a
meeting is ``discord_events``'.)

Event ids are what makes a second delivery of the same thing (a resumed session replaying what it sent
before) handled once: a message's id, a join's guild, member and join time (``stamp``). A reaction has no
id of its own, and the same member may give the same emoji again after taking it back (✅, then ❌, then ✅
once more: coming after all), which is a new answer, not a second delivery of the first: its id carries
the moment it arrived, as a poll vote's does. (A resumed session replays only what it had not received.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Literal

import discord

from bot.adapters.discord_events import utc
from bot.adapters.discord_members import member_of, stamp
from bot.adapters.discord_rooms import Rooms
from bot.clock import Clock
from bot.model import (
    Event,
    MemberJoined,
    MemberLeft,
    MemberRenamed,
    Message,
    MessageCreated,
    MessageDeleted,
    PollVoted,
    ReactionAdded,
    ReactionRemoved,
)

Emit = Callable[[Event], Awaitable[None]]

_SPOKEN = (discord.MessageType.default, discord.MessageType.reply)
"""What members type; not "pinned a message", "joined the server", …"""


class MemberEvents:
    """Registers the gateway handlers that turn what members do into core events, for ``emit``."""

    def __init__(self, client: discord.Client, rooms: Rooms, clock: Clock, emit: Emit) -> None:
        self.client = client
        self.rooms = rooms
        self.clock = clock
        self.emit = emit

    def register(self) -> None:
        client = self.client
        client.event(self.on_message)
        client.event(self.on_raw_message_delete)
        client.event(self.on_raw_bulk_message_delete)
        client.event(self.on_member_join)
        client.event(self.on_raw_member_remove)
        client.event(self.on_member_update)
        client.event(self.on_user_update)
        client.event(self.on_raw_reaction_add)
        client.event(self.on_raw_reaction_remove)
        client.event(self.on_raw_poll_vote_add)
        client.event(self.on_raw_poll_vote_remove)

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.type not in _SPOKEN:
            return
        room = self.rooms.of(message.channel, message.author.id)
        if room is None:
            return
        core = Message(str(message.id), room, member_of(message.author), message.content, raw=message)
        await self.emit(
            MessageCreated(
                event_id=f"message:{message.id}", room=room, at=utc(message.created_at), message=core
            )
        )

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        await self._deleted(payload.channel_id, payload.guild_id, (payload.message_id,))

    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        await self._deleted(payload.channel_id, payload.guild_id, sorted(payload.message_ids))

    async def _deleted(self, channel_id: int, guild_id: int | None, message_ids: Iterable[int]) -> None:
        """Messages deleted (raw events: discord.py's cache holds few of them, and none from before a
        restart), each a ``MessageDeleted``; a message is deleted once, so its id is the event's."""
        room = self.rooms.of_id(channel_id, guild_id)
        if room is None:
            return
        now = self.clock.now()
        for message_id in message_ids:
            await self.emit(
                MessageDeleted(event_id=f"delete:{message_id}", room=room, at=now, message_id=str(message_id))
            )

    async def on_member_join(self, member: discord.Member) -> None:
        if member.bot:
            return
        room = self.rooms.of_guild(member.guild)
        if room is not None:
            await self.emit(
                MemberJoined(
                    event_id=f"join:{member.guild.id}:{member.id}:{stamp(member.joined_at)}",
                    room=room,
                    at=utc(member.joined_at) if member.joined_at else self.clock.now(),
                    member=member_of(member),
                )
            )

    async def on_raw_member_remove(self, payload: discord.RawMemberRemoveEvent) -> None:
        guild = self.client.get_guild(payload.guild_id)
        room = self.rooms.of_guild(guild) if guild else None
        if room is not None and not payload.user.bot:
            now = self.clock.now()
            await self.emit(
                MemberLeft(
                    event_id=f"leave:{payload.guild_id}:{payload.user.id}:{now.timestamp():.0f}",
                    room=room,
                    at=now,
                    member=member_of(payload.user),
                )
            )

    async def on_member_update(self, before: discord.Member, after: discord.Member) -> None:
        """A server nickname set, changed or cleared: the name this guild shows for the member."""
        if before.nick != after.nick and not after.bot:
            await self._renamed(after)

    async def on_user_update(self, before: discord.User, after: discord.User) -> None:
        """An account's display name or username changed (Discord sends it in GUILD_MEMBER_UPDATE, and
        discord.py reports it here once, the user being shared by all guilds): the name each served guild
        shows for the member, which stays their nickname where they have one."""
        if after.bot or (before.global_name, before.name) == (after.global_name, after.name):
            return
        for guild in self.client.guilds:
            member = guild.get_member(after.id)
            if member is not None:
                await self._renamed(member)

    async def _renamed(self, member: discord.Member) -> None:
        """``MemberRenamed`` in the member's guild: the stored name kept current at once (lists, credits,
        the digest), without waiting for the member to act; no join and no activity."""
        room = self.rooms.of_guild(member.guild)
        if room is None:
            return
        now = self.clock.now()
        await self.emit(
            MemberRenamed(
                event_id=f"rename:{member.guild.id}:{member.id}:{now.timestamp()}",
                room=room,
                at=now,
                member=member_of(member),
            )
        )

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self._reaction(payload, ReactionAdded, "reaction")

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        await self._reaction(payload, ReactionRemoved, "unreaction")

    async def _reaction(
        self,
        payload: discord.RawReactionActionEvent,
        kind: type[ReactionAdded] | type[ReactionRemoved],
        prefix: str,
    ) -> None:
        """A reaction given or taken back. Its id carries when it arrived: Discord's reaction events have
        none of their own, and one given again after being taken back is news again. A removal comes
        without a member: the user as discord.py has them cached (the served guilds' members are), else
        nothing — a name made up would be stored; in a direct chat (never a member there) one not cached
        is looked up."""
        client = self.client
        if client.user is not None and payload.user_id == client.user.id:
            return
        room = self.rooms.of_id(payload.channel_id, payload.guild_id, payload.user_id)
        if room is None:
            return
        user = payload.member or client.get_user(payload.user_id)
        if user is None and room.is_direct:
            try:
                user = await client.fetch_user(payload.user_id)
            except discord.NotFound:
                return
        if user is None or user.bot:
            return
        now = self.clock.now()
        await self.emit(
            kind(
                event_id=f"{prefix}:{payload.message_id}:{payload.user_id}:{payload.emoji}:{now.timestamp()}",
                room=room,
                at=now,
                member=member_of(user),
                message_id=str(payload.message_id),
                emoji=str(payload.emoji),
            )
        )

    async def on_raw_poll_vote_add(self, payload: discord.RawPollVoteActionEvent) -> None:
        await self._poll_vote(payload, "add")

    async def on_raw_poll_vote_remove(self, payload: discord.RawPollVoteActionEvent) -> None:
        await self._poll_vote(payload, "remove")

    async def _poll_vote(
        self, payload: discord.RawPollVoteActionEvent, mode: Literal["add", "remove"]
    ) -> None:
        """Discord reports each answer added or removed on its own; the core gets them as they come."""
        channel = self.client.get_channel(payload.channel_id)
        room = self.rooms.of_id(payload.channel_id, payload.guild_id, payload.user_id)
        if room is None:
            return
        # The payload carries the voter's id alone: a member discord.py has not cached (no members intent,
        # a large guild) is looked up, or their vote would be lost.
        guild = getattr(channel, "guild", None)
        cached = (guild.get_member(payload.user_id) if guild else None) or self.client.get_user(
            payload.user_id
        )
        try:
            user = cached or await self.client.fetch_user(payload.user_id)
        except discord.NotFound:
            return
        if user.bot:
            return
        now = self.clock.now()
        await self.emit(
            PollVoted(
                event_id=f"poll{mode}:{payload.message_id}:{payload.user_id}:{payload.answer_id}:{now.timestamp()}",
                room=room,
                at=now,
                member=member_of(user),
                poll_message_id=str(payload.message_id),
                answers=(payload.answer_id - 1,),  # Discord numbers answers from 1, in order
                mode=mode,
            )
        )
