"""bot/greenlets.py: SQLAlchemy's asyncio calls run in kept greenlets, and nothing they can see changes —
results, errors with their traceback, awaiting, the task's context variables, nesting, cancellation, a
call abandoned half-way, many at once, the database through them."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import traceback
import weakref
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.util import concurrency
from sqlalchemy.util.concurrency import await_only, greenlet_spawn

from bot import greenlets
from bot.db import Database

VARIABLE: contextvars.ContextVar[str] = contextvars.ContextVar("VARIABLE", default="none")


@pytest.fixture(autouse=True)
def _installed() -> None:
    assert greenlets.install(), "SQLAlchemy keeps its greenlet class where bot/greenlets.py does not look"
    assert greenlets.installed()


async def _echo(value: Any) -> Any:
    await asyncio.sleep(0)
    return value


async def test_a_call_returns_what_it_awaited_and_its_worker_is_kept_for_the_next() -> None:
    def add(a: int, *, b: int) -> int:
        return await_only(_echo(a)) + await_only(_echo(b))

    assert await greenlet_spawn(add, 2, b=3) == 5
    kept = list(greenlets._pool.idle)
    assert kept, "the worker went back to the pool"
    assert await greenlet_spawn(add, 4, b=5) == 9
    assert greenlets._pool.idle[-1] is kept[-1], "the same worker ran the second call"


async def test_an_idle_worker_keeps_nothing_of_its_last_call_alive() -> None:
    class Rows:
        """Stands for what a call returns (rows, a session's objects)."""

    def returns_rows() -> Rows:
        await_only(_echo(None))
        return Rows()

    rows = await greenlet_spawn(returns_rows)
    gone = weakref.ref(rows)
    del rows
    gc.collect()
    assert gone() is None, "the pooled worker still holds the last result"


async def test_an_error_reaches_the_caller_with_the_frames_it_came_from() -> None:
    def fails() -> None:
        await_only(_echo(None))
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing") as raised:
        await greenlet_spawn(fails)
    assert "fails" in [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert await greenlet_spawn(lambda: await_only(_echo("after"))) == "after", "the worker still serves"


async def test_an_error_of_what_it_awaits_is_raised_inside_the_call_which_may_handle_it() -> None:
    async def refuses() -> None:
        raise ValueError("no")

    def handles() -> str:
        try:
            await_only(refuses())
        except ValueError as error:
            return f"handled {error}"
        return "not raised"

    assert await greenlet_spawn(handles) == "handled no"


async def test_the_call_sees_the_context_variables_of_the_task_that_made_it() -> None:
    async def in_task(value: str) -> str:
        VARIABLE.set(value)
        return await greenlet_spawn(lambda: VARIABLE.get() + "/" + await_only(_echo(VARIABLE.get())))

    assert await asyncio.gather(in_task("a"), in_task("b")) == ["a/a", "b/b"]
    assert VARIABLE.get() == "none"
    assert all(worker.gr_context is None for worker in greenlets._pool.idle), "idle workers hold no context"


async def test_a_call_may_spawn_another_inside_it() -> None:
    def inner() -> str:
        return await_only(_echo("inner"))

    def outer() -> str:
        return await_only(greenlet_spawn(inner)) + "+outer"

    assert await greenlet_spawn(outer) == "inner+outer"


async def test_cancelling_the_task_raises_inside_the_call_and_frees_its_worker() -> None:
    seen: list[str] = []
    started = asyncio.Event()

    def waits() -> None:
        started.set()
        try:
            await_only(asyncio.sleep(30))
        except BaseException as error:
            seen.append(type(error).__name__)
            raise

    task = asyncio.create_task(greenlet_spawn(waits))
    await started.wait()
    idle = len(greenlets._pool.idle)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["CancelledError"]
    assert len(greenlets._pool.idle) == idle + 1


async def test_a_call_abandoned_half_way_is_closed_like_any_coroutine() -> None:
    seen: list[str] = []

    def waits() -> None:
        try:
            await_only(asyncio.sleep(30))
        except BaseException as error:
            seen.append(type(error).__name__)
            raise

    coroutine = greenlet_spawn(waits)
    coroutine.send(None)  # runs to its first await
    del coroutine
    gc.collect()
    assert seen == ["GeneratorExit"]
    assert await greenlet_spawn(lambda: await_only(_echo(7))) == 7


async def test_many_calls_at_once_each_get_a_worker_and_the_pool_keeps_a_bounded_number() -> None:
    async def one(index: int) -> int:
        return await greenlet_spawn(lambda: await_only(_echo(index)) * 2)

    results = await asyncio.gather(*(one(index) for index in range(greenlets.POOL_SIZE * 3)))
    assert results == [index * 2 for index in range(greenlets.POOL_SIZE * 3)]
    assert len(greenlets._pool.idle) == greenlets.POOL_SIZE


async def test_the_database_works_through_them(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    try:
        async with database.session() as session:
            await session.execute(text("CREATE TABLE t (n INTEGER)"))
            await session.execute(text("INSERT INTO t VALUES (1), (2)"))
        with pytest.raises(Exception, match="no such table"):
            async with database.session() as session:
                await session.execute(text("SELECT * FROM missing"))
        async with database.session() as session:
            assert (await session.execute(text("SELECT sum(n) FROM t"))).scalar_one() == 3
    finally:
        await database.close()
    assert greenlets.installed(), "Database installs them"


def test_an_sqlalchemy_that_moved_its_internals_keeps_its_own_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(concurrency, "_concurrency_shim")
    assert greenlets.install() is False
