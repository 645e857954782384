"""The daily housekeeping: messages the outbox sent and handled event ids older than a month go, on SQLite
and PostgreSQL; a message still waiting to be sent stays, and an event delivered again is still handled
once."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from bot import housekeeping
from bot.adapters.console import ConsoleAdapter
from bot.app import CopBot
from bot.clock import FakeClock
from bot.tables import HandledEvent, OutboxRow
from tests.conftest import ConsoleBot, make_settings


async def test_a_running_copbot_removes_what_is_a_month_old_and_keeps_the_rest(
    tmp_path: Path, clock: FakeClock, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping, "FIRST_AFTER_START", 0.2)
    pruned, prune = asyncio.Event(), housekeeping.prune

    async def pruning(*args: Any) -> housekeeping.Pruned:
        done = await prune(*args)
        pruned.set()
        return done

    monkeypatch.setattr(housekeeping, "prune", pruning)
    settings = make_settings(tmp_path, database_url=database_url)
    output = io.StringIO()
    console = ConsoleAdapter(
        clock=clock,
        community="cop",
        moderators=("you",),
        stdin=io.StringIO(""),
        stdout=output,
        interactive=False,
    )
    app = CopBot(settings, clock=clock, adapters=[console], plugins=[])  # its scheduler and timers running
    await app.start()
    try:
        bot = ConsoleBot(app, console, output)
        await bot.say("ana> !about")  # a command handled now: its id is kept
        now, days = clock.now(), timedelta(days=1)
        async with app.db.session() as session:
            await session.execute(
                insert(OutboxRow.__table__),
                [
                    _message("sent-long-ago", created=now - 400 * days, sent=now - 400 * days),
                    _message("sent-last-month", created=now - 40 * days, sent=now - 40 * days),
                    _message("sent-this-month", created=now - 29 * days, sent=now - 29 * days),
                    _message("never-sent", created=now - 60 * days, sent=None),
                ],
            )
            await session.execute(
                insert(HandledEvent.__table__),
                [
                    {"platform": "console", "event_id": "old-1", "handled_at": now - 300 * days},
                    {"platform": "matrix", "event_id": "old-2", "handled_at": now - 31 * days},
                    {"platform": "matrix", "event_id": "recent", "handled_at": now - 2 * days},
                ],
            )
        async with asyncio.timeout(10):
            await pruned.wait()
        kept, ids = await _keys(app), await _handled(app)
        assert kept == {"sent-this-month", "never-sent"}  # a message still waiting is kept, however old
        assert "old-1" not in ids and "recent" in ids and len(ids) >= 2  # the command's own id too
    finally:
        await app.stop()


async def _keys(app: CopBot) -> set[str]:
    async with app.db.session() as session:
        return set((await session.execute(select(OutboxRow.key))).scalars())


async def _handled(app: CopBot) -> set[str]:
    async with app.db.session() as session:
        return set((await session.execute(select(HandledEvent.event_id))).scalars())


async def test_pruning_nothing_old_does_nothing(console_bot_factory, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory()
    await bot.say("ana> !about")
    assert await housekeeping.prune(bot.services.db, clock.now()) == housekeeping.Pruned(0, 0)
    async with bot.services.db.session() as session:
        assert int(await session.scalar(select(func.count()).select_from(HandledEvent)) or 0) >= 1


def _message(key: str, *, created, sent) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {
        "key": key,
        "platform": "console",
        "target": '{"room": "console"}',
        "content": '{"text": "hello"}',
        "created_at": created,
        "sent_at": sent,
        "message_id": "1" if sent else "",
        "attempts": 0,
        "last_error": "",
        "owner": "",
    }
