"""Ending a task we own: its end is swallowed, our own cancellation never is."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.tasks import cancel_and_wait


async def test_a_cancelled_task_ends_and_what_it_raises_on_the_way_out_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def sleeper() -> None:
        await asyncio.sleep(60)

    async def grumbler() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            raise RuntimeError("closing went wrong")

    quiet, loud = asyncio.create_task(sleeper()), asyncio.create_task(grumbler())
    await asyncio.sleep(0)
    caplog.set_level(logging.INFO, logger="bot.tasks")
    await cancel_and_wait(quiet, what="the sleeper")
    await cancel_and_wait(loud, what="the grumbler")
    assert quiet.cancelled() and loud.done()
    assert [r.getMessage() for r in caplog.records] == [
        "the grumbler ended with RuntimeError('closing went wrong')"
    ]


async def test_whoever_waits_for_a_slow_end_may_still_be_cancelled() -> None:
    """A stop waiting for its sync loop to wind down is itself cancelled: it ends, instead of running on as
    if nobody had asked (suppressing CancelledError around the await swallowed both)."""
    release = asyncio.Event()

    async def slow_to_end() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await release.wait()  # winding down takes a while
            raise

    task = asyncio.create_task(slow_to_end())
    await asyncio.sleep(0)
    stop = asyncio.create_task(cancel_and_wait(task, what="the slow one"))
    await asyncio.sleep(0.01)
    stop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stop
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
