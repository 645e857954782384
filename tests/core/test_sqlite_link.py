"""The write path of issue 16: bot/sqlite_link.py (small writes on the loop, the rest in one trip), the
handled id committed with the effect, batched inserts, and the SQLite text of a time — each doing exactly
what SQLAlchemy and aiosqlite did before, only with fewer trips."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeDecorator

from bot import migrate, sqlite_link, store
from bot.db import Database, UTCDateTime, is_unavailable
from bot.model import Member
from bot.tables import ActivityEvent, HandledEvent, MemberRow, table_of

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def database(tmp_path: Path) -> Any:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'link.db'}")
    await migrate.upgrade(database)
    yield database
    await database.close()


async def test_statements_read_and_write_as_through_aiosqlite(database: Database) -> None:
    async with database.session() as session:
        row = await store.ensure_member(session, Member("console", "ada", "Ada"), NOW)  # select, insert
        assert row.id is not None
        await store.put_state(session, "test", "k", "one", NOW)  # an upsert, run on the loop
        await store.put_state(session, "test", "k", "two", NOW)
    async with database.engine.begin() as connection:
        changed = await connection.execute(
            update(table_of(MemberRow)).where(table_of(MemberRow).c.id == row.id).values(display_name="A")
        )
        assert changed.rowcount == 1
        inserted = await connection.execute(
            insert(table_of(ActivityEvent)).values(
                member_id=row.id, kind="message", platform="console", room_id="r", at=NOW
            )
        )
        key = inserted.inserted_primary_key
        assert key is not None and key[0] is not None  # lastrowid, from the statement run here
    async with database.session() as session:
        assert await store.get_state(session, "test", "k") == "two"
        found = await store.find_member(session, Member("console", "ada", "A"))
        assert found is not None and found.display_name == "A"
        events = (await session.execute(select(ActivityEvent))).scalars().all()
        assert [(event.member_id, event.at) for event in events] == [(row.id, NOW)]


async def test_a_failed_unit_of_work_leaves_nothing(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.session() as session:
            await store.put_state(session, "test", "gone", "1", NOW)
            raise RuntimeError
    async with database.session() as session:
        assert await store.get_state(session, "test", "gone") is None


async def test_a_write_that_finds_the_lock_taken_waits_on_its_thread_not_on_the_loop(
    database: Database,
) -> None:
    holder = await database.engine.connect()
    await store.put_state(holder, "test", "holder", "1", NOW)  # holds the write lock, not committed
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())

    async def writer() -> None:
        async with database.engine.begin() as connection:  # AsyncConnection.execute: it must await
            await store.put_state(connection, "test", "waiter", "2", NOW)

    waiting = asyncio.create_task(writer())
    await asyncio.sleep(0.3)
    assert not waiting.done()  # waiting for the lock...
    assert ticks >= 10  # ...while the loop runs on
    await holder.commit()
    await asyncio.wait_for(waiting, 5)
    await holder.close()
    ticker.cancel()
    async with database.session() as session:
        assert await store.get_state(session, "test", "holder") == "1"
        assert await store.get_state(session, "test", "waiter") == "2"


async def test_checkpoints_come_from_the_link_not_from_a_commit_on_the_loop(
    database: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    checkpoints = 0
    real = sqlite_link._checkpointed

    def counted(*args: Any) -> None:
        nonlocal checkpoints
        checkpoints += 1
        real(*args)

    monkeypatch.setattr(sqlite_link, "_checkpointed", counted)
    monkeypatch.setattr(sqlite_link, "CHECKPOINT_EVERY", 3)
    async with database.engine.connect() as connection:
        assert await connection.scalar(text("PRAGMA wal_autocheckpoint")) == 0
    async with database.engine.begin() as connection:  # a batch commits on the thread, and checkpoints
        await store.insert_many(
            connection,
            store.insert_ignoring_conflicts(connection, table_of(HandledEvent)),
            [{"platform": "t", "event_id": str(n), "handled_at": NOW} for n in range(3)],
        )
    assert checkpoints == 1
    async with database.engine.connect() as connection:
        link = cast(Any, (await connection.get_raw_connection()).driver_connection)
        trips = link._sent
    checkpointer = link._shared.checkpointer
    assert checkpointer is not None and checkpointer.done == 0
    for number in range(8):  # small writes: every fourth commit asks the checkpointer, and stays on the loop
        async with database.session() as session:
            await store.put_state(session, "test", str(number), "x", NOW)
    assert link._sent == trips  # no commit went to the connection's thread (nor waited for a checkpoint)
    assert checkpoints == 1
    file_only = f"file:{tmp_path / 'link.db'}?immutable=1"  # the database file as it is, without the WAL

    def in_the_file() -> Any:
        try:
            with contextlib.closing(sqlite3.connect(file_only, uri=True)) as check:
                return check.execute("SELECT count(*) FROM state WHERE scope = 'test'").fetchone()
        except sqlite3.DatabaseError:  # read while the checkpointer writes: look again
            return None

    for _ in range(200):  # two requests; one checkpoint if the second came before the first began
        if in_the_file() == (8,):
            break
        await asyncio.sleep(0.01)
    assert in_the_file() == (8,)  # the checkpointer copied every commit into the file
    assert 1 <= checkpointer.done <= 2
    await database.close()
    assert not any(thread.name == "copbot-checkpoint" for thread in threading.enumerate())


async def test_the_handled_id_commits_with_the_effect_once(database_url: str) -> None:
    database = Database(database_url)
    await migrate.upgrade(database)
    try:
        session = database.sessions()
        await store.put_state(session, "test", "effect", "first", NOW)
        assert await store.commit_handled(session, "console", "event-1", NOW) is True
        session = database.sessions()
        await store.put_state(session, "test", "effect", "second", NOW)
        assert await store.commit_handled(session, "console", "event-1", NOW) is False  # a redelivery
        async with database.session() as check:
            assert await store.get_state(check, "test", "effect") == "first"  # rolled back
            handled = await check.execute(select(HandledEvent.event_id))  # type: ignore[call-overload]
            assert handled.scalars().all() == ["event-1"]
            at = await check.scalar(select(HandledEvent.handled_at))  # type: ignore[call-overload]
            assert at == NOW and at.tzinfo is not None
            if database.is_sqlite:  # the driver got what SQLAlchemy would have bound
                stored = await check.scalar(text("SELECT handled_at FROM handled_events"))
                assert stored == "2026-03-02 09:00:00.000000"
    finally:
        await database.close()


async def test_a_refused_handled_id_is_raised_as_the_database_being_unavailable(database: Database) -> None:
    """On SQLite the handled id goes to the driver, past SQLAlchemy's execution: a refusal still comes
    out as SQLAlchemy's error, which the pipeline tells apart from a bug (the member is told the database
    cannot save, the operator gets one line, not a traceback), and the unit of work can be rolled back."""
    session = database.sessions()
    await session.execute(text("PRAGMA query_only = 1"))  # as a read-only file refuses
    with pytest.raises(DBAPIError) as refused:
        await store.commit_handled(session, "console", "event-1", NOW)
    assert is_unavailable(refused.value)
    assert "SQLITE_READONLY" in str(getattr(refused.value.orig, "sqlite_errorname", ""))
    await session.execute(text("PRAGMA query_only = 0"))
    await session.rollback()
    await session.close()
    session = database.sessions()
    assert await store.commit_handled(session, "console", "event-1", NOW) is True  # nothing was kept


async def test_insert_many_stores_what_sqlalchemy_would(database_url: str) -> None:
    database = Database(database_url)
    await migrate.upgrade(database)
    try:
        async with database.session() as session:
            member = await store.ensure_member(session, Member("console", "ada", "Ada"), NOW)
        at = datetime(2026, 3, 2, 10, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
        rows = [
            {
                "member_id": member.id,
                "community_id": None,
                "kind": "command",
                "platform": "console",
                "room_id": "room",
                "detail": f"ping {n}",
                "at": at + timedelta(seconds=n),
            }
            for n in range(3)
        ]
        async with database.engine.begin() as connection:
            await store.insert_many(connection, insert(table_of(ActivityEvent)), rows)
        async with database.session() as session:
            stored = (await session.execute(select(ActivityEvent))).scalars().all()
        assert [(row.detail, row.at) for row in stored] == [(row["detail"], row["at"]) for row in rows]
        assert all(row.at.tzinfo is not None for row in stored)
    finally:
        await database.close()


def _random_time(randomly: random.Random, zone: tzinfo) -> datetime:
    """Any time from year 2 to 9998, to the second or to the microsecond."""
    return datetime(
        randomly.randint(2, 9998),
        randomly.randint(1, 12),
        randomly.randint(1, 28),
        randomly.randint(0, 23),
        randomly.randint(0, 59),
        randomly.randint(0, 59),
        randomly.choice([0, randomly.randint(0, 999_999)]),
        tzinfo=zone,
    )


def test_a_time_is_bound_on_sqlite_as_sqlalchemy_binds_it() -> None:
    dialect = sqlite.dialect()
    implementation = cast(UTCDateTime, UTCDateTime().dialect_impl(dialect))
    fast = implementation.bind_processor(dialect)
    reference = TypeDecorator.bind_processor(implementation, dialect)  # this type's step, then DATETIME's
    assert fast is not None and reference is not None and fast is not reference
    randomly = random.Random(16)
    for _ in range(5000):
        value = _random_time(randomly, timezone(timedelta(minutes=randomly.randint(-900, 900))))
        assert fast(value) == reference(value)
    assert fast(None) is None
    with pytest.raises(ValueError):
        fast(datetime(2026, 1, 1))  # naive: refused, as before


def test_a_time_is_read_on_sqlite_as_sqlalchemy_reads_it() -> None:
    dialect = sqlite.dialect()
    implementation = cast(UTCDateTime, UTCDateTime().dialect_impl(dialect))
    fast = implementation.result_processor(dialect, None)
    reference = TypeDecorator.result_processor(implementation, dialect, None)  # DATETIME's, then this type's
    assert fast is not None and reference is not None and fast is not reference
    bind = implementation.bind_processor(dialect)
    assert bind is not None
    randomly = random.Random(17)
    for _ in range(5000):
        stored = bind(_random_time(randomly, UTC))
        assert fast(stored) == reference(stored) and fast(stored).tzinfo is UTC
    for written_otherwise in ("2026-12-01 09:00:00", "2026-12-01 09:00:00.5"):  # by hand: SQLAlchemy's way
        assert fast(written_otherwise) == reference(written_otherwise)
    assert fast(None) is None
