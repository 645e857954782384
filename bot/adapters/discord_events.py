"""Meetings as Discord guild scheduled events: created, moved and cancelled with the meeting.

The meeting, not the Discord event, is the truth: an update sends everything the meeting decides, and an
event someone turned into a voice-channel event becomes an external one with a location again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

import discord

from bot.config import CommunityConfig
from bot.model import Room

log = logging.getLogger(__name__)


class ScheduledEvents:
    """A meeting's event in the guild of its room (else of its community), for one Discord client."""

    def __init__(self, client: discord.Client, guild_communities: Mapping[str, CommunityConfig]) -> None:
        self.client = client
        self.guild_communities = guild_communities
        """Guild id → the community it belongs to."""

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
            served = self.guild_communities.items()
            guild_id = next((g for g, c in served if c.slug == room.community_id), None)
            guild = self.client.get_guild(int(guild_id)) if guild_id else None
        if guild is None:
            raise ValueError(f"room {room.id} is in no guild copbot serves")
        return guild


def utc(moment: datetime) -> datetime:
    """A time from discord.py (aware, or naive meaning UTC) as an aware UTC datetime."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
