"""Catch-up: 10,000 Matrix events sent while copbot was down, handled after it starts again.

copbot starts on a throwaway Synapse, answers, and is stopped. A member then sends 10,000 messages into
its room — 9,900 chat lines and, spread among them, 100 commands — and copbot is started again. Measured:
process start → the last command answered (target ≤ 10 s), that every command was answered exactly once
and in the order it was sent, and (from the database, after a stop) that every message was counted.

The Synapse is configured as README advises (``filter_timeline_limit: 10000``): copbot's first sync of
a run then carries the backlog. Beside copbot's figure the bench prints what Synapse alone takes to serve
the same events by one sync and by /messages pages (what any client is left with at Synapse's default of
100 events a sync: ~2 ms an event, nearly all of it one query for edits, on SQLite), and what it takes to
accept the 100 replies sent one after another, as answering in order must (~50 ms each on this machine:
half of the catch-up). The floor line compares copbot with the sync and the replies together.

Run with ``make bench`` (~2 minutes, most of it Synapse storing the 10,000 messages). Exits 0 when a
target is missed (a report) and non-zero when the measurement failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import aiohttp  # noqa: E402
from nio import AsyncClient, SyncResponse  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bench.matrix_latency import (  # noqa: E402
    BenchError,
    BotProcess,
    Member,
    _in_reply_to,
    accounts,
    bench_synapse,
    child_env,
    client_of,
    compile_copbot,
    copbot_config,
    measure_startup,
    run_script,
    site_dir,
    start_synapse,
)
from bench.report import result  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.tables import ActivityEvent  # noqa: E402
from tests.harness.synapse import (  # noqa: E402
    Synapse,
)

EVENTS = int(os.environ.get("BENCH_CATCHUP_EVENTS", "10000"))
"""Fewer for a quick look while changing copbot (the target is for 10,000)."""
COMMANDS = max(1, EVENTS // 100)
KEEP_LOG = os.environ.get("BENCH_CATCHUP_LOG", "")
"""A file to copy copbot's log of the catch-up to."""
PROFILE = (
    os.path.abspath(os.environ["BENCH_CATCHUP_PROFILE"]) if os.environ.get("BENCH_CATCHUP_PROFILE") else ""
)
"""A file to write a cProfile of copbot's catch-up run to (slows it: for finding where time goes)."""
TARGET_S = 10.0
SENDERS = 12
"""Chat lines sent at once while seeding (Synapse orders them; only the commands' order matters)."""
COMMAND = "!about"


class Watcher:
    """Every reply the bot sends from now on, in the order the member's client sees them.

    Replies sent before the watcher started (to the first run's start-up probes) can come with its first
    syncs; they are told apart by the homeserver's timestamp, so they are not counted as the catch-up's."""

    def __init__(self, client: AsyncClient, bot_id: str) -> None:
        self.client = client
        self.bot_id = bot_id
        self.replies: list[tuple[str, float]] = []
        self.reply_content: dict[str, Any] = {}
        """The content of a reply as copbot sent it (the reply floor sends the same)."""
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._since_ms = 0

    async def start(self) -> None:
        self._since_ms = int(time.time() * 1000)
        first = await self.client.sync(timeout=0)
        if not isinstance(first, SyncResponse):
            raise BenchError(f"member's first sync failed: {first}")
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        sync_filter = {"room": {"timeline": {"limit": 500}}, "presence": {"types": []}}
        while True:
            response = await self.client.sync(timeout=30000, sync_filter=sync_filter)
            seen = time.perf_counter()
            if not isinstance(response, SyncResponse):
                await asyncio.sleep(0.1)
                continue
            for room in response.rooms.join.values():
                for event in room.timeline.events:
                    command_id = _in_reply_to(event.source)
                    if (
                        command_id is not None
                        and event.sender == self.bot_id
                        and event.server_timestamp >= self._since_ms
                    ):
                        self.replies.append((command_id, seen))
                        self.reply_content = dict(event.source.get("content") or {})
            self._changed.set()
            self._changed = asyncio.Event()

    def answered(self, commands: list[str]) -> list[tuple[str, float]]:
        """The replies to ``commands`` (a reply to anything else — a start-up probe the first run left
        unanswered — is not the catch-up's), in the order they were seen."""
        wanted = set(commands)
        return [(command_id, seen) for command_id, seen in self.replies if command_id in wanted]

    async def wait_for(self, commands: list[str], timeout: float) -> None:  # noqa: ASYNC109 - a plain deadline
        deadline = time.perf_counter() + timeout
        while len({command_id for command_id, _ in self.answered(commands)}) < len(commands):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                count = len(self.answered(commands))
                raise BenchError(f"only {count}/{len(commands)} commands answered within {timeout:.0f} s")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._changed.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def send_all(member: Member, room: str) -> list[str]:
    """The 10,000 messages; returns the commands' event ids, in the order they were sent."""
    per_block = EVENTS // COMMANDS - 1
    gate = asyncio.Semaphore(SENDERS)
    commands: list[str] = []

    async def chat(n: int) -> None:
        async with gate:
            await member.send(room, f"a note about pressure logging, number {n}")

    for block in range(COMMANDS):
        await asyncio.gather(*(chat(block * per_block + n) for n in range(per_block)))
        commands.append(await member.send(room, COMMAND))
        if block % 20 == 19:
            print(f"catchup: {(block + 1) * (per_block + 1):,} messages sent", flush=True)
    return commands


async def synapse_position(synapse: Synapse, token: str) -> str:
    """The member's sync position now (before the messages are sent)."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        sync_filter = json.dumps({"room": {"timeline": {"limit": 1}}, "presence": {"types": []}})
        async with session.get(
            f"{synapse.base_url}/_matrix/client/v3/sync", params={"filter": sync_filter}
        ) as r:
            return str((await r.json())["next_batch"])


async def synapse_floors(
    synapse: Synapse,
    token: str,
    room: str,
    since: str,
    events: int,
    commands: list[str],
    reply: dict[str, Any],
) -> tuple[float, float, float]:
    """Seconds Synapse takes, for a client doing nothing else, to serve ``events`` of the room — by one sync
    from ``since`` (how copbot catches up where the homeserver allows a large timeline) and by /messages,
    1,000 a page (its most; how any client must where it does not) — and to accept a reply to each command,
    sent one after another as copbot sends them (same account, same ``reply`` content; the member's client
    syncing meanwhile, as during the catch-up): what any bot answering them once and in order waits for,
    however fast it is itself. The floors under a catch-up."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        url = f"{synapse.base_url}/_matrix/client/v3/sync"
        # Room for copbot's replies too: a timeline that must leave events out (``limited``) is paged by
        # Synapse itself, as slowly as /messages.
        big = json.dumps({"room": {"timeline": {"limit": 2 * events}}, "presence": {"types": []}})
        started = time.perf_counter()
        async with session.get(url, params={"filter": big, "since": since}) as r:
            start = (await r.json())["next_batch"]  # (a new sync would be Synapse's cached answer)
        by_sync = time.perf_counter() - started
        started, read = time.perf_counter(), 0
        room_path = f"{synapse.base_url}/_matrix/client/v3/rooms/{quote(room)}"
        while read < events:
            params = {"dir": "b", "from": start, "limit": str(min(1000, events - read))}
            async with session.get(f"{room_path}/messages", params=params) as r:
                body = await r.json()
            read += len(body.get("chunk") or [])
            if not body.get("chunk") or not body.get("end"):
                break
            start = body["end"]
        if read < events:
            raise BenchError(f"/messages served {read:,} of the {events:,} events")
        paging = time.perf_counter() - started
        started = time.perf_counter()
        for index, command_id in enumerate(commands):
            content = {**reply, "m.relates_to": {"m.in_reply_to": {"event_id": command_id}}}
            send = f"{room_path}/send/m.room.message/floor-{index}-{int(started * 1000)}"
            async with session.put(send, json=content) as r:
                if r.status != 200:
                    raise BenchError(f"a floor reply was refused: {r.status} {await r.text()}")
        return by_sync, paging, time.perf_counter() - started


LOG_EXCERPT = 20
"""Lines of copbot's log printed when the target is missed (the run's directory is gone afterwards)."""


def telling_lines(log: str) -> list[str]:
    """The lines of copbot's log that say why a catch-up was slow: warnings and errors (a sync that timed
    out, a rate limit waited out, a batch retried) and the paging back of what a sync left out."""
    return [
        line for line in log.splitlines() if " WARNING " in line or " ERROR " in line or "caught up" in line
    ]


async def count_messages(url: str) -> int:
    database = Database(url)
    try:
        async with database.session() as session:
            return int(await session.scalar(select(func.count()).select_from(ActivityEvent)) or 0)
    finally:
        await database.close()


async def run(workdir: Path) -> None:
    compile_copbot()
    synapse = bench_synapse(workdir)
    member: Member | None = None
    watcher: Watcher | None = None
    bot: BotProcess | None = None
    try:
        await start_synapse(synapse)
        member_user, member, [(copbot_user, room)] = await accounts(synapse, ["copbot"])
        site = site_dir(workdir)
        config = copbot_config(workdir, synapse, copbot_user, "#copbot-bench:localhost")
        bot = BotProcess(
            "copbot",
            copbot_user,
            room,
            [sys.executable, "-m", "bot", "run", "--config", str(config)],
            workdir,
            child_env(workdir, "copbot", site),
        )
        await measure_startup(member, bot)
        await member.quiet(1.0)
        bot.stop()
        url = f"sqlite+aiosqlite:///{workdir / 'copbot.db'}"
        before = await count_messages(url)
        await member.stop()
        member = None

        sender = client_of(synapse, member_user)
        seeding = Member(sender)
        # The floors are measured as the bot's account sees the room (another device of it): a sender's
        # own events cost Synapse more to serve (their transaction ids are looked up).
        since = await synapse_position(synapse, copbot_user.access_token)
        started = time.perf_counter()
        commands = await send_all(seeding, room)
        print(
            f"catchup: {EVENTS:,} messages sent while copbot was down, "
            f"in {time.perf_counter() - started:.0f} s"
        )
        await sender.close()

        reader = client_of(synapse, member_user)
        watcher = Watcher(reader, copbot_user.user_id)
        await watcher.start()
        if PROFILE:
            bot.argv[1:1] = ["-m", "cProfile", "-o", PROFILE]
        bot.start()
        await watcher.wait_for(commands, 300.0)
        took = max(seen for _, seen in watcher.answered(commands)) - bot.started_at
        await asyncio.sleep(3.0)  # a late duplicate would show by now
        bot.stop()
        bot = None
        counted = await count_messages(url) - before
        told = telling_lines((workdir / "copbot.log").read_text(errors="replace"))
        replies = list(watcher.replies)  # before the floor's replies, which the watcher sees too
        floor, paging, replying = await synapse_floors(
            synapse, copbot_user.access_token, room, since, EVENTS, commands, watcher.reply_content
        )
        if KEEP_LOG:
            shutil.copyfile(workdir / "copbot.log", KEEP_LOG)
    finally:
        if watcher is not None:
            await watcher.stop()
            await watcher.client.close()
        if member is not None:
            await member.stop()
        if bot is not None:
            bot.stop()
        await asyncio.to_thread(synapse.stop)

    watcher.replies = replies
    answered = [command_id for command_id, _ in watcher.answered(commands)]
    everything = [command_id for command_id, _ in watcher.replies]
    once = len(everything) == len(set(everything)) and set(answered) == set(commands)  # nothing twice
    in_order = answered == commands
    print(
        f"catchup: {took:.1f} s from process start to the last of {COMMANDS} commands answered "
        f"(target ≤ {TARGET_S:.0f} s); {len(answered)} replies, each command once: {once}, in order: "
        f"{in_order}; {counted:,}/{EVENTS:,} messages counted"
    )
    print(
        f"catchup: Synapse alone takes {floor:.1f} s to serve the same {EVENTS:,} events by one sync "
        f"(filter_timeline_limit raised, as README advises), {paging:.1f} s by /messages pages (its "
        f"default, 100 events a sync), and {replying:.1f} s to accept {COMMANDS} replies sent one after "
        f"another (answering in order allows no other way); copbot's own share: "
        f"{took - floor - replying:.1f} s (its start-up included)"
    )
    passed = took <= TARGET_S and once and in_order and counted >= EVENTS
    if not passed:
        print(f"catchup: what copbot's log says of the catch-up ({len(told)} line(s) worth reading):")
        for line in told[:LOG_EXCERPT]:
            print(f"catchup:   {line[:240]}")
    result(
        "catchup",
        f"{EVENTS:,} missed events handled",
        took,
        "s",
        f"≤ {TARGET_S:.0f} s, once, in order",
        took / TARGET_S,
        passed,
        reference="target",
    )
    result(
        "catchup",
        "the same, against Synapse serving them",
        took,
        "s",
        f"Synapse alone, one sync and {COMMANDS} replies: {floor + replying:.1f} s",
        took / (floor + replying) if floor + replying else None,
        None,
        reference="floor",
    )


async def main() -> None:
    print(f"catchup: {EVENTS:,} events missed while down, on a throwaway Synapse")
    with tempfile.TemporaryDirectory(prefix="copbot-bench-catchup-") as directory:
        async with asyncio.timeout(1200):
            await run(Path(directory))


if __name__ == "__main__":
    run_script("catchup", main)
