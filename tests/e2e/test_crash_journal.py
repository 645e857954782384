"""What makes a command survive kill -9 anywhere, checked in process (issue 15, item 1).

The subprocess tests (test_crash_matrix.py) kill copbot at random and at named steps; these pin down the
two rules they rest on, deterministically:

* a command's handled id never reaches the database before the command's work does: the journal writes
  its batch every 0.5 s, whenever that falls, and a batch written while a handler runs must not contain
  that command — else a kill right then would leave it "handled" with no effect and no reply;
* a command delivered again after its work was committed is not done twice, even when the process no
  longer remembers it (a catch-up of events older than the journal's primed window): its unit of work
  finds the handled id already there and is rolled back.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.clock import FakeClock
from bot.context import Context
from bot.model import MessageCreated
from bot.plugin import Plugin, command
from bot.tables import HandledEvent
from plugins.repertoire.models import Item
from plugins.repertoire.plugin import Repertoire


class Probe(Plugin):
    """A command that lets the journal write its batch while the handler runs, and looks at it."""

    name = "probe"

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.handled_during: list[bool] = []

    @command("probe", examples=("probe", "probe --write"))
    async def probe(self, ctx: Context, *, write: bool = False) -> None:
        """Flush the journal mid-command and note whether this command's id was written."""
        if write:
            await ctx.session.execute(select(1))  # its unit of work is open: it "wrote"
        pipeline = ctx.services.pipeline
        assert pipeline is not None
        await pipeline.journal.flush()  # the background batch, falling right now
        async with ctx.services.db.session() as session:
            found = await session.scalar(select(HandledEvent).where(HandledEvent.event_id == ctx.event_id))
        self.handled_during.append(found is not None)
        await ctx.reply("probed")


async def handled_ids(bot) -> set[str]:  # type: ignore[no-untyped-def]
    async with bot.services.db.session() as session:
        return set((await session.execute(select(HandledEvent.event_id))).scalars())


async def test_a_commands_handled_id_is_written_only_after_its_work(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    console = await console_bot_factory([Probe])
    probe = console.bot.registry.plugins["probe"]
    await console.say("hello")  # the member exists: the probe opens no unit of work by being first

    assert (await console.say("!probe"))[-1].endswith("copbot> probed")
    assert (await console.say("!probe --write"))[-1].endswith("copbot> probed")

    assert probe.handled_during == [False, False]  # a batch written mid-command did not hold its id
    ids = await handled_ids(console.bot)
    assert {f"{console.adapter._run}:2", f"{console.adapter._run}:4"} <= ids  # and once done, it is there


async def test_a_command_redelivered_after_its_commit_is_not_done_again(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock, database_url: str
) -> None:
    """On SQLite and PostgreSQL: the guard reads the insert's row count, which both drivers report."""
    first = await console_bot_factory([Repertoire], database_url=database_url)
    event = first.adapter._parse('!share story "Once" told once')
    assert isinstance(event, MessageCreated)
    await first.bot.pipeline.handle(first.adapter, event)
    await first.bot.stop()

    # Started again days later, past the window of handled ids the journal reads at start, the platform
    # delivers the same event once more (a catch-up from an old position): its id is only in the table.
    clock.advance(timedelta(days=4))
    second = await console_bot_factory([Repertoire], database_url=database_url)
    await second.bot.pipeline.handle(second.adapter, event)
    await second.bot.pipeline.journal.flush()

    async with second.bot.services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Item)) == 1
    assert second.bot.services.metrics.duplicates.labels("console")._value.get() == 1
