"""Members who take no direct messages from copbot (Discord answers 403/50007 "Cannot send messages to this
user"), through discord.py's whole real path: what they did still counts, and they are told plainly where
copbot can reach them, never with an apology or a traceback in the log.

The ``discord_bot`` fixture fails a test on any error copbot logs, so a refused direct message that ends in
``log.exception`` fails here too.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import select, update

from bot.context import Context
from bot.core_commands import Core
from bot.model import Content, Member, ReactionAdded, ReactionRemoved, Room
from bot.plugin import Plugin, listen
from plugins.meetings.models import occurrence_key
from plugins.meetings.plugin import Meetings
from plugins.polls.models import Poll, PollVote
from plugins.polls.plugin import Polls
from plugins.profiles.models import Onboarding
from plugins.profiles.plugin import Profiles
from plugins.value.models import Prompt, Story
from plugins.value.plugin import Value
from plugins.welcome.plugin import Welcome
from tests.e2e.test_discord import EPHEMERAL, BotFactory
from tests.e2e.test_meetings_platforms import answers_become, future_start, schedule_on_discord
from tests.harness.discord_server import FakeDiscord


class Reactions(Plugin):
    """Keeps the reactions it is given and taken back."""

    name = "reactions"
    seen: list[ReactionAdded | ReactionRemoved] = []  # noqa: RUF012  (shared across a restart on purpose)

    @listen(ReactionAdded)
    async def added(self, ctx: Context, event: ReactionAdded) -> None:
        Reactions.seen.append(event)

    @listen(ReactionRemoved)
    async def removed(self, ctx: Context, event: ReactionRemoved) -> None:
        Reactions.seen.append(event)


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


async def test_a_native_vote_in_an_anonymous_poll_by_a_member_with_closed_direct_messages_is_one_line(
    discord_server: FakeDiscord, discord_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The notice that an anonymous poll's native vote is not counted is refused by DM: it was a listener
    failure with a traceback; now one line, and the vote is (still) not stored.

    copbot posts anonymous polls natively on Matrix only (a Discord poll shows who voted), and Synapse
    refuses no direct message this simply: the poll is posted natively on Discord and marked anonymous in
    the database, so that Discord's real vote path reaches the same listener."""
    caplog.set_level(logging.INFO, logger="copbot.plugins.polls")
    bot = await discord_bot(plugins=(Core, Polls))
    await discord_server.message_create("general", "bob", '!poll create "Next topic?" Leakage Metering')
    await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    async with bot.db.session() as session:
        await session.execute(update(Poll).values(anonymous=True))
    native = discord_server.bot_messages("general")[-1]["id"]
    discord_server.close_dms("alice")
    await discord_server.poll_vote_add(native, "alice", 2)
    dm = discord_server.dm_channel("alice")
    refused = await discord_server.wait_for_request("POST", rf"/channels/{dm}/messages$")
    assert refused.status == 403
    await discord_server.message_create("general", "alice", "!poll list")  # alice's events run in turn
    await discord_server.wait_for_request(
        "POST", r"/channels/\d+/messages$", start=discord_server.requests.index(refused) + 1
    )
    async with bot.db.session() as session:
        assert (await session.execute(select(PollVote))).all() == []
    told = [r for r in caplog.records if r.name == "copbot.plugins.polls" and "anonymous" in r.getMessage()]
    assert len(told) == 1 and told[0].exc_info is None and told[0].levelno == logging.INFO


async def test_a_value_story_told_with_direct_messages_closed_is_kept_and_the_member_told_why_no_question(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    """/value story without --cycle asks the cycle by DM: refused, the command failed, the story was
    rolled back and bob got an apology. Now the story is kept and the answer says how to add its cycle."""
    bot = await discord_bot(plugins=(Core, Value))
    discord_server.close_dms("bob")
    record = await discord_server.interaction_slash(
        "value", {"text": "The leak-map call saved us a week"}, user="bob", subcommand="story"
    )
    answer = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    content = answer.json["data"]["content"]
    assert content.startswith("Thank you! Your story is saved") and "could not send you" in content
    assert "--cycle" in content
    async with bot.db.session() as session:
        stories = (await session.execute(select(Story))).scalars().all()
        prompts = (await session.execute(select(Prompt))).scalars().all()
    assert [s.text for s in stories] == ["The leak-map call saved us a week"]
    assert [p.ended_at is not None for p in prompts] in ([], [True])  # nothing waits for an answer


async def test_an_answer_in_the_value_conversation_is_kept_when_the_next_question_cannot_be_sent(
    discord_server: FakeDiscord, discord_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """bob answers the cycle question, then copbot's next question is refused: the answer was rolled back
    with a traceback. Now it is kept, the conversation ends, one line says why."""
    caplog.set_level(logging.INFO, logger="copbot.plugins.value")
    bot = await discord_bot(plugins=(Core, Value))
    record = await discord_server.interaction_slash(
        "value", {"text": "The leak-map call saved us a week"}, user="bob", subcommand="story"
    )
    dm = discord_server.dm_channel("bob")
    await discord_server.wait_for_request("POST", rf"/channels/{dm}/messages$")
    await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    discord_server.close_dms("bob")
    await discord_server.message_create(dm, "bob", "4")
    refused = await discord_server.wait_for_request(
        "POST", rf"/channels/{dm}/messages$", predicate=lambda r: r.status == 403
    )
    assert "May your story be shown" in refused.json["content"]
    for _ in range(100):
        async with bot.db.session() as session:
            story = (await session.execute(select(Story))).scalar_one()
            prompt = (await session.execute(select(Prompt))).scalar_one()
        if prompt.ended_at is not None:
            break
        await asyncio.sleep(0.02)
    assert story.cycle == "realized" and prompt.ended_at is not None
    bob = discord_server.user_id("bob")
    told = [r for r in caplog.records if r.name == "copbot.plugins.value" and bob in r.getMessage()]
    assert len(told) == 1 and told[0].exc_info is None


async def test_a_reaction_in_a_direct_chat_after_a_restart_reaches_the_listeners(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    """discord.py caches a direct chat only once copbot opened or wrote in it in this run: after a restart
    bob's ✅ (and taking it back) on copbot's direct message came from a channel copbot did not know, and
    was dropped without a word. Now the reaction, given and taken back, reaches the plugins, from bob, in
    his direct chat of the Water CoP."""
    Reactions.seen = []
    bot = await discord_bot(plugins=(Reactions,))
    bob = Member("discord", discord_server.user_id("bob"), "bob")
    sent = await bot.services.adapters["discord"].send_direct(bob, Content("Coming to the kick-off?"))
    await bot.stop()

    await discord_bot(plugins=(Reactions,))  # a new process: no direct chat is cached
    await discord_server.reaction_add(sent, "bob", "✅")
    await discord_server.reaction_remove(sent, "bob", "✅")
    for _ in range(100):
        if len(Reactions.seen) == 2:
            break
        await asyncio.sleep(0.02)
    dm = discord_server.dm_channel("bob")
    assert [(type(e).__name__, e.member.id, e.message_id, e.emoji) for e in Reactions.seen] == [
        ("ReactionAdded", bob.id, sent, "✅"),
        ("ReactionRemoved", bob.id, sent, "✅"),
    ]
    assert {e.room for e in Reactions.seen} == {Room("discord", dm, community_id="water", is_direct=True)}
    assert {e.member.display_name for e in Reactions.seen} == {"Bob"}
