"""Ending a task we own without losing our own cancellation.

``task.cancel(); await task`` inside ``suppress(CancelledError)`` swallows two things: the task's end (as
meant) and, when we are cancelled ourselves while waiting for it, our own cancellation — a stop then runs
on as if nobody had asked it to end, and whoever cancelled it waits for ever.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Task[None], *, what: str) -> None:
    """Cancel ``task`` and wait for it to end; what it raises on the way out is logged, not raised, since it
    is ending anyway. Our own cancellation is raised."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # we are being cancelled ourselves, not just the task
    except Exception as error:
        log.info("%s ended with %r", what, error)
