"""Discord members as copbot knows them, through discord.py's whole real path: a name changed on Discord
(a server nickname, the account's display name or username) is the name copbot shows at once; a newcomer
is welcomed in a channel of the community copbot may post in, and onboarded by direct message even when
there is none."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.core_commands import Core
from bot.tables import ActivityEvent, MemberRow, Membership
from plugins.profiles.plugin import Profiles
from plugins.roles.plugin import Roles
from plugins.welcome.plugin import Welcome
from tests.e2e.test_discord import BotFactory
from tests.harness.discord_server import FakeDiscord, Perm


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


async def _newcomer_is_asked_by_direct_message(discord_server: FakeDiscord, name: str) -> None:
    dm = discord_server.dm_channel(name)
    question = await discord_server.wait_for_request("POST", rf"/channels/{dm}/messages$")
    assert "(1/6)" in question.json["content"]


async def test_a_newcomer_is_welcomed_in_a_channel_copbot_may_post_in_and_onboarded(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    """The server's system channel (#general) does not let copbot post: the welcome went there anyway, was
    refused, the listener failed and onboarding never started. Now it goes to the first channel copbot may
    send messages in."""
    await discord_server.channel_overwrite("general", "copbot", deny=Perm.SEND_MESSAGES)
    bot = await discord_bot(plugins=(Core, Welcome, Profiles))
    dana = discord_server.add_user("dana")
    await discord_server.member_add(None, "dana")
    announcements = discord_server.channel_id("announcements")
    welcome = await discord_server.wait_for_request("POST", rf"/channels/{announcements}/messages$")
    assert welcome.json["content"].startswith(f"Welcome to Water CoP, <@{dana['id']}>!")
    await _newcomer_is_asked_by_direct_message(discord_server, "dana")
    assert discord_server.find("POST", rf"/channels/{discord_server.channel_id('general')}/messages$") == []
    async with bot.db.session() as session:
        level = await session.scalar(
            select(Membership.level).join(MemberRow).where(MemberRow.platform_id == dana["id"])
        )
    assert level == "peripheral"


async def test_a_welcome_goes_to_a_channel_of_the_community(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    """With ``channels`` listed, the welcome goes to one of them, not to the server's system channel."""
    await discord_bot(
        plugins=(Core, Welcome, Profiles),
        community={"discord": {"guild_id": discord_server.guild_id, "channels": ["bot-log"]}},
    )
    await discord_server.member_add(None, "dana")
    sent = await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    assert sent.path.endswith(f"/channels/{discord_server.channel_id('bot-log')}/messages")
    await _newcomer_is_asked_by_direct_message(discord_server, "dana")


async def test_with_no_channel_copbot_may_post_in_a_newcomer_is_still_onboarded_by_direct_message(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    for channel in ("general", "announcements", "bot-log"):
        await discord_server.channel_overwrite(channel, "copbot", deny=Perm.SEND_MESSAGES)
    bot = await discord_bot(plugins=(Core, Welcome, Profiles))
    dana = discord_server.add_user("dana")
    await discord_server.member_add(None, "dana")
    await _newcomer_is_asked_by_direct_message(discord_server, "dana")
    refused = discord_server.find("POST", rf"/channels/{discord_server.channel_id('general')}/messages$")
    assert [(r.status, r.response["code"]) for r in refused] == [(403, 50013)]
    async with bot.db.session() as session:
        level = await session.scalar(
            select(Membership.level).join(MemberRow).where(MemberRow.platform_id == dana["id"])
        )
    assert level == "peripheral"
