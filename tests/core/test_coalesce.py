"""bot/coalesce.py: one run per key at a time; calls meanwhile fold into one more run after it."""

from __future__ import annotations

import asyncio

import pytest

from bot.coalesce import Coalescing


async def test_calls_during_a_run_fold_into_one_more_run_that_reads_after_them() -> None:
    coalescing = Coalescing()
    state = {"value": 0}
    seen: list[int] = []
    gate = asyncio.Event()

    async def send() -> None:
        read = state["value"]
        await gate.wait()  # on its way
        seen.append(read)

    first = asyncio.create_task(coalescing.run("card", send))
    await asyncio.sleep(0)
    assert "card" in coalescing
    for value in (1, 2, 3):  # three changes while the first run is on its way
        state["value"] = value
        await coalescing.run("card", send)  # returns at once: the run under way takes it
    gate.set()
    await first
    assert seen == [0, 3], "one more run, after the last change"
    assert "card" not in coalescing


async def test_other_keys_run_beside_it_and_a_failing_run_frees_its_key() -> None:
    coalescing = Coalescing()
    gate, ran = asyncio.Event(), []

    async def slow() -> None:
        await gate.wait()
        ran.append("a")

    async def fails() -> None:
        raise RuntimeError("platform refused")

    first = asyncio.create_task(coalescing.run("a", slow))
    await asyncio.sleep(0)
    await coalescing.run("b", lambda: asyncio.sleep(0))  # not held up by "a"
    with pytest.raises(RuntimeError, match="refused"):
        await coalescing.run("c", fails)
    assert "c" not in coalescing
    gate.set()
    await first
    assert ran == ["a"]
