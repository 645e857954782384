"""Participation levels for a whole community: 100,000 members, 5,000,000 activity rows; target ≤ 3 s.

One community of 100,000 member accounts (a thousand of them second accounts linked to another, a score of
bots, one in a hundred gone), at every level — a few dozen core, some hundreds locked, some below their
level's keep thresholds for a while, some silent for months — and 5,000,000 activity rows of the kinds the
pipeline and the plugins record (messages and reactions mostly, a few contributions), spread evenly over
the last 60 days, so that about half fall in the 30-day window. Activity is skewed as in a real community:
six members in ten did anything in those 60 days, a few of them hundreds of times a week, most a handful.
Levels are where last night's evaluation left them, and for one in five a level off (moves due since), so
that some 10,000 people move. A fresh database is migrated to head; members and memberships are written
with Core executemany, the activity rows with the driver's executemany on SQLite and COPY on PostgreSQL,
its indexes dropped before and built after, as a bulk load does, then written to the disk (seeding time is
shown, not judged).

Then ``Roles.evaluate`` runs for the community as the nightly job runs it — a real CopBot with the roles
plugin, a JobContext in one unit of work, committed — and is timed: the statistics (``seats`` and
``window_stats``, the next pages read while a page is decided), the rules (``decide`` for everyone) and the
writing (grace periods, moves, history, the commit). Judged on SQLite; with PostgreSQL's server binaries
installed (found as the tests' throwaway cluster finds them) the same runs on a throwaway cluster for
information, otherwise a line says why not.
Environment: BENCH_LEVELS_MEMBERS (default 100000), BENCH_LEVELS_ROWS (default 5000000).
"""

from __future__ import annotations

import asyncio
import gc
import io
import os
import random
import sys
import tempfile
import time
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import accumulate, repeat
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import bindparam, func, insert, select, text, update

from bench.postgres import postgres_cluster
from bench.report import result
from bot.adapters.console import ConsoleAdapter
from bot.app import CopBot
from bot.clock import FakeClock
from bot.config import Settings
from bot.context import JobContext
from bot.db import Database
from bot.tables import ActivityEvent, MemberRow, Membership
from plugins.roles import queries
from plugins.roles.models import LevelChange
from plugins.roles.plugin import Roles
from plugins.roles.rules import CONTRIBUTIONS, DEFAULT_REQUIREMENTS, DEFAULT_WEIGHTS, LEVELS, Stats

TARGET_S = 3.0
MEMBERS = int(os.environ.get("BENCH_LEVELS_MEMBERS", "100000"))
ROWS = int(os.environ.get("BENCH_LEVELS_ROWS", "5000000"))
DAYS = 60  # activity spread over the last 60 days; the rules look at the last 30
BATCH = 50_000
NOW = datetime(2026, 12, 1, 3, 20, tzinfo=UTC)  # when the nightly job runs
WINDOW = timedelta(days=30)  # the rules' window (RolesConfig.window_days)
COMMUNITY = "cop"

# kind → share of the rows (what the pipeline records: messages and reactions mostly, few contributions)
KINDS: dict[str, float] = {
    "message": 62.0,
    "reaction": 22.0,
    "command": 5.0,
    "poll_vote": 2.5,
    "rsvp": 1.5,
    "upvote_received": 1.5,
    "repertoire_used": 1.2,
    "attendance": 1.2,
    "message_saved": 0.8,
    "newcomer_answered": 0.6,
    "repertoire_item": 0.4,
    "meeting_notes": 0.3,
    "repertoire_save": 1.0,  # recorded by the repertoire, given no weight by the rules
}
ROOMS = ("general", "leakage", "metering", "newcomers", "meetings", "random")


class NullWriter(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


class Plan:
    """Who is who: which accounts are active and how much, linked, bots, gone, since when, at which level."""

    def __init__(self, rng: random.Random) -> None:
        ids = list(range(1, MEMBERS + 1))
        self.bots = set(rng.sample(ids, min(20, MEMBERS // 100)))
        humans = [i for i in ids if i not in self.bots]
        second = rng.sample(humans, MEMBERS // 100)  # second accounts, each linked to a first one
        firsts = sorted(set(humans) - set(second))
        self.person = {account: rng.choice(firsts) for account in second}
        self.active = rng.sample(humans, int(len(humans) * 0.6))  # did anything in the last 60 days
        # a few very active members, many quiet ones: the member of rank r writes ∝ 1 / (r + 20)
        self.cumulative = list(accumulate(1 / (rank + 20) for rank in range(len(self.active))))
        self.left = set(rng.sample(humans, MEMBERS // 100))
        self.joined = {member: NOW - timedelta(days=rng.uniform(30, 1000)) for member in ids}
        self.silent_since = {  # the silent ones: last seen two months to a year ago
            member: max(self.joined[member], NOW - timedelta(days=rng.uniform(61, 400))) for member in ids
        }
        # last night's window, 31 to 1 days ago, as the rules saw it: rows per account and kind, and who
        # did anything on each UTC day
        self.counted: Counter[tuple[int, str]] = Counter()
        self.seen_on: dict[int, set[int]] = defaultdict(set)
        self.last_seen: dict[int, float] = {}  # member → their last activity, in seconds from 60 days ago

    def settle(self, rng: random.Random) -> None:
        """The levels last night's evaluation left, and for one in five a level next to it: what moved since
        (and moderators' doing), as many moves as a busy night's."""
        scores: dict[int, float] = defaultdict(float)
        contributions: dict[int, int] = defaultdict(int)
        for (member, kind), count in self.counted.items():
            person = self.person.get(member, member)
            scores[person] += DEFAULT_WEIGHTS.get(kind, 0.0) * count
            contributions[person] += count if kind in CONTRIBUTIONS else 0
        days: Counter[int] = Counter()
        for members in self.seen_on.values():
            days.update({self.person.get(member, member) for member in members})
        self.levels = {}
        for member in range(1, MEMBERS + 1):
            person = self.person.get(member, member)
            stats = Stats(scores.get(person, 0.0), contributions.get(person, 0), days.get(person, 0))
            if DEFAULT_REQUIREMENTS["active"].met(stats):
                level = "active"
            elif DEFAULT_REQUIREMENTS["occasional"].met(stats):
                level = "occasional"
            elif person not in scores and NOW - self.silent_since[person] > timedelta(days=90):
                level = "transactional"
            else:
                level = "peripheral"
            if rng.random() < 0.2:
                index = LEVELS.index(level) + rng.choice((-1, 1))
                level = LEVELS[min(max(index, 1), len(LEVELS) - 1)]
            self.levels[member] = level
        for member in rng.sample(self.active[:2000], min(40, len(self.active))):
            self.levels[member] = "core"
        for account, person in self.person.items():  # one person, one level on each of their accounts
            self.levels[account] = self.levels[person]


def member_rows(plan: Plan) -> list[dict[str, Any]]:
    rows = []
    for member in range(1, MEMBERS + 1):
        platform = "matrix" if member in plan.person else "discord"
        rows.append(
            {
                "id": member,
                "platform": platform,
                "platform_id": f"{platform}-{member}",
                "display_name": f"member {member}",
                "is_bot": member in plan.bots,
                "timezone": None,
                "reminders": "room",
                "person_id": plan.person.get(member),
                "first_seen": plan.joined[member],
                "last_seen": plan.silent_since[member],  # the active ones' set from their activity later
            }
        )
    return rows


def membership_rows(plan: Plan, rng: random.Random, community_id: int) -> list[dict[str, Any]]:
    rows = []
    locked = set(rng.sample(range(1, MEMBERS + 1), MEMBERS // 300))
    for member in range(1, MEMBERS + 1):
        joined = plan.joined[member]
        level = plan.levels[member]
        below = None
        if level in ("active", "occasional") and rng.random() < 0.2:
            below = NOW - timedelta(days=rng.uniform(0, 20))  # some reach the 14 days' grace tonight
        rows.append(
            {
                "community_id": community_id,
                "member_id": member,
                "joined_at": joined,
                "left_at": NOW - timedelta(days=rng.uniform(1, 60)) if member in plan.left else None,
                "level": level,
                "level_since": since_for(plan, member, level, joined + (NOW - joined) * rng.random()),
                "locked": member in locked,
                "below_since": below,
                "last_seen": plan.silent_since[member],  # as the member's own (one community here)
            }
        )
    return rows


def since_for(plan: Plan, member: int, level: str, drawn: datetime) -> datetime:
    """When the member came to their level. A transactional member was moved there after 90 days of
    silence (or a month ago at the latest, by a moderator): those active since move back tonight, as the
    rules bring back anyone active after the move; other levels since any time after joining."""
    if level != "transactional":
        return drawn
    moved = min(plan.silent_since[member] + timedelta(days=90), NOW - timedelta(days=30))
    return max(plan.joined[member], moved)


def activity_batches(
    plan: Plan, rng: random.Random, community_id: int, *, as_text: bool
) -> Iterator[list[tuple[Any, ...]]]:
    """Day by day from 60 days ago, each day's rows in time order (as the journal appends them), as
    (community_id, member_id, kind, platform, room_id, detail, at): ``at`` as SQLAlchemy stores it on
    SQLite (naive UTC ISO text) when ``as_text``, else an aware datetime. Tallies last night's window and
    when each member was last seen on the way."""
    kinds, shares = list(KINDS), list(accumulate(KINDS.values()))
    start = NOW - timedelta(days=DAYS)
    midnight = 86400.0 - (start.hour * 3600 + start.minute * 60)  # seconds into each day to UTC midnight
    counted = range(DAYS - 1 - WINDOW.days, DAYS - 1)  # last night's window: whole days from ``start``
    platforms = dict.fromkeys(plan.person, "matrix")
    written = 0
    batch: list[tuple[Any, ...]] = []
    for day in range(DAYS):
        count = ROWS * (day + 1) // DAYS - written
        written += count
        who = rng.choices(plan.active, cum_weights=plan.cumulative, k=count)
        what = rng.choices(kinds, cum_weights=shares, k=count)
        offsets = sorted(rng.random() * 86400.0 for _ in range(count))
        base = start + timedelta(days=day)
        if as_text:
            base = base.replace(tzinfo=None)
            times: list[Any] = [(base + timedelta(seconds=o)).isoformat(" ", "microseconds") for o in offsets]
        else:
            times = [base + timedelta(seconds=o) for o in offsets]
        batch.extend(
            zip(
                repeat(community_id),
                who,
                what,
                [platforms.get(member, "discord") for member in who],
                rng.choices(ROOMS, k=count),
                ["role show" if kind == "command" else "" for kind in what],
                times,
                strict=False,
            )
        )
        for member, offset in dict(zip(who, offsets, strict=True)).items():  # the day's last, in order
            plan.last_seen[member] = day * 86400.0 + offset
        if day in counted:
            plan.counted.update(zip(who, what, strict=True))
            before = bisect_left(offsets, midnight)  # the rows before UTC midnight, and after it
            plan.seen_on[day].update(who[:before])
            plan.seen_on[day + 1].update(who[before:])
        while len(batch) >= BATCH:
            yield batch[:BATCH]
            del batch[:BATCH]
    if batch:
        yield batch


ACTIVITY_COLUMNS = ("community_id", "member_id", "kind", "platform", "room_id", "detail", "at")


async def seed(database: Database, community_id: int) -> float:
    """Members and memberships with Core executemany; the activity rows with the driver's executemany
    (SQLite) or COPY (PostgreSQL), the activity indexes built once afterwards, as a bulk load does."""
    started = time.perf_counter()
    rng = random.Random(2026)
    plan = Plan(rng)
    async with database.session() as session:  # last seen: long ago, till their activity says otherwise
        members = member_rows(plan)
        for start in range(0, len(members), BATCH):
            await session.execute(insert(MemberRow.__table__), members[start : start + BATCH])
    indexes = list(ActivityEvent.__table__.indexes)
    async with database.engine.connect() as connection:
        await connection.run_sync(lambda sync: [index.drop(sync) for index in indexes])
        if not database.is_sqlite:  # the rows' foreign keys are known good: not checked row by row
            await connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        columns = ", ".join(ACTIVITY_COLUMNS)
        for batch in activity_batches(plan, rng, community_id, as_text=database.is_sqlite):
            if database.is_sqlite:
                await connection.exec_driver_sql(
                    f"INSERT INTO activity_events ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)", batch
                )
            else:
                raw = await connection.get_raw_connection()
                await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                    "activity_events", records=batch, columns=ACTIVITY_COLUMNS
                )
        await connection.run_sync(lambda sync: [index.create(sync) for index in indexes])
        await connection.commit()
    plan.settle(rng)
    members_table = MemberRow.__table__
    start = NOW - timedelta(days=DAYS)
    async with database.session() as session:
        memberships = membership_rows(plan, rng, community_id)
        for first in range(0, len(memberships), BATCH):
            await session.execute(insert(Membership.__table__), memberships[first : first + BATCH])
        await session.execute(
            update(members_table)
            .where(members_table.c.id == bindparam("member"))
            .values(last_seen=bindparam("seen")),
            [
                {"member": member, "seen": start + timedelta(seconds=seconds)}
                for member, seconds in plan.last_seen.items()
            ],
        )
        memberships_table = Membership.__table__
        await session.execute(
            update(memberships_table)
            .where(
                memberships_table.c.community_id == community_id,
                memberships_table.c.member_id == bindparam("member"),
            )
            .values(last_seen=bindparam("seen")),
            [
                {"member": member, "seen": start + timedelta(seconds=seconds)}
                for member, seconds in plan.last_seen.items()
            ],
        )
    async with database.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        if database.is_sqlite:  # the WAL written back, as in a bot that has been running a while
            await connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        else:  # autovacuum's statistics, which a running server would have
            await connection.execute(text("VACUUM ANALYZE"))
    # The seeding's ~850 MB on their way to the disk before the clock starts: left to the kernel's writeback,
    # they held up the evaluation's own writes (10,000 memberships updated in 1.4 s instead of 0.1 s right
    # after a fresh copy of the same file), which no nightly run on a database at rest meets.
    await asyncio.to_thread(os.sync)
    return time.perf_counter() - started


class Stopwatch:
    """Where one evaluation's time went. Reading (seats and statistics) overlaps deciding and writing —
    the plugin reads the next pages on connections of their own meanwhile — so reading is the time during
    which any read was under way, and writing the writes' own."""

    PHASES: ClassVar[dict[str, str]] = {
        "seats": "stats",
        "window_stats": "stats",
        "set_below_since": "write",
        "set_levels": "write",
        "members_of_seats": "write",
        "page_seats": "stats",
    }

    def __init__(self) -> None:
        self.spent = {"stats": 0.0, "write": 0.0}
        self._originals: dict[str, Callable[..., Awaitable[Any]]] = {}
        self._reading = 0
        self._reading_since = 0.0

    def __enter__(self) -> Stopwatch:
        for name, phase in self.PHASES.items():
            original = getattr(queries, name)
            self._originals[name] = original
            setattr(queries, name, self._timed(original, phase))
        return self

    def __exit__(self, *_: object) -> None:
        for name, original in self._originals.items():
            setattr(queries, name, original)

    def _timed(self, original: Callable[..., Awaitable[Any]], phase: str) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            if phase == "stats":
                if self._reading == 0:
                    self._reading_since = started
                self._reading += 1
            try:
                return await original(*args, **kwargs)
            finally:
                ended = time.perf_counter()
                if phase == "stats":
                    self._reading -= 1
                    if self._reading == 0:
                        self.spent["stats"] += ended - self._reading_since
                else:
                    self.spent[phase] += ended - started

        return timed


async def bench(url: str, backend: str) -> str:
    settings = Settings(database_url=url, web={"enabled": False})
    clock = FakeClock(NOW)
    adapter = ConsoleAdapter(
        clock=clock, community=COMMUNITY, stdin=io.StringIO(""), stdout=NullWriter(), interactive=False
    )
    bot = CopBot(settings, clock=clock, adapters=[adapter], plugins=[Roles], run_scheduler_loop=False)
    await bot.start()
    try:
        community_id = bot.registry.community_ids[COMMUNITY]
        seeded = await seed(bot.db, community_id)
        # The seeding's garbage is not the evaluation's to collect, nor what it keeps the evaluation's to walk
        # again and again: a running copbot freezes what start-up built (CopBot.start), and a nightly run's
        # collections see only what handling events since made, not millions of seeded rows' leftovers.
        gc.collect()
        gc.freeze()
        plugin = bot.registry.plugins["roles"]
        assert isinstance(plugin, Roles)
        with Stopwatch() as watch:
            started = time.perf_counter()
            async with bot.db.session() as session:
                ctx = JobContext(bot.services, session, "roles.evaluate_all", NOW)
                moves = await plugin.evaluate(ctx, community_id, None, NOW)
                committing = time.perf_counter()
            watch.spent["write"] += time.perf_counter() - committing
            took = time.perf_counter() - started
        async with bot.db.session() as session:
            history = await session.scalar(select(func.count()).select_from(LevelChange))
        assert history == len(moves), (history, len(moves))
    finally:
        await bot.stop()
    verdict = "PASS" if took <= TARGET_S else "FAIL"
    judged = took <= TARGET_S if backend == "sqlite" else None
    result(
        "levels",
        f"evaluate {MEMBERS:,} members, {backend}",
        took,
        "s",
        f"≤ {TARGET_S:.0f} s",
        took / TARGET_S,
        judged,
    )
    if backend != "sqlite":
        verdict = f"for information, {verdict.lower()}"
    return (
        f"levels[{backend}, {MEMBERS:,} members, {ROWS:,} activity rows]: evaluate {took:.1f} s "
        f"(reads under way {watch.spent['stats']:.1f} s, beside deciding and writing; writing "
        f"{watch.spent['write']:.1f} s; "
        f"{len(moves):,} moves) (target ≤ {TARGET_S:.0f} s) — {verdict}; seeded in {seeded:.0f} s"
    )


async def run() -> None:
    with tempfile.TemporaryDirectory() as directory:
        print(await bench(f"sqlite+aiosqlite:///{directory}/bench.db", "sqlite"), flush=True)
    started = postgres_cluster("bench_levels")
    if isinstance(started, str):
        print(f"levels[postgresql]: skipped — PostgreSQL not available: {started}")
        return
    cluster, url = started
    try:
        print(await bench(url, "postgresql"))
    finally:
        cluster.stop()


if __name__ == "__main__":
    asyncio.run(run())
