"""Fuzzing every command through the whole console pipeline (issue 15, item 3).

One bot with every bundled plugin, some data in it (polls, meetings, shared items, a profile, a value
story), and generated command lines typed by a moderator (``you``) and by plain members (``zed``, ``ana``),
in the room and by direct message, now and then a plain message too (onboarding and value-story answers go
to listeners). For each line:

* nothing unhandled: no apology ("Sorry, something went wrong") and no ERROR logged;
* an error (a usage error, a refusal, something not found) is answered with exactly one line, and nothing
  else is said for that line;
* and when the answer is an error, nothing was written: every table is compared before and after, as
  tests/core/test_permission_matrix.py does. Reading every table is slow, so that is done for a sample of
  the lines (every line in the slow profile would take hours).

See tests/core/fuzzing.py for the profiles (COPBOT_FUZZ_EXAMPLES) and what members type.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import MetaData, Table, select

from bot.errors import CopbotError
from bot.model import Content
from bot.pipeline import APOLOGY
from bot.registry import declared_specs, discover_plugins
from plugins.profiles.onboarding import AGAIN as ONBOARDING_AGAIN
from plugins.value.conversation import AGAIN as STORY_AGAIN
from tests.core.fuzzing import (
    ODD,
    SCRIPTS,
    TRIED,
    any_text,
    argument_line,
    atom,
    fuzz_settings,
    plain_text,
    report_examples,
)

__all__ = ["report_examples"]
pytestmark = pytest.mark.usefixtures("report_examples")  # prints how many examples were tried

PLUGINS = [cls for name, cls in discover_plugins().items() if name != "core"]
SPECS = {spec.name: spec for spec in declared_specs(discover_plugins().values())}
SETTINGS: dict[str, Any] = {
    "communities": [
        {"slug": "cop", "name": "Water CoP", "share_with": ["sister"]},
        {"slug": "sister", "name": "Wastewater CoP"},
    ]
}
SEED = [
    ":join ana",
    ":join zed",
    'ana> !poll create "Lunch?" Yes No Maybe',
    'zed> !poll create "Which day?" Mon Tue --multi --closes 3d',
    'ana> !meeting schedule "Monthly call" 2026-03-10 15:00 --every monthly --where https://meet.example',
    'zed> !meeting schedule "Site visit" 2026-03-12 10:00 --cap 2',
    'ana> !share tool "Leak map" https://example.org/leakmap #gis #leakage',
    'zed> !share story "A day in Delft" We walked the mains #field',
    "ana> !profile set expertise leak detection, GIS",
    "ana> !profile set org Vitens",
    "zed> !value story The leak-map session saved us a week --cycle realized",
    "ana> !meeting rsvp 1 yes",
    "zed> !poll vote 1 2",
]
SPEAKERS = ["you", "you", "zed", "zed", "ana"]  # you: a moderator; zed and ana: plain members
IGNORED = {"handled_events"}  # which platform events were seen: bookkeeping, not an effect
MODULE = __name__.rsplit(".", 1)[-1]
SNAPSHOT_EVERY = 4  # compare every table around one line in so many (see the module docstring)


class Recorder(logging.Handler):
    """Every ERROR (and worse) logged anywhere while the fuzz runs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Tables:
    """Every row of every table, read with the tables reflected once."""

    def __init__(self, bot) -> None:  # type: ignore[no-untyped-def]
        self.bot = bot
        self.tables: list[Table] = []

    async def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        await self.bot.bot.pipeline.journal.flush()
        async with self.bot.services.db.engine.connect() as connection:
            if not self.tables:
                metadata = MetaData()
                await connection.run_sync(metadata.reflect)
                self.tables = [
                    table
                    for name, table in sorted(metadata.tables.items())
                    if name not in IGNORED and not name.startswith(("profiles_fts", "repertoire_fts"))
                ]
            found = {}
            for table in self.tables:
                rows = (await connection.execute(select(table))).all()
                found[table.name] = sorted((tuple(row) for row in rows), key=repr)
        return found


@st.composite
def message(draw: st.DrawFn) -> str:
    """The console line: a command with generated arguments, or now and then plain text."""
    speaker = draw(st.sampled_from(SPEAKERS), label="speaker")
    arrows = draw(st.sampled_from([">", ">", ">", ">>"]), label="room or direct")
    if draw(st.integers(0, 9)) == 0:
        text = draw(st.one_of(plain_text, any_text, atom, st.sampled_from(ODD + SCRIPTS)), label="plain text")
        text = text.replace("\n", " ").replace("\r", " ")  # the console reads one line per message
        return f"{speaker}{arrows} {text}"
    name = draw(st.sampled_from(sorted(SPECS)), label="command")
    arguments = draw(argument_line(SPECS[name]), label="arguments")
    if draw(st.integers(0, 19)) == 0:
        name = name.upper()
    return f"{speaker}{arrows} !{name} {arguments}"


def one_console_line(text: str) -> str:
    """What the console adapter reads as one line (it splits its input at line breaks)."""
    return " ".join(text.splitlines())


@pytest.fixture
def memory_dir() -> Iterator[Path | None]:
    """A folder in memory (/dev/shm) for the database, where there is one: thousands of commits to a disk
    file spend most of the run waiting for fsync."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield None
        return
    with tempfile.TemporaryDirectory(dir=shm, prefix="copbot-fuzz-") as folder:
        yield Path(folder)


@pytest.fixture
async def fuzz_bot(console_bot_factory, memory_dir: Path | None):  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{memory_dir / 'fuzz.db'}" if memory_dir is not None else None
    bot = await console_bot_factory(PLUGINS, database_url=url, **SETTINGS)
    for line in SEED:
        replies = await bot.say(line)
        assert len(replies) > 1 and not any(APOLOGY in reply for reply in replies), (line, replies)
    errors: list[tuple[CopbotError, Content]] = []
    render_error = bot.bot.pipeline.render_error

    def recording(error, spec, prefix=None):  # type: ignore[no-untyped-def]
        content = render_error(error, spec, prefix)
        errors.append((error, content))
        return content

    bot.bot.pipeline.render_error = recording
    bot.errors = errors
    bot.tables = Tables(bot)
    recorder = Recorder()
    logging.getLogger().addHandler(recorder)
    bot.logged = recorder.records
    try:
        yield bot
    finally:
        logging.getLogger().removeHandler(recorder)


@given(data=st.data())
@fuzz_settings("commands")
async def test_every_command_answers_or_refuses_in_one_line_and_an_error_writes_nothing(
    fuzz_bot, data: st.DataObject
) -> None:  # type: ignore[no-untyped-def]
    line = data.draw(message(), label="message")
    TRIED[f"{MODULE}::commands"] += 1
    compare = TRIED[f"{MODULE}::commands"] % SNAPSHOT_EVERY == 0
    await check_line(fuzz_bot, one_console_line(line), compare=compare)


FOUND = [
    "zed>> ²",  # an onboarding answer: "²".isdigit(), but int("²") fails
    "zed> !poll vote 1 ²",
    "zed> !poll vote 1 " + "9" * 5_000,  # int() refuses 4,300 digits
    "zed> !poll results " + "9" * 5_000,
    'zed> !repertoire search ""',  # an empty rest of the line
    "zed> !meeting schedule T " + "next tuesday " * 700,  # minutes of dateparser calls
    'zed> !share tool "Map\x00" a\x00b',  # NUL: PostgreSQL refuses it in text
    "zed> !poll create Q A C --closes " + "9" * 5_000 + "w",
    # whitespace inside an RRULE: dateutil reads a second rule there (an apology), or a DTSTART, stored
    'zed> !meeting schedule T 2026-03-10 15:00 --every "FREQ=WEEKLY;BYDAY=TU\tRRULE:FREQ=DAILY"',
    'zed> !meeting schedule T 2026-03-10 15:00 --every "FREQ=WEEKLY;BYDAY=TU\u3000DTSTART:20260310T150000"',
]


@pytest.mark.parametrize("line", FOUND, ids=range(len(FOUND)))
async def test_what_fuzzing_found(fuzz_bot, line: str) -> None:  # type: ignore[no-untyped-def]
    await check_line(fuzz_bot, line, compare=True)


async def check_line(bot, line: str, *, compare: bool) -> None:  # type: ignore[no-untyped-def]
    """Type the line; see the module docstring for what must hold."""
    before = await bot.tables.snapshot() if compare else None
    bot.errors.clear()
    bot.logged.clear()
    printed = await bot.say(line)
    said = "\n".join(printed)
    assert APOLOGY not in said, said
    assert not bot.logged, [record.getMessage() for record in bot.logged]
    if not bot.errors:
        TRIED[f"{MODULE}::(answered)"] += 1
        return
    TRIED[f"{MODULE}::(answered with an error)"] += 1
    assert len(bot.errors) == 1, bot.errors
    error, content = bot.errors[0]
    assert len(error.message.splitlines()) == 1, error.message  # one line before the usage is added
    assert len(content.text.splitlines()) == 1, content.text
    answers = printed[1:]  # after the echo of the typed line
    again = next(
        (index for index, line in enumerate(answers) if ONBOARDING_AGAIN in line or STORY_AGAIN in line), None
    )
    if again is not None:  # below the error, a conversation waiting in the direct chat asks again
        answers = answers[:again]
    assert len(answers) == 1, f"an error and more: {answers}"
    assert answers[0].endswith(content.text), (answers[0], content.text)
    if before is not None:
        TRIED[f"{MODULE}::(every table compared)"] += 1
        assert await bot.tables.snapshot() == before, f"{line!r} wrote although it answered {content.text!r}"
