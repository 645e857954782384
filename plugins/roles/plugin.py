"""Participation levels — the CoP bulb: core, active, occasional, peripheral, transactional.

Rules (rules.py) move members between peripheral, occasional and active from their weighted activity,
with hysteresis and a grace period, and to transactional after a long silence; ``core`` is for moderators
to give. The rules run every day and right after a contribution; a moderator can set, lock and unlock, and
recompute now. Every change is kept with who or which rule made it and why, announced where the community
wants it, and mirrored onto the platform (a Discord role, a Matrix power level) through the adapters.
A person with a Discord and a Matrix account can link them: one person, one level, activity summed.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import deque
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot import store
from bot.adapters.base import RoleAdapter
from bot.commands import Text
from bot.config import Settings
from bot.context import Context, JobContext
from bot.errors import NotFound, Refused, RoleRefused, UsageError
from bot.model import ActivityCounted, Capability, Content, LevelChanged, Member, Room
from bot.plugin import DigestSection, Plugin, PluginConfig, command, listen, schedule
from bot.tables import MemberRow, Membership
from bot.timeparse import format_when
from plugins.roles import queries
from plugins.roles.models import LevelChange, LinkCode
from plugins.roles.queries import Seat
from plugins.roles.rules import (
    CONTRIBUTIONS,
    DEFAULT_REQUIREMENTS,
    DEFAULT_WEIGHTS,
    LEVELS,
    Requirement,
    Rules,
    Standing,
    Stats,
    decide,
    in_words,
    missing,
)

Level = Literal["core", "active", "occasional", "peripheral", "transactional"]
LINK_VALID = timedelta(minutes=15)
RECONCILE_BATCH = 500
"""Seats whose platform roles the start-up walk checks per database read (and per progress line)."""
EVALUATION_PAGE = 5000
"""Person ids decided together when a whole community is evaluated: few enough that a page's seats and
statistics are a couple of MB, enough that the statements per page cost little beside the rows."""
READERS = 2
"""Pages of a whole community read at once, each on a connection of its own, while another is decided:
the database's work and the rules' share a machine's cores (see ``Roles._pages_read_ahead``)."""


class RequirementConfig(PluginConfig):
    score: float = Field(ge=0)
    contributions: int = Field(default=0, ge=0)
    active_days: int = Field(default=0, ge=0)
    keep_score: float = Field(default=0, ge=0)
    keep_contributions: int = Field(default=0, ge=0)
    keep_active_days: int = Field(default=0, ge=0)


class RolesConfig(PluginConfig):
    window_days: int = Field(default=30, ge=1, le=365)
    grace_days: int = Field(default=14, ge=0, le=365)
    transactional_after_days: int = Field(default=90, ge=7, le=3650)
    weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    occasional: RequirementConfig = Field(
        default_factory=lambda: RequirementConfig(**_as_dict(DEFAULT_REQUIREMENTS["occasional"]))
    )
    active: RequirementConfig = Field(
        default_factory=lambda: RequirementConfig(**_as_dict(DEFAULT_REQUIREMENTS["active"]))
    )
    names: dict[str, str] = Field(default_factory=dict, description="level → the name members see")
    announce: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="community slug → platform → room where promotions are announced"
    )
    announce_demotions: bool = False

    @field_validator("names")
    @classmethod
    def _known_levels(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(LEVELS))
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a level ({', '.join(LEVELS)})")
        return value

    @field_validator("active")
    @classmethod
    def _hysteresis(cls, value: RequirementConfig) -> RequirementConfig:
        if value.keep_score > value.score:
            raise ValueError("keep_score must be below score, or members would flip at the boundary")
        return value

    def rules(self) -> Rules:
        return Rules(
            window=timedelta(days=self.window_days),
            weights=self.weights,
            requirements={
                "occasional": Requirement(**self.occasional.model_dump(exclude={"enabled"})),
                "active": Requirement(**self.active.model_dump(exclude={"enabled"})),
            },
            grace=timedelta(days=self.grace_days),
            transactional_after=timedelta(days=self.transactional_after_days),
        )


def _as_dict(requirement: Requirement) -> dict[str, Any]:
    return {key: getattr(requirement, key) for key in requirement.__dataclass_fields__}


@dataclass(frozen=True)
class Move:
    seat: Seat
    new: str
    rule: str
    actor: int | None
    reason: str


class Roles(Plugin):
    name = "roles"
    description = "participation levels: explainable moves, history, platform roles"
    Config = RolesConfig
    config: RolesConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refused: set[tuple[str, str, str]] = set()  # (community, platform, role) already reported
        self.reconciling: asyncio.Task[int] | None = None
        self._moved: set[tuple[int, int]] = set()  # (community, person) moved while the walk runs: skipped

    async def started(self) -> None:
        """The platforms are up: bring their roles in line with the stored levels, in the background."""
        self.reconciling = asyncio.create_task(self.reconcile(), name="roles-reconcile")

    async def teardown(self) -> None:
        if self.reconciling is not None and not self.reconciling.done():
            self.reconciling.cancel()  # redone at the next start
            await asyncio.gather(self.reconciling, return_exceptions=True)

    # --- reading ----------------------------------------------------------------------------------------

    @command("role show", examples=("role show", "role show @ana"))
    async def show(self, ctx: Context, who: Member | None = None) -> None:
        """A member's level, since when, the score behind it, and what is missing for the next level.

        Args:
            who: the member (default: you)
        """
        community_id = _community(ctx)
        member = who or ctx.author
        assert member is not None
        row = await store.find_member(ctx.session, member)
        person = await queries.person_of(ctx.session, row.id) if row and row.id else None
        seat = (
            (await queries.seats(ctx.session, community_id, [person])).get(person or -1) if person else None
        )
        if seat is None:
            raise NotFound(f"{member.display_name} is not a member of this community yet.")
        rules = self.config.rules()
        now = ctx.now()
        stats = (
            await queries.window_stats(
                ctx.session,
                community_id,
                now - rules.window,
                rules.weights,
                CONTRIBUTIONS,
                persons=[seat.person_id],
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
        community_id = _community(ctx)
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
        community_id = _community(ctx)
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
            reason: why, for the history
        """
        community_id = _community(ctx)
        seat = await self._seat_of(ctx, community_id, who)
        if seat.level == level:
            await ctx.reply(f"{who.display_name} is already {self._name(level)}.")
            return
        move = Move(seat, level, "", ctx.author_id, (reason or "").strip())
        await self._store(ctx, community_id, [move], ctx.now())
        await self._apply(ctx, community_id, [move], ctx.now())
        await ctx.reply(f"{who.display_name}: {self._name(seat.level)} → {self._name(level)}.")

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
        community_id = _community(ctx)
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

    @command("role recompute", mod=True, examples=("role recompute",))
    async def recompute(self, ctx: Context) -> None:
        """Apply the rules to everyone now, and say who moved."""
        community_id = _community(ctx)
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

    async def evaluate(
        self, ctx: Context | JobContext, community_id: int, persons: Sequence[int] | None, now: datetime
    ) -> list[Move]:
        """Decide and apply, for a whole community or some persons; returns the moves.

        A whole community is decided a page of person ids at a time (``queries.person_pages``), each page
        with set-based queries: the evaluation then holds one page of seats and statistics, not
        everyone's — with 100,000 members, everyone at once was ~40 MB that the process kept long after
        the nightly run. The moves are written page by page in the job's one transaction."""
        rules = self.config.rules()
        untracked = await _untracked_persons(ctx.session)
        moves: list[Move] = []
        if persons is not None:
            facts = await _facts(ctx.session, community_id, persons, rules, now)
            moves = await self._decide(ctx, community_id, facts, rules, untracked, now)
        else:
            pages = await queries.person_pages(ctx.session, EVALUATION_PAGE)
            # Closed however the loop ends: a page that fails to be decided stops the reads ahead and
            # closes their sessions before the job's transaction is rolled back.
            read = self._pages_read_ahead(ctx.session, community_id, pages, rules, now)
            async with contextlib.aclosing(read) as pages_read:
                async for facts in pages_read:
                    moves += await self._decide(ctx, community_id, facts, rules, untracked, now)
        await self._apply(ctx, community_id, moves, now)
        return moves

    async def _pages_read_ahead(
        self, session: AsyncSession, community_id: int, pages: Sequence[range], rules: Rules, now: datetime
    ) -> AsyncGenerator[Facts, None]:
        """Each page's seats and statistics, the next pages' read on connections of their own while this one
        is decided and written.

        Reading a page is mostly the database's work (SQLite's runs in its connection's thread, without
        the interpreter's lock; PostgreSQL's in the server) and deciding it mostly Python's, so they
        overlap: with :data:`READERS` pages read at once, a nightly run over 100,000 members takes about
        the longest of the three instead of their sum (bench/levels.py). The readers see what was
        committed; this run's own writes, not committed yet, are all about persons of earlier pages. A
        database with one connection only (SQLite in memory) reads each page in turn in the run's session.
        """
        database = self.services.db
        if len(pages) < 2 or not database.concurrent_reads:
            for page in pages:
                yield await _facts(session, community_id, page, rules, now)
            return
        async with contextlib.AsyncExitStack() as stack:
            readers = [
                await stack.enter_async_context(database.session()) for _ in range(min(READERS, len(pages)))
            ]
            ahead: deque[asyncio.Future[Facts]] = deque()
            try:
                for index, page in enumerate(pages):
                    reader = readers[index % len(readers)]
                    if len(ahead) < len(readers):
                        ahead.append(asyncio.ensure_future(_facts(reader, community_id, page, rules, now)))
                        continue
                    facts = await ahead.popleft()  # the oldest page, read on this reader: it is free again
                    ahead.append(asyncio.ensure_future(_facts(reader, community_id, page, rules, now)))
                    yield facts
                while ahead:
                    yield await ahead.popleft()
            finally:
                for pending in ahead:
                    pending.cancel()
                for pending in ahead:
                    with contextlib.suppress(asyncio.CancelledError):
                        await pending

    async def _decide(
        self,
        ctx: Context | JobContext,
        community_id: int,
        facts: Facts,
        rules: Rules,
        untracked: set[int],
        now: datetime,
    ) -> list[Move]:
        """The rules applied to these persons: their grace periods stored, their moves stored and returned
        (told about, after the commit, by :meth:`_apply`)."""
        seats, stats = facts
        moves: list[Move] = []
        grace: list[tuple[Seat, datetime | None]] = []
        for person, seat in seats.items():
            # Without tracking there is no activity to judge by: like a lock, only a moderator moves them.
            locked = seat.locked or person in untracked
            standing = Standing(seat.level, locked, seat.below_since, seat.joined_at)
            decision = decide(standing, stats.get(person, Stats()), rules, now)
            if decision.moved:
                moves.append(Move(seat, decision.level, decision.rule, None, ""))
            elif decision.below_since != seat.below_since:
                grace.append((seat, decision.below_since))
        await queries.set_below_since(ctx.session, community_id, grace)
        await self._store(ctx, community_id, moves, now)
        return moves

    async def _store(
        self, ctx: Context | JobContext, community_id: int, moves: Sequence[Move], now: datetime
    ) -> None:
        """The moves' new levels and their history, in the caller's transaction."""
        if not moves:
            return
        if self.reconciling is not None and not self.reconciling.done():
            self._moved.update((community_id, move.seat.person_id) for move in moves)
        await queries.set_levels(
            ctx.session, community_id, [(m.seat, m.new, m.rule, m.actor, m.reason) for m in moves], now
        )

    async def _apply(
        self, ctx: Context | JobContext, community_id: int, moves: Sequence[Move], now: datetime
    ) -> None:
        """After the commit of stored moves: platform roles, events, announcements."""
        if not moves:
            return
        slug = self._slug(community_id)
        accounts = (
            await queries.members_of_seats(ctx.session, [m.seat for m in moves]) if len(moves) < 5000 else {}
        )
        actor = ctx.author if isinstance(ctx, Context) else None
        changed: list[tuple[Move, list[MemberRow]]] = [
            (move, accounts.get(move.seat.person_id, [])) for move in moves
        ]

        async def after() -> None:
            for move, rows in changed:
                for row in rows:
                    await self._mirror(slug, row, move.new)
            for move, rows in changed:
                if rows:
                    await self._tell(slug, move, rows[0], actor, now)

        ctx.after_commit.append(after)

    async def _mirror(self, slug: str | None, row: MemberRow, level: str, *, repair: bool = False) -> None:
        adapter = self.services.adapters.get(row.platform)
        if slug is None or adapter is None or Capability.ROLES not in adapter.capabilities:
            return
        if not isinstance(adapter, RoleAdapter):
            return
        try:
            await adapter.set_level_role(
                slug, _member(row), level, reason=f"copbot: participation level {level}", repair=repair
            )
        except RoleRefused as refused:  # the hierarchy or a permission forbids it: said once, plainly
            key = (slug, row.platform, refused.role)
            if key not in self._refused:
                self._refused.add(key)
                self.log.warning(
                    "levels of %s are not mirrored on %s: %s", slug, row.platform, refused.message
                )
        except Exception as error:
            self.log.warning("could not give %s the %s role in %s: %s", row.display_name, level, slug, error)

    async def reconcile(self) -> int:
        """Bring every platform's roles in line with the stored levels (at start-up, in the background):
        drift — a role removed by hand, a level changed while copbot was down — is repaired quietly, with
        no announcement and no LevelChanged. The adapters send nothing for members already right. Returns
        how many accounts were checked."""
        registry = self.services.registry
        platforms = {
            platform
            for platform, adapter in self.services.adapters.items()
            if Capability.ROLES in adapter.capabilities and isinstance(adapter, RoleAdapter)
        }
        if registry is None or not platforms:
            return 0
        checked = 0
        served = [
            (community_id, registry.communities[community_id]) for community_id in registry.served.values()
        ]
        for community_id, community in served:
            mirrored = _mirroring(self.services.settings, community.slug, platforms)
            if not mirrored:
                continue  # no level has a role or power level there: nothing to bring in line
            # Page by page (a page of persons, then their seats and accounts): the walk holds one page, so
            # its memory does not grow with the community (every seat at once stays in the process after).
            after: int | None = None
            done = 0
            while True:
                async with self.services.db.session() as session:
                    persons = await queries.persons_after(session, community_id, after, RECONCILE_BATCH)
                    if not persons:
                        break
                    seats = await queries.seats(session, community_id, persons)
                    accounts = await queries.members_of_seats(session, list(seats.values()))
                after = persons[-1]
                for seat in seats.values():
                    if (community_id, seat.person_id) in self._moved:
                        continue  # its move mirrors the newer level itself
                    for row in accounts.get(seat.person_id, []):
                        adapter = self.services.adapters.get(row.platform)
                        if row.platform in mirrored and adapter is not None and adapter.connected:
                            await self._mirror(community.slug, row, seat.level, repair=True)
                            checked += 1
                done += len(persons)
                if done > len(persons) or len(persons) == RECONCILE_BATCH:
                    self.log.info("platform roles of %s: %d members checked", community.slug, done)
        self._moved.clear()
        self.log.info("platform roles checked against the stored levels for %d account(s)", checked)
        return checked

    async def _tell(
        self, slug: str | None, move: Move, row: MemberRow, actor: Member | None, now: datetime
    ) -> None:
        member = _member(row)
        emit = self.services.emit
        room = Room(row.platform, "", community_id=slug)
        if emit is not None and slug is not None:
            await emit(
                LevelChanged(
                    event_id=f"level:{slug}:{row.id}:{now.isoformat()}",
                    room=room,
                    at=now,
                    member=member,
                    community=slug,
                    old_level=move.seat.level,
                    new_level=move.new,
                    actor=actor,
                    rule=move.rule,
                    reason=move.reason,
                )
            )
        inward = LEVELS.index(move.new) < LEVELS.index(move.seat.level)
        if slug is None or (not inward and not self.config.announce_demotions):
            return
        for platform, room_id in self.config.announce.get(slug, {}).items():
            adapter = self.services.adapters.get(platform)
            if adapter is None:
                continue
            who = adapter.mention(member) if platform == row.platform else row.display_name
            mentions = (member,) if platform == row.platform else ()
            verb = "is now" if inward else "moves to"
            text = f"🌱 {who} {verb} {self._name(move.new)} in the community."
            try:
                await adapter.send(
                    Room(platform, room_id, community_id=slug), Content(text, mentions=mentions)
                )
            except Exception:
                self.log.warning("could not announce a level change in %s", room_id, exc_info=True)

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
        inward = [c for c in changes if LEVELS.index(c.new_level) < LEVELS.index(c.old_level)][:20]
        if not inward:
            return ()
        rows = await session.execute(
            select(col(MemberRow.id), col(MemberRow.display_name)).where(
                col(MemberRow.id).in_({c.member_id for c in inward})
            )
        )
        names = dict(rows.all())
        lines = tuple(f"{names.get(c.member_id, 'a member')} → {self._name(c.new_level)}" for c in inward)
        return (DigestSection("Moving inward", lines, 20),)

    # --- the member's own data --------------------------------------------------------------------------

    async def personal_data(self, session: AsyncSession, member_ids: Sequence[int]) -> Mapping[str, Any]:
        from plugins.roles import privacy  # only when a member's data is exported or forgotten

        return await privacy.personal_data(session, member_ids)

    async def forget(
        self, session: AsyncSession, member_ids: Sequence[int], *, remove_items: bool
    ) -> Sequence[str]:
        from plugins.roles import privacy  # only when a member's data is exported or forgotten

        return await privacy.forget(session, member_ids)

    # --- one person, several accounts -------------------------------------------------------------------

    @command("profile link", examples=("profile link", "profile link K7Q2-M9XA"))
    async def link(self, ctx: Context, code: str | None = None) -> None:
        """Join your accounts: without a code, get one; on your other account, type it to link the two.

        Args:
            code: the code you got on your other account
        """
        assert ctx.author_id is not None and ctx.author is not None
        now = ctx.now()
        if code is None:
            fresh = "-".join(secrets.token_hex(2).upper() for _ in range(2))
            ctx.session.add(LinkCode(code=fresh, member_id=ctx.author_id, expires_at=now + LINK_VALID))
            await ctx.reply_privately(
                f"Your link code: {fresh}. On your other account, type {ctx.prefix}profile link {fresh} "
                f"within {int(LINK_VALID.total_seconds() // 60)} minutes.",
                public="I sent you a link code by direct message.",
            )
            return
        row = await ctx.session.get(LinkCode, code.strip().upper())
        if row is None or row.expires_at <= now:
            raise UsageError(
                f"that code is unknown or expired; get a new one with {ctx.prefix}profile link on your other "
                "account"
            )
        if row.member_id == ctx.author_id:
            raise UsageError("type the code on your other account, not the one that made it")
        await ctx.session.delete(row)
        target = await queries.person_of(ctx.session, row.member_id)
        mine = await queries.person_of(ctx.session, ctx.author_id)
        if target == mine:
            await ctx.reply("These accounts are already linked.")
            return
        for account in await queries.accounts_of(ctx.session, mine):
            account.person_id = target
        accounts = await queries.accounts_of(ctx.session, target)
        names = ", ".join(f"{a.display_name} ({a.platform})" for a in accounts)
        await ctx.reply_privately(
            f"Linked: {names} are one person now — one profile, one level, activity counted together. "
            f"Undo with {ctx.prefix}profile unlink.",
            public="Your accounts are linked.",
        )

    @command("profile unlink", examples=("profile unlink",))
    async def unlink(self, ctx: Context) -> None:
        """Separate this account from your other accounts again."""
        assert ctx.author_id is not None
        row = await ctx.session.get(MemberRow, ctx.author_id)
        assert row is not None
        person = row.person_id or row.id
        accounts = await queries.accounts_of(ctx.session, person or 0)
        if len(accounts) < 2:
            raise Refused("This account is not linked to another one.")
        others = [a for a in accounts if a.id != row.id]
        if row.person_id is None:  # this account was the person's anchor: the next one becomes it
            anchor = others[0]
            for account in others:
                account.person_id = None if account is anchor else anchor.id
        else:
            row.person_id = None
        await ctx.reply("This account is on its own again; its activity counts for it alone from now on.")

    # --- helpers ----------------------------------------------------------------------------------------

    async def _seat_of(self, ctx: Context, community_id: int, who: Member) -> Seat:
        row = await store.find_member(ctx.session, who)
        if row is None or row.id is None:
            raise NotFound(f"{who.display_name} is not a member of this community yet.")
        person = await queries.person_of(ctx.session, row.id)
        seat = (await queries.seats(ctx.session, community_id, [person])).get(person)
        if seat is None:
            raise NotFound(f"{who.display_name} is not a member of this community yet.")
        return seat

    def _name(self, level: str) -> str:
        return self.config.names.get(level, level)

    def _slug(self, community_id: int) -> str | None:
        registry = self.services.registry
        community = registry.communities.get(community_id) if registry is not None else None
        return community.slug if community else None


Facts = tuple[dict[int, Seat], dict[int, Stats]]
"""What the rules decide a page of persons by: their seats and their statistics in the window."""


async def _facts(
    session: AsyncSession, community_id: int, persons: Sequence[int], rules: Rules, now: datetime
) -> Facts:
    seats = await queries.seats(session, community_id, persons)
    stats = await queries.window_stats(
        session, community_id, now - rules.window, rules.weights, CONTRIBUTIONS, persons=persons
    )
    return seats, stats


async def _untracked_persons(session: AsyncSession) -> set[int]:
    """Persons with an account that turned tracking off (``profile set tracking off``): few, read at once."""
    rows = await session.execute(
        select(func.coalesce(col(MemberRow.person_id), col(MemberRow.id))).where(
            col(MemberRow.tracking).is_(False)
        )
    )
    return set(rows.scalars())


def _community(ctx: Context) -> int:
    if ctx.community_id is None:
        raise UsageError("this room belongs to no community")
    return ctx.community_id


def _member(row: MemberRow) -> Member:
    return Member(row.platform, row.platform_id, row.display_name or row.platform_id, row.is_bot)


def _mirroring(settings: Settings, slug: str, platforms: Iterable[str]) -> set[str]:
    """Those of ``platforms`` on which the community gives levels a role or power level at all: Discord's
    ``level_roles``, Matrix's ``level_power_levels`` and ``level_rooms``. Another platform's adapter is
    asked about every member, as its configuration is its own."""
    config = next((c for c in settings.community_list() if c.slug == slug), None)
    found: set[str] = set()
    for platform in platforms:
        if platform == "matrix":
            matrix = config.matrix if config is not None else None
            if matrix is not None and (matrix.level_power_levels or matrix.level_rooms):
                found.add(platform)
        elif platform == "discord":
            discord = config.discord if config is not None else None
            if discord is not None and discord.level_roles:
                found.add(platform)
        else:
            found.add(platform)
    return found


async def _names(ctx: Context, member_ids: Sequence[int | None]) -> dict[int, str]:
    wanted = sorted({m for m in member_ids if m is not None})
    if not wanted:
        return {}
    rows = await ctx.session.execute(
        select(col(MemberRow.id), col(MemberRow.display_name)).where(col(MemberRow.id).in_(wanted))
    )
    return {member_id: name for member_id, name in rows.all() if member_id is not None}
