"""Bad platforms and bad storage while copbot runs: said once, shown on /healthz, retried, recovered.

For each failure — a homeserver that cannot be reached, a revoked access token, a database that refuses
writes (read-only, or its disk full), a Discord gateway outage — the operator gets one log line saying
what is wrong and what to do (not a traceback per event or per retry), ``/healthz`` answers 503 naming
the failing part, copbot retries with back-off, and when the cause goes away it recovers by itself:
``/healthz`` is back to 200, and the activity and messages of the outage are written and sent.

Real servers throughout: the session's Synapse (behind a TCP gate the test can shut, as a closed port
would be), copbot's own SQLite file (made to refuse writes on every connection copbot takes), and the
tests' Discord server (its gateway refusing connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot import outbox
from bot.app import CopBot
from bot.model import Content, Room
from bot.tables import ActivityEvent, MemberRow, OutboxRow
from bot.web.app import create_app
from tests.conftest import make_settings
from tests.e2e.matrix_support import (
    SLUG,
    STEP,
    BotAccount,
    Bots,
    Echo,
    Recorder,
    adapter_of,
    ask,
    eventually,
    reply,
    room_with_bot,
    send,
)
from tests.harness.discord_server import FakeDiscord, HandlerErrors
from tests.harness.refused_writes import RefusedWrites
from tests.harness.synapse import Synapse, wait_for_event

Health = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]
RECOVERY = 60.0  # seconds a recovery may take once the cause is gone (back-off included)


# --- helpers ----------------------------------------------------------------------------------------------


class Gate:
    """A TCP proxy in front of a server. ``close()`` turns it into a closed port — connections open
    through it are cut, new ones refused — and ``open()`` brings it back on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, upstream}
        await asyncio.gather(self._pipe(reader, upstream), self._pipe(upstream_reader, writer))
        self._writers -= {writer, upstream}

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            while data := await source.read(65536):
                target.write(data)
                await target.drain()
        target.transport.abort()


@contextlib.asynccontextmanager
async def healthz(bot: CopBot) -> AsyncIterator[Health]:
    """``await health()`` → (status, body) of the bot's /healthz."""
    async with TestClient(TestServer(create_app(bot.services))) as client:

        async def health() -> tuple[int, dict[str, Any]]:
            response = await client.get("/healthz")
            return response.status, await response.json()

        yield health


async def health_becomes(
    health: Health,
    status: int,
    part: str | None = None,
    timeout: float = STEP,  # noqa: ASYNC109
) -> dict[str, Any]:
    """Poll /healthz until it answers ``status`` (with ``part`` among its problems); the body."""
    deadline = time.monotonic() + timeout
    code, body = await health()
    while not (code == status and (part is None or part in body.get("problems", {}))):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"/healthz did not become {status} {part or ''} in {timeout} s: {code} {body}"
            )
        await asyncio.sleep(0.1)
        code, body = await health()
    return body


def said(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    """What copbot logged at ``level`` or above, one string per line."""
    return [
        f"{record.levelname} {record.getMessage()}"
        for record in caplog.records
        if record.name.startswith("bot") and record.levelno >= level
    ]


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{record.name}: {record.getMessage()}"
        for record in caplog.records
        if record.exc_info and record.name.startswith(("bot", "discord"))
    ]


async def start_bot(bots: Bots, account: BotAccount, homeserver: str) -> CopBot:
    """A Matrix bot like ``bots.start`` makes, on another address for the homeserver."""
    settings = make_settings(
        bots.tmp_path,
        database_url=account.database_url,
        matrix={"homeserver": homeserver, "user_id": account.user_id, "password": account.password},
        communities=[
            {
                "slug": SLUG,
                "name": "Water CoP",
                "domain": "leak detection",
                "matrix": {"accept_invites_from": [account.owner]},
            }
        ],
    )
    bot = CopBot(settings, plugins=[Echo, Recorder], run_scheduler_loop=False)
    await bot.start()
    bots.running.append(bot)
    return bot


async def activity_of(bot: CopBot, platform: str, platform_id: str, kind: str) -> int:
    await bot.pipeline.journal.flush()
    async with bot.db.session() as session:
        query = (
            select(func.count())
            .select_from(ActivityEvent)
            .join(MemberRow, MemberRow.id == ActivityEvent.member_id)  # type: ignore[arg-type]
            .where(MemberRow.platform == platform, MemberRow.platform_id == platform_id)
            .where(ActivityEvent.kind == kind)
        )
        return int((await session.execute(query)).scalar_one())


async def queue_message(bot: CopBot, key: str, room: Room, text: str) -> int:
    """What a scheduled job does with its message: stored in its unit of work, then delivered; how many
    went out at once."""
    async with bot.db.session() as session:
        await outbox.put(session, key, Content(text), room=room, now=bot.clock.now())
    return await bot.pipeline.outbox.deliver([key])


async def outbox_row(bot: CopBot, key: str) -> OutboxRow:
    async with bot.db.session() as session:
        row = (await session.execute(select(OutboxRow).where(OutboxRow.key == key))).scalar_one()  # type: ignore[arg-type]
    return row


async def marked_sent(bot: CopBot, key: str) -> None:
    deadline = time.monotonic() + STEP
    while (await outbox_row(bot, key)).sent_at is None:
        assert time.monotonic() < deadline, f"{key} was not marked sent"
        await asyncio.sleep(0.05)


# --- Matrix: the homeserver out of reach ------------------------------------------------------------------


async def test_an_unreachable_homeserver_is_said_once_shown_and_recovered_from(  # type: ignore[no-untyped-def]
    bots: Bots, members, synapse: Synapse, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    gate = Gate(synapse.port)
    await gate.open()
    owner, ana = await members("owner"), await members("ana")
    account = await asyncio.to_thread(bots.account, owner.user_id)
    bot = await start_bot(bots, account, gate.url)
    adapter = adapter_of(bot)
    room_id = await room_with_bot(owner, adapter.user_id, ana)
    await send(ana, room_id, "hello before")
    assert (await ask(owner, bot, room_id, "!about"))["body"].startswith("I am copbot")
    try:
        async with healthz(bot) as health:
            assert (await health())[0] == 200
            caplog.clear()
            await gate.close()  # the homeserver's port is closed now, as far as copbot can tell

            body = await health_becomes(health, 503, "matrix")
            assert body["platforms"] == {"matrix": False} and body["database"] is True
            assert "cannot reach" in body["problems"]["matrix"] and "connection refused" in str(body)
            # Meanwhile members go on talking (their homeserver is fine), and a job's message is due.
            for n in range(5):
                await send(ana, room_id, f"while copbot is cut off {n}")
            command = await send(owner, room_id, "!echo are you there?")
            room = Room("matrix", room_id)
            assert await queue_message(bot, "recovery:matrix", room, "A notice from a job") == 0
            await asyncio.sleep(6)  # several attempts, backing off

            assert adapter.trouble.failures >= 3
            assert (await outbox_row(bot, "recovery:matrix")).attempts == 0  # waited; no attempt lost on it
            lines = said(caplog)
            assert len(lines) == 1, lines
            assert "matrix: cannot reach" in lines[0] and "check that the homeserver is up" in lines[0]
            assert tracebacks(caplog) == []

            await gate.open()
            await health_becomes(health, 200, timeout=RECOVERY)  # the next attempt, up to 15 s away
            assert (await reply(owner, bot, command))["body"].endswith("said: are you there?")
        bot_id = adapter.user_id
        await wait_for_event(
            owner, lambda e: e.sender == bot_id and e.source["content"].get("body") == "A notice from a job"
        )
        await marked_sent(bot, "recovery:matrix")
        assert await activity_of(bot, "matrix", ana.user_id, "message") == 6
        assert await activity_of(bot, "matrix", owner.user_id, "command") == 2
        assert any("matrix: connected again after" in line for line in said(caplog, logging.INFO))
        assert tracebacks(caplog) == []
    finally:
        await gate.close()


# --- Matrix: a revoked access token -----------------------------------------------------------------------


async def test_a_revoked_token_is_replaced_by_a_password_login_without_a_restart(  # type: ignore[no-untyped-def]
    bots: Bots, members, synapse: Synapse, caplog: pytest.LogCaptureFixture
) -> None:
    """A configured token and a password: when the token is revoked, copbot logs in again at once."""
    caplog.set_level(logging.INFO)
    owner = await members("owner")
    user = await asyncio.to_thread(synapse.register, f"copbot-revoked-{time.monotonic_ns()}")
    account = BotAccount(
        user.user_id, user.password, f"sqlite+aiosqlite:///{bots.tmp_path / 'revoked.db'}", owner.user_id
    )
    bot = await bots.start(account, access_token=user.access_token)
    room_id = await room_with_bot(owner, user.user_id)
    assert (await ask(owner, bot, room_id, "!about"))["body"].startswith("I am copbot")
    async with healthz(bot) as health:
        caplog.clear()
        await asyncio.to_thread(synapse.request, "POST", "/_matrix/client/v3/logout", {}, user.access_token)
        assert (await ask(owner, bot, room_id, "!about"))["body"].startswith("I am copbot")
        await health_becomes(health, 200)
    assert said(caplog) == [
        "WARNING matrix: the homeserver refused the access token; logging in again with the password"
    ]
    assert tracebacks(caplog) == []


async def test_a_revoked_token_without_a_password_is_said_once_and_shown_until_replaced(  # type: ignore[no-untyped-def]
    bots: Bots, members, synapse: Synapse, caplog: pytest.LogCaptureFixture
) -> None:
    """Only a token, and it is revoked: nothing copbot can do but say what to do (once), show it, and keep
    trying; after a restart with a new token the commands sent meanwhile are answered, none lost."""
    caplog.set_level(logging.INFO)
    owner = await members("owner")
    user = await asyncio.to_thread(synapse.register, f"copbot-token-only-{time.monotonic_ns()}")
    account = BotAccount(user.user_id, "", f"sqlite+aiosqlite:///{bots.tmp_path / 'token.db'}", owner.user_id)
    bot = await bots.start(account, access_token=user.access_token)
    adapter = adapter_of(bot)
    room_id = await room_with_bot(owner, user.user_id)
    assert (await ask(owner, bot, room_id, "!about"))["body"].startswith("I am copbot")
    async with healthz(bot) as health:
        caplog.clear()
        await asyncio.to_thread(synapse.request, "POST", "/_matrix/client/v3/logout", {}, user.access_token)
        body = await health_becomes(health, 503, "matrix")
        assert "refused the access token" in body["problems"]["matrix"]
        waiting = [await send(owner, room_id, f"!echo meanwhile {n}") for n in range(3)]
        await asyncio.sleep(5)
        assert 3 <= adapter.trouble.failures <= 12  # retried, backing off (not hammering the homeserver)
        assert (await health())[0] == 503
    lines = said(caplog)
    assert len(lines) == 1, lines
    assert lines[0].startswith("ERROR matrix: the homeserver refused the access token of")
    assert "set a new [matrix] access_token" in lines[0] and "restart copbot" in lines[0]
    assert tracebacks(caplog) == []

    # The operator does what the line says: a new token, a restart.
    login = await asyncio.to_thread(
        synapse.request,
        "POST",
        "/_matrix/client/v3/login",
        {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user.user_id},
            "password": user.password,
        },
    )
    await bots.stop(bot)
    bot = await bots.start(account, access_token=login["access_token"])
    for n, command_id in enumerate(waiting):
        assert (await reply(owner, bot, command_id))["body"].endswith(f"said: meanwhile {n}")


# --- storage: the database refuses writes -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["read-only", "disk full"])
async def test_a_database_refusing_writes_is_said_once_shown_and_caught_up(  # type: ignore[no-untyped-def]
    kind: str, bots: Bots, members, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    owner, ana = await members("owner"), await members("ana")
    account = await asyncio.to_thread(bots.account, owner.user_id)
    bot = await bots.start(account)
    room_id = await room_with_bot(owner, account.user_id, ana)
    await send(ana, room_id, "hello before")
    assert (await ask(owner, bot, room_id, "!about"))["body"].startswith("I am copbot")
    assert await activity_of(bot, "matrix", ana.user_id, "message") == 1
    async with healthz(bot) as health:
        assert (await health())[0] == 200
        caplog.clear()
        refused = RefusedWrites(bot.db, kind)
        try:
            # Members talk on; the database refuses at once (read-only) or once its last pages fill up.
            talked = 0
            code, body = await health()
            while "database" not in body.get("problems", {}):
                assert talked < 400, f"the database never refused: {body}"
                for _ in range(10):
                    await send(ana, room_id, f"message {talked}")
                    talked += 1
                with contextlib.suppress(AssertionError):
                    body = await health_becomes(health, 503, "database", timeout=0.7)
                code, body = await health()
            assert code == 503 and body["database"] is False and body["platforms"] == {"matrix": True}
            expected = "the disk is full" if kind == "disk full" else "check permissions"
            assert (
                "cannot write to" in body["problems"]["database"] and expected in body["problems"]["database"]
            )
            # Commands that need no write are still answered; the talk goes on being counted.
            assert (await ask(owner, bot, room_id, "!about"))["body"].startswith("I am copbot")
            for n in range(5):
                await send(ana, room_id, f"still talking {n}")
            await asyncio.sleep(3)  # retries, backing off
            assert bot.db.writes.failures >= 2
            lines = said(caplog)
            assert len(lines) == 1, lines
            assert lines[0].startswith("ERROR database: cannot write to") and expected in lines[0]
            assert "no restart needed" in lines[0]
            assert tracebacks(caplog) == []

            refused.lift()  # space freed, permissions fixed
            await health_becomes(health, 200, timeout=RECOVERY)
        finally:
            refused.remove()
    assert await activity_of(bot, "matrix", ana.user_id, "message") == 1 + talked + 5
    assert await activity_of(bot, "matrix", owner.user_id, "command") == 2
    assert any("database: writes work again" in line for line in said(caplog, logging.INFO))
    assert tracebacks(caplog) == []
    # The sync position moved on as well: a new command is answered once, nothing replayed.
    assert (await ask(owner, bot, room_id, "!echo after"))["body"].endswith("said: after")


# --- Discord: the gateway goes away -----------------------------------------------------------------------


async def test_a_discord_gateway_outage_is_said_once_shown_and_resumed(  # type: ignore[no-untyped-def]
    discord_server: FakeDiscord, discord_bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bot = await discord_bot()
    adapter = bot.services.adapters["discord"]
    await discord_server.message_create("general", "bob", "hello before")
    await eventually(lambda: bot.pipeline.journal._pending.activity, "bob's message to be counted")
    async with healthz(bot) as health:
        assert (await health())[0] == 200
        caplog.clear()
        await discord_server.gateway_outage()

        body = await health_becomes(health, 503, "discord")
        assert body["platforms"] == {"discord": False}
        assert "gateway connection is lost" in body["problems"]["discord"]
        for n in range(3):
            await discord_server.message_create("general", "bob", f"during the outage {n}")
        await discord_server.message_create("general", "alice", "!about")
        channel = discord_server.channel_id("general")
        room = Room("discord", channel)
        assert await queue_message(bot, "recovery:discord", room, "A notice from a job") == 0
        await asyncio.sleep(6.5)  # past the grace a routine reconnect gets

        lines = said(caplog)
        assert len(lines) == 1, lines
        assert lines[0].startswith("WARNING discord: the gateway connection is lost; discord.py reconnects")
        assert tracebacks(caplog) == []
        assert adapter.trouble.failures >= 2  # reconnects tried (each one line at INFO, no traceback)

        discord_server.gateway_down = False
        await health_becomes(health, 200, timeout=RECOVERY)

        def posted(text: str) -> bool:
            return any(m["content"].startswith(text) for m in discord_server.bot_messages("general"))

        await eventually(lambda: posted("I am copbot"), "the answer to !about sent during the outage")
        await eventually(lambda: posted("A notice from a job"), "the job's message", timeout=RECOVERY)
        await marked_sent(bot, "recovery:discord")
    assert await activity_of(bot, "discord", discord_server.user_id("bob"), "message") == 4
    assert any("discord: connected again" in line for line in said(caplog, logging.INFO))
    assert said(caplog) == lines  # nothing more at WARNING or above
    assert tracebacks(caplog) == []


async def test_a_discord_gateway_closed_for_good_is_said_once_with_what_to_do(  # type: ignore[no-untyped-def]
    discord_server: FakeDiscord, discord_bot, copbot_errors: HandlerErrors, caplog: pytest.LogCaptureFixture
) -> None:
    """A close discord.py does not retry (4004: the token was reset): one line, and /healthz shows it."""
    caplog.set_level(logging.INFO)
    bot = await discord_bot()
    async with healthz(bot) as health:
        caplog.clear()
        await discord_server.drop_connection(4004, wait_resumed=False)
        body = await health_becomes(health, 503, "discord")
        assert "ended for good (close code 4004" in body["problems"]["discord"]
    lines = said(caplog)
    assert len(lines) == 1 and lines[0].startswith("ERROR discord: the gateway connection ended for good")
    assert "check [discord] token" in lines[0] and "restart copbot" in lines[0]
    assert [error.message for error in copbot_errors.errors] == [lines[0].removeprefix("ERROR ")]
    copbot_errors.errors.clear()  # expected here: the fixture fails a test on any other error
