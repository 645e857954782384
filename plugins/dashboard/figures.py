"""The dashboard's figures, set-based: each is one grouped query over the core tables (and the level history
the roles plugin keeps), so a community of 10,000 members and a million activity rows is drawn in a few
tens of milliseconds (bench/dashboard.py).

- the bulb: members per level (memberships of those who have not left), and in the same pass
  newcomer conversion — of the members who joined 30–90 days ago (and are still members), the share who
  are occasional or further in;
- activity per week over 12 weeks: the activity rows (commands aside: see ``COMMAND``) in 7-day windows
  ending now, a count per window over its range of the ``(community_id, at, kind …)`` index, read from the
  index alone (the page counts the two halves of the twelve weeks on two connections at once);
- moves between levels in a period, by from → to, with the names of the members who chose to show theirs
  (one pass over the period's level history, read first: not every member).

The history is read by its table name (``roles_history``, the roles plugin's), as the digest does, so the
dashboard imports no other plugin.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    bindparam,
    func,
    literal_column,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.db import UTCDateTime
from bot.persons import duplicate_count, duplicate_members
from bot.store import count_active_members
from bot.tables import ActivityEvent, Membership

LEVELS = ("core", "active", "occasional", "peripheral", "transactional")
"""The bulb, from the centre out."""
INWARD = ("core", "active", "occasional")
"""A newcomer who reached one of these has converted."""
WEEK = timedelta(days=7)
WEEKS = 12
MONTH = timedelta(days=30)
COMMAND = "command"
"""Activity rows of this kind are not actions: a command that does something records what it did (a vote,
an RSVP, an item) as well, and one that only reads (`stats`, `dashboard`) did nothing in the community; the
page counts messages, reactions, votes, answers and contributions (as the levels weigh commands 0)."""
JUST_AFTER = timedelta(microseconds=1)
"""Added to a moment as the end of a half-open window, so that the window takes in the moment itself."""


@dataclass(frozen=True)
class Glance:
    """A community at a glance, for the list of communities."""

    members: int
    active_30: int  # members who did anything in the last 30 days
    actions_30: int  # activity rows in the last 30 days (messages, reactions, votes, contributions …)


@dataclass(frozen=True)
class Week:
    start: datetime
    end: datetime
    count: int


@dataclass(frozen=True)
class Conversion:
    joined: int  # still members, joined 30–90 days ago
    converted: int  # of those, occasional or further in

    @property
    def share(self) -> float | None:
        return self.converted / self.joined if self.joined else None

    @property
    def percent(self) -> str:
        """``67%``, as ``stats`` says it; ``–`` when nobody joined 30–90 days ago."""
        share = self.share
        return "–" if share is None else f"{share:.0%}"


@dataclass(frozen=True)
class Move:
    old: str
    new: str
    count: int
    hidden: int  # of those, moves of members who keep their name off the web
    names: tuple[str, ...]  # the others, once each, in the order they moved (members.public)

    @property
    def inward(self) -> bool:
        return _depth(self.new) < _depth(self.old)


def _in_community(community_id: int) -> tuple[ColumnElement[bool], ...]:
    """The community's members now, a person once however many of their linked accounts are in it."""
    return (
        col(Membership.community_id) == community_id,
        col(Membership.left_at).is_(None),
        col(Membership.member_id).not_in(duplicate_members(community_id)),
    )


async def bulb(session: AsyncSession, community_id: int, now: datetime) -> tuple[dict[str, int], Conversion]:
    """Members per level (every level present, 0 where nobody is) and newcomer conversion, in one pass
    over the community's memberships."""
    found = {level: 0 for level in LEVELS}
    joined = converted = 0
    cohort = and_(col(Membership.joined_at) >= now - 3 * MONTH, col(Membership.joined_at) < now - MONTH)
    rows = await session.execute(
        select(col(Membership.level), func.count(), func.count().filter(cohort))
        .where(*_in_community(community_id))
        .group_by(col(Membership.level))
    )
    for level, count, newcomers in rows.all():
        found[level] = found.get(level, 0) + int(count)
        joined += int(newcomers or 0)
        converted += int(newcomers or 0) if level in INWARD else 0
    return found, Conversion(joined, converted)


async def levels(session: AsyncSession, community_id: int) -> dict[str, int]:
    """Members per level, every level present (0 where nobody is)."""
    found = {level: 0 for level in LEVELS}
    rows = await session.execute(
        select(col(Membership.level), func.count())
        .where(*_in_community(community_id))
        .group_by(col(Membership.level))
    )
    for level, count in rows.all():
        found[level] = found.get(level, 0) + int(count)
    return found


async def glance(session: AsyncSession, community_ids: list[int], now: datetime) -> dict[int, Glance]:
    """Members, and who did how much in the last 30 days, for each of these communities."""
    if not community_ids:
        return {}
    members = dict(
        (
            await session.execute(
                select(col(Membership.community_id), func.count())
                .where(col(Membership.community_id).in_(community_ids), col(Membership.left_at).is_(None))
                .group_by(col(Membership.community_id))
            )
        ).all()
    )
    actions = dict(
        (
            await session.execute(
                select(col(ActivityEvent.community_id), func.count())
                .where(
                    col(ActivityEvent.community_id).in_(community_ids),
                    col(ActivityEvent.at) >= now - MONTH,
                    col(ActivityEvent.at) <= now,
                    col(ActivityEvent.kind) != COMMAND,
                )
                .group_by(col(ActivityEvent.community_id))
            )
        ).all()
    )
    recent = {  # who took part: member by member, not count(distinct) over the month's rows (see there)
        community_id: (
            await count_active_members(session, community_id, now - MONTH, now + JUST_AFTER),
            int(actions.get(community_id, 0)),
        )
        for community_id in community_ids
    }
    for community_id in community_ids:  # a person once (a few linked accounts: one look-up each)
        members[community_id] = int(members.get(community_id, 0)) - await duplicate_count(
            session, community_id
        )
    return {
        community_id: Glance(int(members.get(community_id, 0)), *recent.get(community_id, (0, 0)))
        for community_id in community_ids
    }


async def weekly(
    session: AsyncSession, community_id: int, now: datetime, weeks: int = WEEKS, *, only: range | None = None
) -> list[Week]:
    """Activity rows in each of the ``weeks`` 7-day windows up to ``now`` (the newest includes ``now``
    itself), oldest first; ``only`` some of them (by index, 0 the oldest), to count them on several
    connections at once.

    One statement of a count per week, each over its range of the ``(community_id, at …)`` index, read
    from the index alone. (Grouping by a week computed from each row would be one count, but SQLite sorts
    every row to group them: ten times slower on a busy community.)
    """
    starts = [now - WEEK * (weeks - index) for index in range(weeks)]
    ends = [*starts[1:], now]
    wanted = only if only is not None else range(weeks)
    counts = [
        select(literal_column(str(index), Integer), func.count()).where(
            col(ActivityEvent.community_id) == community_id,
            col(ActivityEvent.at) >= starts[index],
            col(ActivityEvent.at) <= now if index == weeks - 1 else col(ActivityEvent.at) < ends[index],
            col(ActivityEvent.kind) != COMMAND,
        )
        for index in wanted
    ]
    if not counts:
        return []
    found = dict((await session.execute(union_all(*counts))).all())
    return [Week(starts[index], ends[index], int(found.get(index, 0))) for index in wanted]


async def conversion(session: AsyncSession, community_id: int, now: datetime) -> Conversion:
    """Of the members who joined 30–90 days ago (and have not left), how many are occasional or further in."""
    return (await bulb(session, community_id, now))[1]


_MOVES = text(
    """
    SELECT h.old_level, h.new_level,
        CASE WHEN m.public THEN m.id END AS shown, CASE WHEN m.public THEN m.display_name END,
        CASE WHEN m.public THEN m.platform_id END, count(*), min(h.at) AS first
    FROM roles_history AS h CROSS JOIN members AS m
    WHERE m.id = h.member_id AND h.community_id = :community AND h.at >= :since AND h.at < :until
    GROUP BY h.old_level, h.new_level, shown, 4, 5
    ORDER BY first
    """
).bindparams(bindparam("since", type_=UTCDateTime()), bindparam("until", type_=UTCDateTime()))


async def moves(session: AsyncSession, community_id: int, since: datetime, until: datetime) -> list[Move]:
    """Level changes in ``[since, until)`` by from → to (inward first, then by level), with the names of
    the members who moved that way and chose to show their name (in the order they first moved so); the
    others only counted. One pass over the period's history: grouped by move and by shown member."""
    params = {"community": community_id, "since": since, "until": until}
    found: dict[tuple[str, str], tuple[int, int, list[str]]] = {}
    for old, new, shown, name, platform_id, count, _ in (await session.execute(_MOVES, params)).all():
        total, hidden, names = found.get((old, new), (0, 0, []))
        if shown is None:
            hidden += int(count)
        else:
            names.append(name or platform_id)
        found[(old, new)] = (total + int(count), hidden, names)
    listed = [
        Move(old, new, total, hidden, tuple(names)) for (old, new), (total, hidden, names) in found.items()
    ]
    listed.sort(key=lambda move: (not move.inward, _depth(move.old), _depth(move.new)))
    return listed


def _depth(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else len(LEVELS)
