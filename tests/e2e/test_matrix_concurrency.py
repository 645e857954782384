"""On Synapse: one member's slow command holds neither the sync nor another member's command; the member's
own next command still waits its turn; and a stop while it is held stores no position past it, so the next
start answers it (and nothing twice)."""

from __future__ import annotations

import asyncio
import time

from bot.commands import Text
from bot.context import Context
from bot.plugin import Plugin, command
from tests.e2e.matrix_support import (
    STEP,
    Bots,
    adapter_of,
    history,
    replies_by_command,
    reply,
    room_with_bot,
    send,
)
from tests.harness.synapse import Synapse


class Gate:
    """Where the test holds the ``hold`` command: it waits until ``opened`` is set."""

    def __init__(self) -> None:
        self.holding = asyncio.Event()
        self.opened = asyncio.Event()


GATE = Gate()


class Held(Plugin):
    """A command that takes as long as the test wants (a report, a reply to a busy homeserver)."""

    name = "held"

    @command("hold", examples=("hold",))
    async def hold(self, ctx: Context) -> None:
        """Wait for the test, then answer."""
        GATE.holding.set()
        await GATE.opened.wait()
        await ctx.reply("done holding")

    @command("say", examples=("say hello",))
    async def say(self, ctx: Context, text: Text) -> None:
        """Answer with the text."""
        await ctx.reply(f"said: {text}")


async def test_a_held_command_holds_neither_other_members_nor_the_position_past_it(  # type: ignore[no-untyped-def]
    bots: Bots, members, synapse: Synapse
) -> None:
    global GATE
    GATE = Gate()
    alice, bob = await members("alice"), await members("bob")
    account = await asyncio.to_thread(bots.account, alice.user_id)
    bot = await bots.start(account, plugins=(Held,))
    room_id = await room_with_bot(alice, account.user_id, bob)
    assert (await reply(bob, bot, await send(bob, room_id, "!say ready")))["body"] == "said: ready"

    held = await send(alice, room_id, "!hold")
    await asyncio.wait_for(GATE.holding.wait(), STEP)
    alice_next = await send(alice, room_id, "!say after the hold")
    bobs = await send(bob, room_id, "!say while alice waits")
    assert (await reply(bob, bot, bobs))["body"] == "said: while alice waits"  # not behind alice's command

    # Alice's next command waits for her held one (a member's events are handled in order), however long.
    await asyncio.sleep(1.0)  # the journal's batch (0.5 s) with the position of bob's answer has been written

    async def answers() -> dict[str, list[str]]:
        events = await asyncio.to_thread(history, synapse, alice.access_token, room_id)
        replies = replies_by_command(events, account.user_id)
        return {command: [event["content"]["body"] for event in found] for command, found in replies.items()}

    while_held = await answers()
    assert held not in while_held and alice_next not in while_held

    # A stop while it is held: its handling is cancelled, and the position stored is the one before it.
    adapter_of(bot).stop_grace = 0.5
    await bots.stop(bot)
    GATE.opened.set()
    started = time.monotonic()
    bot = await bots.start(account, plugins=(Held,))
    assert (await reply(alice, bot, held))["body"] == "done holding"
    assert (await reply(alice, bot, alice_next))["body"] == "said: after the hold"
    assert time.monotonic() - started < STEP

    answered = await answers()
    assert answered[bobs] == ["said: while alice waits"]  # answered once: before the stop, not again after
    assert answered[held] == ["done holding"] and answered[alice_next] == ["said: after the hold"]
    order = [command for command in answered if command in (held, alice_next)]
    assert order == [held, alice_next]  # her two commands answered in the order she sent them
