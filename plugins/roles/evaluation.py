"""The rules at work: a community's (or some persons') seats and statistics read, the rules decided, the
moves and grace periods stored in the caller's transaction, and after the commit mirrored, emitted as
LevelChanged and announced where the community wants it."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.context import Context, JobContext
from bot.model import Content, LevelChanged, Member, Room
from bot.tables import MemberRow
from plugins.roles import queries
from plugins.roles.base import Move
from plugins.roles.mirroring import Mirroring
from plugins.roles.queries import Seat
from plugins.roles.rules import CONTRIBUTIONS, LEVELS, Rules, Standing, Stats, decide

EVALUATION_PAGE = 5000
"""Person ids decided together when a whole community is evaluated: few enough that a page's seats and
statistics are a couple of MB, enough that the statements per page cost little beside the rows."""
READERS = 2
"""Pages of a whole community read at once, each on a connection of its own, while another is decided:
the database's work and the rules' share a machine's cores (see ``Evaluation._pages_read_ahead``)."""


class Evaluation(Mirroring):
    async def evaluate(
        self, ctx: Context | JobContext, community_id: int, persons: Sequence[int] | None, now: datetime
    ) -> list[Move]:
        """Decide and apply, for a whole community or some persons; returns the moves.

        A whole community is decided a page of person ids at a time (``queries.person_pages``), each page
        with set-based queries: the evaluation then holds one page of seats and statistics, not
        everyone's — with 100,000 members, everyone at once was ~40 MB that the process kept long after
        the nightly run. The moves are written page by page in the job's one transaction."""
        rules = self.rules_for(community_id)
        untracked = await queries.untracked_persons(ctx.session)
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
            standing = Standing(seat.level, locked, seat.below_since, seat.joined_at, seat.level_since)
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

    async def _tell(
        self, slug: str | None, move: Move, row: MemberRow, actor: Member | None, now: datetime
    ) -> None:
        member = store.as_member(row)
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


Facts = tuple[dict[int, Seat], dict[int, Stats]]
"""What the rules decide a page of persons by: their seats and their statistics in the window."""


async def _facts(
    session: AsyncSession, community_id: int, persons: Sequence[int], rules: Rules, now: datetime
) -> Facts:
    last: dict[int, datetime] | None = None
    if isinstance(persons, range):  # a page of the whole community
        seats, last = await queries.page_seats(session, community_id, persons)
    else:
        seats = await queries.seats(session, community_id, persons)
    stats = await queries.window_stats(
        session,
        community_id,
        now - rules.window,
        rules.weights,
        CONTRIBUTIONS,
        persons=persons,
        last=last,
        zone=rules.timezone,
    )
    return seats, stats
