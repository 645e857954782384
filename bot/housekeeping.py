"""What the core keeps only for a while: messages already sent from the outbox, and the ids of events
already handled.

Both exist so that work is done once: a job run again after a crash finds its message's key in the outbox
and queues nothing; an event the platform delivers twice finds its id among the handled ones. Neither
repeat comes a month later — a platform redelivers within minutes, a job runs again at the next start and
then finds its own work done (a closed poll, a posted digest) — yet without an end both tables grew with
every message for the life of the community, and the outbox kept a copy of every reminder, digest and
direct message copbot ever sent. A minute after start and once a day after (bot/app.py), what is older
than :data:`KEEP` goes; a message still waiting to be sent stays, however old.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlmodel import col

from bot.db import Database
from bot.tables import HandledEvent, OutboxRow, TableModel

log = logging.getLogger(__name__)

KEEP = timedelta(days=30)
EVERY = timedelta(days=1)
FIRST_AFTER_START = 60.0
"""Seconds after start before the first round: a start answers its members first."""
SLICE = timedelta(days=1)
"""Old rows are deleted a day of them per transaction: the first run on a year of history does not hold
the database's write lock (SQLite's one writer) for as long as deleting it all at once would take."""


@dataclass(frozen=True, slots=True)
class Pruned:
    sent_messages: int
    handled_ids: int


async def prune(db: Database, now: datetime) -> Pruned:
    """Delete sent outbox messages and handled event ids older than :data:`KEEP`."""
    cutoff = now - KEEP
    sent = await _in_slices(db, OutboxRow, OutboxRow.sent_at, cutoff)
    handled = await _in_slices(db, HandledEvent, HandledEvent.handled_at, cutoff)
    if sent or handled:
        log.info(
            "housekeeping: removed %d sent message(s) and %d handled event id(s) older than %d days",
            sent,
            handled,
            KEEP.days,
        )
    return Pruned(sent, handled)


async def _in_slices(db: Database, table: type[TableModel], column: Any, cutoff: datetime) -> int:
    """Delete rows whose ``column`` is before ``cutoff``, oldest first, a :data:`SLICE` per transaction
    (NULL — a message not sent yet — is never before anything)."""
    async with db.session() as session:
        oldest: datetime | None = await session.scalar(select(func.min(col(column))))
    removed = 0
    while oldest is not None and oldest < cutoff:
        end = min(oldest + SLICE, cutoff)
        async with db.session() as session:
            result = await session.execute(delete(table).where(col(column) < end))
            removed += int(getattr(result, "rowcount", 0) or 0)
        oldest = end
    return removed
