"""Typed queries on the core tables. Every function takes the unit of work's session."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.config import CommunityConfig
from bot.model import Member
from bot.tables import ActivityEvent, CommunityRow, HandledEvent, MemberRow, Membership, RoomRow, StateRow


def _insert(bound: AsyncSession | AsyncConnection, table: Any):  # type: ignore[no-untyped-def]
    """An INSERT that knows ON CONFLICT, in the dialect at hand (SQLite and PostgreSQL both have it)."""
    if isinstance(bound, AsyncSession):
        dialect = bound.bind.dialect.name if bound.bind is not None else "sqlite"
    else:
        dialect = bound.dialect.name
    # Each dialect's module is imported when first used: a SQLite bot never loads PostgreSQL's (~4 MB).
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def insert_ignoring_conflicts(bound: AsyncSession | AsyncConnection, table: Any):  # type: ignore[no-untyped-def]
    """INSERT … ON CONFLICT DO NOTHING."""
    return _insert(bound, table).on_conflict_do_nothing()


async def sync_communities(
    session: AsyncSession, configured: list[CommunityConfig], now: datetime
) -> dict[str, int]:
    """Make the communities table match the config (new ones added, names updated); slug → id."""
    rows = {row.slug: row for row in (await session.execute(select(CommunityRow))).scalars()}
    for community in configured:
        row = rows.get(community.slug)
        if row is None:
            row = CommunityRow(
                slug=community.slug,
                name=community.name,
                domain=community.domain,
                timezone=community.timezone,
                created_at=now,
            )
            session.add(row)
            rows[community.slug] = row
        else:
            row.name, row.domain, row.timezone = community.name, community.domain, community.timezone
    await session.flush()
    return {slug: row.id for slug, row in rows.items() if row.id is not None}


async def attach_room(
    session: AsyncSession, platform: str, room_id: str, community_id: int, now: datetime
) -> None:
    existing = await session.scalar(
        select(RoomRow).where(RoomRow.platform == platform, RoomRow.room_id == room_id)
    )
    if existing is None:
        session.add(RoomRow(platform=platform, room_id=room_id, community_id=community_id, added_at=now))
    else:
        existing.community_id = community_id
    await session.flush()


async def room_communities(session: AsyncSession) -> dict[tuple[str, str], int]:
    rows = await session.execute(select(RoomRow.platform, RoomRow.room_id, RoomRow.community_id))
    return {(platform, room_id): community_id for platform, room_id, community_id in rows}


async def find_member(session: AsyncSession, member: Member) -> MemberRow | None:
    return await session.scalar(
        select(MemberRow).where(MemberRow.platform == member.platform, MemberRow.platform_id == member.id)
    )


async def ensure_member(session: AsyncSession, member: Member, now: datetime) -> MemberRow:
    """The member's row, created on first sight; the display name follows the platform's."""
    row = await find_member(session, member)
    if row is None:
        # Two events of a new member handled at once (two reactions) both get here: the second insert
        # waits for the first and then does nothing, and both read the one row.
        await session.execute(
            insert_ignoring_conflicts(session, MemberRow.__table__).values(
                platform=member.platform,
                platform_id=member.id,
                display_name=member.display_name,
                is_bot=member.is_bot,
                first_seen=now,
                last_seen=now,
            )
        )
        row = await find_member(session, member)
        assert row is not None
    elif member.display_name and row.display_name != member.display_name:
        row.display_name = member.display_name
    return row


async def count_activity(
    session: AsyncSession, *, member_id: int | None = None, kind: str | None = None
) -> int:
    query = select(func.count()).select_from(ActivityEvent)
    if member_id is not None:
        query = query.where(ActivityEvent.member_id == member_id)
    if kind is not None:
        query = query.where(ActivityEvent.kind == kind)
    return int(await session.scalar(query) or 0)


async def get_state(session: AsyncSession, scope: str, key: str) -> str | None:
    row = await session.get(StateRow, (scope, key))
    return row.value if row else None


_UPSERTS: dict[str, Any] = {}


def _state_upsert(bound: AsyncSession | AsyncConnection) -> Any:
    """The state upsert, built once per dialect: building a statement costs more than running it."""
    probe = _insert(bound, StateRow.__table__)
    dialect = type(probe).__module__
    if dialect not in _UPSERTS:
        table = StateRow.__table__
        statement = probe.values(
            scope=bindparam("scope"),
            key=bindparam("key"),
            value=bindparam("value"),
            updated_at=bindparam("at"),
        )
        _UPSERTS[dialect] = statement.on_conflict_do_update(
            index_elements=[table.c.scope, table.c.key],
            set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
        )
    return _UPSERTS[dialect]


async def put_state(
    bound: AsyncSession | AsyncConnection, scope: str, key: str, value: str, now: datetime
) -> None:
    """One INSERT … ON CONFLICT UPDATE: state is written often (a sync token per batch), so it is cheap."""
    await bound.execute(_state_upsert(bound), {"scope": scope, "key": key, "value": value, "at": now})


class Joined(enum.Enum):
    """What a join means: someone new, someone coming back, or someone who never left (no news)."""

    NEW = "new"
    RETURNING = "returning"
    PRESENT = "present"


async def join_community(session: AsyncSession, community_id: int, member_id: int, at: datetime) -> Joined:
    row = await session.get(Membership, (community_id, member_id))
    if row is None:
        session.add(Membership(community_id=community_id, member_id=member_id, joined_at=at, level_since=at))
        await session.flush()
        return Joined.NEW
    if row.left_at is None:
        return Joined.PRESENT
    row.left_at = None
    return Joined.RETURNING


async def leave_community(session: AsyncSession, community_id: int, member_id: int, at: datetime) -> None:
    row = await session.get(Membership, (community_id, member_id))
    if row is not None and row.left_at is None:
        row.left_at = at


async def current_members(session: AsyncSession, community_id: int, platform: str) -> dict[str, int]:
    """Platform id → member id of everyone in the community now (for reconciling after downtime)."""
    rows = await session.execute(
        select(MemberRow.platform_id, MemberRow.id)
        .join(Membership, Membership.member_id == MemberRow.id)
        .where(
            Membership.community_id == community_id,
            Membership.left_at.is_(None),  # type: ignore[union-attr]
            MemberRow.platform == platform,
        )
    )
    return {platform_id: member_id for platform_id, member_id in rows}


async def mark_handled(session: AsyncSession, platform: str, event_id: str, at: datetime) -> bool:
    """Record an event as handled inside the unit of work that handled it; False if it already was
    (an earlier run committed it: this unit of work must then be rolled back, not committed again)."""
    result = await session.execute(
        insert_ignoring_conflicts(session, HandledEvent.__table__).values(
            platform=platform, event_id=event_id, handled_at=at
        )
    )
    return bool(getattr(result, "rowcount", 1))
