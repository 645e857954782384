"""Sync batches handled while the next sync is already under way, their positions settled in order.

Handled event after event, with the next /sync asked only after a batch's last event, one slow event held
every member's events behind it: a command whose reply waited on a busy homeserver, a report that takes a
second. Five commands a second whose replies took 0.4 s each queued without end (the load test on a slow
machine: replies p50 2.1 s while a member's send took 0.4 s). Now each event runs as its own task as soon as
its batch is read — one member's events still one at a time and in order (the pipeline's turns: tasks
start in the order their events came), different members' at once, as discord.py delivers them.

A batch's position (its sync token) *settles* only once every event of it and of every batch before it is
handled: a restart from a stored position then never skips an event that was still being handled. A batch
that could not be read to its end is abandoned (it is fetched again from the same position); a handling
cancelled by a stop leaves its batch unsettled, so the position stored at stop is the one before it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

Settled = Callable[[str, bool], Awaitable[None]]
"""Called with the newest settled position and whether any batch up to it delivered an event."""


class Batch:
    """One sync answer's events being handled."""

    __slots__ = ("closed", "delivered", "interrupted", "opened", "pending", "token", "told")

    def __init__(self) -> None:
        self.opened = time.monotonic()
        self.told = False  # that it holds the position back (said once)
        self.token: str | None = None
        self.delivered = False
        self.pending = 0
        self.closed = False
        """Every event of it has been started (or it was abandoned): it may settle once none is pending."""
        self.interrupted = False
        """A handling of it was cancelled: it never settles, nor does any batch after it."""

    @property
    def settled(self) -> bool:
        return self.closed and not self.pending and not self.interrupted


class Handling:
    """The events of the sync batches in flight, at most ``limit`` handled at once."""

    def __init__(self, settled: Settled, *, limit: int = 64, patience: float = 60.0) -> None:
        """``limit`` bounds the handlings in flight: a catch-up of 10,000 events starts them as earlier ones
        finish instead of holding 10,000 tasks, and the sync loop waits (asks the homeserver for nothing
        more) while that many run. A batch unsettled after ``patience`` seconds is said in the log once: a
        handler that never returns holds the stored position back (a restart would replay from there)."""
        self._on_settled = settled
        self._patience = patience
        self._slots = asyncio.Semaphore(limit)
        self._batches: deque[Batch] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._delivered = False  # by settled batches whose position was not reported yet (abandoned ones)
        self._reporting = asyncio.Lock()

    def open(self) -> Batch:
        batch = Batch()
        self._batches.append(batch)
        return batch

    async def start(self, batch: Batch, handle: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Start ``handle()`` as a task of ``batch`` once fewer than ``limit`` run; returns once started.

        Tasks start in the order of these calls, so a member's events take their turns in that order."""
        await self._slots.acquire()
        batch.pending += 1
        batch.delivered = True
        task = asyncio.create_task(self._run(batch, handle))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, batch: Batch, token: str) -> None:
        """Every event of ``batch`` was started; its position is ``token``."""
        batch.token = token
        batch.closed = True
        await self._settle()
        oldest = self._batches[0] if self._batches else None
        if oldest is not None and not oldest.told and time.monotonic() - oldest.opened > self._patience:
            oldest.told = True
            log.warning(
                "matrix: an event has been handled for over %.0f s; the stored sync position waits for it "
                "(%d event(s) being handled)",
                self._patience,
                len(self._tasks),
            )

    def abandon(self, batch: Batch) -> None:
        """``batch`` could not be read to its end: it will be fetched again, so it settles no position."""
        batch.closed = True

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - a grace period, then cancellation
        """Let the handlings in flight finish, for up to ``timeout`` seconds, then cancel the rest."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
            log.warning("matrix: %d event(s) still being handled at stop were cancelled", len(late))

    async def _run(self, batch: Batch, handle: Callable[[], Coroutine[Any, Any, None]]) -> None:
        try:
            await handle()
        except asyncio.CancelledError:
            batch.interrupted = True
            raise
        except Exception:
            # The pipeline catches what a handler raises; this would be a fault of its own. Logged, and the
            # batch still settles: holding every later position back would replay all of them at restart.
            log.exception("matrix: an event's handling failed outside the pipeline")
        finally:
            self._slots.release()
            batch.pending -= 1
        await self._settle()

    async def _settle(self) -> None:
        async with self._reporting:  # positions reported in the order they settle, even if reporting waits
            token = None
            while self._batches and self._batches[0].settled:
                batch = self._batches.popleft()
                self._delivered = self._delivered or batch.delivered
                if batch.token is not None:
                    token = batch.token
            if token is not None:
                delivered, self._delivered = self._delivered, False
                await self._on_settled(token, delivered)
