"""The permission matrix through the real adapters (issue 15, item 2): every moderator-only command and every
creator-or-moderator action, tried by a plain member on Matrix (matrix-nio against the session's Synapse,
copbot's real adapter) and on Discord (slash commands through discord.py against the tests' Discord
server) → refused, and not one row of any table changed (every table compared before and after).

Generated from the command specs of all bundled plugins, like the console's matrix
(tests/core/test_permission_matrix.py), and sharing its creator scenarios (tests/permission_cases.py): a new
moderator command is tried here the moment it exists, and fails these tests if it cannot be driven — on
Discord its required options come from its first example, so a command without a usable example fails.

One bot, one room (or guild) and one database per platform: the setups of all creator scenarios run first
(each kind of thing is #1 of its kind, made by ana), then a plain member tries everything.
"""

from __future__ import annotations

import asyncio
import enum
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nio import AsyncClient
from sqlalchemy import func, select

from bot.adapters.discord_commands import slash_name
from bot.app import CopBot
from bot.arguments import ParseEnv, parse_arguments
from bot.clock import FakeClock
from bot.commands import CommandSpec, Kind, OptionSpec
from bot.config import Settings
from bot.model import Member
from bot.tables import ActivityEvent, MemberRow
from tests.conftest import discord_table, make_settings
from tests.e2e.matrix_support import STEP as MATRIX_STEP
from tests.e2e.matrix_support import Bots, adapter_of, content_of, in_reply_to, room_with_bot, send
from tests.e2e.test_discord import EPHEMERAL
from tests.figures import report
from tests.harness.discord_server import FakeDiscord, HandlerErrors, Request, point_discord_py_at
from tests.harness.synapse import wait_for_event
from tests.permission_cases import (
    MOD_ONLY,
    OWNER_ONLY,
    OWNER_SCENARIOS,
    PLUGINS,
    Snapshot,
    is_owner_refusal,
    refusal,
    rows_changed,
    snapshot,
    spec_named,
    specs,
    split_line,
)

STEP = 15.0
CREATOR, PLAIN = "ana", "zed"  # the scenarios' names: ana makes things, zed (a plain member) tries
COMMUNITIES: list[dict[str, Any]] = [  # a sister, so that "repertoire share 1 sister" could succeed
    {"slug": "water", "name": "Water CoP", "share_with": ["sister"]},
    {"slug": "sister", "name": "Wastewater CoP"},
]


# --- what is tried --------------------------------------------------------------------------------------


def fixed_now() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


def setup_lines() -> list[tuple[str, str]]:
    """Every creator scenario's setup, once each and in order: with one database for all scenarios, the
    first poll, meeting and shared item are ana's #1 of their kind, which the attempts name."""
    seen: dict[str, None] = {}
    for setup, _attempt in OWNER_SCENARIOS.values():
        for line in setup:
            seen.setdefault(line, None)
    return [split_line(line) for line in seen]


def attempts() -> list[tuple[CommandSpec, str, bool]]:
    """(spec, what the plain member types without the prefix, whether it is moderator-only) for everything.

    A moderator command without an example is typed bare; one whose required options then cannot be
    filled fails :func:`slash_call` (and the coverage test below) instead of passing unnoticed.
    """
    tried = [(spec_named(name), example_of(spec_named(name)), True) for name in MOD_ONLY]
    for name in sorted(OWNER_SCENARIOS):
        who, text = split_line(OWNER_SCENARIOS[name][1])
        assert who == PLAIN and text.startswith("!"), OWNER_SCENARIOS[name]
        tried.append((spec_named(name), text[1:], False))
    return tried


def example_of(spec: CommandSpec) -> str:
    return spec.examples[0] if spec.examples else spec.name


def arguments_of(spec: CommandSpec, line: str, now: datetime, mention: Member) -> dict[str, Any]:
    """The typed arguments of ``line`` (``poll close 1``) as copbot's parser reads them; any @mention is
    ``mention``. Raises UsageError when the line does not fit the spec."""
    assert line == spec.name or line.startswith(spec.name + " "), (spec.name, line)
    env = ParseEnv(now=now, resolve_member=lambda text: mention if text.startswith("@") else None)
    return parse_arguments(spec, line[len(spec.name) :], env)


def discord_value(option: OptionSpec, value: Any) -> Any:
    """A parsed value as a member would fill the slash command's option (None: left empty)."""
    if value is None or value is False or value == []:
        return None
    if isinstance(value, list):
        if option.kind is Kind.MEMBER:
            return discord_value(option, value[0])  # Discord's user option holds one member
        return " ".join(f'"{discord_value(option, item)}"' for item in value)
    if isinstance(value, Member):
        return value.id  # a name the test server resolves into a user option
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, timedelta):
        return f"{int(value.total_seconds() // 60)}m"
    return value


def slash_call(
    spec: CommandSpec, line: str, groups: set[str], now: datetime
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """``/name``, its options, and its sub-command (and group), as discord.py's client would send them."""
    values = arguments_of(spec, line, now, Member("discord", CREATOR, CREATOR.title()))
    options = {o.name: v for o in spec.options if (v := discord_value(o, values.get(o.name))) is not None}
    words = slash_name(spec, groups)
    path = {"subcommand": words[-1]} if len(words) > 1 else {}
    if len(words) == 3:
        path["group"] = words[1]
    return words[0], options, path


def test_every_moderator_command_and_creator_action_can_be_driven_on_every_platform() -> None:
    """What the platform tests below rely on, checked without a server: a new command that cannot be
    driven fails here, naming what to add."""
    assert MOD_ONLY, "no moderator-only commands found: the spec reading is broken"
    missing = sorted(set(OWNER_ONLY) - set(OWNER_SCENARIOS))
    assert not missing, f"add a scenario to OWNER_SCENARIOS in tests/permission_cases.py for: {missing}"
    groups = {spec.path[0] for spec in specs() if len(spec.path) > 1}
    for spec, line, _mod_only in attempts():
        if spec.mod_only:
            required = [o.name for o in spec.options if o.required]
            assert spec.examples or not required, f"give {spec.name!r} an example: {required} must be filled"
        name, options, _path = slash_call(spec, line, groups, fixed_now())
        assert name == spec.path[0]
        assert {o.name for o in spec.options if o.required} <= set(options), (spec.name, options)


async def member_said_something(bot: CopBot, user: str) -> bool:
    """Whether a message of ``user`` (a platform id) was recorded: it, and all before it, are handled."""
    await bot.pipeline.journal.flush()
    async with bot.db.session() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(ActivityEvent)
            .join(MemberRow, MemberRow.id == ActivityEvent.member_id)
            .where(ActivityEvent.kind == "message", MemberRow.platform_id == user)
        )
    return bool(count)


async def eventually(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    deadline = time.monotonic() + STEP
    while time.monotonic() < deadline:
        if value := await check():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {STEP} s waiting for {what}")


async def settled_snapshot(bot: CopBot, **options: Any) -> Snapshot:
    """The tables once nothing moves any more (replies sent, their bookkeeping written): a write that
    comes late is in it, not missed."""
    last = await snapshot(bot, **options)
    deadline = time.monotonic() + STEP
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        now = await snapshot(bot, **options)
        if now == last:
            return now
        last = now
    raise AssertionError(f"the tables kept changing for {STEP} s")


def figure(platform: str, tried: list[tuple[CommandSpec, str, bool]], changed: int) -> str:
    mod = sum(1 for _spec, _line, mod_only in tried if mod_only)
    return (
        f"permission matrix ({platform}): {mod} moderator commands and {len(tried) - mod} creator actions "
        f"refused, {changed} rows changed"
    )


# --- Matrix -----------------------------------------------------------------------------------------------


def matrix_bookkeeping(table: str, row: tuple[Any, ...]) -> bool:
    """Left out of the Matrix snapshots besides handled_events: the sync token — where copbot is in the
    event stream, moved by every event it reads (zed's attempts included); the Matrix side of
    handled_events, not an effect of a command.

    Nothing else, and no activity row: a member's messages are recorded by design, but a command is not a
    message (the pipeline invokes it instead), and only a command that *ran* counts as the member's
    "command" activity (``Pipeline.invoke``: ``outcome == "ok"``) — a refused attempt rightly adds
    nothing to zed's participation, and this test would catch one that did. zed's own activity, his
    "hello" (and his membership), is written before the first snapshot, so it is in both.
    """
    return table == "state" and row[0] == "matrix" and str(row[1]).endswith(":sync_token")


def typed_on_matrix(line: str, mention: str) -> str:
    """The example as a Matrix member types it: a mention (``@ana``) is a real user id."""
    return re.sub(r"(?<!\S)@[a-z]+(?!\S)", mention, line)


async def start_matrix_bot(bots: Bots, owner: AsyncClient, clock: FakeClock) -> CopBot:
    account = await asyncio.to_thread(bots.account, owner.user_id)
    water, sister = COMMUNITIES
    settings = make_settings(
        bots.tmp_path,
        database_url=account.database_url,
        matrix={
            "homeserver": bots.synapse.base_url,
            "user_id": account.user_id,
            "password": account.password,
        },
        communities=[{**water, "matrix": {"accept_invites_from": [owner.user_id]}}, sister],
    )
    bot = CopBot(settings, clock=clock, plugins=list(PLUGINS), run_scheduler_loop=False)
    await bot.start()
    bots.running.append(bot)  # stopped by the fixture
    return bot


async def test_matrix_a_plain_member_is_refused_every_moderator_command_and_creator_action(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    started = time.monotonic()
    owner, ana, zed = [await members(name) for name in ("owner", CREATOR, PLAIN)]
    bot = await start_matrix_bot(bots, owner, FakeClock(fixed_now()))
    assert set(MOD_ONLY) | set(OWNER_SCENARIOS) <= set(bot.registry.commands), "a command is not loaded"
    bot_id = adapter_of(bot).user_id
    room_id = await room_with_bot(owner, bot_id, ana, zed)  # owner made the room: a moderator; ana, zed: 0

    async def answer(client: AsyncClient, text: str) -> str:
        sent = await send(client, room_id, text)
        _, event = await wait_for_event(
            client, lambda e: e.sender == bot_id and in_reply_to(e) == sent, timeout=MATRIX_STEP
        )
        return str(content_of(event).get("body", ""))

    prefix = bot.services.settings.prefix
    status = await answer(owner, f"{prefix}status")  # the room's creator is a moderator here: the
    assert status != refusal(prefix, "status"), status  # refusals below are zed's, not everyone's
    clients = {CREATOR: ana, PLAIN: zed}
    for who, text in setup_lines():
        said = await answer(clients[who], text)
        assert "Usage" not in said and not said.startswith(("Sorry", "Only")), (text, said)
    await send(zed, room_id, "hello")  # zed exists and is a member before the attempts
    await eventually(lambda: member_said_something(bot, zed.user_id), "zed's hello")
    before = await settled_snapshot(bot, bookkeeping=matrix_bookkeeping)

    tried = attempts()
    for spec, line, mod_only in tried:  # one at a time: a sync brings at most the room's last few events
        said = await answer(zed, prefix + typed_on_matrix(line, ana.user_id))
        if mod_only:
            assert said == refusal(prefix, spec.name), (line, said)
        else:
            assert is_owner_refusal(said), (line, said)

    after = await settled_snapshot(bot, bookkeeping=matrix_bookkeeping)
    changed = rows_changed(before, after)
    report(figure("matrix", tried, changed) + f" in {time.monotonic() - started:.1f} s")
    assert after == before


# --- Discord ----------------------------------------------------------------------------------------------


@pytest.fixture
async def discord_copbot(
    discord_server: FakeDiscord, discord_errors: HandlerErrors, copbot_errors: HandlerErrors, tmp_path: Path
) -> AsyncIterator[Callable[[FakeClock], Awaitable[CopBot]]]:
    """Start copbot with every bundled plugin on the test server (its guild is the "water" community's,
    with a sister community); stopped at the end."""
    running: list[CopBot] = []

    async def start(clock: FakeClock) -> CopBot:
        water, sister = COMMUNITIES
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'copbot.db'}",
            web={"enabled": False},
            discord=discord_table(discord_server),
            communities=[{**water, "discord": {"guild_id": discord_server.guild_id}}, sister],
        )
        bot = CopBot(settings, clock=clock, plugins=list(PLUGINS), run_scheduler_loop=False)
        await bot.start()
        discord_errors.install(bot.services.adapters["discord"].client)  # type: ignore[attr-defined]
        running.append(bot)
        return bot

    with point_discord_py_at(discord_server):
        yield start
        for bot in running:
            await bot.stop()


def replies_to(request: Request, message: dict[str, Any]) -> bool:
    reference = (request.json or {}).get("message_reference") or {}
    return str(reference.get("message_id")) == message["id"]


async def test_discord_a_plain_member_is_refused_every_moderator_command_and_creator_action(
    discord_server: FakeDiscord, discord_copbot: Callable[[FakeClock], Awaitable[CopBot]]
) -> None:
    started = time.monotonic()
    for name in (CREATOR, PLAIN):  # plain members: no role with Manage Server
        discord_server.add_member(name, roles=["Member"])
    clock = FakeClock(fixed_now())
    bot = await discord_copbot(clock)
    assert set(MOD_ONLY) | set(OWNER_SCENARIOS) <= set(bot.registry.commands), "a command is not loaded"
    roles = bot.registry.plugins.get("roles")
    if roles is not None and getattr(roles, "reconciling", None) is not None:
        await roles.reconciling  # type: ignore[attr-defined]  # the start-up walk writes nothing later

    record = await discord_server.interaction_slash("status", user="alice")  # the guild's owner moderates:
    status = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert status.json["data"]["content"] != refusal("/", "status"), status.json  # zed's refusals are his
    for who, text in setup_lines():  # typed in the channel, as the console's lines are
        mark = len(discord_server.requests)
        message = await discord_server.message_create("general", who, text)
        said = await discord_server.wait_for_request(
            "POST",
            r"/channels/\d+/messages$",
            start=mark,
            predicate=lambda request, m=message: replies_to(request, m),
        )
        content = str((said.json or {}).get("content") or "")
        assert "Usage" not in content and not content.startswith(("Sorry", "Only")), (text, content)
    await discord_server.message_create("general", PLAIN, "hello")
    await eventually(lambda: member_said_something(bot, discord_server.user_id(PLAIN)), "zed's hello")
    # Only handled_events is left out here: Discord has no sync token, its start-up markers (the command
    # set's hash, the member walk) are written before, and a refused slash command records no activity.
    before = await settled_snapshot(bot)

    tried = attempts()
    groups = bot.registry.groups()
    for spec, line, mod_only in tried:
        name, options, path = slash_call(spec, line, groups, clock.now())
        record = await discord_server.interaction_slash(name, options, user=PLAIN, **path)
        response = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
        data = response.json["data"]
        assert response.json["type"] == 4 and data["flags"] == EPHEMERAL, (line, response.json)
        if mod_only:
            assert data["content"] == refusal("/", spec.name), (line, data)
        else:
            assert is_owner_refusal(data["content"]), (line, data)

    after = await settled_snapshot(bot)
    changed = rows_changed(before, after)
    report(figure("discord", tried, changed) + f" in {time.monotonic() - started:.1f} s")
    assert after == before
