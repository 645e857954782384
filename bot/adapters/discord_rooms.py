"""Which core room, and so which community, a Discord channel is — and whether this process answers there.

A guild belongs to one community (``[communities.<slug>.discord] guild_id``); its channels are that
community's rooms, or only those its ``channels`` list names (a listed channel's threads with it). A direct
chat has no guild, so its community is the member's: the only community, or of several the first whose
guild the member is in. Guild-wide events (joins, leaves, a meeting's "Interested") are announced in the
first of the community's channels copbot may post in, the guild's system channel first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import discord

from bot.adapters.discord_members import PLATFORM
from bot.config import CommunityConfig, Settings
from bot.model import Room


class Rooms:
    """Channels → the core's rooms, for one Discord client and the communities of one configuration."""

    def __init__(self, client: discord.Client, settings: Settings) -> None:
        self.client = client
        self.communities: dict[str, CommunityConfig] = {
            community.discord.guild_id: community
            for community in settings.community_list()
            if community.discord is not None
        }
        """Guild id → the community it belongs to."""
        self.served = {community.slug for community in settings.served_communities()}
        """Communities this process serves; other processes serve the rest (README: processes)."""
        self.direct_messages = settings.answers_direct_messages

    def of(self, channel: Any, user_id: int | None = None) -> Room | None:
        """The core's room for a channel; ``user_id``: who wrote or clicked in it, which decides the
        community of a direct chat. None for a channel copbot does not listen in."""
        if isinstance(channel, discord.DMChannel):
            if user_id is None and channel.recipient is not None:
                user_id = channel.recipient.id
            return self.direct(channel.id, user_id)
        guild = getattr(channel, "guild", None)
        if guild is None:
            return None
        community = self.communities.get(str(guild.id))
        if community is None or community.discord is None:
            return None
        allowed = community.discord.channels
        if allowed and not _listed(channel, allowed):
            return None
        return Room(PLATFORM, str(channel.id), community_id=community.slug)

    def of_id(self, channel_id: int, guild_id: int | None, user_id: int | None = None) -> Room | None:
        """The core's room for a channel known by id, as raw gateway events name it. A direct chat is
        cached by discord.py only once copbot opened or wrote in it in this run: one not cached (after a
        restart) is still a direct chat, known as such by having no guild."""
        channel = self.client.get_channel(channel_id)
        if channel is not None:
            return self.of(channel, user_id)
        return self.direct(channel_id, user_id) if guild_id is None else None

    def direct(self, channel_id: int, user_id: int | None) -> Room:
        """The direct chat ``channel_id`` with ``user_id``, in that member's community."""
        return Room(PLATFORM, str(channel_id), community_id=self.direct_community(user_id), is_direct=True)

    def of_guild(self, guild: discord.Guild | None) -> Room | None:
        """Where guild-wide events (joins) are announced: of the community's channels (its ``channels``
        list, else all), the system channel, else the first text channel — the first of those copbot may
        send messages in. A welcome sent where copbot may not post is refused and was a welcome lost; with
        no channel it may post in, the first is still the community's room (a newcomer is then onboarded by
        direct message, the welcome's refusal said in the log)."""
        if guild is None:
            return None
        community = self.communities.get(str(guild.id))
        if community is None or community.discord is None:
            return None
        allowed = community.discord.channels
        ordered = [guild.system_channel] if guild.system_channel is not None else []
        ordered += [channel for channel in guild.text_channels if channel not in ordered]
        candidates = [channel for channel in ordered if not allowed or _listed(channel, allowed)] or ordered
        channel = next((c for c in candidates if _may_post(c, guild.me)), None) or next(
            iter(candidates), None
        )
        return Room(PLATFORM, str(channel.id), community_id=community.slug) if channel else None

    def answers_guild(self, guild_id: int | None) -> bool:
        """Whether this process speaks for a guild (or, without one, a direct chat) where copbot has
        nothing to do: the process serving its community, or the one answering direct messages."""
        community = self.communities.get(str(guild_id)) if guild_id is not None else None
        return community.slug in self.served if community is not None else self.direct_messages

    def guild_id(self, community: str | None) -> str | None:
        """The guild of a community (by slug), None for one with no guild."""
        return next((guild for guild, c in self.communities.items() if c.slug == community), None)

    def direct_community(self, user_id: int | None) -> str | None:
        """A direct chat's community: the only one, or, of several, the first whose guild the member is in
        (by discord.py's member cache). A member of one guild must not read another community's repertoire,
        experts or meetings from a direct chat, as when every chat was the first guild's; a member found in
        none (the members intent off) has a direct chat of no community."""
        communities = list(self.communities.items())
        if len(communities) <= 1:
            return communities[0][1].slug if communities else None
        for guild_id, community in communities:
            guild = self.client.get_guild(int(guild_id))
            if user_id is not None and guild is not None and guild.get_member(user_id) is not None:
                return community.slug
        return None


def _may_post(channel: discord.TextChannel, me: discord.Member | None) -> bool:
    """Whether copbot's roles and the channel's overrides let it see the channel and send messages there
    (by discord.py's cache of them; unknown, without copbot's member, counts as yes)."""
    if me is None:
        return True
    permissions = channel.permissions_for(me)
    return permissions.view_channel and permissions.send_messages


def _listed(channel: Any, allowed: Sequence[str]) -> bool:
    """Whether the allow-list names the channel, by id or name, or the channel a thread is in: members
    talk in a listed channel's threads as in the channel (a category listed does not list its channels)."""
    names = [str(channel.id), getattr(channel, "name", None)]
    if isinstance(channel, discord.Thread):
        parent = channel.parent
        names += [str(channel.parent_id), getattr(parent, "name", None)]
    return any(name is not None and name in allowed for name in names)
