"""Discord members as copbot knows them, through discord.py's whole real path: a name changed on Discord
(a server nickname, the account's display name or username) is the name copbot shows at once."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.core_commands import Core
from bot.tables import ActivityEvent, MemberRow
from plugins.profiles.plugin import Profiles
from plugins.roles.plugin import Roles
from plugins.welcome.plugin import Welcome
from tests.e2e.test_discord import BotFactory
from tests.harness.discord_server import FakeDiscord


async def stored_name(bot: object, user_id: str, expected: str) -> str | None:
    """The name stored for ``user_id``, waiting a while for it to become ``expected``."""
    name = None
    for _ in range(150):
        async with bot.db.session() as session:  # type: ignore[attr-defined]
            name = await session.scalar(
                select(MemberRow.display_name).where(MemberRow.platform_id == user_id)
            )
        if name == expected:
            break
        await asyncio.sleep(0.02)
    return name


async def test_a_member_who_changes_their_nickname_or_display_name_is_shown_by_it_without_acting(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    """A newcomer sets a server nickname after joining, another member changes their account's display
    name: ``/role list`` shows the new names at once; neither change is a join (no second welcome) nor
    activity."""
    bot = await discord_bot(plugins=(Core, Welcome, Profiles, Roles))
    dana = discord_server.add_user("dana")
    await discord_server.member_add(None, "dana")
    general = discord_server.channel_id("general")
    await discord_server.wait_for_request("POST", rf"/channels/{general}/messages$")
    assert await stored_name(bot, dana["id"], "Dana") == "Dana"

    assert await discord_server.member_update(None, "dana", nick="Dana Rhine (Waterschap)") == 1
    assert await stored_name(bot, dana["id"], "Dana Rhine (Waterschap)") == "Dana Rhine (Waterschap)"
    bob = discord_server.user_id("bob")
    await discord_server.member_update(None, "bob", global_name="Bob Berg")
    assert await stored_name(bot, bob, "Bob Berg") == "Bob Berg"

    record = await discord_server.interaction_slash(
        "role", {"level": "peripheral"}, user="carol", subcommand="list"
    )
    answer = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    listed = answer.json["data"]["content"]
    assert "Dana Rhine (Waterschap)" in listed and "Bob Berg" in listed

    welcomes = [m for m in discord_server.bot_messages(general) if "Welcome" in m["content"]]
    assert len(welcomes) == 1  # a name change is no join
    await bot.pipeline.journal.flush()
    async with bot.db.session() as session:
        activity = await session.scalar(select(func.count()).select_from(ActivityEvent))
    assert activity == 0
