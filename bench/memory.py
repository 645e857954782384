"""copbot's resident memory when idle, in the live process, as a community would run it.

Three figures, each read from ``/proc/<pid>/status`` after the bot answered its first commands and sat
idle (see ``bench/matrix_latency.py`` for the floor bot beside it):

* Matrix only, every plugin enabled, a restart on an existing (empty) database — target ≤ 80 MB;
* the same after 10,000 members, 100,000 activity rows and 10,000 repertoire items were added, and the
  bot was asked what touches them (experts, the repertoire, meeting list) — target: ≤ 10 MB more (no
  per-member cache that grows with the community);
* Matrix and Discord together (the tests' Discord-compatible server on loopback) on that data —
  target ≤ 100 MB.

Run with ``make bench`` (a throwaway Synapse, ~1 minute). Exits 0 when a target is missed (a report) and
non-zero when the measurement failed.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import insert, select  # noqa: E402

from bench.matrix_latency import (  # noqa: E402
    SETTLE,
    BenchError,
    BotProcess,
    Member,
    accounts,
    bench_synapse,
    child_env,
    compile_copbot,
    copbot_config,
    measure_startup,
    run_script,
    site_dir,
    start_synapse,
)
from bench.report import result  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.tables import ActivityEvent, CommunityRow, MemberRow, Membership  # noqa: E402
from plugins.repertoire.models import Item  # noqa: E402
from tests.harness.discord_server import FakeDiscord  # noqa: E402

MATRIX_TARGET_MB = 80.0
GROWTH_TARGET_MB = 10.0
BOTH_TARGET_MB = 100.0
MEMBERS = 10_000
ACTIVITY = 100_000
ITEMS = 10_000
ASKED = ("!about", "!experts leak detection", "!repertoire top", "!meeting list", "!about")
"""Commands after each start: the idle figure is of a bot that has worked, not one that only started."""
KINDS = ("message", "reaction", "command", "reply")
NOW = datetime.now(UTC)


async def bulk(database: Database, table: Any, rows: list[dict[str, Any]], batch: int = 20_000) -> None:
    for start in range(0, len(rows), batch):
        async with database.session() as session:
            await session.execute(insert(table), rows[start : start + batch])


async def seed(url: str, slug: str) -> float:
    """Members of the community, their activity over a year, and its repertoire, straight into the tables."""
    started = time.perf_counter()
    rng = random.Random(16)
    database = Database(url)
    try:
        async with database.session() as session:
            community_id = await session.scalar(select(CommunityRow.id).where(CommunityRow.slug == slug))
            first_id = (await session.scalar(select(MemberRow.id).order_by(MemberRow.id.desc()))) or 0
        assert community_id is not None, "the bot did not create its community"
        ids = range(first_id + 1, first_id + MEMBERS + 1)
        year = timedelta(days=365)
        await bulk(
            database,
            MemberRow.__table__,
            [
                {
                    "id": i,
                    "platform": "matrix",
                    "platform_id": f"@m{i}:localhost",
                    "display_name": f"Member {i}",
                    "first_seen": NOW - year,
                    "last_seen": NOW,
                }
                for i in ids
            ],
        )
        await bulk(
            database,
            Membership.__table__,
            [
                {
                    "community_id": community_id,
                    "member_id": i,
                    "joined_at": NOW - year,
                    "level_since": NOW - year,
                }
                for i in ids
            ],
        )
        await bulk(
            database,
            ActivityEvent.__table__,
            [
                {
                    "community_id": community_id,
                    "member_id": rng.choice(ids),
                    "kind": rng.choice(KINDS),
                    "platform": "matrix",
                    "room_id": "!bench",
                    "detail": "",
                    "at": NOW - year * rng.random(),
                }
                for _ in range(ACTIVITY)
            ],
        )
        kinds = ("story", "tool", "experience", "practice", "resource")
        await bulk(
            database,
            Item.__table__,
            [
                {
                    "community_id": community_id,
                    "kind": kinds[n % len(kinds)],
                    "title": f"Item {n}: how we found leaks in district {n % 97}",
                    "body": "We logged pressure at night and compared it with the day. " * 3,
                    "author_id": rng.choice(ids),
                    "added_by_id": rng.choice(ids),
                    "created_at": NOW - year * rng.random(),
                    "updated_at": NOW,
                }
                for n in range(1, ITEMS + 1)
            ],
        )
    finally:
        await database.close()
    return time.perf_counter() - started


def with_discord(config: Path, discord: FakeDiscord) -> Path:
    """The Matrix config plus a Discord application on the tests' server, the community on its guild."""
    text = config.read_text()
    text = text.replace(
        "[[communities]]",
        f"""[discord]
token = "{discord.token}"
application_id = "{discord.application_id}"
api_base_url = "{discord.api_base_url}"
gateway_url = "{discord.gateway_url}"
message_content = true

[[communities]]""",
    )
    text += f"""
[communities.discord]
guild_id = "{discord.guild_id}"
"""
    both = config.with_name("copbot-both.toml")
    both.write_text(text)
    return both


async def idle_rss(member: Member, bot: BotProcess) -> float:
    """Start, answer :data:`ASKED`, sit idle, read RSS; then stop."""
    await measure_startup(member, bot)
    for text in ASKED:
        sent = await member.send(bot.room_id, text)
        if await member.wait_reply({sent}, bot.user.user_id, 15.0) is None:
            raise BenchError(f"no answer to {text!r}\n{bot.log_tail()}")
    await member.quiet(SETTLE * 2)
    rss = bot.rss()
    status = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{bot.pid}/status").read_text().splitlines()  # noqa: ASYNC240 - /proc
        if ":" in line
    )
    print(
        f"memory:   threads {status['Threads'].strip()}, anonymous {status['RssAnon'].strip()}, "
        f"file-backed {status['RssFile'].strip()}, modules {len(await bot.read_modules())}"
    )
    bot.stop()
    return rss


async def run(workdir: Path) -> None:
    compile_copbot()
    synapse = bench_synapse(workdir)
    discord = FakeDiscord()
    member: Member | None = None
    bots: list[BotProcess] = []
    try:
        await start_synapse(synapse)
        await discord.start()
        _, member, [(copbot_user, room)] = await accounts(synapse, ["copbot"])

        site = site_dir(workdir)
        matrix_only = copbot_config(workdir, synapse, copbot_user, "#copbot-bench:localhost")
        both = with_discord(matrix_only, discord)

        def copbot(config: Path) -> BotProcess:
            bot = BotProcess(
                "copbot",
                copbot_user,
                room,
                [sys.executable, "-m", "bot", "run", "--config", str(config)],
                workdir,
                child_env(workdir, "copbot", site),
            )
            bots.append(bot)
            return bot

        first = copbot(matrix_only)
        await measure_startup(member, first)  # a fresh database: migrations, the community created
        first.stop()
        empty = await idle_rss(member, copbot(matrix_only))
        print(f"memory: Matrix only, existing empty database: {empty:.1f} MB idle")
        seeded = await seed(f"sqlite+aiosqlite:///{workdir / 'copbot.db'}", "water")
        print(
            f"memory: seeded {MEMBERS:,} members, {ACTIVITY:,} activity rows, {ITEMS:,} repertoire items "
            f"in {seeded:.1f} s"
        )
        full = await idle_rss(member, copbot(matrix_only))
        print(f"memory: Matrix only, with that data: {full:.1f} MB idle ({full - empty:+.1f} MB)")
        two = await idle_rss(member, copbot(both))
        connected = sum(1 for frame in discord.identify_payloads)
        print(f"memory: Matrix and Discord, with that data: {two:.1f} MB idle ({connected} gateway identify)")
        if not connected:
            raise BenchError("copbot never connected to the Discord gateway")
    finally:
        if member is not None:
            await member.stop()
        for bot in bots:
            bot.stop()
        await discord.stop()
        await asyncio.to_thread(synapse.stop)

    growth = full - empty
    checks = [
        (
            "RSS idle, Matrix only",
            empty,
            f"≤ {MATRIX_TARGET_MB:.0f} MB",
            empty / MATRIX_TARGET_MB,
            empty <= MATRIX_TARGET_MB,
        ),
        (
            "RSS growth with 10k members' data",
            growth,
            f"≤ {GROWTH_TARGET_MB:.0f} MB",
            growth / GROWTH_TARGET_MB,
            growth <= GROWTH_TARGET_MB,
        ),
        (
            "RSS idle, Matrix + Discord",
            two,
            f"≤ {BOTH_TARGET_MB:.0f} MB",
            two / BOTH_TARGET_MB,
            two <= BOTH_TARGET_MB,
        ),
    ]
    for figure, value, target, ratio, passed in checks:
        print(f"memory: {figure:<36} {value:>7.1f} MB (target {target}) — {'PASS' if passed else 'FAIL'}")
        result("memory", figure, value, "MB", target, ratio, passed)


async def main() -> None:
    print("memory: copbot's idle RSS on a throwaway Synapse (and the tests' Discord server), SQLite")
    with tempfile.TemporaryDirectory(prefix="copbot-bench-memory-") as directory:
        async with asyncio.timeout(900):
            await run(Path(directory))


if __name__ == "__main__":
    run_script("memory", main)
