"""What every part of the roles plugin shares: a move, whose seat a command means, a level's name as the
community calls it, and the names of members (never pings)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from bot import store
from bot.context import Context
from bot.errors import NotFound
from bot.model import Member
from bot.plugin import Plugin
from bot.tables import MemberRow
from plugins.roles import queries
from plugins.roles.config import RolesConfig
from plugins.roles.queries import Seat
from plugins.roles.rules import Rules


@dataclass(frozen=True)
class Move:
    """A level change decided — by a rule, or by a moderator (``actor``) — stored in the unit of work that
    decided it, and mirrored and announced only after that commits."""

    seat: Seat
    new: str
    rule: str
    actor: int | None
    reason: str


class RolesBase(Plugin):
    """The state the parts share: the start-up walk over platform roles (``reconciling``), the persons moved
    while it runs (it must not set their old level back), and role refusals already reported."""

    config: RolesConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refused: set[tuple[str, str, str]] = set()  # (community, platform, role) already reported
        self.reconciling: asyncio.Task[int] | None = None
        self._moved: set[tuple[int, int]] = set()  # (community, person) moved while the walk runs: skipped

    def rules_for(self, community_id: int) -> Rules:
        """The configured rules, counting days in the community's zone."""
        registry = self.services.registry
        community = registry.communities.get(community_id) if registry is not None else None
        return replace(self.config.rules(), timezone=community.timezone if community else "UTC")

    async def _seat_of(self, ctx: Context, community_id: int, who: Member) -> Seat:
        row = await store.find_member(ctx.session, who)
        if row is None or row.id is None:
            raise NotFound(f"{who.display_name} is not a member of this community yet.")
        person = await queries.person_of(ctx.session, row.id)
        seat = (await queries.seats(ctx.session, community_id, [person])).get(person)
        if seat is None:  # of another community only, or gone from this one
            raise NotFound(f"{who.display_name} is not a member of this community.")
        return seat

    def _name(self, level: str) -> str:
        return self.config.names.get(level, level)

    def choice_names(self) -> dict[str, dict[str, str]]:
        """``role set @ana stewards`` where core is called Stewards: a level by the name members see."""
        return {"level": dict(self.config.names)}

    def _slug(self, community_id: int) -> str | None:
        registry = self.services.registry
        community = registry.communities.get(community_id) if registry is not None else None
        return community.slug if community else None


async def _names(ctx: Context, member_ids: Sequence[int | None]) -> dict[int, str]:
    wanted = sorted({m for m in member_ids if m is not None})
    if not wanted:
        return {}
    rows = await ctx.session.execute(
        select(col(MemberRow.id), col(MemberRow.display_name)).where(col(MemberRow.id).in_(wanted))
    )
    return {member_id: name for member_id, name in rows.all() if member_id is not None}
