"""More than one process (issue 16): several real ``copbot run`` processes on one throwaway PostgreSQL and
the session's Synapse, sharing one Matrix account.

* **Partitioning**: a process for the community "water" and one for "waste". A command in each
  community's room is answered once, by the process serving it (its /metrics count it, the other's do
  not), and a poll closing in each community is closed — its results posted once — by its own process.
* **Standby**: two processes with the same configuration (only their web ports differ, as two hosts'
  would). The second waits, ``/healthz`` saying ``"role": "standby"``; the active one is SIGKILLed; the
  standby takes over within 30 s (printed), and the commands sent just before the kill, during the gap and
  after are each answered exactly once, and a poll close that fell due in the gap is posted once.

PostgreSQL comes from tests/harness/postgres.py (skipped with the reason where ``initdb`` is missing, a
failure with ``COPBOT_TEST_POSTGRES_REQUIRED=1``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from nio import AsyncClient, RoomCreateResponse, RoomMessagesResponse, SyncResponse
from sqlalchemy.engine import make_url

from tests.e2e.matrix_support import send
from tests.figures import report
from tests.harness.synapse import RegisteredUser, Synapse

REPO_ROOT = Path(__file__).resolve().parents[2]
TAKEOVER_LIMIT = 30.0  # seconds, from the kill until the standby serves (the promise)
STEP = 30.0  # seconds any one wait may take


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Copbot:
    """One ``copbot run`` in a process group of its own, with its own web port; its log in its folder."""

    def __init__(self, name: str, directory: Path, config: Path) -> None:
        self.name = name
        self.directory = directory
        self.config = config
        self.port = free_port()
        self.log = directory / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "run", "--config", str(self.config)],
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "COPBOT_WEB__PORT": str(self.port)},
            )

    def kill(self) -> None:
        """SIGKILL, as a lost host or the OOM killer would: no clean-up at all."""
        assert self.process is not None and self.process.poll() is None, self.tail()
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int | None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return process.returncode if process is not None else None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            return process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            return process.wait(timeout=10)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return f"--- {self.name} ---\n" + "\n".join(text[-lines:])

    def _get(self, path: str) -> tuple[int, str] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return None

    async def health(self) -> dict[str, Any] | None:
        answer = await asyncio.to_thread(self._get, "/healthz")
        return json.loads(answer[1]) if answer is not None else None

    async def count(self, metric: str, **labels: str) -> float:
        """A counter's value from this process's /metrics (0 when it was never counted)."""
        answer = await asyncio.to_thread(self._get, "/metrics")
        assert answer is not None, self.tail()
        for line in answer[1].splitlines():
            found = re.match(rf"^{metric}\{{(.*)\}} (\S+)$", line)
            if found and all(f'{k}="{v}"' in found.group(1) for k, v in labels.items()):
                return float(found.group(2))
        return 0.0

    async def serving(self, role: str = "active") -> dict[str, Any]:
        """Wait until /healthz says ``role`` — for an active process: synced with the homeserver."""
        deadline = time.monotonic() + STEP
        while True:
            assert self.alive(), self.tail()
            health = await self.health()
            ready = health is not None and health.get("role") == role
            if role == "active":
                ready = ready and health is not None and health.get("platforms", {}).get("matrix") is True
            if ready:
                assert health is not None
                return health
            assert time.monotonic() < deadline, f"{self.name} never became {role}: {health}\n{self.tail()}"
            await asyncio.sleep(0.1)


def write_config(
    directory: Path,
    name: str,
    *,
    database_url: str,
    synapse: Synapse,
    bot: RegisteredUser,
    rooms: dict[str, str],
    communities: list[str] | None = None,
) -> Path:
    """A config for a copbot on ``database_url`` serving ``communities`` (None: all) of ``rooms``."""
    blocks = "\n".join(
        f'[[communities]]\nslug = "{slug}"\nname = "{slug.title()} CoP"\n\n'
        f'[communities.matrix]\nrooms = ["{room}"]\n'
        for slug, room in rooms.items()
    )
    instance = f"[instance]\ncommunities = {json.dumps(communities)}\n" if communities is not None else ""
    config = directory / f"{name}.toml"
    config.write_text(
        f"""\
database_url = "{database_url}"
log_level = "INFO"
log_file = "-"

[web]
host = "127.0.0.1"

[matrix]
homeserver = "{synapse.base_url}"
user_id = "{bot.user_id}"
password = "{bot.password}"

{instance}
{blocks}"""
    )
    return config


async def history(client: AsyncClient, room_id: str) -> list[dict[str, Any]]:
    """Every event of the room, oldest first, read back from the homeserver."""
    response = await client.sync(timeout=0, full_state=False)
    assert isinstance(response, SyncResponse), response
    start, events = response.next_batch, []
    while True:
        page = await client.room_messages(room_id, start=start, limit=1000)  # backwards from now
        assert isinstance(page, RoomMessagesResponse), page
        events += [event.source for event in page.chunk]
        if not page.chunk or not page.end or page.end == start:
            break
        start = page.end
    events.reverse()
    return events


def replied_to(event: dict[str, Any]) -> str | None:
    relates = (event.get("content") or {}).get("m.relates_to") or {}
    return (relates.get("m.in_reply_to") or {}).get("event_id")


class Room:
    """A community room as its member sees it: the bot's messages, read back from the homeserver."""

    def __init__(self, member: AsyncClient, room_id: str, bot_id: str) -> None:
        self.member = member
        self.room_id = room_id
        self.bot_id = bot_id

    async def said(self) -> list[dict[str, Any]]:
        events = await history(self.member, self.room_id)
        return [e for e in events if e.get("sender") == self.bot_id and e.get("type") == "m.room.message"]

    async def replies(self) -> Counter[str]:
        """How many times the bot replied to each event."""
        return Counter(target for e in await self.said() if (target := replied_to(e)) is not None)

    async def until(self, check: Callable[[list[dict[str, Any]]], bool], what: str, *procs: Copbot) -> None:
        deadline = time.monotonic() + STEP
        while not check(await self.said()):
            assert time.monotonic() < deadline, f"timed out waiting for {what}\n" + "\n".join(
                p.tail() for p in procs
            )
            await asyncio.sleep(0.3)

    async def poll(self, question: str, *procs: Copbot) -> int:
        """Create a poll closing in two minutes; its number."""
        command = await send(self.member, self.room_id, f'!poll create "{question}" Yes No --closes 2m')
        found: list[int] = []

        def created(said: list[dict[str, Any]]) -> bool:
            for event in said:
                match = re.match(r"📊 Poll #(\d+)\b", (event.get("content") or {}).get("body", ""))
                if replied_to(event) == command and match:
                    found.append(int(match.group(1)))
                    return True
            return False

        await self.until(created, f"poll {question!r}", *procs)
        return found[0]


def closed(said: list[dict[str, Any]], poll: int) -> int:
    """How many times the results of a closed poll were posted."""
    prefix = f"📊 Poll #{poll} (closed)"
    return sum((e.get("content") or {}).get("body", "").startswith(prefix) for e in said)


def close_soon(database_url: str, poll: int, seconds: float) -> datetime:
    """Move a poll's deadline (and its close job) to ``seconds`` from now, as if it had been created with
    ``--closes`` that short (the command allows no less than a minute)."""
    when = datetime.now(UTC) + timedelta(seconds=seconds)
    url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("UPDATE polls SET closes_at = %s WHERE id = %s", (when, poll))
        # The poll's message is posted by the command; its close job is stored once the command has
        # committed, a moment later (Context.schedule_at): wait for it rather than race it.
        for _ in range(100):
            updated = connection.execute(
                "UPDATE apscheduler_jobs SET next_run_time = %s WHERE id = %s",
                (when.timestamp(), f"poll:{poll}:close"),
            )
            if updated.rowcount == 1:
                break
            time.sleep(0.05)
        assert updated.rowcount == 1, f"no close job for poll {poll}"
    return when


def job_owners(database_url: str) -> dict[str, str]:
    url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as connection:
        return dict(connection.execute("SELECT id, owner FROM apscheduler_jobs").fetchall())


async def community_rooms(
    members: Any, synapse: Synapse, *slugs: str
) -> tuple[RegisteredUser, AsyncClient, dict[str, str]]:
    """A bot account and a member who made one room per community and invited the bot to each."""
    ana = await members("ana")
    bot = await asyncio.to_thread(synapse.register, f"copbot-multi-{uuid.uuid4().hex[:8]}")
    rooms = {}
    for slug in slugs:
        created = await ana.room_create(name=f"{slug} room", invite=[bot.user_id])
        assert isinstance(created, RoomCreateResponse), created
        rooms[slug] = created.room_id
    return bot, ana, rooms


# --- partitioning -----------------------------------------------------------------------------------------


async def test_two_processes_serve_their_own_communities_commands_and_jobs(
    synapse: Synapse, members: Any, fresh_postgres_url: str, tmp_path: Path
) -> None:
    bot, ana, room_ids = await community_rooms(members, synapse, "water", "waste")
    procs = {
        slug: Copbot(
            slug,
            tmp_path,
            write_config(
                tmp_path,
                slug,
                database_url=fresh_postgres_url,
                synapse=synapse,
                bot=bot,
                rooms=room_ids,
                communities=[slug],
            ),
        )
        for slug in ("water", "waste")
    }
    started = time.monotonic()
    try:
        for proc in procs.values():
            proc.start()  # together: migrations and the communities table are written by one at a time
        for proc in procs.values():
            await proc.serving()
        rooms = {slug: Room(ana, room_id, bot.user_id) for slug, room_id in room_ids.items()}
        everyone = tuple(procs.values())

        # A poll in each community, closing a few seconds from now: each process closes its own.
        polls = {slug: await rooms[slug].poll(f"Next {slug} topic?", *everyone) for slug in rooms}
        for poll in polls.values():
            close_soon(fresh_postgres_url, poll, 2.0)
        owners = job_owners(fresh_postgres_url)
        assert {owners[f"poll:{polls[slug]}:close"] for slug in polls} == {"water", "waste"}

        # A command in each community's room: answered once, by the process serving it.
        commands = {slug: await send(ana, room_ids[slug], "!about") for slug in rooms}
        for slug, command in commands.items():
            await rooms[slug].until(lambda said, c=command: any(replied_to(e) == c for e in said), "!about")
        for proc in procs.values():  # each answered its own community's, never the other's
            assert await proc.count("copbot_commands_total", command="about", outcome="ok") == 1, proc.tail()
            assert await proc.count("copbot_commands_total", command="poll create", outcome="ok") == 1

        for slug, poll in polls.items():
            await rooms[slug].until(
                lambda said, p=poll: closed(said, p) >= 1, f"poll {poll} closed", *everyone
            )
        await asyncio.sleep(2)  # a moment for a late duplicate
        for slug, room in rooms.items():
            said = await room.said()
            assert closed(said, polls[slug]) == 1, [e["content"].get("body") for e in said]
            assert (await room.replies())[commands[slug]] == 1
            runs = await procs[slug].count("copbot_scheduled_jobs_total", target="polls.close", outcome="ok")
            assert runs == 1, procs[slug].tail()
        report(
            "\npartitioned: 2 processes, 2 communities, each command and poll close handled once, by its "
            f"own process ({time.monotonic() - started:.0f} s)"
        )
        for proc in procs.values():
            assert proc.stop() == 0, proc.tail()
    finally:
        for proc in procs.values():
            proc.stop()


# --- standby ----------------------------------------------------------------------------------------------


async def test_a_standby_takes_over_within_30_s_losing_and_doubling_nothing(
    synapse: Synapse, members: Any, fresh_postgres_url: str, tmp_path: Path
) -> None:
    bot, ana, room_ids = await community_rooms(members, synapse, "water")
    config = write_config(
        tmp_path, "copbot", database_url=fresh_postgres_url, synapse=synapse, bot=bot, rooms=room_ids
    )
    first, second = Copbot("first", tmp_path, config), Copbot("second", tmp_path, config)
    room = Room(ana, room_ids["water"], bot.user_id)
    try:
        first.start()
        await first.serving()
        second.start()
        health = await second.serving("standby")
        assert health["status"] == "standby", health
        assert (await first.health() or {}).get("role") == "active"

        poll = await room.poll("Workshop date?", first, second)
        due = close_soon(fresh_postgres_url, poll, 0.3)  # falls due while nobody is active
        await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
        before = await send(ana, room.room_id, "!about")  # in flight at the kill, or just answered
        first.kill()
        killed = time.monotonic()
        during = await send(ana, room.room_id, "!help poll")  # in the gap
        health = await second.serving("active")
        takeover = time.monotonic() - killed
        after = await send(ana, room.room_id, "!about")
        commands = [before, during, after]
        await room.until(lambda said: {replied_to(e) for e in said} >= set(commands), "the replies", second)
        await room.until(lambda said: closed(said, poll) >= 1, f"poll {poll} closed", second)
        answered_at = time.monotonic() - killed
        await asyncio.sleep(2)  # a moment for a late duplicate
        replies = await room.replies()
        said = await room.said()
        report(
            f"\nstandby takeover: active {takeover:.1f} s after the SIGKILL (/healthz); the 3 commands "
            f"answered once each and the poll close (due at {due:%H:%M:%S}) posted once, "
            f"{answered_at:.1f} s after it"
        )
        assert takeover < TAKEOVER_LIMIT, second.tail()
        assert [replies[c] for c in commands] == [1, 1, 1], (replies, second.tail())
        assert closed(said, poll) == 1, [e["content"].get("body") for e in said]
        assert second.stop() == 0, second.tail()
    finally:
        first.stop()
        second.stop()
