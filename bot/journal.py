"""Bookkeeping that every event needs, kept off the hot path: handled event ids, activity rows, members.

Writing three rows in a transaction of its own for every chat message caps copbot at a few hundred events
a second on SQLite. The journal instead appends them to a buffer that one background task writes in a
single transaction every ``interval`` (or when ``batch`` rows are waiting), and at shutdown. What a
*command* changes is never buffered: it is committed by the command's own unit of work before the
bookkeeping is queued, so a crash can cost at most the last interval of activity counts, never an effect.

Duplicate deliveries are caught by the set of recent event ids, primed from the database at start-up,
so an event redelivered after a restart (a Matrix catch-up, a Discord RESUME) is still handled once;
the table's primary key stays the final guard when the batch is written. A *command's* id joins the buffer
only once the command answered (one that wrote commits its id with its effect instead), never before:
a batch written while it runs must not make a crash look like "handled" (README "Reliability").

Members who turned tracking off (``profile set tracking off``) are kept in a small set, read at start and
updated whenever a member's row is read or changed, so :meth:`Journal.tracks` costs a set lookup.

When the database refuses writes (disk full, read-only, server gone) the rows stay in the buffer, in order,
and are retried with back-off (1 s, doubling, up to ``RETRY_CAP``); the failure is said once, in the log and
on /healthz (``db.writes``), and so is the recovery. With nothing left to write, a one-row probe tells
when writes work again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlmodel import col

from bot import store
from bot.db import Database
from bot.model import Member
from bot.tables import ActivityEvent, HandledEvent, MemberRow, Membership, table_of

log = logging.getLogger(__name__)

RECENT_LIMIT = 200_000
PRIME_WINDOW = timedelta(days=3)
PRESENT_LIMIT = 100_000
"""Memberships known to be open, remembered so that only someone's first act in a room costs a query."""
RETRY_CAP = 15.0
"""Seconds between attempts at most while the database refuses writes (1 s, doubling, up to this)."""


@dataclass(frozen=True, slots=True)
class KnownMember:
    id: int
    timezone: str | None
    display_name: str
    tracking: bool = True
    """The member lets copbot record their activity (``profile set tracking off`` stops it)."""


@dataclass
class _Pending:
    handled: list[dict[str, Any]] = field(default_factory=list)
    activity: list[dict[str, Any]] = field(default_factory=list)
    seen: dict[int, datetime] = field(default_factory=dict)
    seen_in: dict[tuple[int, int], datetime] = field(default_factory=dict)
    """(community, member) → when the member last did something there: participation levels judge
    silence per community (``members.last_seen`` is anywhere, and activity elsewhere must not count)."""
    position: tuple[str, str, str] | None = None
    """An adapter's position (scope, key, value: a sync token), covered by the ids queued before it."""

    def __len__(self) -> int:
        return len(self.handled) + len(self.activity) + (self.position is not None)


class Journal:
    def __init__(self, db: Database, *, interval: float = 0.5, batch: int = 1000) -> None:
        self.db = db
        self.interval = interval
        self.batch = batch
        self._recent: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._members: dict[tuple[str, str], KnownMember] = {}
        self._present: OrderedDict[tuple[int, int], None] = OrderedDict()
        self._untracked: set[int] = set()
        """Members who turned tracking off: few, so all of them are kept, and asking costs a set lookup."""
        self._pending = _Pending()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._stopping = False
        self._stopped = asyncio.Event()

    # --- lifecycle --------------------------------------------------------------------------------------

    async def start(self, now: datetime) -> None:
        async with self.db.session() as session:
            rows = await session.execute(
                select(col(HandledEvent.platform), col(HandledEvent.event_id))
                .where(col(HandledEvent.handled_at) >= now - PRIME_WINDOW)
                .order_by(col(HandledEvent.handled_at).desc())
                .limit(RECENT_LIMIT)
            )
            for platform, event_id in reversed(rows.all()):
                self._recent[(platform, event_id)] = None
            untracked = await session.execute(
                select(col(MemberRow.id)).where(col(MemberRow.tracking).is_(False))
            )
            self._untracked = {member_id for member_id in untracked.scalars() if member_id is not None}
        self._task = asyncio.create_task(self._loop(), name="copbot-journal")

    async def stop(self) -> None:
        """Let a write in progress finish (never cancel it half-way), then write what is left."""
        self._stopping = True
        self._wake.set()
        self._stopped.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()

    # --- the hot path -----------------------------------------------------------------------------------

    def first_delivery(self, platform: str, event_id: str, at: datetime, *, queue: bool = True) -> bool:
        """True the first time an event id is seen; it is then queued to be stored as handled.

        A command passes ``queue=False`` and calls :meth:`handled` once it is done: its id must never reach
        the database (in a batch written meanwhile) before its effect and its reply, or a crash in between
        would lose the command — a restart would find it handled. Here it is only remembered, so a second
        delivery to this process is skipped at once.
        """
        key = (platform, event_id)
        if key in self._recent:
            return False
        self._recent[key] = None
        if len(self._recent) > RECENT_LIMIT:
            self._recent.popitem(last=False)
        if queue:
            self.handled(platform, event_id, at)
        return True

    def position(self, scope: str, key: str, value: str) -> None:
        """Queue an adapter's position, to be stored with the next batch, in the same transaction as
        the handled ids queued before it — a batch of events costs no commit of its own.

        A crash before that batch replays the events since the position stored before: those whose
        handled ids were not written either are run again, which the rules in README "Reliability"
        make harmless (a command that wrote committed its id with its effect and is skipped; one that
        wrote nothing answers again under the same transaction id, which the homeserver deduplicates).
        """
        self._pending.position = (scope, key, value)

    def handled(self, platform: str, event_id: str, at: datetime) -> None:
        """Queue an event id to be stored as handled (with the next batch)."""
        self._pending.handled.append({"platform": platform, "event_id": event_id, "handled_at": at})
        self._nudge()

    def record(
        self,
        *,
        member_id: int,
        community_id: int | None,
        kind: str,
        platform: str,
        room_id: str,
        at: datetime,
        detail: str = "",
    ) -> None:
        self._pending.activity.append(
            {
                "member_id": member_id,
                "community_id": community_id,
                "kind": kind,
                "platform": platform,
                "room_id": room_id,
                "detail": detail[:255],
                "at": at,
            }
        )
        self._pending.seen[member_id] = at
        if community_id is not None:
            self._pending.seen_in[(community_id, member_id)] = at
        self._nudge()

    def known(self, member: Member) -> KnownMember | None:
        known = self._members.get((member.platform, member.id))
        if known is not None and member.display_name and known.display_name != member.display_name:
            return None  # the name changed: go through the database once to store it
        return known

    def remember(self, member: Member, row: MemberRow) -> None:
        assert row.id is not None
        tracking = row.tracking is not False
        self._members[(member.platform, member.id)] = KnownMember(
            row.id, row.timezone, row.display_name, tracking
        )
        if tracking:
            self._untracked.discard(row.id)
        else:
            self._untracked.add(row.id)

    def forget(self, member: Member) -> None:
        """A plugin changed the member's row (their time zone): read it afresh next time."""
        self._members.pop((member.platform, member.id), None)

    async def refresh(self, member: Member) -> None:
        """Read the member's row again now (after a change was committed), so that a choice like
        ``tracking off`` holds from the very next thing they do — the command that made it included."""
        async with self.db.session() as session:
            row = await store.find_member(session, member)
        if row is not None:
            self.remember(member, row)

    def tracks(self, member_id: int) -> bool:
        """Whether the member's activity may be recorded (they did not turn tracking off)."""
        return member_id not in self._untracked

    async def member(self, member: Member, now: datetime) -> KnownMember:
        """The member's id and zone: from memory when known, else created or updated in the database."""
        known = self.known(member)
        if known is not None:
            return known
        async with self.db.session() as session:
            row = await store.ensure_member(session, member, now)
        self.remember(member, row)
        return self._members[(member.platform, member.id)]

    # --- memberships ------------------------------------------------------------------------------------

    async def ensure_membership(self, community_id: int, member_id: int, at: datetime) -> int:
        """Record that the member is in the community (a new membership, or a left one reopened); 1 if
        that changed anything. Written at once, not batched: ``experts`` must find them right away."""
        key = (community_id, member_id)
        if key in self._present:
            self._present.move_to_end(key)
            return 0
        changed = 0
        async with self.db.session() as session:
            row = await session.get(Membership, key)
            if row is None:
                # Ignoring a conflict: the room's member list, recorded beside the sync (or this member's
                # event on another platform), may have written it since the read.
                inserted = await session.execute(
                    store.insert_ignoring_conflicts(session, table_of(Membership)).values(
                        community_id=community_id, member_id=member_id, joined_at=at, level_since=at
                    )
                )
                changed = 1 if getattr(inserted, "rowcount", 0) else 0
            elif row.left_at is not None:
                row.left_at = None
                changed = 1
        self.present(community_id, member_id)
        return changed

    def present(self, community_id: int, member_id: int) -> None:
        self._present[(community_id, member_id)] = None
        if len(self._present) > PRESENT_LIMIT:
            self._present.popitem(last=False)

    def left(self, community_id: int, member_id: int) -> None:
        self._present.pop((community_id, member_id), None)

    # --- writing ----------------------------------------------------------------------------------------

    def _nudge(self) -> None:
        if len(self._pending) >= self.batch:
            self._wake.set()

    async def flush(self, position: tuple[str, str, str] | None = None) -> None:
        """Write what is buffered in one transaction; with ``position`` (scope, key, value: an adapter's
        sync token), that state row too — in the same transaction, so the position is never stored
        without the handled ids it covers, and a sync batch costs one commit, not two."""
        async with self._flush_lock:
            pending, self._pending = self._pending, _Pending()
            position = position or pending.position
            if not len(pending) and position is None:
                return
            try:
                # Core statements with executemany: the ORM's bulk paths cost more than the writes.
                async with self.db.engine.begin() as connection:
                    if position is not None:
                        scope, key, value = position
                        await store.put_state(connection, scope, key, value, datetime.now(UTC))
                    if pending.handled:
                        await store.insert_many(
                            connection,
                            store.insert_ignoring_conflicts(connection, table_of(HandledEvent)),
                            pending.handled,
                        )
                    if pending.activity:
                        await store.insert_many(connection, insert(table_of(ActivityEvent)), pending.activity)
                    if pending.seen:
                        members = table_of(MemberRow)
                        await connection.execute(
                            update(members)
                            .where(members.c.id == bindparam("member_id"))
                            .values(last_seen=bindparam("seen_at")),
                            [{"member_id": key, "seen_at": at} for key, at in pending.seen.items()],
                        )
                    if pending.seen_in:
                        memberships = table_of(Membership)
                        await connection.execute(
                            update(memberships)
                            .where(
                                memberships.c.community_id == bindparam("community"),
                                memberships.c.member_id == bindparam("member"),
                            )
                            .values(last_seen=bindparam("seen_at")),
                            [
                                {"community": community, "member": member, "seen_at": at}
                                # key order: no deadlock with a writer locking memberships so too
                                for (community, member), at in sorted(pending.seen_in.items())
                            ],
                        )
            except Exception as error:
                # Kept, in order, for the next attempt; said once per streak of failures (db.writes).
                self._pending.handled[:0] = pending.handled
                self._pending.activity[:0] = pending.activity
                self._pending.seen = {**pending.seen, **self._pending.seen}
                self._pending.seen_in = {**pending.seen_in, **self._pending.seen_in}
                if self._pending.position is None:
                    self._pending.position = position
                if not self.db.unavailable(error):
                    self.db.writes.failed(
                        f"could not write {len(pending)} bookkeeping rows ({type(error).__name__})",
                        advice="they are kept and retried with back-off",
                        level=logging.ERROR,
                        exc_info=error,
                    )
                raise
            self.db.writes.recovered("writes work again; what was kept is written")

    async def _probe_write(self, now: datetime) -> None:
        """The smallest real write (a row of the state table), to learn that writes work again."""
        async with self.db.engine.begin() as connection:
            await store.put_state(connection, "copbot", "write-probe", now.isoformat(), now)

    async def _loop(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                if not len(self._pending) and self.db.writes.failing:
                    await self._probe_write(datetime.now(UTC))  # nothing to write: do writes work again?
                    self.db.writes.recovered("writes work again")
                else:
                    await self.flush()
                failures = 0
            except Exception as error:
                if not len(self._pending):
                    self.db.unavailable(error)  # a failed probe counts like a failed write
                failures += 1
                with contextlib.suppress(TimeoutError):  # back-off, cut short by stop()
                    await asyncio.wait_for(self._stopped.wait(), timeout=min(RETRY_CAP, 0.5 * 2**failures))
