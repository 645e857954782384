"""Members who take no direct messages from copbot (Discord answers 403/50007 "Cannot send messages to this
user"), through discord.py's whole real path: what they did still counts, and they are told plainly where
copbot can reach them, never with an apology or a traceback in the log.

The ``discord_bot`` fixture fails a test on any error copbot logs, so a refused direct message that ends in
``log.exception`` fails here too.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.core_commands import Core
from plugins.meetings.models import occurrence_key
from plugins.meetings.plugin import Meetings
from plugins.profiles.models import Onboarding
from plugins.profiles.plugin import Profiles
from plugins.welcome.plugin import Welcome
from tests.e2e.test_discord import EPHEMERAL, BotFactory
from tests.e2e.test_meetings_platforms import answers_become, future_start, schedule_on_discord
from tests.harness.discord_server import FakeDiscord


async def test_a_reaction_answer_counts_when_its_confirmation_cannot_be_sent_by_direct_message(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    """bob reacts ✅ to a meeting's announcement with his direct messages closed: the confirmation copbot
    sends by DM is refused, and his yes was rolled back with it (and the listener's failure logged)."""
    bot = await discord_bot(plugins=(Meetings,))
    start = future_start()
    await schedule_on_discord(discord_server, start)
    announcement = discord_server.bot_messages("general")[-1]["id"]
    discord_server.close_dms("bob")
    await discord_server.reaction_add(announcement, "bob", "✅")
    dm = discord_server.dm_channel("bob")
    await discord_server.wait_for_request("POST", rf"/channels/{dm}/messages$")
    await answers_become(bot, [(discord_server.user_id("bob"), occurrence_key(start), "yes")], "bob's ✅")


async def test_profile_onboarding_with_direct_messages_closed_says_so_and_starts_nothing(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    bot = await discord_bot(plugins=(Core, Profiles))
    discord_server.close_dms("bob")
    record = await discord_server.interaction_slash("profile", {}, user="bob", subcommand="onboarding")
    answer = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert answer.json["data"]["flags"] == EPHEMERAL
    assert answer.json["data"]["content"].startswith("I could not send you the questions by direct message")
    assert "/profile onboarding" in answer.json["data"]["content"]
    async with bot.db.session() as session:
        assert (await session.execute(select(Onboarding))).all() == []


async def test_a_newcomer_with_direct_messages_closed_is_welcomed_and_told_how_to_answer_later(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    bot = await discord_bot(plugins=(Core, Welcome, Profiles))
    dave = discord_server.add_user("dave")
    discord_server.close_dms(dave["id"])
    await discord_server.member_add(None, dave["id"])
    general = discord_server.channel_id("general")
    welcome = await discord_server.wait_for_request("POST", rf"/channels/{general}/messages$")
    assert f"<@{dave['id']}>" in welcome.json["content"]
    told = await discord_server.wait_for_request(
        "POST", rf"/channels/{general}/messages$", start=discord_server.requests.index(welcome) + 1
    )
    assert told.json["content"].startswith(f"<@{dave['id']}>, I could not send you")
    assert "/profile onboarding" in told.json["content"]
    assert told.json["allowed_mentions"]["users"] == [int(dave["id"])]
    async with bot.db.session() as session:
        assert (await session.execute(select(Onboarding))).all() == []
