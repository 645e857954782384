"""Which Discord channels copbot listens in: ``[communities.discord] channels`` lists them, and their
threads count as the channel they are in."""

from __future__ import annotations

from typing import Any

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
