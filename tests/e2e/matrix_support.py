"""What the Matrix end-to-end tests share: test plugins, bot accounts, member clients, waiting helpers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from nio import (
    AsyncClient,
    Event,
    InviteMemberEvent,
    JoinResponse,
    RoomCreateResponse,
    RoomMemberEvent,
    RoomSendResponse,
    SyncResponse,
)

from bot.adapters.matrix import MatrixAdapter
from bot.app import CopBot
from bot.clock import Clock
from bot.commands import Text
from bot.context import Context
from bot.model import Content, MemberJoined, PollVoted, ReactionAdded
from bot.plugin import Plugin, command, listen
from tests.conftest import make_settings
from tests.harness.synapse import Synapse, member_client, wait_for_event

STEP = 15.0  # seconds any one step may take before the test fails
SLUG = "water"


# --- plugins the tests use ------------------------------------------------------------------------------


class Echo(Plugin):
    """Says a member's text back, mentioning them: the path member-written text takes into a reply."""

    name = "echo"

    @command("echo", examples=("echo hello",))
    async def echo(self, ctx: Context, text: Text) -> None:
        """Repeat the text, mentioning who asked."""
        assert ctx.author is not None
        await ctx.reply(Content(text=f"{ctx.mention(ctx.author)} said: {text}", mentions=(ctx.author,)))


class Recorder(Plugin):
    """Keeps every reaction, vote and join it hears, so a test can see what reached the plugins."""

    name = "recorder"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[Any] = []

    @listen(ReactionAdded)
    async def on_reaction(self, ctx: Context, event: ReactionAdded) -> None:
        self.seen.append(event)

    @listen(PollVoted)
    async def on_vote(self, ctx: Context, event: PollVoted) -> None:
        self.seen.append(event)

    @listen(MemberJoined)
    async def on_join(self, ctx: Context, event: MemberJoined) -> None:
        self.seen.append(event)


# --- helpers ----------------------------------------------------------------------------------------------


@dataclass
class BotAccount:
    """A bot's Matrix account and its database: what survives a bot restart."""

    user_id: str
    password: str
    database_url: str
    owner: str  # the member whose invites the community accepts


class Bots:
    """Starts copbots on Synapse and stops every one at the end of the test."""

    def __init__(self, synapse: Synapse, tmp_path: Path) -> None:
        self.synapse = synapse
        self.tmp_path = tmp_path
        self.running: list[CopBot] = []

    def account(self, owner: str, name: str = "copbot") -> BotAccount:
        user = self.synapse.register(f"{name}-{time.monotonic_ns()}")
        database = f"sqlite+aiosqlite:///{self.tmp_path / f'{name}.db'}"
        return BotAccount(user.user_id, user.password, database, owner)

    async def start(
        self,
        account: BotAccount,
        access_token: str = "",
        matrix: dict[str, Any] | None = None,
        plugins: tuple[type[Plugin], ...] = (Echo, Recorder),
        clock: Clock | None = None,
        plugin_config: dict[str, dict[str, Any]] | None = None,
        homeserver: str = "",
    ) -> CopBot:
        """``plugin_config`` is ``[plugins.*]`` (e.g. the digest's room); ``homeserver`` another way to
        the Synapse (a test's proxy) than its own address."""
        settings = make_settings(
            self.tmp_path,
            database_url=account.database_url,
            plugins=plugin_config or {},
            matrix={
                "homeserver": homeserver or self.synapse.base_url,
                "user_id": account.user_id,
                "password": account.password,
                "access_token": access_token,
            },
            communities=[
                {
                    "slug": SLUG,
                    "name": "Water CoP",
                    "domain": "leak detection",
                    "matrix": matrix if matrix is not None else {"accept_invites_from": [account.owner]},
                }
            ],
        )
        bot = CopBot(settings, clock=clock, plugins=list(plugins), run_scheduler_loop=False)
        await bot.start()
        self.running.append(bot)
        return bot

    async def stop(self, bot: CopBot) -> None:
        self.running.remove(bot)
        await bot.stop()


@pytest.fixture
async def bots(synapse: Synapse, tmp_path: Path) -> AsyncIterator[Bots]:
    manager = Bots(synapse, tmp_path)
    yield manager
    for bot in list(manager.running):
        await manager.stop(bot)


@pytest.fixture
async def members(synapse: Synapse) -> AsyncIterator[Callable[[str], Any]]:
    """``await members("ana")`` registers a member and returns a logged-in nio client, closed afterwards."""
    clients: list[AsyncClient] = []

    async def make(name: str) -> AsyncClient:
        client = await member_client(synapse, name)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def adapter_of(bot: CopBot) -> MatrixAdapter:
    adapter = bot.services.adapters["matrix"]
    assert isinstance(adapter, MatrixAdapter)
    return adapter


def recorder_of(bot: CopBot) -> Recorder:
    plugin = bot.registry.plugins["recorder"]
    assert isinstance(plugin, Recorder)
    return plugin


def content_of(event: Event) -> dict[str, Any]:
    return dict(event.source.get("content") or {})


def in_reply_to(event: Event) -> str | None:
    return ((content_of(event).get("m.relates_to") or {}).get("m.in_reply_to") or {}).get("event_id")


async def send(client: AsyncClient, room_id: str, body: str, event_type: str = "m.room.message") -> str:
    content: dict[str, Any] = {"msgtype": "m.text", "body": body} if event_type == "m.room.message" else {}
    return await send_event(client, room_id, event_type, content)


async def send_event(client: AsyncClient, room_id: str, event_type: str, content: dict[str, Any]) -> str:
    async with asyncio.timeout(STEP):
        response = await client.room_send(room_id, event_type, content)
    assert isinstance(response, RoomSendResponse), response
    return response.event_id


async def reply(client: AsyncClient, bot: CopBot, command_id: str) -> dict[str, Any]:
    """The content of the bot's reply to ``command_id``, as the member's client receives it."""
    bot_id = adapter_of(bot).user_id
    _, event = await wait_for_event(
        client, lambda e: e.sender == bot_id and in_reply_to(e) == command_id, timeout=STEP
    )
    return content_of(event)


async def ask(client: AsyncClient, bot: CopBot, room_id: str, text: str) -> dict[str, Any]:
    return await reply(client, bot, await send(client, room_id, text))


async def room_with_bot(owner: AsyncClient, bot_user: str, *others: AsyncClient, **options: Any) -> str:
    """The owner creates a room and invites the bot (and ``others``, who join); returns once the bot is in."""
    async with asyncio.timeout(STEP):
        created = await owner.room_create(invite=[bot_user, *(o.user_id for o in others)], **options)
    assert isinstance(created, RoomCreateResponse), created
    for other in others:
        async with asyncio.timeout(STEP):
            assert isinstance(await other.join(created.room_id), JoinResponse)
    await wait_for_event(owner, is_membership(bot_user, "join"), timeout=STEP)
    return created.room_id


def history(synapse: Synapse, token: str, room_id: str) -> list[dict[str, Any]]:
    """Every event of the room, oldest first, read back with /messages (blocking: run it in a thread)."""
    events: list[dict[str, Any]] = []
    start = ""
    while True:
        query = "dir=b&limit=1000" + (f"&from={quote(start)}" if start else "")
        page = synapse.request(
            "GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/messages?{query}", token=token
        )
        events += page.get("chunk") or []
        if not page.get("chunk") or not page.get("end"):
            break
        start = page["end"]
    events.reverse()
    return events


def replies_by_command(events: list[dict[str, Any]], bot_id: str) -> dict[str, list[dict[str, Any]]]:
    """The bot's replies among ``events`` (as :func:`history` returns them), by the event each answers, in
    the order they were sent."""
    replies: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        content = event.get("content") or {}
        parent = ((content.get("m.relates_to") or {}).get("m.in_reply_to") or {}).get("event_id")
        if event.get("sender") == bot_id and isinstance(parent, str):
            replies.setdefault(parent, []).append(event)
    return replies


def is_membership(user_id: str, membership: str) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, RoomMemberEvent) and e.state_key == user_id and e.membership == membership


async def eventually(check: Callable[[], Any], what: str, timeout: float = STEP) -> Any:  # noqa: ASYNC109
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def wait_for_invite(client: AsyncClient, inviter: str) -> str:
    """Sync until an invite from ``inviter`` arrives; the invited room's id."""
    async with asyncio.timeout(STEP):
        while True:
            response = await client.sync(timeout=1000)
            if not isinstance(response, SyncResponse):
                continue
            for room_id, info in response.rooms.invite.items():
                for event in info.invite_state:
                    if (
                        isinstance(event, InviteMemberEvent)
                        and event.sender == inviter
                        and event.state_key == client.user_id
                    ):
                        return room_id
