"""kill -9, not just SIGTERM (issue 15, item 1): on a real Synapse, a stream of commands survives copbot
being SIGKILLed at random moments — every command has its effect once and its reply once, in order.

copbot runs as a real ``copbot run`` process (its own process group, so a kill takes everything it
started) with a config pointing at the session's Synapse. A member sends 200 numbered ``!share`` commands,
paced, while the test SIGKILLs copbot 20 times at moments drawn from a seeded RNG — right after a command
was sent, in the middle of a catch-up batch (the first reply after a restart, with a backlog waiting), or
at a random moment after a start (during start-up included) — and starts it again after a random
downtime, so commands arrive both while copbot runs and while it is down. Then, with copbot running and
caught up, the room's whole history is read back: each command has exactly one reply (a rich reply whose
``m.in_reply_to`` is the command), the replies come in the order of the commands, and the database has
exactly one repertoire item per title.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nio import (
    AsyncClient,
    JoinResponse,
    MessageDirection,
    RoomCreateResponse,
    RoomMessagesResponse,
    SyncResponse,
)

from bot.failpoints import ENVIRONMENT
from tests.e2e.matrix_support import STEP, in_reply_to, send
from tests.figures import report
from tests.harness.synapse import Synapse

SEED = int(os.environ.get("COPBOT_CRASH_SEED", "15"))  # another seed: other moments
COMMANDS = 200
KILLS = 20
PACE = (0.05, 0.45)  # seconds between two commands
BURST = 0.1  # the share of commands followed by a burst of the next few, sent back to back
CATCH_UP = 90.0  # seconds copbot may take, after the last kill, to answer every command
SETTLE = 3.0  # seconds to wait after the last reply for a late duplicate
REPO_ROOT = Path(__file__).resolve().parents[2]


def title(n: int) -> str:
    return f"n{n}"


class Copbot:
    """``copbot run`` in a process group of its own, started and killed by the test (and only by it)."""

    def __init__(self, directory: Path, config: Path) -> None:
        self.directory = directory
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.runs = 0
        self.log = directory / "copbot.log"

    def start(self, failpoint: str = "") -> None:
        assert self.process is None
        self.runs += 1
        with self.log.open("ab") as log:
            log.write(f"\n===== run {self.runs} {failpoint} =====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "run", "--config", str(self.config)],
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                env={**os.environ, "PYTHONPATH": str(REPO_ROOT), ENVIRONMENT: failpoint},
            )
        self.started_at = time.monotonic()

    def kill(self) -> None:
        """SIGKILL copbot and whatever it started: no clean-up at all, as a power cut would leave it."""
        process, self.process = self.process, None
        assert process is not None
        if process.poll() is not None:
            raise AssertionError(f"copbot had exited by itself (code {process.returncode}): {self.tail()}")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    async def killed_itself(self) -> None:
        """Wait for copbot to SIGKILL itself at its failpoint."""
        process, deadline = self.process, time.monotonic() + STEP
        assert process is not None
        while process.poll() is None:
            assert time.monotonic() < deadline, f"copbot never reached its failpoint:\n{self.tail()}"
            await asyncio.sleep(0.05)
        assert process.returncode == -signal.SIGKILL, self.tail()
        self.process = None

    def stop(self) -> int | None:
        """A clean stop (SIGTERM), at the end; the exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            return process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            return None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(text[-lines:])


@dataclass
class Watch:
    """What a member's client sees in the room, live: the bot's replies, by the command they answer."""

    bot_id: str
    room_id: str
    replied: set[str] = field(default_factory=set)
    new_reply: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, client: AsyncClient) -> None:
        timeline_filter = {"room": {"timeline": {"limit": 500}}, "presence": {"types": []}}
        while True:
            response = await client.sync(timeout=1000, sync_filter=timeline_filter)
            if not isinstance(response, SyncResponse):
                await asyncio.sleep(0.1)
                continue
            room = response.rooms.join.get(self.room_id)
            for event in room.timeline.events if room else []:
                target = in_reply_to(event)
                if event.sender == self.bot_id and target is not None:
                    self.replied.add(target)
                    self.new_reply.set()


async def history(client: AsyncClient, room_id: str) -> list[dict[str, Any]]:
    """Every event of the room, oldest first, read back from the homeserver (not from a live sync)."""
    response = await client.sync(timeout=0, full_state=False)
    assert isinstance(response, SyncResponse), response
    start = response.next_batch
    events: list[dict[str, Any]] = []
    while True:
        page = await client.room_messages(room_id, start=start, direction=MessageDirection.back, limit=1000)
        assert isinstance(page, RoomMessagesResponse), page
        events += [event.source for event in page.chunk]
        if not page.chunk or not page.end or page.end == start:
            break
        start = page.end
    events.reverse()
    return events


def write_config(
    directory: Path, synapse: Synapse, bot_id: str, password: str, room_id: str, owner: str
) -> Path:
    config = directory / "config.toml"
    database = directory / "copbot.db"
    config.write_text(
        f"""\
database_url = "sqlite+aiosqlite:///{database}"
log_level = "INFO"
log_file = "-"

[web]
enabled = false

[matrix]
homeserver = "{synapse.base_url}"
user_id = "{bot_id}"
password = "{password}"
connect_timeout = 30

[[communities]]
slug = "water"
name = "Water CoP"
domain = "leak detection"

[communities.matrix]
rooms = ["{room_id}"]
accept_invites_from = ["{owner}"]
"""
    )
    return config


@dataclass
class Scene:
    """A community room on Synapse: ana sends commands, a watcher follows the bot's replies live, and copbot
    runs (as a process) on its own account with the room configured."""

    ana: AsyncClient
    room_id: str
    bot_id: str
    copbot: Copbot
    watch: Watch
    database: Path

    async def warm_up(self) -> str:
        """Start copbot for the first time and wait until it answers: it joined the room and took its
        position, so from then on no command may be lost. The id of the command it answered."""
        self.copbot.start()
        command: str | None = None
        asked = deadline = time.monotonic() + 60
        while command is None or command not in self.watch.replied:
            assert self.copbot.alive(), f"copbot exited at start-up:\n{self.copbot.tail()}"
            assert time.monotonic() < deadline, f"copbot never answered !help:\n{self.copbot.tail()}"
            if command is None or time.monotonic() - asked > 5:
                command, asked = await send(self.ana, self.room_id, "!help"), time.monotonic()
            await asyncio.sleep(0.2)
        return command

    async def answered(self, commands: set[str], timeout: float) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while not commands <= self.watch.replied:
            assert self.copbot.alive(), f"copbot exited:\n{self.copbot.tail()}"
            assert time.monotonic() < deadline, (
                f"{len(commands - self.watch.replied)} command(s) never answered:\n{self.copbot.tail()}"
            )
            await asyncio.sleep(0.1)

    async def replies(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The bot's messages in the room, oldest first, read back from the homeserver; and the commands."""
        events = await history(self.ana, self.room_id)
        mine = [e for e in events if e.get("sender") == self.bot_id and e.get("type") == "m.room.message"]
        return mine, [e for e in events if e.get("sender") == self.ana.user_id]

    def titles(self) -> Counter[str]:
        with contextlib.closing(sqlite3.connect(self.database)) as db:
            return Counter(dict(db.execute("SELECT title, count(*) FROM repertoire_items GROUP BY title")))


@pytest.fixture
async def scene(synapse: Synapse, members, tmp_path: Path) -> AsyncIterator[Scene]:  # type: ignore[no-untyped-def]
    ana = await members("ana")
    watcher = await members("watcher")
    account = await asyncio.to_thread(synapse.register, f"copbot-crash-{uuid.uuid4().hex[:8]}")
    async with asyncio.timeout(STEP):
        created = await ana.room_create(invite=[account.user_id, watcher.user_id])
    assert isinstance(created, RoomCreateResponse), created
    async with asyncio.timeout(STEP):
        assert isinstance(await watcher.join(created.room_id), JoinResponse)
    config = write_config(tmp_path, synapse, account.user_id, account.password, created.room_id, ana.user_id)
    watch = Watch(account.user_id, created.room_id)
    watching = asyncio.create_task(watch.run(watcher))
    copbot = Copbot(tmp_path, config)
    try:
        yield Scene(ana, created.room_id, account.user_id, copbot, watch, tmp_path / "copbot.db")
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        copbot.stop()


def in_reply_to_source(event: dict[str, Any]) -> str | None:
    relates = (event.get("content") or {}).get("m.relates_to") or {}
    return (relates.get("m.in_reply_to") or {}).get("event_id")


# --- at random moments ------------------------------------------------------------------------------------


@pytest.mark.slow  # a minute on two cores: run by .ci/run after `make test`, which stays under ten minutes
@pytest.mark.hang_after(1200)
async def test_sigkill_at_random_moments_loses_and_doubles_nothing(scene: Scene) -> None:
    rng = random.Random(SEED)
    copbot, watch = scene.copbot, scene.watch
    sent: dict[str, int] = {}  # command event id → its number
    sent_count = 0
    sent_one = asyncio.Event()
    kills: list[str] = []
    warm_up = await scene.warm_up()
    started = time.monotonic()

    async def stream() -> None:
        nonlocal sent_count
        n = 1
        while n <= COMMANDS:
            burst = rng.randint(2, 6) if rng.random() < BURST else 1
            for _ in range(min(burst, COMMANDS - n + 1)):
                event_id = await send(scene.ana, scene.room_id, f'!share story "{title(n)}" text {n}')
                sent[event_id] = n
                sent_count = n
                sent_one.set()
                n += 1
            await asyncio.sleep(rng.uniform(*PACE))

    async def after_sent(count: int) -> None:
        while sent_count < count:
            sent_one.clear()
            await sent_one.wait()

    async def killer(plan: list[tuple[int, str, float, float]]) -> None:
        for threshold, kind, delay, downtime in plan:
            await after_sent(threshold)
            if kind == "after-send":  # right after a command was sent (it may be on its way to copbot)
                await asyncio.sleep(delay)
            elif kind == "mid-batch":  # while copbot works through a backlog: at a reply with more due
                deadline = time.monotonic() + 5  # (with none due for that long: at that moment)
                while time.monotonic() < deadline:
                    watch.new_reply.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(watch.new_reply.wait(), deadline - time.monotonic())
                    if copbot.alive() and len(watch.replied.intersection(sent)) < sent_count:
                        break
                await asyncio.sleep(delay)
            else:  # "after-start": any moment of a run, its start-up included
                await asyncio.sleep(max(0.0, copbot.started_at + delay - time.monotonic()))
            copbot.kill()
            kills.append(kind)
            await asyncio.sleep(downtime)
            copbot.start()

    plan = []
    for threshold in sorted(rng.sample(range(3, COMMANDS - 5), KILLS)):
        kind = rng.choice(("after-send", "mid-batch", "after-start"))
        delay = {"after-send": rng.uniform(0, 0.05), "mid-batch": rng.uniform(0, 0.02)}.get(
            kind, rng.uniform(0.2, 4.0)
        )
        plan.append((threshold, kind, delay, rng.uniform(0.2, 2.5)))
    await asyncio.gather(stream(), killer(plan))
    assert len(kills) == KILLS

    # Caught up: every command answered (and a moment more, for a late duplicate).
    await scene.answered(set(sent), CATCH_UP)
    await asyncio.sleep(SETTLE)
    elapsed = time.monotonic() - started
    replies, _ = await scene.replies()
    assert copbot.stop() == 0, copbot.tail()

    # Every command has exactly one reply, and the replies come in the order of the commands.
    answered: Counter[int] = Counter()
    order: list[int] = []
    for event in replies:
        target = in_reply_to_source(event)
        if target in sent:
            answered[sent[target]] += 1
            order.append(sent[target])
    duplicates = sum(count - 1 for count in answered.values() if count > 1)
    missing = [n for n in range(1, COMMANDS + 1) if answered[n] == 0]
    unexpected = [
        event["content"].get("body", "")[:80]
        for event in replies
        if in_reply_to_source(event) not in sent and in_reply_to_source(event) != warm_up
    ]
    wrong = [
        n
        for event in replies
        if (n := sent.get(in_reply_to_source(event) or "")) is not None
        and not event["content"].get("body", "").startswith("Added to the repertoire as #")
    ]
    # Exactly one item per title in the database.
    titles = scene.titles()
    item_duplicates = sum(count - 1 for count in titles.values() if count > 1)
    items_missing = [n for n in range(1, COMMANDS + 1) if titles[title(n)] == 0]

    report(
        f"\nkill -9 on Matrix (seed {SEED}): {len(kills)} kills survived ({dict(Counter(kills))}), "
        f"{copbot.runs} runs, {len(sent)} commands, {sum(answered.values())} replies, "
        f"{duplicates} duplicate replies, {len(missing)} missing, {item_duplicates} duplicate items, "
        f"{len(items_missing)} items missing, {elapsed:.0f} s"
    )
    assert len(sent) == COMMANDS
    assert not missing, f"commands never answered: {missing}"
    assert duplicates == 0, {n: c for n, c in answered.items() if c > 1}
    assert order == sorted(order), f"replies out of order: {order}"
    assert not wrong, f"commands answered with something else: {wrong}"
    assert not unexpected, f"bot messages that answer no command: {unexpected}"
    assert item_duplicates == 0, {t: c for t, c in titles.items() if c > 1}
    assert not items_missing, f"items missing: {items_missing}"


# --- at each named step -----------------------------------------------------------------------------------

STEPS = [
    # (failpoint, command): copbot dies there while handling the command, is started again, and answers it
    ("command.replied", "share"),  # replied, not committed: run again, the same reply deduplicated
    ("command.committed", "share"),  # committed with its handled id: skipped when delivered again
    ("command.replied", "help"),  # a command that writes nothing, replied: run again, deduplicated
    ("command.committed", "help"),  # …and not yet recorded as handled: the same
    ("matrix.handled", "share"),  # the batch handled, neither its ids nor its token stored: it comes again
]


async def test_a_command_killed_at_each_step_is_done_and_answered_once(scene: Scene) -> None:
    """Deterministic: each step of handling a command, SIGKILLed right there (bot/failpoints.py).

    The command is sent while copbot is down, so the run that starts finds it in its first catch-up batch
    and dies at the step; the next run (same stored access token and device) must finish it exactly once.
    A reply sent before the kill is sent again with the same transaction id, and Synapse — which keeps a
    device's transaction ids for a day, across copbot's restarts — returns the first event instead of
    posting a second.
    """
    copbot = scene.copbot
    await scene.warm_up()
    assert copbot.stop() == 0, copbot.tail()
    commands: dict[str, tuple[str, str]] = {}
    for index, (point, kind) in enumerate(STEPS):
        text = f'!share story "step{index}" died at {point}' if kind == "share" else "!help share"
        command = await send(scene.ana, scene.room_id, text)
        commands[command] = (point, kind)
        copbot.start(failpoint=point)
        await copbot.killed_itself()
        copbot.start()
        # A reply sent before the kill may be seen already: a later command answered shows that this run
        # has handled everything before it (one member's commands are handled in order).
        probe = await send(scene.ana, scene.room_id, "!help")
        await scene.answered({command, probe}, STEP)
        assert copbot.stop() == 0, copbot.tail()

    copbot.start()  # a last run: nothing is answered again
    await scene.answered({await send(scene.ana, scene.room_id, "!help")}, STEP)
    await asyncio.sleep(SETTLE)
    replies, _ = await scene.replies()
    assert copbot.stop() == 0, copbot.tail()
    answers = Counter(in_reply_to_source(event) for event in replies)
    assert {commands[c]: answers[c] for c in commands} == {step: 1 for step in commands.values()}
    titles = scene.titles()
    assert {f"step{i}": titles[f"step{i}"] for i, (_, kind) in enumerate(STEPS) if kind == "share"} == {
        f"step{i}": 1 for i, (_, kind) in enumerate(STEPS) if kind == "share"
    }
