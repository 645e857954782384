"""Meetings as Discord guild scheduled events: created, moved and cancelled with the meeting
(``ScheduledEvents``), and members marking one "Interested" or un-marking it (``InterestWatcher``).

The meeting, not the Discord event, is the truth: an update sends everything the meeting decides, and an
event someone turned into a voice-channel event becomes an external one with a location again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import discord

from bot.clock import Clock
from bot.model import Event, EventInterest, Member, Room

if TYPE_CHECKING:
    from bot.adapters.discord_rooms import Rooms

log = logging.getLogger(__name__)


class ScheduledEvents:
    """A meeting's event in the guild of its room (else of its community), for one Discord client."""

    def __init__(self, client: discord.Client, rooms: Rooms) -> None:
        self.client = client
        self.rooms = rooms

    async def create(
        self, room: Room, *, title: str, start: datetime, end: datetime, where: str, description: str = ""
    ) -> str:
        event = await self._guild(room).create_scheduled_event(
            name=title[:100],
            start_time=start,
            end_time=end,
            entity_type=discord.EntityType.external,
            privacy_level=discord.PrivacyLevel.guild_only,
            location=(where or "online")[:100],
            description=description[:1000],
        )
        return str(event.id)

    async def update(
        self,
        room: Room,
        event_id: str,
        *,
        title: str,
        start: datetime,
        end: datetime,
        where: str,
        description: str = "",
    ) -> None:
        """Everything a meeting decides, in one PATCH (a moved meeting, a series' next occurrence)."""
        await self.client.http.edit_scheduled_event(
            self._guild(room).id,
            int(event_id),
            name=title[:100],
            scheduled_start_time=utc(start).isoformat(),
            scheduled_end_time=utc(end).isoformat(),
            entity_type=discord.EntityType.external.value,
            channel_id=None,
            entity_metadata={"location": (where or "online")[:100]},
            description=description[:1000],
        )

    async def cancel(self, room: Room, event_id: str) -> None:
        """Delete the event; one already gone (deleted by a moderator, or a cancel repeated) is fine."""
        try:
            await self.client.http.delete_scheduled_event(self._guild(room).id, int(event_id))
        except discord.NotFound:
            log.debug("discord: scheduled event %s was already gone", event_id)

    def _guild(self, room: Room) -> discord.Guild:
        """The room's guild, else its community's (a meeting's channel may have been deleted since)."""
        guild = getattr(self.client.get_channel(int(room.id)) if room.id.isdigit() else None, "guild", None)
        if guild is None:
            guild_id = self.rooms.guild_id(room.community_id)
            guild = self.client.get_guild(int(guild_id)) if guild_id else None
        if guild is None:
            raise ValueError(f"room {room.id} is in no guild copbot serves")
        return guild


class InterestWatcher:
    """Members marking a meeting's event "Interested" (or no longer) → ``EventInterest`` for the core."""

    def __init__(
        self,
        client: discord.Client,
        clock: Clock,
        *,
        guild_room: Callable[[discord.Guild | None], Room | None],
        member: Callable[[discord.abc.User], Member],
        emit: Callable[[Event], Awaitable[None]],
    ) -> None:
        self.client = client
        self.clock = clock
        self.guild_room = guild_room
        """The room an interest is delivered in: a scheduled event belongs to a guild, not a channel."""
        self.member = member
        self.emit = emit

    def watch(self) -> None:
        """Read "Interested" / un-marked straight from the gateway payload.

        discord.py 2.7 has no raw event for GUILD_SCHEDULED_EVENT_USER_ADD/REMOVE: its
        ``on_scheduled_event_user_add`` fires only when both the event and the user are in its cache, and
        drops the rest at debug level — a member not in the cache (no members intent, a large guild) would
        lose their RSVP. So each parser is wrapped: discord.py still updates its cache, then the payload is
        dispatched as ``copbot_event_interest`` (run like any event handler, errors going to ``on_error``).
        """
        parsers = self.client._connection.parsers
        for name, interested in (
            ("GUILD_SCHEDULED_EVENT_USER_ADD", True),
            ("GUILD_SCHEDULED_EVENT_USER_REMOVE", False),
        ):
            parse = parsers[name]

            def wrapped(data: Any, parse: Any = parse, interested: bool = interested) -> None:
                parse(data)
                self.client.dispatch("copbot_event_interest", dict(data), interested)

            parsers[name] = wrapped

        @self.client.event
        async def on_copbot_event_interest(data: dict[str, Any], interested: bool) -> None:
            await self._interest(data, interested)

    async def _interest(self, data: dict[str, Any], interested: bool) -> None:
        guild = self.client.get_guild(int(data["guild_id"]))
        room = self.guild_room(guild)
        if guild is None or room is None:
            return
        user_id = int(data["user_id"])
        cached = guild.get_member(user_id) or self.client.get_user(user_id)
        user = cached or await self.client.fetch_user(user_id)  # the payload carries only the user's id
        if user.bot:
            return
        event_id = str(data["guild_scheduled_event_id"])
        now = self.clock.now()
        mode = "add" if interested else "remove"
        await self.emit(
            EventInterest(
                event_id=f"interest{mode}:{event_id}:{user_id}:{now.timestamp()}",
                room=room,
                at=now,
                member=self.member(user),
                platform_event_id=event_id,
                interested=interested,
            )
        )


def utc(moment: datetime) -> datetime:
    """A time from discord.py (aware, or naive meaning UTC) as an aware UTC datetime."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
