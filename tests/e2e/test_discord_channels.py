"""Which Discord channels copbot listens in: ``[communities.discord] channels`` lists them, and their
threads count as the channel they are in."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot import outbox
from bot.model import Content, Room
from bot.tables import OutboxRow
from tests.e2e.test_discord import BotFactory
from tests.harness.discord_server import FakeDiscord


def _thread_in(discord_server: FakeDiscord, parent: str, name: str) -> dict[str, Any]:
    """A public thread of ``parent``, as Discord announces it (THREAD_CREATE carries the whole channel)."""
    thread = discord_server.add_channel(name, type=11, parent=parent)
    thread.update(
        owner_id=discord_server.user_id("bob"),
        last_message_id=None,
        rate_limit_per_user=0,
        message_count=0,
        member_count=1,
        thread_metadata={
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": "2026-03-01T10:00:00+00:00",
            "locked": False,
        },
    )
    return thread


async def test_a_thread_of_a_listed_channel_is_listened_in_and_others_are_not(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    """A command in a thread of a listed channel went unanswered without a word: the allow-list was checked
    against the thread's own id and name."""
    discord_server.add_channel("off-topic")
    await discord_bot(community={"discord": {"guild_id": discord_server.guild_id, "channels": ["general"]}})
    listed, unlisted = (
        _thread_in(discord_server, "general", "leaks"),
        _thread_in(discord_server, "off-topic", "x"),
    )
    for thread in (listed, unlisted):
        await discord_server.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
    await discord_server.message_create(unlisted["id"], "bob", "!about")
    await discord_server.message_create("off-topic", "bob", "!about")
    await discord_server.message_create(listed["id"], "bob", "!about")
    sent = await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    assert sent.json["content"].startswith("I am copbot")
    assert sent.path.endswith(f"/channels/{listed['id']}/messages")
    await discord_server.message_create("general", "bob", "!about")
    await discord_server.wait_for_request(
        "POST", rf"/channels/{discord_server.channel_id('general')}/messages$"
    )
    answered = {
        request.path.split("/")[-2] for request in discord_server.find("POST", r"/channels/\d+/messages$")
    }
    assert answered == {str(listed["id"]), str(discord_server.channel_id("general"))}


async def test_a_message_for_a_deleted_channel_is_given_up_at_once(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    """A reminder or digest queued for a channel deleted since was retried twenty times, with a warning each
    time; Discord's "Unknown Channel" says no retry can deliver it. A channel that exists gets its message."""
    bot = await discord_bot()
    now = bot.services.clock.now()
    general = discord_server.channel_id("general")
    async with bot.services.db.session() as session:
        for key, channel in (("gone", "999999999999999999"), ("here", general)):
            await outbox.put(
                session, key, Content(f"for {key}"), room=Room("discord", channel, "water"), now=now
            )
    await bot.pipeline.outbox.deliver()
    async with bot.services.db.session() as session:
        rows = {row.key: row for row in (await session.execute(select(OutboxRow))).scalars()}
    gone, here = rows["gone"], rows["here"]
    assert (gone.attempts, gone.message_id, gone.sent_at is not None) == (1, "", True)
    assert gone.last_error is not None and "the channel no longer exists" in gone.last_error
    assert here.attempts == 0 and here.message_id and here.sent_at is not None
    sent = discord_server.find("POST", r"/channels/\d+/messages$")
    assert [request.json["content"] for request in sent] == ["for here"]
