"""Typed queries on the core tables. Every function takes the unit of work's session."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Dialect, Insert, Table, bindparam, delete, func, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from bot import persons
from bot.config import CommunityConfig
from bot.model import Member
from bot.tables import (
    ActivityEvent,
    CommunityRow,
    HandledEvent,
    MemberRow,
    Membership,
    RoomRow,
    StateRow,
    table_of,
)

if TYPE_CHECKING:  # only for the types: a dialect's module is loaded when first used (see _insert)
    from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
    from sqlalchemy.dialects.sqlite import Insert as SQLiteInsert


def dialect_of(bound: AsyncSession | AsyncConnection) -> str:
    """``sqlite`` or ``postgresql``: for the few statements each database writes its own way."""
    if isinstance(bound, AsyncSession):
        return bound.bind.dialect.name if bound.bind is not None else "sqlite"
    return bound.dialect.name


def _insert(bound: AsyncSession | AsyncConnection, table: Table) -> PostgresInsert | SQLiteInsert:
    """An INSERT that knows ON CONFLICT, in the dialect at hand (SQLite and PostgreSQL both have it)."""
    dialect = dialect_of(bound)
    # Each dialect's module is imported when first used: a SQLite bot never loads PostgreSQL's (~4 MB).
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def insert_ignoring_conflicts(
    bound: AsyncSession | AsyncConnection, table: Table
) -> PostgresInsert | SQLiteInsert:
    """INSERT … ON CONFLICT DO NOTHING."""
    return _insert(bound, table).on_conflict_do_nothing()


class DriverInsert:
    """An INSERT as SQLite's driver takes it: the SQL text, and a row as the driver's tuple, each value
    through its column's own bind processor, so that it is stored exactly as SQLAlchemy stores it.

    SQLAlchemy runs a statement through its compiled cache, an execution context, the processors in two
    layers and a result object: for one row of the hot path, more Python than SQLite's insert itself (see
    :func:`insert_many` and :func:`commit_handled`).
    """

    __slots__ = ("_pairs", "sql")

    def __init__(self, sql: str, pairs: list[tuple[str, Callable[[Any], Any] | None]]) -> None:
        self.sql = sql
        self._pairs = pairs

    def row(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            [values[name] if process is None else process(values[name]) for name, process in self._pairs]
        )


def driver_insert(statement: Insert, dialect: Dialect, keys: Sequence[str]) -> DriverInsert | None:
    """``statement`` for rows of these keys as SQLite's driver takes it; None where SQLAlchemy has to run it
    (another dialect, or a column default computed in Python)."""
    if dialect.name != "sqlite" or dialect.paramstyle != "qmark":
        return None
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    names = compiled.positiontup
    if names is None or compiled.insert_prefetch or not set(names) <= set(keys):
        return None
    types = [compiled.binds[name].type for name in names]
    return DriverInsert(
        compiled.string,
        [
            (name, kind.dialect_impl(dialect).bind_processor(dialect))
            for name, kind in zip(names, types, strict=True)
        ],
    )


async def insert_many(connection: AsyncConnection, statement: Insert, rows: list[dict[str, Any]]) -> None:
    """``connection.execute(statement, rows)`` for many rows of the same keys (the journal's batches).

    On SQLite the rows become the driver's tuples here (:class:`DriverInsert`): SQLAlchemy's executemany
    builds a parameter dictionary per row and runs the processors through two layers, which cost the main
    thread more than SQLite takes to insert the row. Anything else goes through SQLAlchemy as usual.
    """
    if not rows:
        return
    driven = driver_insert(statement, connection.dialect, list(rows[0]))
    if driven is None:
        await connection.execute(statement, rows)
        return
    await connection.exec_driver_sql(driven.sql, [driven.row(row) for row in rows])


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
        select(RoomRow).where(col(RoomRow.platform) == platform, col(RoomRow.room_id) == room_id)
    )
    if existing is None:
        session.add(RoomRow(platform=platform, room_id=room_id, community_id=community_id, added_at=now))
    else:
        existing.community_id = community_id
    await session.flush()


async def room_communities(session: AsyncSession) -> dict[tuple[str, str], int]:
    rows = await session.execute(
        select(col(RoomRow.platform), col(RoomRow.room_id), col(RoomRow.community_id))
    )
    return {(platform, room_id): community_id for platform, room_id, community_id in rows}


async def find_member(session: AsyncSession, member: Member) -> MemberRow | None:
    return await session.scalar(
        select(MemberRow).where(
            col(MemberRow.platform) == member.platform, col(MemberRow.platform_id) == member.id
        )
    )


def as_member(row: MemberRow) -> Member:
    """A stored account as the platforms and the journal know it (its platform id, when it has no name)."""
    return Member(row.platform, row.platform_id, row.display_name or row.platform_id, row.is_bot)


async def person_accounts(session: AsyncSession, member_id: int) -> list[MemberRow]:
    """Every account of the person ``member_id`` is one of (linked or not), the given one first."""
    row = await session.get(MemberRow, member_id)
    if row is None:
        return []
    person = row.person_id or row.id
    found = list(
        (
            await session.execute(
                select(MemberRow)
                .where(or_(col(MemberRow.id) == person, col(MemberRow.person_id) == person))
                .order_by(col(MemberRow.id))
            )
        ).scalars()
    )
    return sorted(found, key=lambda account: account.id != member_id)


async def ensure_member(session: AsyncSession, member: Member, now: datetime) -> MemberRow:
    """The member's row, created on first sight; the display name follows the platform's."""
    row = await find_member(session, member)
    if row is None:
        # Two events of a new member handled at once (two reactions) both get here: the second insert
        # waits for the first and then does nothing, and both read the one row.
        await session.execute(
            insert_ignoring_conflicts(session, table_of(MemberRow)).values(
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


LISTED_CHUNK = 500
"""Members asked about per statement when a whole member list is recorded (bound parameters stay few)."""


async def ensure_listed_members(session: AsyncSession, members: Sequence[Member], now: datetime) -> list[int]:
    """:func:`ensure_member` for a room's whole member list (at start-up), a statement per
    :data:`LISTED_CHUNK` members rather than two per member: the rows' ids, in the list's order.

    Listing a room of 5,000 members, all known, took ~7 s member by member (a unit of work each, twice)."""
    table = table_of(MemberRow)
    wanted = {(member.platform, member.id): member for member in members}
    rows = await _listed_rows(session, wanted)
    renamed = [
        {"row": row_id, "name": wanted[key].display_name}
        for key, (row_id, name) in rows.items()
        if wanted[key].display_name and wanted[key].display_name != name
    ]
    if renamed:
        await session.execute(
            update(table).where(table.c.id == bindparam("row")).values(display_name=bindparam("name")),
            renamed,
        )
    new = [member for key, member in wanted.items() if key not in rows]
    if new:
        await session.execute(
            insert_ignoring_conflicts(session, table),
            [
                {
                    "platform": member.platform,
                    "platform_id": member.id,
                    "display_name": member.display_name,
                    "is_bot": member.is_bot,
                    "first_seen": now,
                    "last_seen": now,
                }
                for member in new
            ],
        )
        rows.update(await _listed_rows(session, {(member.platform, member.id): member for member in new}))
    return [rows[(member.platform, member.id)][0] for member in members]


async def _listed_rows(
    session: AsyncSession, wanted: dict[tuple[str, str], Member]
) -> dict[tuple[str, str], tuple[int, str]]:
    """The id and stored name of each of these members that has a row."""
    table = table_of(MemberRow)
    found: dict[tuple[str, str], tuple[int, str]] = {}
    for platform in sorted({platform for platform, _ in wanted}):
        keys = sorted(platform_id for each, platform_id in wanted if each == platform)
        for start in range(0, len(keys), LISTED_CHUNK):
            query = select(table.c.id, table.c.platform_id, table.c.display_name).where(
                table.c.platform == platform, table.c.platform_id.in_(keys[start : start + LISTED_CHUNK])
            )
            for row_id, platform_id, name in await session.execute(query):
                found[(platform, platform_id)] = (row_id, name)
    return found


async def ensure_listed_memberships(
    session: AsyncSession, community_id: int, member_ids: Sequence[int], at: datetime
) -> int:
    """Each of these members in the community, as :meth:`Journal.ensure_membership` records one: new
    memberships written, left ones reopened, a statement per :data:`LISTED_CHUNK`; how many changed."""
    table = table_of(Membership)
    wanted = sorted(set(member_ids))
    found: dict[int, datetime | None] = {}
    for start in range(0, len(wanted), LISTED_CHUNK):
        chunk = wanted[start : start + LISTED_CHUNK]
        query = select(table.c.member_id, table.c.left_at).where(
            table.c.community_id == community_id, table.c.member_id.in_(chunk)
        )
        found.update((member_id, left_at) for member_id, left_at in await session.execute(query))
    new = [member_id for member_id in wanted if member_id not in found]
    back = [member_id for member_id, left_at in found.items() if left_at is not None]
    if new:  # ignoring conflicts: someone listed may act (and become a member) while this runs
        await session.execute(
            insert_ignoring_conflicts(session, table),
            [{"community_id": community_id, "member_id": m, "joined_at": at, "level_since": at} for m in new],
        )
    for start in range(0, len(back), LISTED_CHUNK):
        await session.execute(
            update(table)
            .where(
                table.c.community_id == community_id,
                table.c.member_id.in_(back[start : start + LISTED_CHUNK]),
            )
            .values(left_at=None)
        )
    return len(new) + len(back)


async def count_activity(
    session: AsyncSession, *, member_id: int | None = None, kind: str | None = None
) -> int:
    query = select(func.count()).select_from(ActivityEvent)
    if member_id is not None:
        query = query.where(col(ActivityEvent.member_id) == member_id)
    if kind is not None:
        query = query.where(col(ActivityEvent.kind) == kind)
    return int(await session.scalar(query) or 0)


async def count_active_members(
    session: AsyncSession, community_id: int, start: datetime, end: datetime
) -> int:
    """How many members did anything in the community in ``[start, end)``: persons, each once however
    many of their linked accounts took part (:mod:`bot.persons`).

    Asked member by member — one look-up each in the member-first ``ix_activity_member_window`` — rather
    than as ``count(distinct member_id)`` over the window, which de-duplicates every row of it: a busy
    week's 200,000 rows cost ~40 ms that way, 10,000 members' look-ups ~6 ms. (Every activity row names a
    member row, so the count is the same.) The digest's and the value report's figures both ask it.
    """
    took_part = (
        select(col(ActivityEvent.id))
        .where(
            col(ActivityEvent.member_id) == col(MemberRow.id),
            col(ActivityEvent.community_id) == community_id,
            col(ActivityEvent.at) >= start,
            col(ActivityEvent.at) < end,
        )
        .exists()
    )
    accounts = int(await session.scalar(select(func.count()).select_from(MemberRow).where(took_part)) or 0)
    return accounts - await persons.active_duplicates(session, community_id, start, end)  # persons, once


async def get_state(session: AsyncSession, scope: str, key: str) -> str | None:
    row = await session.get(StateRow, (scope, key))
    return row.value if row else None


_UPSERTS: dict[str, Any] = {}
_HANDLED: dict[str, Any] = {}
"""Statements of the hot path, built once per dialect: building one (and its cache key) costs more than
running it — a handler's write, the handled id committed with it."""


def _state_upsert(bound: AsyncSession | AsyncConnection) -> Any:
    """The state upsert, built once per dialect: building a statement costs more than running it."""
    dialect = dialect_of(bound)
    upsert = _UPSERTS.get(dialect)
    if upsert is None:
        table = table_of(StateRow)
        statement = _insert(bound, table).values(
            scope=bindparam("scope"),
            key=bindparam("key"),
            value=bindparam("value"),
            updated_at=bindparam("at"),
        )
        upsert = _UPSERTS[dialect] = statement.on_conflict_do_update(
            index_elements=[table.c.scope, table.c.key],
            set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
        )
    return upsert


async def put_state(
    bound: AsyncSession | AsyncConnection, scope: str, key: str, value: str, now: datetime
) -> None:
    """One INSERT … ON CONFLICT UPDATE: state is written often (a sync token per batch), so it is cheap."""
    await bound.execute(_state_upsert(bound), {"scope": scope, "key": key, "value": value, "at": now})


async def take_state(bound: AsyncSession | AsyncConnection, scope: str, key: str) -> str | None:
    """The value kept under ``key``, if any, deleted as it is read (state whose use is once)."""
    table = table_of(StateRow)
    where = (table.c.scope == scope, table.c.key == key)
    value = (await bound.execute(select(table.c.value).where(*where))).scalar()
    if value is not None:
        await bound.execute(delete(table).where(*where))
    return value


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
        select(col(MemberRow.platform_id), col(MemberRow.id))
        .join(Membership, col(Membership.member_id) == col(MemberRow.id))
        .where(
            col(Membership.community_id) == community_id,
            col(Membership.left_at).is_(None),
            col(MemberRow.platform) == platform,
        )
    )
    return {platform_id: member_id for platform_id, member_id in rows if member_id is not None}


def _handled_insert(bound: AsyncSession | AsyncConnection) -> Any:
    dialect = dialect_of(bound)
    statement = _HANDLED.get(dialect)
    if statement is None:
        statement = _HANDLED[dialect] = insert_ignoring_conflicts(bound, table_of(HandledEvent)).values(
            platform=bindparam("platform"), event_id=bindparam("event_id"), handled_at=bindparam("at")
        )
    return statement


_HANDLED_DRIVEN: dict[str, DriverInsert | None] = {}


def _handled_driven(statement: Insert, dialect: Dialect) -> DriverInsert | None:
    """The handled id's INSERT (:func:`_handled_insert`) for SQLite's driver, None elsewhere; built once."""
    if dialect.name not in _HANDLED_DRIVEN:
        _HANDLED_DRIVEN[dialect.name] = driver_insert(statement, dialect, ("platform", "event_id", "at"))
    return _HANDLED_DRIVEN[dialect.name]


def _run_driven(connection: Connection, driven: DriverInsert, values: Mapping[str, Any]) -> int:
    """Run a :class:`DriverInsert` in ``connection``'s transaction; its row count. A refusal is raised as
    SQLAlchemy raises it (a :class:`~sqlalchemy.exc.DBAPIError` around the driver's), so that a database
    refusing writes is recognised as such (:func:`bot.db.is_unavailable`), the same as on SQLAlchemy's way."""
    parameters = driven.row(values)
    dialect = connection.dialect
    driver_connection = connection.connection.dbapi_connection
    assert driver_connection is not None, "a connection in a transaction is checked out"
    cursor = driver_connection.cursor()
    try:
        cursor.execute(driven.sql, parameters)
        return int(cursor.rowcount)
    except dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(
            driven.sql, parameters, error, dialect.loaded_dbapi.Error, dialect=dialect
        ) from error
    finally:
        cursor.close()


async def commit_handled(session: AsyncSession, platform: str, event_id: str, at: datetime) -> bool:
    """End the unit of work that handled an event: record the event as handled and commit, in one
    transaction with what the handler wrote, then close the session. False, and the unit of work rolled
    back, if the event was handled already (an earlier run committed it, so this one must not commit again).
    If it raises, the session is left as it was, for the caller to roll back and close.

    All in one pass through SQLAlchemy's greenlet — the insert, the commit (which flushes the handler's
    pending ORM changes first), the close — rather than three. On SQLite the insert goes to the driver
    (:class:`DriverInsert`): a writing command took ~15 % less time (bench/dispatch.py).
    """
    statement = _handled_insert(session)
    parameters = {"platform": platform, "event_id": event_id, "at": at}

    def finish(sync_session: Session) -> bool:
        connection = sync_session.connection()
        driven = _handled_driven(statement, connection.dialect)
        if driven is not None:
            inserted = bool(_run_driven(connection, driven, parameters))
        else:
            result = connection.execute(statement, parameters)  # Core: not the ORM's way round
            inserted = bool(getattr(result, "rowcount", 1))
        if inserted:
            sync_session.commit()
        else:
            sync_session.rollback()
        sync_session.close()
        return inserted

    return await session.run_sync(finish)
