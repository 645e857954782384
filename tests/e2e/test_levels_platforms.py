"""Participation levels mirrored on the platforms: Discord roles (discord.py against the tests' Discord
server, which keeps Discord's role hierarchy) and Matrix power levels (matrix-nio against a real Synapse).

Each test asserts what the platform ends up with — the requests copbot makes, the roles a member holds, the
room's m.room.power_levels as a member's client reads it — and that the walk at start-up repairs drift
quietly and sends nothing where nothing drifted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from nio import (
    AsyncClient,
    RoomCreateResponse,
    RoomGetStateEventResponse,
    RoomGetStateResponse,
    RoomPutStateResponse,
)
from sqlalchemy import func, select

from bot.app import CopBot
from bot.clock import FakeClock
from bot.config import Settings
from bot.tables import ActivityEvent, CommunityRow, MemberRow, Membership
from plugins.repertoire.plugin import Repertoire
from plugins.roles.models import LevelChange
from plugins.roles.plugin import Roles
from tests.conftest import discord_table, two_guilds
from tests.e2e.matrix_support import STEP as MATRIX_STEP
from tests.e2e.matrix_support import BotAccount, Bots, adapter_of, ask, room_with_bot, wait_for_invite
from tests.e2e.test_meetings_platforms import settled
from tests.harness.discord_server import (
    FakeDiscord,
    HandlerErrors,
    Request,
    point_discord_py_at,
)

LEVEL_ROLES = {"core": "Core", "active": "Active", "occasional": "Occasional"}
ROLES_CONFIG = {"occasional": {"score": 5, "contributions": 1, "active_days": 1}}  # one share is enough


def roles_of(bot: CopBot) -> Roles:
    plugin = bot.registry.plugins["roles"]
    assert isinstance(plugin, Roles)
    return plugin


async def reconciled(bot: CopBot) -> int:
    """Wait for the start-up walk over everyone's platform roles; how many accounts it checked."""
    task = roles_of(bot).reconciling
    assert task is not None, "the roles plugin did not start its walk"
    return await task


async def level_changes(bot: CopBot) -> int:
    async with bot.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(LevelChange)) or 0)


def changes_stored(bot: CopBot, count: int) -> Callable[[], Any]:
    async def check() -> bool:
        return await level_changes(bot) == count

    return check


def refusals(caplog: pytest.LogCaptureFixture) -> Callable[[], Any]:
    """What the roles plugin logged about levels it could not mirror."""

    async def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if "not mirrored" in r.getMessage()]

    return said


# --- Discord ------------------------------------------------------------------------------------------------

LevelsBot = Callable[..., Any]


@pytest.fixture
async def levels_bot(
    discord_server: FakeDiscord, discord_errors: HandlerErrors, copbot_errors: HandlerErrors, tmp_path: Path
) -> AsyncIterator[LevelsBot]:
    """Start copbot (roles and repertoire) on the test server, its level roles named — none of them exist
    in the guild yet — and promotions announced in #general; returns once the start-up walk is done."""
    running: list[CopBot] = []

    async def start() -> CopBot:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'copbot.db'}",
            web={"enabled": False},
            discord=discord_table(discord_server),
            communities=[
                {
                    "slug": "water",
                    "name": "Water CoP",
                    "discord": {"guild_id": discord_server.guild_id, "level_roles": LEVEL_ROLES},
                }
            ],
            plugins={
                "roles": {
                    **ROLES_CONFIG,
                    "announce": {"water": {"discord": discord_server.channel_id("general")}},
                }
            },
        )
        bot = CopBot(settings, plugins=[Roles, Repertoire], run_scheduler_loop=False)
        await bot.start()
        discord_errors.install(bot.services.adapters["discord"].client)  # type: ignore[attr-defined]
        running.append(bot)
        await reconciled(bot)
        return bot

    with point_discord_py_at(discord_server):
        yield start
        for bot in running:
            if bot.services.adapters["discord"].connected:
                await bot.stop()


async def slash(
    discord_server: FakeDiscord, command: str, options: dict[str, Any], user: str, *, subcommand: str = ""
) -> str:
    """``user`` runs a slash command; the text of copbot's response."""
    more = {"subcommand": subcommand} if subcommand else {}
    record = await discord_server.interaction_slash(command, options, user=user, **more)
    response = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert response.json["type"] == 4, response.json
    return str(response.json["data"]["content"])


async def set_level(discord_server: FakeDiscord, who: str, level: str) -> str:
    """alice, the guild's owner (a moderator by Manage Server), moves ``who`` to ``level``."""
    return await slash(discord_server, "role", {"who": who, "level": level}, "alice", subcommand="set")


def requests_since(discord_server: FakeDiscord, method: str, path: str, since: int) -> list[Request]:
    return [r for r in discord_server.requests[since:] if r.method == method and r.path == path]


def member_patches(discord_server: FakeDiscord, user: str, since: int = 0) -> list[Request]:
    """copbot's changes of ``user``'s roles (discord.py changes roles with a PATCH of the member)."""
    path = f"/guilds/{discord_server.guild_id}/members/{discord_server.user_id(user)}"
    return requests_since(discord_server, "PATCH", path, since)


def role_creations(discord_server: FakeDiscord, since: int = 0) -> list[Request]:
    return requests_since(discord_server, "POST", f"/guilds/{discord_server.guild_id}/roles", since)


def said_since(discord_server: FakeDiscord, since: int) -> list[Request]:
    """Messages copbot posted (announcements, replies) since the ``since``-th request."""
    return [r for r in discord_server.requests[since:] if r.method == "POST" and r.path.endswith("/messages")]


def position(discord_server: FakeDiscord, role: str) -> int:
    return int(discord_server.guilds[discord_server.guild_id].roles[discord_server.role_id(role)]["position"])


async def test_discord_role_set_creates_the_missing_role_once_and_patches_each_member_once(
    discord_server: FakeDiscord, levels_bot: LevelsBot
) -> None:
    await levels_bot()
    bob, carol = discord_server.user_id("bob"), discord_server.user_id("carol")
    assert "Core" not in [r["name"] for r in discord_server.roles_by_position()]

    assert await set_level(discord_server, "bob", "core") == "Bob: peripheral → core."
    patch = await discord_server.wait_for_request("PATCH", rf"/guilds/\d+/members/{bob}$")
    [created] = role_creations(discord_server)
    assert created.json["name"] == "Core"
    assert int(created.json["permissions"]) == 0 and created.json.get("mentionable") is False
    core = discord_server.role_id("Core")
    assert created.response["id"] == core
    member = discord_server.role_id("Member")
    assert sorted(str(role) for role in patch.json["roles"]) == sorted([member, core])
    assert unquote(patch.headers.get("X-Audit-Log-Reason", "")) == "copbot: participation level core"
    assert discord_server.member_roles("bob") == ["Member", "Core"]
    assert position(discord_server, "Core") < position(discord_server, "copbot")  # below copbot's own role
    announced = await discord_server.wait_for_request(
        "POST", rf"/channels/{discord_server.channel_id('general')}/messages$"
    )
    assert announced.json["content"] == f"🌱 <@{bob}> is now core in the community."

    mark = len(discord_server.requests)
    assert await set_level(discord_server, "carol", "core") == "Carol: peripheral → core."
    patch = await discord_server.wait_for_request("PATCH", rf"/guilds/\d+/members/{carol}$", start=mark)
    assert str(core) in [str(role) for role in patch.json["roles"]]
    assert discord_server.member_roles("carol") == ["Moderator", "Member", "Core"]
    assert len(role_creations(discord_server)) == 1  # remembered: created once
    assert len(member_patches(discord_server, "bob")) == 1  # one PATCH per change, none for bob again

    mark = len(discord_server.requests)
    assert await set_level(discord_server, "bob", "active") == "Bob: core → active."
    patch = await discord_server.wait_for_request("PATCH", rf"/guilds/\d+/members/{bob}$", start=mark)
    assert discord_server.member_roles("bob") == ["Member", "Active"]  # core's role taken in the same call
    assert len(member_patches(discord_server, "bob", mark)) == 1
    assert [r.json["name"] for r in role_creations(discord_server, mark)] == ["Active"]


async def test_discord_a_share_moves_its_author_by_the_rules_and_mirrors_the_role(
    discord_server: FakeDiscord, levels_bot: LevelsBot
) -> None:
    bot = await levels_bot()
    bob = discord_server.user_id("bob")
    answer = await slash(
        discord_server,
        "share",
        {"kind": "tool", "title": "Leak map of Delft", "text": "https://example.org/leakmap #gis"},
        "bob",
    )
    assert answer.startswith("Added to the repertoire as #1")
    patch = await discord_server.wait_for_request("PATCH", rf"/guilds/\d+/members/{bob}$")
    assert [r.json["name"] for r in role_creations(discord_server)] == ["Occasional"]
    assert str(discord_server.role_id("Occasional")) in [str(role) for role in patch.json["roles"]]
    assert discord_server.member_roles("bob") == ["Member", "Occasional"]
    async with bot.db.session() as session:
        change = (await session.execute(select(LevelChange))).scalar_one()
    assert (change.old_level, change.new_level, change.actor_id) == ("peripheral", "occasional", None)
    assert change.rule.endswith("→ occasional")  # a rule moved bob, not a moderator
    assert len(member_patches(discord_server, "bob")) == 1


async def test_discord_a_role_above_copbots_is_said_once_in_the_log_and_the_command_still_answers(
    discord_server: FakeDiscord, levels_bot: LevelsBot, caplog: pytest.LogCaptureFixture
) -> None:
    discord_server.add_role("Core")  # made by hand, above copbot's own role
    assert position(discord_server, "Core") > position(discord_server, "copbot")
    bot = await levels_bot()
    caplog.set_level(logging.WARNING, logger="copbot.plugins.roles")

    assert await set_level(discord_server, "bob", "core") == "Bob: peripheral → core."
    assert await set_level(discord_server, "carol", "core") == "Carol: peripheral → core."

    [said] = await settled(refusals(caplog), "the refusal in the log")
    assert said == (
        "levels of water are not mirrored on discord: discord: the role 'Core' is above copbot's own role; "
        "move copbot's role above it in Server Settings → Roles"
    )
    await settled(changes_stored(bot, 2), "both moves stored")
    await discord_server.wait_for_request(  # carol's promotion is announced: her mirror was tried before
        "POST",
        rf"/channels/{discord_server.channel_id('general')}/messages$",
        predicate=lambda r: discord_server.user_id("carol") in r.json["content"],
    )
    assert len(await refusals(caplog)()) == 1  # once per community and role, not once per member
    assert discord_server.find("PATCH", r"/guilds/\d+/members/\d+$") == []  # Discord is not asked in vain
    assert role_creations(discord_server) == []
    assert discord_server.member_roles("bob") == ["Member"]


async def test_discord_after_a_restart_the_walk_changes_nothing_and_repairs_a_role_removed_by_hand(
    discord_server: FakeDiscord, levels_bot: LevelsBot
) -> None:
    bot = await levels_bot()
    bob, carol = discord_server.user_id("bob"), discord_server.user_id("carol")
    await set_level(discord_server, "bob", "core")
    await set_level(discord_server, "carol", "active")
    await discord_server.wait_for_request("PATCH", rf"/guilds/\d+/members/{bob}$")
    await discord_server.wait_for_request("PATCH", rf"/guilds/\d+/members/{carol}$")
    general = discord_server.channel_id("general")
    await discord_server.wait_for_request(
        "POST", rf"/channels/{general}/messages$", predicate=lambda r: carol in r.json["content"]
    )
    await bot.stop()

    mark = len(discord_server.requests)
    again = await levels_bot()  # the walk has run when this returns
    assert await reconciled(again) == 3  # alice, bob and carol checked
    assert member_patches(discord_server, "bob", mark) == []  # roles already right: not a request
    assert member_patches(discord_server, "carol", mark) == []
    assert role_creations(discord_server, mark) == []
    assert said_since(discord_server, mark) == []  # nothing announced
    await again.stop()

    core = discord_server.role_id("Core")
    discord_server.guilds[discord_server.guild_id].members[bob]["roles"].remove(core)  # by hand, meanwhile
    changes = await level_changes(again)
    mark = len(discord_server.requests)
    third = await levels_bot()
    [repair] = member_patches(discord_server, "bob", mark)
    member = discord_server.role_id("Member")
    assert sorted(str(role) for role in repair.json["roles"]) == sorted([member, core])
    assert discord_server.member_roles("bob") == ["Member", "Core"]
    assert member_patches(discord_server, "carol", mark) == []
    assert role_creations(discord_server, mark) == []
    assert said_since(discord_server, mark) == []  # no announcement
    assert await level_changes(third) == changes  # a repair is no level change


async def test_discord_a_member_busy_in_a_sister_community_but_silent_here_goes_transactional_here(
    discord_server: FakeDiscord, discord_errors: HandlerErrors, copbot_errors: HandlerErrors, tmp_path: Path
) -> None:
    """Silence is judged per community: bob said nothing in Water's guild for 100 days while writing in
    Waste's; the evaluation moves him to transactional in Water only. (It read when he last did anything
    anywhere, so he stayed peripheral in Water for ever.)"""
    waste = discord_server.add_guild("waste guild")
    discord_server.add_member("bob", guild=waste)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    settings = two_guilds(discord_server, tmp_path, waste)
    bot = CopBot(settings, clock=clock, plugins=[Roles], run_scheduler_loop=False)
    water_general, waste_general = (
        discord_server.channel_id("general"),
        discord_server.channel_id("general", waste),
    )

    async def written(count: int) -> bool:
        await bot.pipeline.journal.flush()
        async with bot.db.session() as session:
            found = await session.scalar(select(func.count()).select_from(ActivityEvent))
        return found == count

    async def bobs_memberships(expected: list[tuple[str, str, int]]) -> list[tuple[str, str, int]] | None:
        """Per community: bob's level and how many days ago he was last seen there."""
        async with bot.db.session() as session:
            rows = (
                await session.execute(
                    select(CommunityRow.slug, Membership.level, Membership.last_seen)
                    .join(CommunityRow, CommunityRow.id == Membership.community_id)
                    .join(MemberRow, MemberRow.id == Membership.member_id)
                    .where(MemberRow.platform_id == discord_server.user_id("bob"))
                    .order_by(CommunityRow.slug)
                )
            ).all()
        now = clock.now()
        found = [(slug, level, round((now - seen) / timedelta(days=1))) for slug, level, seen in rows]
        return found if found == expected else None

    with point_discord_py_at(discord_server):
        await bot.start()
        discord_errors.install(bot.services.adapters["discord"].client)  # type: ignore[attr-defined]
        try:
            await discord_server.message_create(water_general, "bob", "hello Water")
            await discord_server.message_create(waste_general, "bob", "hello Waste")
            await settled(lambda: written(2), "bob's two messages")
            clock.advance(timedelta(days=100))
            discord_server.ids_from(clock.now())  # bob's next message is 100 days on too
            await discord_server.message_create(waste_general, "bob", "still sorting sludge here")
            await settled(lambda: written(3), "bob's message in Waste, 100 days on")
            answer = await slash(discord_server, "role", {}, "alice", subcommand="recompute")
            assert "Bob: peripheral → transactional (no activity in 90 days → transactional)" in answer
            expected = [("waste", "peripheral", 0), ("water", "transactional", 100)]
            await settled(lambda: bobs_memberships(expected), "bob's levels and last-seen days")
        finally:
            await bot.stop()


# --- Matrix -------------------------------------------------------------------------------------------------


async def power_levels(client: AsyncClient, room_id: str) -> dict[str, Any]:
    """The room's m.room.power_levels content, as a member's client reads it."""
    answer = await client.room_get_state_event(room_id, "m.room.power_levels")
    assert isinstance(answer, RoomGetStateEventResponse), answer
    return dict(answer.content)


async def power_levels_event_id(client: AsyncClient, room_id: str) -> str:
    """The id of the room's current m.room.power_levels event: a new one means copbot sent a change."""
    answer = await client.room_get_state(room_id)
    assert isinstance(answer, RoomGetStateResponse), answer
    [event] = [e for e in answer.events if e.get("type") == "m.room.power_levels"]
    return str(event["event_id"])


async def is_member(bot: CopBot, user_id: str) -> bool:
    async with bot.db.session() as session:
        found = await session.scalar(
            select(func.count())
            .select_from(Membership)
            .join(MemberRow, MemberRow.id == Membership.member_id)
            .where(MemberRow.platform_id == user_id, Membership.left_at.is_(None))  # type: ignore[union-attr]
        )
    return bool(found)


async def test_matrix_core_gets_power_level_50_and_an_invite_and_the_walk_after_restarts_changes_nothing(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    owner, ana = await members("owner"), await members("ana")
    account = await _account(bots, owner)
    # copbot may change power levels (90); the owner created the rooms: unlimited power, never listed
    power = {"users": {account.user_id: 90}, "events": {"m.room.power_levels": 90}}
    created = await owner.room_create(name="Water core", invite=[account.user_id], power_level_override=power)
    assert isinstance(created, RoomCreateResponse), created
    core_room = created.room_id
    matrix = {
        "accept_invites_from": [owner.user_id],
        "rooms": [core_room],
        "level_power_levels": {"core": 50, "active": 10},
        "level_rooms": {"core": core_room},
    }
    bot = await bots.start(account, matrix=matrix, plugins=(Roles,))
    await reconciled(bot)
    bot_id = adapter_of(bot).user_id
    room_id = await room_with_bot(owner, bot_id, ana, name="Water CoP", power_level_override=power)
    await settled(lambda: is_member(bot, ana.user_id), "ana's membership", timeout=MATRIX_STEP)
    before = await power_levels(ana, room_id)
    assert ana.user_id not in before["users"]

    answer = await ask(owner, bot, room_id, f"!role set {ana.user_id} core")
    assert answer["body"].endswith(": peripheral → core.")

    async def raised() -> dict[str, Any] | None:
        levels = await power_levels(ana, room_id)
        return levels if levels["users"].get(ana.user_id) == 50 else None

    after = await settled(raised, "ana at power level 50", timeout=MATRIX_STEP)
    assert after["users"] == {**before["users"], ana.user_id: 50}  # only her entry changed
    assert {**after, "users": None} == {**before, "users": None}
    assert await wait_for_invite(ana, bot_id) == core_room  # invited to the core room

    event_id = await power_levels_event_id(ana, room_id)
    for _ in range(2):  # each start walks everyone; the levels are right, so nothing is sent
        await bots.stop(bot)
        bot = await bots.start(account, matrix=matrix, plugins=(Roles,))
        assert await reconciled(bot) >= 2  # the owner (a creator: left alone) and ana
        assert await power_levels_event_id(ana, room_id) == event_id
    assert (await power_levels(ana, room_id))["users"] == after["users"]

    await bots.stop(bot)  # meanwhile, someone lowers ana's power level by hand
    lowered = {**after, "users": {k: v for k, v in after["users"].items() if k != ana.user_id}}
    put = await owner.room_put_state(room_id, "m.room.power_levels", lowered)
    assert isinstance(put, RoomPutStateResponse), put
    bot = await bots.start(account, matrix=matrix, plugins=(Roles,))
    await reconciled(bot)
    assert (await power_levels(ana, room_id))["users"] == after["users"]  # repaired at start-up


async def test_matrix_too_little_power_is_said_once_and_changes_nothing(  # type: ignore[no-untyped-def]
    bots: Bots, members, caplog: pytest.LogCaptureFixture
) -> None:
    owner, ana, bo = await members("owner"), await members("ana"), await members("bo")
    account = await _account(bots, owner)
    matrix = {"accept_invites_from": [owner.user_id], "level_power_levels": {"core": 50}}
    bot = await bots.start(account, matrix=matrix, plugins=(Roles,))
    caplog.set_level(logging.WARNING, logger="copbot.plugins.roles")
    bot_id = adapter_of(bot).user_id
    room_id = await room_with_bot(owner, bot_id, ana, bo)  # copbot has the room's default power: 0
    for member in (ana, bo):
        await settled(lambda m=member: is_member(bot, m.user_id), "the membership", timeout=MATRIX_STEP)
    event_id = await power_levels_event_id(ana, room_id)

    for member in (ana, bo):
        answer = await ask(owner, bot, room_id, f"!role set {member.user_id} core")
        assert answer["body"].endswith(": peripheral → core.")  # the level is stored and the command answers

    await settled(changes_stored(bot, 2), "both moves stored", timeout=MATRIX_STEP)
    [said] = await settled(refusals(caplog), "the refusal in the log", timeout=MATRIX_STEP)
    assert said.startswith(
        f"levels of water are not mirrored on matrix: matrix: copbot's power level in {room_id}"
    )
    assert f"is 0; to set {ana.user_id}'s power level to 50 (core) it needs at least 100" in said
    assert said.endswith("raise copbot's power level in the room's settings (Roles & Permissions)")
    assert await power_levels_event_id(ana, room_id) == event_id


async def _account(bots: Bots, owner: AsyncClient) -> BotAccount:
    return await asyncio.to_thread(bots.account, owner.user_id)
