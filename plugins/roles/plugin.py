"""Participation levels — the CoP bulb: core, active, occasional, peripheral, transactional.

Rules (rules.py) move members between peripheral, occasional and active from their weighted activity,
with hysteresis and a grace period, and to transactional after a long silence; ``core`` is for moderators
to give. The rules run every day and right after a contribution; a moderator can set, lock and unlock, and
recompute now. Every change is kept with who or which rule made it and why, announced where the community
wants it, and mirrored onto the platform (a Discord role, a Matrix power level) through the adapters.
A person with a Discord and a Matrix account can link them: one person, one level, activity summed.

Here are the commands and what sets the rules going; the parts live beside it: evaluation.py (the rules
at work), mirroring.py (levels onto the platforms), linking.py (one person, several accounts), config.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot import store
from bot.commands import Text
from bot.context import Context, JobContext
from bot.errors import NotFound, Refused, UsageError
from bot.model import ActivityCounted, Member
from bot.permissions import listed_moderator
from bot.plugin import UNNAMED, DigestEntry, DigestSection, command, listen, schedule
from bot.tables import MemberRow, Membership
from bot.timeparse import format_when
from plugins.roles import queries
from plugins.roles.base import Move, _names
from plugins.roles.config import RolesConfig
from plugins.roles.evaluation import Evaluation
from plugins.roles.linking import Linking
from plugins.roles.models import LevelChange
from plugins.roles.rules import CONTRIBUTIONS, LEVELS, Stats, in_words, missing

Level = Literal["core", "active", "occasional", "peripheral", "transactional"]
MAX_REASON = 300
"""A move's reason, as the history, the announcement and the digest show it: a sentence, not a page."""


class Roles(Evaluation, Linking):
    name = "roles"
    description = "participation levels: explainable moves, history, platform roles"
    Config = RolesConfig
    config: RolesConfig

    async def started(self) -> None:
        """The platforms are up: bring their roles in line with the stored levels, in the background."""
        self.reconciling = asyncio.create_task(self.reconcile(), name="roles-reconcile")

    async def teardown(self) -> None:
        if self.reconciling is not None and not self.reconciling.done():
            self.reconciling.cancel()  # redone at the next start
            await asyncio.gather(self.reconciling, return_exceptions=True)

    # --- reading ----------------------------------------------------------------------------------------

    @command("role show", examples=("role show", "role show @ana"), reads_activity=True)
    async def show(self, ctx: Context, who: Member | None = None) -> None:
        """A member's level, since when, the score behind it, and what is missing for the next level.

        Args:
            who: the member (default: you)
        """
        community_id = ctx.require_community()
        member = who or ctx.author
        assert member is not None
        row = await store.find_member(ctx.session, member)
        person = await queries.person_of(ctx.session, row.id) if row and row.id else None
        seat = (
            (await queries.seats(ctx.session, community_id, [person])).get(person or -1) if person else None
        )
        if seat is None:  # never seen, of another community only, or gone from this one
            raise NotFound(f"{member.display_name} is not a member of this community.")
        rules = self.rules_for(community_id)
        now = ctx.now()
        stats = (
            await queries.window_stats(
                ctx.session,
                community_id,
                now - rules.window,
                rules.weights,
                CONTRIBUTIONS,
                persons=[seat.person_id],
                zone=rules.timezone,
            )
        ).get(seat.person_id, Stats())
        since = f" since {format_when(seat.level_since, ctx.timezone)}" if seat.level_since else ""
        lines = [
            f"{member.display_name}: {self._name(seat.level)}{since}" + (" (locked)" if seat.locked else "")
        ]
        breakdown = ", ".join(
            f"{kind.replace('_', ' ')} {value:g}"
            for kind, value in sorted(stats.by_kind.items(), key=lambda kv: -kv[1])
            if value
        )
        lines.append(
            f"Last {rules.window.days} days: score {stats.score:g}"
            + (f" ({breakdown})" if breakdown else "")
            + f", {stats.contributions} contribution{'s' if stats.contributions != 1 else ''}, "
            f"{stats.active_days} active day{'s' if stats.active_days != 1 else ''}"
        )
        if seat.level == "core":
            lines.append("Core is given by moderators; rules do not move it.")
        elif seat.locked:
            lines.append("A moderator locked this level; rules do not move it.")
        elif seat.person_id in await queries.untracked_persons(ctx.session):
            lines.append(
                f"Tracking is off for {member.display_name}: rules do not move this level; moderators can."
            )
        else:
            need = missing(stats, seat.level, rules)
            if need:
                lines.append(f"Next: {need}")
            if seat.below_since is not None and seat.level in rules.requirements:
                lines.append(
                    f"Below what {seat.level} keeps since {format_when(seat.below_since, ctx.timezone)}; "
                    f"after {rules.grace.days} days of that it moves one level out."
                )
        await ctx.reply("\n".join(lines))

    @command("role list", examples=("role list", "role list active"))
    async def list_levels(self, ctx: Context, level: Level | None = None) -> None:
        """Members per level (the bulb), or who is at one level.

        Args:
            level: core, active, occasional, peripheral or transactional
        """
        community_id = ctx.require_community()
        seats = await queries.seats(ctx.session, community_id)
        if level is None:
            counts = {name: 0 for name in LEVELS}
            for seat in seats.values():
                counts[seat.level] = counts.get(seat.level, 0) + 1
            lines = ["The community, from the centre out:"]
            lines += [f"{self._name(name)}: {counts[name]}" for name in LEVELS]
            await ctx.reply("\n".join(lines))
            return
        chosen = [seat for seat in seats.values() if seat.level == level]
        names = await _names(ctx, [seat.member_ids[0] for seat in chosen])
        shown = ", ".join(sorted(names.values(), key=str.lower)[:60]) or "nobody"
        more = f" and {len(chosen) - 60} more" if len(chosen) > 60 else ""
        await ctx.reply(f"{self._name(level)} ({len(chosen)}): {shown}{more}")  # names, never pings

    @command("role history", examples=("role history", "role history @ana"))
    async def history(self, ctx: Context, who: Member | None = None) -> None:
        """Level changes — who or which rule made them, when and why.

        Args:
            who: only this member's changes
        """
        community_id = ctx.require_community()
        if who is not None:
            row = await store.find_member(ctx.session, who)
            if row is None or row.id is None:
                raise NotFound(f"{who.display_name} has no history here.")
            accounts = await queries.accounts_of(ctx.session, await queries.person_of(ctx.session, row.id))
            changes = await queries.history(ctx.session, community_id, [a.id for a in accounts if a.id])
        else:
            changes = list(
                (
                    await ctx.session.execute(
                        select(LevelChange)
                        .where(col(LevelChange.community_id) == community_id)
                        .order_by(col(LevelChange.at).desc(), col(LevelChange.id).desc())
                        .limit(15)
                    )
                ).scalars()
            )
        if not changes:
            await ctx.reply("No level changes yet.")
            return
        names = await _names(
            ctx, [c.member_id for c in changes] + [c.actor_id for c in changes if c.actor_id]
        )
        lines = ["Level changes, newest first:"]
        for change in changes:
            by = (
                f"by {names.get(change.actor_id, 'a moderator')}"
                if change.actor_id
                else f"rule: {change.rule}"
            )
            why = f" — {change.reason}" if change.reason else ""
            lines.append(
                f"{format_when(change.at, ctx.timezone)}: {names.get(change.member_id, '?')} "
                f"{change.old_level} → {change.new_level} ({by}){why}"
            )
        await ctx.reply("\n".join(lines))

    @command("role rules", examples=("role rules",))
    async def rules(self, ctx: Context) -> None:
        """How levels move, in words."""
        await ctx.reply("\n".join(in_words(self.config.rules())))

    # --- moderators -------------------------------------------------------------------------------------

    @command("role set", mod=True, examples=("role set @ana core coordinates the leakage group",))
    async def set_level(self, ctx: Context, who: Member, level: Level, reason: Text | None = None) -> None:
        """Move a member to a level (the only way into or out of core).

        Args:
            who: the member
            level: core, active, occasional, peripheral or transactional
            reason: why, for the history (at most 300 characters)
        """
        reason = (reason or "").strip()
        if len(reason) > MAX_REASON:
            raise UsageError(f"the reason has {len(reason):,} characters; at most {MAX_REASON}")
        community_id = ctx.require_community()
        seat = await self._seat_of(ctx, community_id, who)
        if seat.level == level:
            await ctx.reply(f"{who.display_name} is already {self._name(level)}.")
            return
        if (
            ctx.author_id in seat.member_ids
            and LEVELS.index(level) < LEVELS.index(seat.level)
            and not self._listed_moderator(ctx)
        ):  # stepping back is anyone's own choice; moving inward (into core) takes someone else's word
            raise Refused(
                f"You cannot raise your own level ({self._name(seat.level)} → {self._name(level)}): another "
                "moderator can, or an admin listed in copbot's config. Nothing was changed."
            )
        move = Move(seat, level, "", ctx.author_id, reason)
        await self._store(ctx, community_id, [move], ctx.now())
        await self._apply(ctx, community_id, [move], ctx.now())
        await ctx.reply(f"{who.display_name}: {self._name(seat.level)} → {self._name(level)}.")

    def _listed_moderator(self, ctx: Context) -> bool:
        slug = ctx.community.slug if ctx.community is not None else None
        return ctx.author is not None and listed_moderator(self.services.settings, ctx.author, slug)

    @command("role lock", mod=True, examples=("role lock @ana",))
    async def lock(self, ctx: Context, who: Member) -> None:
        """Keep a member at their level: rules stop moving them.

        Args:
            who: the member
        """
        await self._set_lock(ctx, who, True)

    @command("role unlock", mod=True, examples=("role unlock @ana",))
    async def unlock(self, ctx: Context, who: Member) -> None:
        """Let the rules move a member again.

        Args:
            who: the member
        """
        await self._set_lock(ctx, who, False)

    async def _set_lock(self, ctx: Context, who: Member, locked: bool) -> None:
        community_id = ctx.require_community()
        seat = await self._seat_of(ctx, community_id, who)
        if seat.locked == locked:
            already = "locked already" if locked else "not locked"
            raise Refused(f"{who.display_name} is {already} ({self._name(seat.level)}); nothing was changed.")
        for member_id in seat.member_ids:
            row = await ctx.session.get(Membership, (community_id, member_id))
            if row is not None:
                row.locked = locked
        state = "locked: rules will not move them" if locked else "unlocked: rules move them again"
        await ctx.reply(f"{who.display_name} is {state} ({self._name(seat.level)}).")

    @command("role recompute", mod=True, examples=("role recompute",), reads_activity=True)
    async def recompute(self, ctx: Context) -> None:
        """Apply the rules to everyone now, and say who moved."""
        community_id = ctx.require_community()
        moves = await self.evaluate(ctx, community_id, None, ctx.now())
        if not moves:
            await ctx.reply("Everyone is where the rules put them; nobody moved.")
            return
        names = await _names(ctx, [move.seat.member_ids[0] for move in moves])
        lines = [f"{len(moves)} move{'s' if len(moves) != 1 else ''}:"]
        lines += [
            f"{names.get(move.seat.member_ids[0], '?')}: {move.seat.level} → {move.new} ({move.rule})"
            for move in moves[:40]
        ]
        if len(moves) > 40:
            lines.append(f"… and {len(moves) - 40} more (see {ctx.prefix}role history)")
        await ctx.reply("\n".join(lines))

    # --- the rules at work ------------------------------------------------------------------------------

    @schedule("evaluate_all", cron="20 3 * * *")
    async def evaluate_all(self, ctx: JobContext) -> None:
        """Every community, once a day: moves that are due (a grace period ended, a long silence)."""
        registry = self.services.registry
        if registry is None:
            return
        pipeline = self.services.pipeline
        if pipeline is not None:
            await pipeline.journal.flush()  # the last half second of activity counts too
        for community_id in registry.served.values():  # this process's communities (README: processes)
            await self.evaluate(ctx, community_id, None, ctx.now())

    @listen(ActivityCounted)
    async def on_activity(self, ctx: Context, event: ActivityCounted) -> None:
        """A contribution can move its author inward at once, without waiting for the night."""
        if event.community_id is None or event.kind not in CONTRIBUTIONS:
            return
        pipeline = self.services.pipeline
        if pipeline is not None:
            await pipeline.journal.flush()
        person = await queries.person_of(ctx.session, event.member_id)
        await self.evaluate(ctx, event.community_id, [person], ctx.now())

    # --- the digest -------------------------------------------------------------------------------------

    async def digest(
        self, session: AsyncSession, community_id: int, start: datetime, end: datetime, tz: str
    ) -> Sequence[DigestSection]:
        """Who moved inward in the period — the community's growth, celebrated; outward moves stay quiet."""
        changes = (  # plain rows, not ORM objects: a busy week's hundreds of changes cost little
            await session.execute(
                select(col(LevelChange.member_id), col(LevelChange.old_level), col(LevelChange.new_level))
                .where(
                    col(LevelChange.community_id) == community_id,
                    col(LevelChange.at) >= start,
                    col(LevelChange.at) < end,
                )
                .order_by(col(LevelChange.at), col(LevelChange.id))
            )
        ).all()
        moved = [c for c in changes if LEVELS.index(c.new_level) < LEVELS.index(c.old_level)]
        inward = moved[:20]
        if not inward:
            return ()
        rows = (
            await session.execute(
                select(col(MemberRow.id), col(MemberRow.display_name), col(MemberRow.public)).where(
                    col(MemberRow.id).in_({c.member_id for c in inward})
                )
            )
        ).all()
        names = {member_id: name for member_id, name, _ in rows}
        shown = {member_id: name for member_id, name, public in rows if public}  # named on the web
        more = (f"… and {len(moved) - len(inward)} more",) if len(moved) > len(inward) else ()
        lines = tuple(f"{names.get(c.member_id, UNNAMED)} → {self._name(c.new_level)}" for c in inward) + more
        web = tuple(f"{shown.get(c.member_id, UNNAMED)} → {self._name(c.new_level)}" for c in inward) + more
        entries = tuple(  # who is named on the web, where: for forget and public off
            DigestEntry(index, member_id=c.member_id, name=shown[c.member_id])
            for index, c in enumerate(inward)
            if c.member_id in shown
        )
        return (DigestSection("Moving inward", lines, 20, web, entries),)

    # --- the member's own data --------------------------------------------------------------------------

    async def personal_data(self, session: AsyncSession, member_ids: Sequence[int]) -> Mapping[str, Any]:
        from plugins.roles import privacy  # only when a member's data is exported or forgotten

        return await privacy.personal_data(session, member_ids)

    async def forget(
        self, session: AsyncSession, member_ids: Sequence[int], *, remove_items: bool
    ) -> Sequence[str]:
        from plugins.roles import privacy  # only when a member's data is exported or forgotten

        return await privacy.forget(session, member_ids)
