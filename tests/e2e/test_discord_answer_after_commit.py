"""A slash command's answer is sent only once its unit of work has committed, through discord.py's real path.

Before, the answer went out while the handler ran: when the commit then failed, the member read "kept"
for something that was not stored, followed by copbot's apology.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bot.commands import Text
from bot.context import Context
from bot.core_commands import Core
from bot.pipeline import CANNOT_SAVE
from bot.plugin import Plugin, command
from bot.tables import StateRow
from plugins.polls.models import Poll, PollVote
from plugins.polls.plugin import Polls
from tests.e2e.test_discord import EPHEMERAL, BotFactory
from tests.harness.discord_server import FakeDiscord, HandlerErrors
from tests.harness.refused_writes import RefusedWrites


class Keeper(Plugin):
    name = "keeper"

    @command("keeper note", examples=("keeper note remember the milk",))
    async def note(self, ctx: Context, text: Text) -> None:
        """Keep a note: an ORM row, written when the command commits."""
        ctx.session.add(StateRow(scope="keeper", key=text, value=text, updated_at=ctx.now()))
        await ctx.reply(f"Kept: {text}")


def _said(discord_server: FakeDiscord, start: int) -> list[str]:
    """What the bot said to interactions (callbacks and follow-ups) since request ``start``."""
    said = []
    for request in discord_server.requests[start:]:
        body = request.json if isinstance(request.json, dict) else {}
        data = body.get("data") if "/callback" in request.path else body
        if isinstance(data, dict) and data.get("content"):
            said.append(str(data["content"]))
    return said


async def test_a_slash_answer_waits_for_the_commit_and_a_failed_commit_gets_only_the_apology(
    discord_server: FakeDiscord, discord_bot: BotFactory, copbot_errors: HandlerErrors
) -> None:
    bot = await discord_bot(plugins=(Keeper,))
    record = await discord_server.interaction_slash(
        "keeper", {"text": "first"}, user="bob", subcommand="note"
    )
    await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    refused = RefusedWrites(bot.services.db, "read-only")
    try:
        start = len(discord_server.requests)
        record = await discord_server.interaction_slash(
            "keeper", {"text": "milk"}, user="bob", subcommand="note"
        )
        for _ in range(250):
            if any(CANNOT_SAVE in text for text in _said(discord_server, start)):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # anything said after the apology would be recorded by now
        said = _said(discord_server, start)
        assert said == [CANNOT_SAVE], said  # no "Kept: milk" before it
        callback = discord_server.last("POST", rf"/interactions/{record.id}/.+/callback")
        assert callback.json["data"]["flags"] == EPHEMERAL
        copbot_errors.clear()  # the refused write is logged once, as it should be
        async with bot.services.db.session() as session:
            kept = (await session.scalars(select(StateRow.key).where(StateRow.scope == "keeper"))).all()
        assert kept == ["first"]
        refused.lift()  # the member tries again: answered, and kept
        start = len(discord_server.requests)
        record = await discord_server.interaction_slash(
            "keeper", {"text": "milk"}, user="bob", subcommand="note"
        )
        await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback", start=start)
        assert _said(discord_server, start) == ["Kept: milk"]
    finally:
        refused.remove()


async def test_a_slash_poll_posted_after_its_commit_keeps_its_message_and_counts_native_votes(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    """The poll's message id is stored once the poll is posted (after its commit): a vote in Discord's own
    poll finds the poll by it."""
    bot = await discord_bot(plugins=(Core, Polls))
    options = {"question": "Next topic?", "options": "Leakage Metering"}
    record = await discord_server.interaction_slash("poll", options, user="bob", subcommand="create")
    callback = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert callback.json["data"]["poll"]["question"]["text"] == "Next topic?"
    native = discord_server.bot_messages("general")[-1]["id"]
    for _ in range(250):
        async with bot.services.db.session() as session:
            poll = (await session.scalars(select(Poll))).one()
        if poll.message_id:
            break
        await asyncio.sleep(0.02)
    assert poll.message_id == native
    await discord_server.poll_vote_add(native, "alice", 2)
    for _ in range(250):
        async with bot.services.db.session() as session:
            votes = (await session.scalars(select(PollVote))).all()
        if votes:
            break
        await asyncio.sleep(0.02)
    assert [(vote.poll_id, vote.choices) for vote in votes] == [(poll.id, "1")]  # the second answer
