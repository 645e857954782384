"""Who may do what, decided in one place: the platform's own word plus the configuration."""

from __future__ import annotations

from bot.adapters.base import Adapter
from bot.config import Settings
from bot.model import Member, Room


def listed(entries: list[str], member: Member) -> bool:
    """Config lists name members as ``platform:id`` (``matrix:@ana:example.org``) or, for short, ``id``."""
    return member.key in entries or member.id in entries


def listed_moderator(settings: Settings, member: Member, community_slug: str | None) -> bool:
    """A moderator by copbot's config (``moderators``, or the community's): the people who run copbot and
    the community, who may also move their own level (``role set``); others are moderators by the
    platform's word alone."""
    if listed(settings.moderators, member):
        return True
    if community_slug is not None:
        for community in settings.community_list():
            if community.slug == community_slug and listed(community.moderators, member):
                return True
    return False


async def is_moderator(
    settings: Settings, adapter: Adapter, member: Member, room: Room, community_slug: str | None
) -> bool:
    if listed_moderator(settings, member, community_slug):
        return True
    return await adapter.is_moderator(member, room)
