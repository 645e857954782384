"""The community's figures, set-based: activity in a period beside the one before, and the bulb for `stats`.

Each figure is one grouped query over the core tables (activity, memberships), so the digest of a
community of 10,000 members is built in a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.activity import CONTRIBUTION_KINDS
from bot.db import UTCDateTime
from bot.persons import duplicate_members, duplicates_sql
from bot.store import count_active_members
from bot.tables import ActivityEvent, Membership

LEVELS = ("core", "active", "occasional", "peripheral", "transactional")
MONTH = timedelta(days=30)
JUST_AFTER = timedelta(microseconds=1)
"""The end of "the last 30 days" at a moment is just after it: what happened at that very moment counts, as
on the dashboard and in the value report; the month before ends where this one starts."""


@dataclass(frozen=True)
class Activity:
    messages: int
    active_members: int
    contributions: int


async def activity(session: AsyncSession, community_id: int, start: datetime, end: datetime) -> Activity:
    """Messages and contributions counted from the window's index entries alone (the covering
    ``ix_activity_community_window``), and the members who took part."""
    window = (
        col(ActivityEvent.community_id) == community_id,
        col(ActivityEvent.at) >= start,
        col(ActivityEvent.at) < end,
    )
    row = (
        await session.execute(
            select(
                func.count().filter(col(ActivityEvent.kind) == "message"),
                func.count().filter(col(ActivityEvent.kind).in_(sorted(CONTRIBUTION_KINDS))),
            ).where(*window)
        )
    ).one()
    return Activity(
        int(row[0] or 0), await count_active_members(session, community_id, start, end), int(row[1] or 0)
    )


def versus(now: int, before: int) -> str:
    """``124 (↑ 12% from 111)``: a figure with the previous period's beside it."""
    if now == before:
        return f"{now} (= before)"
    if before == 0:
        return f"{now} (↑ from 0)"
    change = round((now - before) * 100 / before)
    arrow = "↑" if now > before else "↓"
    return f"{now} ({arrow} {abs(change)}% from {before})"


@dataclass(frozen=True)
class Bulb:
    levels: dict[str, int]
    active_30: int
    conversion: float | None  # share of members who joined 30–90 days ago that reached occasional or above
    joined_30_90: int
    contributions: dict[str, int]


async def bulb(session: AsyncSession, community_id: int, now: datetime) -> Bulb:
    """The bulb at ``now``: members per level, active in the 30 days up to and including ``now``, newcomer
    conversion, contributions (the bulb at ``now`` minus 30 days counts the month just before, each moment
    in one of the two)."""
    in_community = (
        col(Membership.community_id) == community_id,
        col(Membership.left_at).is_(None),
        col(Membership.member_id).not_in(duplicate_members(community_id)),  # a person once
    )
    levels = {level: 0 for level in LEVELS}
    for level, count in (
        await session.execute(
            select(col(Membership.level), func.count()).where(*in_community).group_by(col(Membership.level))
        )
    ).all():
        levels[level] = int(count)
    end = now + JUST_AFTER
    active_30 = await count_active_members(session, community_id, end - MONTH, end)
    cohort = (
        *in_community,
        col(Membership.joined_at) >= now - timedelta(days=90),
        col(Membership.joined_at) < now - timedelta(days=30),
    )
    joined = int(await session.scalar(select(func.count()).select_from(Membership).where(*cohort)) or 0)
    converted = int(
        await session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(*cohort, col(Membership.level).in_(("core", "active", "occasional")))
        )
        or 0
    )
    contributions = {
        kind: int(count)
        for kind, count in (
            await session.execute(
                select(col(ActivityEvent.kind), func.count())
                .where(
                    col(ActivityEvent.community_id) == community_id,
                    col(ActivityEvent.at) >= end - MONTH,
                    col(ActivityEvent.at) < end,
                    col(ActivityEvent.kind).in_(sorted(CONTRIBUTION_KINDS)),
                )
                .group_by(col(ActivityEvent.kind))
            )
        ).all()
    }
    return Bulb(levels, active_30, converted / joined if joined else None, joined, contributions)


async def levels_at(
    session: AsyncSession,
    community_id: int,
    then: datetime,
    *,
    joined: tuple[datetime, datetime] | None = None,
) -> dict[str, int]:
    """Members per level as they were at ``then``: today's levels, rolled back through the level history
    (the audit log the roles plugin keeps), for those who were members then — a person once, rolled back
    by their moves, which the history records on one of their accounts. ``joined``: only those who joined
    in ``[start, end)`` (the newcomers of then, whose conversion `stats` compares)."""
    cohort = "AND ms.joined_at >= :joined_from AND ms.joined_at < :joined_until" if joined else ""
    params: dict[str, object] = {"community": community_id, "then": then}
    if joined:
        params["joined_from"], params["joined_until"] = joined
    statement = text(
        f"""
        SELECT coalesce(
            (SELECT h.old_level FROM roles_history AS h
             WHERE h.community_id = ms.community_id AND h.at > :then AND h.member_id IN (
                SELECT k.id FROM members AS k WHERE k.id = coalesce(m.person_id, m.id)
                UNION ALL SELECT k.id FROM members AS k WHERE k.person_id = coalesce(m.person_id, m.id)
             )
             ORDER BY h.at, h.id LIMIT 1),
            ms.level) AS level, count(*)
        FROM memberships AS ms JOIN members AS m ON m.id = ms.member_id
        WHERE ms.community_id = :community AND ms.joined_at <= :then
          AND (ms.left_at IS NULL OR ms.left_at > :then) {cohort}
          AND ms.member_id NOT IN ({duplicates_sql(at_then=True)})
        GROUP BY 1
        """
    ).bindparams(bindparam("then", type_=UTCDateTime()))  # stored as UTC text on SQLite
    if joined:
        statement = statement.bindparams(
            bindparam("joined_from", type_=UTCDateTime()), bindparam("joined_until", type_=UTCDateTime())
        )
    rows = await session.execute(statement, params)
    found = {level: 0 for level in LEVELS}
    for level, count in rows.all():
        found[level] = found.get(level, 0) + int(count)
    return found
