"""kill -9 on Discord (issue 15, item 1): events the gateway delivers twice are handled once.

Discord does not redeliver what a bot missed while it was dead, but it does deliver twice: a RESUME replays
from the sequence number the client sends, which can be behind what it handled, and a command can reach a
new process again. These run copbot in process against the tests' Discord server and check, through the
server's own records, that:

* after a gateway drop and RESUME that replays everything (messages, slash commands), nothing is done or
  answered twice;
* after a restart of copbot, a message or interaction delivered again is not answered again — even when
  the restarted process has no record of having handled it (copbot died after answering, before its
  batch of handled ids was written): the reply to a message goes out under the same nonce, which
  Discord's ``enforce_nonce`` turns into the earlier message, and an interaction already acknowledged is
  left as it is (Discord refuses a second acknowledgement, 40060) without an apology or an error.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select

from bot.app import CopBot
from bot.tables import HandledEvent
from plugins.repertoire.models import Item
from plugins.repertoire.plugin import Repertoire
from tests.harness.discord_server import FakeDiscord

SENT = r"/channels/\d+/messages$"
CALLBACK = r"/interactions/{}/.+/callback"


async def items(bot: CopBot) -> list[str]:
    async with bot.db.session() as session:
        return sorted((await session.execute(select(Item.title))).scalars())


async def answered_in_order(server: FakeDiscord, before: int, count: int) -> list[Any]:
    """Wait for ``count`` new bot messages in #general after the first ``before``; they and nothing more."""
    await server._wait_until(
        lambda: len(server.bot_messages("general")) >= before + count,
        10.0,
        lambda: f"bot messages: {[m['content'][:40] for m in server.bot_messages('general')]}",
    )
    return server.bot_messages("general")[before:]


def accepted(server: FakeDiscord, interaction_id: str) -> int:
    """How many acknowledgements of the interaction the server accepted (a second one answers 40060)."""
    return sum(call.status < 300 for call in server.find("POST", CALLBACK.format(interaction_id)))


async def probe(server: FakeDiscord) -> None:
    """A command after the rest, answered: everything delivered before it was handled (one member's events
    are handled in order)."""
    before = len(server.bot_messages("general"))
    await server.message_create("general", "bob", "!about")
    await answered_in_order(server, before, 1)


async def test_a_resume_that_replays_everything_does_and_answers_nothing_twice(
    discord_server: FakeDiscord,
    discord_bot,  # type: ignore[no-untyped-def]
) -> None:
    bot = await discord_bot(plugins=(Repertoire,))
    mark = len(discord_server.gateway_sent)
    await discord_server.message_create("general", "bob", '!share story "Replayed" told once')
    await discord_server.message_create("general", "bob", "!help share")
    await answered_in_order(discord_server, 0, 2)
    slash = await discord_server.interaction_slash(
        "share", {"kind": "story", "title": "Slashed", "text": "told once"}, user="bob"
    )
    await discord_server.wait_for_ack(slash)
    await bot.pipeline.journal.flush()

    replayed = sum(1 for frame in discord_server.gateway_sent[mark:] if frame.op == 0)
    await discord_server.send_reconnect(replay=replayed)  # the RESUME replays all of it again
    assert discord_server.sessions[-1].resume_count == 1
    await probe(discord_server)

    assert [m["content"][:30] for m in discord_server.bot_messages("general")] == [
        "Added to the repertoire as #1 ",
        "/share story|tool|experience|p",
        "Added to the repertoire as #2 ",  # the slash command's answer
        "I am copbot, a helper for Comm",
    ]
    assert accepted(discord_server, slash.id) == 1  # the replayed one was skipped (its ack refused, quietly)
    assert await items(bot) == ["Replayed", "Slashed"]


async def test_after_a_restart_a_command_delivered_again_is_not_answered_again(
    discord_server: FakeDiscord,
    discord_bot,  # type: ignore[no-untyped-def]
) -> None:
    bot = await discord_bot(plugins=(Repertoire,))
    share = await discord_server.message_create("general", "bob", '!share story "Before" the crash')
    helped = await discord_server.message_create("general", "bob", "!help share")
    await answered_in_order(discord_server, 0, 2)
    slash_share = await discord_server.interaction_slash(
        "share", {"kind": "tool", "title": "Slashed before", "text": "the crash"}, user="bob"
    )
    slash_help = await discord_server.interaction_slash("help", user="bob")
    await discord_server.wait_for_ack(slash_share)
    await discord_server.wait_for_ack(slash_help)

    # The gateway drops and copbot goes. As if it had died after answering the two commands that wrote
    # nothing but before its batch of handled ids was written, their ids are not in the database; the two
    # that wrote have theirs, committed with their effect.
    await discord_server.drop_connection(wait_resumed=False)
    await bot.stop()
    forgotten = {f"message:{helped['id']}", f"interaction:{slash_help.id}"}
    async with bot.db.session() as session:
        await session.execute(delete(HandledEvent).where(HandledEvent.event_id.in_(forgotten)))
    async with bot.db.session() as session:
        kept = set((await session.execute(select(HandledEvent.event_id))).scalars())
    assert {f"message:{share['id']}", f"interaction:{slash_share.id}"} <= kept

    again = await discord_bot(plugins=(Repertoire,))
    for message in (share, helped):
        await discord_server.redeliver_message(message["id"])
    for record in (slash_share, slash_help):
        await discord_server.redeliver_interaction(record)
    await probe(discord_server)
    await again.pipeline.journal.flush()

    assert [m["content"][:30] for m in discord_server.bot_messages("general")] == [
        "Added to the repertoire as #1 ",
        "/share story|tool|experience|p",
        "Added to the repertoire as #2 ",
        "Commands you can use (type /he",  # the slash /help's answer (ephemeral)
        "I am copbot, a helper for Comm",
    ]  # the help run again was sent under the same nonce: Discord returned the first message
    for record in (slash_share, slash_help):  # each acknowledged once; a second try was refused, quietly
        assert accepted(discord_server, record.id) == 1
    assert await items(again) == ["Before", "Slashed before"]
    async with again.db.session() as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(HandledEvent).where(HandledEvent.event_id.in_(forgotten))
            )
            == 2
        )  # handled now, for good
