"""Which Discord channels copbot listens in: ``[communities.discord] channels`` lists them, and their
threads count as the channel they are in."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import select

from bot import outbox
from bot.model import Content, Room
from bot.tables import OutboxRow
from tests.e2e.test_discord import BotFactory
from tests.harness.discord_server import FakeDiscord, Perm


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


async def _queue(bot: Any, key: str, channel: str) -> None:
    async with bot.services.db.session() as session:
        await outbox.put(
            session,
            key,
            Content(f"for {key}"),
            room=Room("discord", channel, "water"),
            now=bot.services.clock.now(),
        )


async def _row(bot: Any, key: str, *, sent: bool) -> OutboxRow:
    """The outbox row ``key``, waiting a while for it to be marked sent (or given up) when ``sent``."""
    for _ in range(250):
        async with bot.services.db.session() as session:
            row = (await session.execute(select(OutboxRow).where(OutboxRow.key == key))).scalar_one()
        if not sent or row.sent_at is not None:
            return row
        await asyncio.sleep(0.02)
    return row


async def test_a_message_copbot_may_not_post_is_tried_a_few_times_then_given_up_saying_what_to_fix(
    discord_server: FakeDiscord,
    discord_bot: BotFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reminder for a channel where copbot's Send Messages was taken away was retried twenty times within
    minutes, each with a warning. Now: a few attempts spread out (shortened here), one warning saying which
    channel and what to fix, one when given up; /status says it to the moderators meanwhile."""
    monkeypatch.setattr(outbox, "PERMISSION_RETRIES", (0.05, 0.05, 0.05))
    monkeypatch.setattr(outbox, "RETRY_FIRST", 0.01)
    bot = await discord_bot()
    await discord_server.channel_overwrite("announcements", "copbot", deny=Perm.SEND_MESSAGES)
    announcements = discord_server.channel_id("announcements")
    await _queue(bot, "reminder", announcements)
    await bot.pipeline.outbox.deliver()

    record = await discord_server.interaction_slash("status", user="alice")
    call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert "Cannot post: copbot may not send messages in #announcements" in call.json["data"]["content"]

    row = await _row(bot, "reminder", sent=True)
    assert (row.attempts, row.message_id, row.sent_at is not None) == (4, "", True)
    assert "#announcements" in row.last_error and "Send Messages" in row.last_error
    tried = discord_server.find("POST", rf"/channels/{announcements}/messages$")
    assert [(r.status, r.response["code"]) for r in tried] == [(403, 50013)] * 4
    warnings = [r for r in caplog.records if r.name == "bot.outbox" and r.levelno >= logging.WARNING]
    assert len(warnings) == 2, [r.getMessage() for r in warnings]
    assert "#announcements" in warnings[0].getMessage() and "trying again" in warnings[0].getMessage()
    assert "given up after 4 attempts" in warnings[1].getMessage()
    assert "Send Messages" in warnings[1].getMessage()


async def test_a_message_refused_for_lack_of_permission_goes_out_once_a_moderator_restores_it(
    discord_server: FakeDiscord, discord_bot: BotFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "PERMISSION_RETRIES", (0.3, 0.3, 0.3))
    monkeypatch.setattr(outbox, "RETRY_FIRST", 0.01)
    bot = await discord_bot()
    await discord_server.channel_overwrite("announcements", "copbot", deny=Perm.VIEW_CHANNEL)
    announcements = discord_server.channel_id("announcements")
    await _queue(bot, "digest", announcements)
    await bot.pipeline.outbox.deliver()
    refused = discord_server.last("POST", rf"/channels/{announcements}/messages$")
    assert (refused.status, refused.response["code"]) == (403, 50001)
    assert "copbot cannot see #announcements" in (await _row(bot, "digest", sent=False)).last_error
    await discord_server.channel_overwrite("announcements", "copbot")  # the moderator removes the override
    row = await _row(bot, "digest", sent=True)
    assert row.message_id and row.attempts == 1
    assert [m["content"] for m in discord_server.bot_messages(announcements)] == ["for digest"]
    assert bot.pipeline.outbox.refused == {}
