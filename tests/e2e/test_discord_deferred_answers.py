"""Discord paths a member or moderator hits, through discord.py against the tests' Discord server.

* A slash command answered "only to you" after Discord's deadline (so first deferred "copbot is
  thinking…") must stay only the caller's: the first follow-up after a defer takes the defer's visibility,
  so sent as is, a link code or an anonymous vote would be posted for the whole channel.
* A vote in a native poll by a member discord.py has not cached (no members intent, a large guild) still
  counts.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.adapters import discord_interactions
from bot.context import Context
from bot.model import Content, PollSpec, PollVoted
from bot.plugin import Plugin, command, listen
from tests.e2e.test_discord import EPHEMERAL, BotFactory
from tests.harness.discord_server import FakeDiscord


class Slow(Plugin):
    name = "slow"
    votes: list[PollVoted] = []  # noqa: RUF012

    @command("slow secret", examples=("slow secret",))
    async def secret(self, ctx: Context) -> None:
        """Answer only the caller, after the interaction had to be deferred."""
        await asyncio.sleep(0.6)
        await ctx.reply(Content("your link code: AB12-CD34", ephemeral=True))

    @command("slow public", examples=("slow public",))
    async def public(self, ctx: Context) -> None:
        """Answer the channel, after the interaction had to be deferred."""
        await asyncio.sleep(0.6)
        await ctx.reply("for everyone")

    @command("slow poll", examples=("slow poll",))
    async def poll(self, ctx: Context) -> None:
        """Post a native poll."""
        await ctx.reply(Content("", poll=PollSpec("Next topic?", ("Leakage", "Metering"))))

    @listen(PollVoted)
    async def voted(self, ctx: Context, event: PollVoted) -> None:
        Slow.votes.append(event)


async def _message_with(discord_server: FakeDiscord, text: str) -> dict[str, Any]:
    for _ in range(250):
        found = [m for m in discord_server.messages.values() if text in str(m.get("content") or "")]
        if found:
            return found[-1]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no message with {text!r}:\n{discord_server.describe_requests()}")


async def test_a_deferred_private_answer_stays_private(
    discord_server: FakeDiscord, discord_bot: BotFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discord_interactions, "DEFER_AFTER", 0.1)
    await discord_bot(plugins=(Slow,))
    record = await discord_server.interaction_slash("slow", {}, user="bob", subcommand="secret")
    deferred = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert deferred.json["type"] == 5  # deferred: "copbot is thinking…"
    secret = await _message_with(discord_server, "AB12-CD34")
    assert int(secret["flags"]) & EPHEMERAL, f"the link code was posted for everyone: {secret}"
    public = [
        m
        for m in discord_server.messages.values()
        if m["channel_id"] == secret["channel_id"] and not int(m["flags"]) & EPHEMERAL
    ]
    assert all("AB12" not in str(m.get("content")) for m in public)
    assert not any(int(m["flags"]) & 128 for m in public), "a 'thinking…' message was left behind"  # LOADING


async def test_a_deferred_public_answer_is_still_public(
    discord_server: FakeDiscord, discord_bot: BotFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discord_interactions, "DEFER_AFTER", 0.1)
    await discord_bot(plugins=(Slow,))
    await discord_server.interaction_slash("slow", {}, user="bob", subcommand="public")
    answer = await _message_with(discord_server, "for everyone")
    assert not int(answer["flags"]) & EPHEMERAL


async def test_a_poll_vote_by_a_member_discord_py_has_not_cached_counts(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    """Without the members intent discord.py knows only who it saw; the vote payload carries an id alone."""
    Slow.votes = []
    await discord_bot(plugins=(Slow,), members=False)
    await discord_server.interaction_slash("slow", {}, user="alice", subcommand="poll")
    sent = await discord_server.wait_for_request("POST", r"/interactions/\d+/.+/callback")
    assert sent.json["data"].get("poll")
    poll_message = [m for m in discord_server.messages.values() if m.get("poll")][-1]
    await discord_server.poll_vote_add(poll_message["id"], "carol", 2)
    for _ in range(150):
        if Slow.votes:
            break
        await asyncio.sleep(0.02)
    assert [(v.member.id, v.answers) for v in Slow.votes] == [(discord_server.user_id("carol"), (1,))]
