"""Bookkeeping that every event needs, kept off the hot path: handled event ids, activity rows, members.

Writing three rows in a transaction of its own for every chat message caps copbot at a few hundred events
a second on SQLite. The journal instead appends them to a buffer that one background task writes in a
single transaction every ``interval`` (or when ``batch`` rows are waiting), and at shutdown. What a
*command* changes is never buffered: it is committed by the command's own unit of work before the
bookkeeping is queued, so a crash can cost at most the last interval of activity counts, never an effect.

Duplicate deliveries are caught by the set of recent event ids, primed from the database at start-up,
so an event redelivered after a restart (a Matrix catch-up, a Discord RESUME) is still handled once;
the table's primary key stays the final guard when the batch is written.

Members who turned tracking off (``profile set tracking off``) are kept in a small set, read at start and
updated whenever a member's row is read or changed, so :meth:`Journal.tracks` costs a set lookup.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, insert, select, update

from bot import store
from bot.db import Database
from bot.model import Member
from bot.tables import ActivityEvent, HandledEvent, MemberRow, Membership

log = logging.getLogger(__name__)

RECENT_LIMIT = 200_000
PRIME_WINDOW = timedelta(days=3)
PRESENT_LIMIT = 100_000
"""Memberships known to be open, remembered so that only someone's first act in a room costs a query."""


@dataclass(frozen=True, slots=True)
class KnownMember:
    id: int
    timezone: str | None
    display_name: str
    tracking: bool = True
    """The member lets copbot record their activity (``profile set tracking off`` stops it)."""


@dataclass
class _Pending:
    handled: list[dict] = field(default_factory=list)
    activity: list[dict] = field(default_factory=list)
    seen: dict[int, datetime] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.handled) + len(self.activity)


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

    # --- lifecycle --------------------------------------------------------------------------------------

    async def start(self, now: datetime) -> None:
        async with self.db.session() as session:
            rows = await session.execute(
                select(HandledEvent.platform, HandledEvent.event_id)
                .where(HandledEvent.handled_at >= now - PRIME_WINDOW)
                .order_by(HandledEvent.handled_at.desc())
                .limit(RECENT_LIMIT)
            )
            for platform, event_id in reversed(rows.all()):
                self._recent[(platform, event_id)] = None
            untracked = await session.execute(select(MemberRow.id).where(MemberRow.tracking.is_(False)))  # type: ignore[attr-defined]
            self._untracked = set(untracked.scalars())
        self._task = asyncio.create_task(self._loop(), name="copbot-journal")

    async def stop(self) -> None:
        """Let a write in progress finish (never cancel it half-way), then write what is left."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()

    # --- the hot path -----------------------------------------------------------------------------------

    def first_delivery(self, platform: str, event_id: str, at: datetime) -> bool:
        """True the first time an event id is seen; it is then queued to be stored as handled."""
        key = (platform, event_id)
        if key in self._recent:
            return False
        self._recent[key] = None
        if len(self._recent) > RECENT_LIMIT:
            self._recent.popitem(last=False)
        self._pending.handled.append({"platform": platform, "event_id": event_id, "handled_at": at})
        self._nudge()
        return True

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
                session.add(
                    Membership(community_id=community_id, member_id=member_id, joined_at=at, level_since=at)
                )
                changed = 1
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

    async def flush(self) -> None:
        async with self._flush_lock:
            pending, self._pending = self._pending, _Pending()
            if not len(pending):
                return
            try:
                # Core statements with executemany: the ORM's bulk paths cost more than the writes.
                async with self.db.engine.begin() as connection:
                    if pending.handled:
                        await connection.execute(
                            store.insert_ignoring_conflicts(connection, HandledEvent.__table__),
                            pending.handled,
                        )
                    if pending.activity:
                        await connection.execute(insert(ActivityEvent.__table__), pending.activity)
                    if pending.seen:
                        members = MemberRow.__table__
                        await connection.execute(
                            update(members)
                            .where(members.c.id == bindparam("member_id"))
                            .values(last_seen=bindparam("seen_at")),
                            [{"member_id": key, "seen_at": at} for key, at in pending.seen.items()],
                        )
            except Exception:
                log.exception("could not write %d bookkeeping rows; will retry", len(pending))
                self._pending.handled[:0] = pending.handled
                self._pending.activity[:0] = pending.activity
                raise

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                await asyncio.sleep(1.0)
