"""The Matrix adapter's batches in flight: positions settle in order, once everything before is handled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from bot.adapters.matrix_batches import Handling


class Positions:
    def __init__(self) -> None:
        self.settled: list[tuple[str, bool]] = []

    async def __call__(self, token: str, delivered: bool) -> None:
        self.settled.append((token, delivered))


def held(
    gate: asyncio.Event, log: list[str] | None = None, name: str = ""
) -> Callable[[], Coroutine[Any, Any, None]]:
    async def handle() -> None:
        if log is not None:
            log.append(f"{name} started")
        await gate.wait()
        if log is not None:
            log.append(f"{name} done")

    return handle


async def closed_batch(handling: Handling, token: str, *gates: asyncio.Event) -> None:
    """A batch with one event per gate (each handled until its gate is set), every one started."""
    batch = handling.open()
    for gate in gates:
        await handling.start(batch, held(gate))
    await handling.close(batch, token)


async def settle_now() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_position_waits_for_every_event_of_its_batch_and_of_the_batches_before() -> None:
    positions = Positions()
    handling = Handling(positions)
    slow, quick = asyncio.Event(), asyncio.Event()
    await closed_batch(handling, "t1", slow)
    await closed_batch(handling, "t2", quick)
    quick.set()
    await settle_now()
    assert positions.settled == []  # t2's event is done, but t1's is not: nothing may be stored yet
    slow.set()
    await settle_now()
    assert positions.settled == [("t2", True)]  # the newest position, once, covering both


async def test_a_batch_without_events_settles_when_closed_and_says_it_delivered_nothing() -> None:
    positions = Positions()
    handling = Handling(positions)
    await closed_batch(handling, "t1")
    assert positions.settled == [("t1", False)]


async def test_an_abandoned_batch_stores_no_position_and_holds_none_back() -> None:
    positions = Positions()
    handling = Handling(positions)
    gate = asyncio.Event()
    broken = handling.open()
    await handling.start(broken, held(gate))
    handling.abandon(broken)  # fetched again from the same position
    again = handling.open()
    await handling.close(again, "t1")
    assert positions.settled == []  # the abandoned batch's event is still being handled
    gate.set()
    await settle_now()
    assert positions.settled == [("t1", True)]  # what the abandoned batch delivered is carried


async def test_a_member_s_events_start_in_their_order_and_at_most_limit_run_at_once() -> None:
    positions = Positions()
    handling = Handling(positions, limit=2)
    gates = [asyncio.Event() for _ in range(3)]
    log: list[str] = []
    batch = handling.open()
    await handling.start(batch, held(gates[0], log, "a"))
    await handling.start(batch, held(gates[1], log, "b"))
    third = asyncio.create_task(handling.start(batch, held(gates[2], log, "c")))
    await settle_now()
    assert log == ["a started", "b started"] and not third.done()  # the third waits for a free slot
    gates[1].set()
    await asyncio.wait_for(third, 1)
    await settle_now()
    assert log == ["a started", "b started", "b done", "c started"]
    assert handling.in_flight == 2
    for gate in gates:
        gate.set()
    await handling.close(batch, "t1")
    await settle_now()
    assert positions.settled == [("t1", True)] and handling.in_flight == 0


async def test_a_stop_cancels_what_outlasts_the_grace_and_its_position_is_never_settled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    positions = Positions()
    handling = Handling(positions)
    stuck, done = asyncio.Event(), asyncio.Event()
    done.set()
    await closed_batch(handling, "t1", stuck)
    await closed_batch(handling, "t2", done)
    with caplog.at_level(logging.WARNING):
        await handling.drain(timeout=0.05)
    assert handling.in_flight == 0
    assert positions.settled == []  # neither t1 (cancelled) nor t2 (after it): both come again at start
    assert "1 event(s) still being handled at stop were cancelled" in caplog.text


async def test_a_handling_that_raises_is_logged_and_its_batch_still_settles(
    caplog: pytest.LogCaptureFixture,
) -> None:
    positions = Positions()
    handling = Handling(positions)

    async def broken() -> None:
        raise RuntimeError("a fault outside the pipeline")

    batch = handling.open()
    with caplog.at_level(logging.ERROR):
        await handling.start(batch, broken)
        await handling.close(batch, "t1")
        await settle_now()
    assert positions.settled == [("t1", True)]
    assert "failed outside the pipeline" in caplog.text and "RuntimeError" in caplog.text


async def test_a_handling_that_outlasts_the_patience_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    positions = Positions()
    handling = Handling(positions, patience=0.05)
    stuck = asyncio.Event()
    await closed_batch(handling, "t1", stuck)
    await asyncio.sleep(0.1)
    with caplog.at_level(logging.WARNING):
        for token in ("t2", "t3"):
            await closed_batch(handling, token)
    assert caplog.text.count("the stored sync position waits for it") == 1
    stuck.set()
    await settle_now()
    assert positions.settled == [("t3", True)]
