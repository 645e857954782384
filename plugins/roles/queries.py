"""The roles plugin's queries: everyone's activity over the window, set-based, and the memberships to move.

A person may have several accounts (linked): their activity is summed over all of them and they have one
level, kept on each of their memberships. Statistics are computed for a whole community in a few grouped
queries — never one query per member — so a daily evaluation of 100,000 members stays within seconds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.tables import MemberRow, Membership
from plugins.roles.models import LevelChange
from plugins.roles.rules import Stats


@dataclass(frozen=True)
class Seat:
    """A person's place in a community: their memberships (one per linked account), level and state."""

    person_id: int
    member_ids: tuple[int, ...]
    level: str
    level_since: datetime | None
    locked: bool
    below_since: datetime | None
    joined_at: datetime


def _person() -> str:
    return "coalesce(m.person_id, m.id)"


def _day(dialect: str) -> str:
    """The UTC date of an activity row: SQLite keeps times as ISO text, PostgreSQL as timestamptz."""
    return "substr(a.at, 1, 10)" if dialect == "sqlite" else "date(a.at AT TIME ZONE 'UTC')"


async def window_stats(
    session: AsyncSession,
    community_id: int,
    since: datetime,
    weights: Mapping[str, float],
    contributions: Iterable[str],
    *,
    persons: Sequence[int] | None = None,
) -> dict[int, Stats]:
    """Each person's score, contributions, active days and score per kind since ``since`` — in two
    grouped queries over the community's activity in the window (all persons, or only ``persons``)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    contributed = set(contributions)
    only = ""
    params: dict[str, object] = {"community": community_id, "since": since}
    if persons is not None:
        only = f" AND {_person()} IN :persons"
        params["persons"] = list(persons)
    per_kind = text(
        f"""
        SELECT {_person()} AS person, a.kind, count(*) AS n
        FROM activity_events AS a JOIN members AS m ON m.id = a.member_id
        WHERE a.community_id = :community AND a.at >= :since{only}
        GROUP BY {_person()}, a.kind
        """
    )
    days = text(
        f"""
        SELECT person, count(*) FROM (
            SELECT DISTINCT {_person()} AS person, {_day(dialect)} AS day
            FROM activity_events AS a JOIN members AS m ON m.id = a.member_id
            WHERE a.community_id = :community AND a.at >= :since{only}
        ) AS active GROUP BY person
        """
    )
    if persons is not None:
        per_kind = per_kind.bindparams(bindparam("persons", expanding=True))
        days = days.bindparams(bindparam("persons", expanding=True))
    scores: dict[int, float] = defaultdict(float)
    counted: dict[int, int] = defaultdict(int)
    kinds: dict[int, dict[str, float]] = defaultdict(dict)
    for person, kind, count in await session.execute(per_kind, params):
        weight = weights.get(kind, 0.0)
        scores[person] += weight * count
        kinds[person][kind] = weight * count
        if kind in contributed:
            counted[person] += count
    active_days = {person: int(count) for person, count in await session.execute(days, params)}
    last = await last_active(session, community_id, persons)
    everyone = set(scores) | set(active_days) | set(last)
    return {
        person: Stats(
            score=round(scores.get(person, 0.0), 3),
            contributions=counted.get(person, 0),
            active_days=active_days.get(person, 0),
            last_active=last.get(person),
            by_kind=kinds.get(person, {}),
        )
        for person in everyone
    }


async def last_active(
    session: AsyncSession, community_id: int, persons: Sequence[int] | None = None
) -> dict[int, datetime]:
    """When each person of the community last did anything anywhere (the members' ``last_seen``)."""
    person = func.coalesce(MemberRow.person_id, MemberRow.id)
    query = (
        select(person, func.max(MemberRow.last_seen))
        .join(Membership, Membership.member_id == MemberRow.id)
        .where(Membership.community_id == community_id)
        .group_by(person)
    )
    if persons is not None:
        query = query.where(person.in_(list(persons)))
    rows = await session.execute(query)
    return {int(who): seen for who, seen in rows.all() if seen is not None}


async def seats(
    session: AsyncSession, community_id: int, persons: Sequence[int] | None = None
) -> dict[int, Seat]:
    """Every person in the community now (not left), with their memberships and level."""
    person = func.coalesce(MemberRow.person_id, MemberRow.id)
    query = (
        select(
            person,
            Membership.member_id,
            Membership.level,
            Membership.level_since,
            Membership.locked,
            Membership.below_since,
            Membership.joined_at,
        )
        .join(MemberRow, MemberRow.id == Membership.member_id)
        .where(Membership.community_id == community_id, Membership.left_at.is_(None))  # type: ignore[union-attr]
        .where(MemberRow.is_bot.is_(False))  # type: ignore[attr-defined]
        .order_by(person, Membership.member_id)
    )
    if persons is not None:
        query = query.where(person.in_(list(persons)))
    found: dict[int, Seat] = {}
    for who, member_id, level, since, locked, below, joined in (await session.execute(query)).all():
        seat = found.get(who)
        if seat is None:
            found[who] = Seat(who, (member_id,), level, since, bool(locked), below, joined)
        else:  # linked accounts: the most central level and the earliest dates speak for the person
            found[who] = Seat(
                who,
                (*seat.member_ids, member_id),
                min(seat.level, level, key=_centrality),
                min((d for d in (seat.level_since, since) if d), default=None),
                seat.locked or bool(locked),
                seat.below_since or below,
                min(seat.joined_at, joined),
            )
    return found


def _centrality(level: str) -> int:
    from plugins.roles.rules import LEVELS

    return LEVELS.index(level) if level in LEVELS else len(LEVELS)


async def set_levels(
    session: AsyncSession,
    community_id: int,
    moves: Sequence[tuple[Seat, str, str, int | None, str]],
    at: datetime,
) -> None:
    """Apply moves (seat, new level, rule, actor, reason) to every account of each person, with history —
    two executemany statements whatever the number of moves."""
    if not moves:
        return
    table = Membership.__table__  # Core statements: executemany over many rows, no ORM bookkeeping
    await session.execute(
        update(table)
        .where(table.c.community_id == bindparam("c"), table.c.member_id == bindparam("m"))
        .values(level=bindparam("lvl"), level_since=bindparam("at"), below_since=None),
        [
            {"c": community_id, "m": member_id, "lvl": new, "at": at}
            for seat, new, _, _, _ in moves
            for member_id in seat.member_ids
        ],
    )
    session.add_all(
        LevelChange(
            community_id=community_id,
            member_id=seat.member_ids[0],
            old_level=seat.level,
            new_level=new,
            actor_id=actor,
            rule=rule[:300],
            reason=reason,
            at=at,
        )
        for seat, new, rule, actor, reason in moves
    )


async def set_below_since(
    session: AsyncSession, community_id: int, changes: Sequence[tuple[Seat, datetime | None]]
) -> None:
    """Remember (or forget) since when people are below their level's keep thresholds."""
    if not changes:
        return
    table = Membership.__table__
    await session.execute(
        update(table)
        .where(table.c.community_id == bindparam("c"), table.c.member_id == bindparam("m"))
        .values(below_since=bindparam("b")),
        [
            {"c": community_id, "m": member_id, "b": below}
            for seat, below in changes
            for member_id in seat.member_ids
        ],
    )


async def person_of(session: AsyncSession, member_id: int) -> int:
    row = await session.get(MemberRow, member_id)
    return (row.person_id or row.id or member_id) if row is not None else member_id


async def accounts_of(session: AsyncSession, person_id: int) -> list[MemberRow]:
    rows = await session.execute(
        select(MemberRow)
        .where(func.coalesce(MemberRow.person_id, MemberRow.id) == person_id)
        .order_by(MemberRow.id)  # type: ignore[arg-type]
    )
    return list(rows.scalars())


async def history(
    session: AsyncSession, community_id: int, member_ids: Sequence[int], limit: int = 15
) -> list[LevelChange]:
    rows = await session.execute(
        select(LevelChange)
        .where(LevelChange.community_id == community_id, LevelChange.member_id.in_(list(member_ids)))  # type: ignore[attr-defined]
        .order_by(LevelChange.at.desc(), LevelChange.id.desc())  # type: ignore[attr-defined,union-attr]
        .limit(limit)
    )
    return list(rows.scalars())


async def members_of_seats(session: AsyncSession, seats: Sequence[Seat]) -> dict[int, list[MemberRow]]:
    """The account rows behind each seat, by person (to mirror a level on every platform they use)."""
    ids = sorted({member_id for seat in seats for member_id in seat.member_ids})
    if not ids:
        return {}
    rows = await session.execute(select(MemberRow).where(MemberRow.id.in_(ids)))  # type: ignore[union-attr]
    by_id = {row.id: row for row in rows.scalars()}
    return {seat.person_id: [by_id[m] for m in seat.member_ids if m in by_id] for seat in seats}
