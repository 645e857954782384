"""Members who take no direct messages from copbot (Discord answers 403/50007 "Cannot send messages to this
user"), through discord.py's whole real path: what they did still counts, and they are told plainly where
copbot can reach them, never with an apology or a traceback in the log.

The ``discord_bot`` fixture fails a test on any error copbot logs, so a refused direct message that ends in
``log.exception`` fails here too.
"""

from __future__ import annotations

from plugins.meetings.models import occurrence_key
from plugins.meetings.plugin import Meetings
from tests.e2e.test_discord import BotFactory
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
