"""What members and moderators wait for in a large community: each reading command, and the web pages and
feeds, timed through the whole pipeline (console adapter, SQLite file) — for information, to catch a
command that reads the whole community where it needs a few rows.

The community is the digest bench's (10,000 members who joined over a year, 400,000 activity rows, 5,000
repertoire items with 20,000 upvotes, meetings, polls, level changes), with expertise and interests in
seven profiles in ten and 1,000 weekly meetings besides. Each command runs 1 + RUNS times and its median
after the first is shown; the web paths are fetched through aiohttp's test client (a public community),
the calendar feed once more with the ETag it gave (what calendar apps send). Also a Matrix-like start-up
step: recording a room's member list of 5,000 known members. The asker is the console's moderator, with
interests of their own. Prints one line per figure; the table of `make bench` gets the slowest command,
the slowest page and the member list, for information (the issues set no target per command).
"""

from __future__ import annotations

import asyncio
import io
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert, select
from sqlmodel import col

from bench import digest
from bench.report import result
from bot.adapters.console import ConsoleAdapter
from bot.app import CopBot
from bot.clock import FakeClock
from bot.config import Settings
from bot.model import Member, Message, MessageCreated
from bot.tables import MemberRow
from bot.web.app import create_app
from plugins.meetings.models import Meeting
from plugins.profiles.models import Profile
from plugins.profiles.search import index_profile

RUNS = 5
TOPICS = (
    "leak detection, smart metering, asset management, membranes, nature-based solutions, customer "
    "engagement, water reuse, desalination, flood risk, sewer overflows, energy efficiency, pump "
    "scheduling, digital twins, pressure management, water quality, groundwater, stormwater, tariffs, "
    "regulation, climate adaptation, biosolids, nutrient recovery, SCADA, cybersecurity, workforce, "
    "procurement, GIS, hydraulic modelling, drought planning, public health"
).split(", ")
COMMANDS = (
    "match",
    "experts leak detection",
    "stats",
    "value report",
    "role list",
    "role list core",
    "role show",
    "repertoire top",
    "repertoire search pressure management",
    "meeting list",
    "meeting show 40",
    "poll list",
    "digest preview",
    "profile export",
)
PAGES = ("/", "/c/cop", "/c/cop/repertoire", "/c/cop/value", "/c/cop/meetings.ics")
LISTED = 5_000


class Output(io.TextIOBase):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.lines.append(text)
        return len(text)


async def seed_more(bot: CopBot, rng: random.Random) -> None:
    """Topics in the profiles (indexed for ``experts``), the asker's own, and a thousand weekly meetings."""
    async with bot.db.session() as session:
        profiles = list((await session.execute(select(Profile))).scalars())
        for profile in profiles:
            profile.expertise = ", ".join(rng.sample(TOPICS, rng.randint(1, 3)))
            profile.interests = ", ".join(rng.sample(TOPICS, rng.randint(1, 4)))
        await session.flush()
        for profile in profiles:
            await index_profile(session, profile)
        start = digest.END - timedelta(days=200)
        await session.execute(
            insert(Meeting),
            [
                {
                    "community_id": 1,
                    "platform": "console",
                    "room_id": "console",
                    "title": f"Series {index}",
                    "place": "https://meet.example",
                    "tz": "Europe/Amsterdam",
                    "starts_at": start + timedelta(days=rng.randrange(0, 180), hours=rng.randrange(0, 24)),
                    "rule": "FREQ=WEEKLY",
                    "creator_id": 1,
                    "created_at": start,
                    "updated_at": start,
                    "reminded_through": digest.END,
                }
                for index in range(1000)
            ],
        )


async def timed(run: Any) -> tuple[float, float]:
    """The first run and the median of the RUNS after it, in ms."""
    times = []
    for _ in range(1 + RUNS):
        started = time.perf_counter()
        await run()
        times.append((time.perf_counter() - started) * 1000)
    return times[0], statistics.median(times[1:])


async def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{directory}/bench.db",
            web={"enabled": False},
            communities=[{"slug": "cop", "name": "Our Community of Practice", "public": True}],
        )
        clock = FakeClock(digest.END)
        output = Output()
        adapter = ConsoleAdapter(
            clock=clock, community="cop", stdin=io.StringIO(""), stdout=output, interactive=False
        )
        bot = CopBot(settings, clock=clock, adapters=[adapter], run_scheduler_loop=False)
        await bot.start()
        seeding = time.perf_counter()
        rng = random.Random(11)
        await digest.seed(bot, bot.registry.community_ids["cop"], rng)
        await seed_more(bot, rng)
        seeded = time.perf_counter() - seeding
        asker = Member("console", "you", "you")  # the console's moderator
        number = 0

        async def say(line: str) -> None:
            nonlocal number
            number += 1
            message = Message(id=str(number), room=adapter.room, author=asker, text=f"!{line}")
            event = MessageCreated(
                event_id=f"bench:{number}", room=adapter.room, at=clock.now(), message=message
            )
            await bot.pipeline.handle(adapter, event)

        await say("profile set interests leak detection, smart metering")
        figures: list[tuple[str, float, float]] = []
        for command in COMMANDS:
            first, median = await timed(lambda command=command: say(command))  # type: ignore[misc]
            figures.append((f"!{command}", first, median))
        async with TestClient(TestServer(create_app(bot.services))) as client:
            for path in PAGES:

                async def fetch(path: str = path, headers: dict[str, str] | None = None) -> str:
                    response = await client.get(path, headers=headers or {})
                    await response.read()
                    assert response.status in (200, 304), (path, response.status)
                    return response.headers.get("ETag", "")

                first, median = await timed(fetch)
                figures.append((f"GET {path}", first, median))
            etag = await fetch("/c/cop/meetings.ics")
            first, median = await timed(lambda: fetch("/c/cop/meetings.ics", {"If-None-Match": etag}))
            figures.append(("GET /c/cop/meetings.ics, ETag known", first, median))
        async with bot.db.session() as session:
            listed = [
                Member("console", platform_id, name)
                for platform_id, name in (
                    await session.execute(
                        select(col(MemberRow.platform_id), col(MemberRow.display_name))
                        .where(col(MemberRow.platform) == "console")
                        .limit(LISTED)
                    )
                ).all()
            ]
        first, median = await timed(lambda: bot.pipeline.members_present(adapter.room, listed))
        figures.append((f"a room's {len(listed):,} listed members recorded", first, median))
        await bot.stop()
    width = max(len(name) for name, _, _ in figures)
    print(f"commands: seeded in {seeded:.0f} s; each the median of {RUNS} after a first run")
    for name, first, median in figures:
        print(f"commands: {name.ljust(width)}  {median:8.1f} ms  (first {first:.1f} ms)")
    commands, pages = figures[: len(COMMANDS)], figures[len(COMMANDS) : -1]
    for what, among in (("command", commands), ("web page or feed", pages)):
        name, _, median = max(among, key=lambda figure: figure[2])
        print(f"commands: the slowest {what}: {name} in {median:.1f} ms")
        result("commands", f"slowest {what} at scale: {name}", median, "ms", "information", None, None)
    name, _, median = figures[-1]
    result("commands", name, median, "ms", "information", None, None)


if __name__ == "__main__":
    asyncio.run(main())
