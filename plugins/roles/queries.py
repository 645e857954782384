"""The roles plugin's queries: everyone's activity over the window, set-based, and the memberships to move.

A person may have several accounts (linked): their activity is summed over all of them and they have one
level, kept on each of their memberships. Statistics are computed for many persons at once — a page of
5,000 person ids in the nightly evaluation, never one query per member — so that the evaluation of 100,000
members and 5,000,000 rows aims at 3 seconds on SQLite (bench/levels.py) while holding one page: the
activity is grouped by account (by the index ``ix_activity_member_window`` on SQLite, with hash tables on
PostgreSQL) and the few linked accounts are summed per person here; a page's memberships and last-seen
times are read by one statement (:func:`page_seats`) and moves written with a statement per new level.
Persons (a page's range of ids, or a list) reach their accounts through the indexes on ``members.id`` and
``members.person_id``, and their memberships by key.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple, TypeGuard
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    true,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import String
from sqlmodel import col

from bot.db import UTCDateTime
from bot.store import dialect_of
from bot.tables import MemberRow, Membership, table_of
from plugins.roles.models import LevelChange
from plugins.roles.rules import DEFAULT_WEIGHTS, Stats


class Seat(NamedTuple):  # a tuple: the nightly evaluation makes one per member (see rules.Stats)
    """A person's place in a community: their memberships (one per linked account), level and state."""

    person_id: int
    member_ids: tuple[int, ...]
    level: str
    level_since: datetime | None
    locked: bool
    below_since: datetime | None
    joined_at: datetime


def _text(column: Any) -> Any:
    """A time column read as it is stored — ISO text on SQLite, an aware datetime on PostgreSQL — for
    :func:`_aware`: for 100,000 rows, the column type's own conversion (``replace(tzinfo=…)``) is slow."""
    return type_coerce(column, String())


def _aware(value: str | datetime | None) -> datetime | None:
    """What :class:`~bot.db.UTCDateTime` gives for a stored value: an aware UTC datetime, or None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is UTC else value.astimezone(UTC)
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _aware_sqlite(value: str | None) -> datetime | None:
    """:func:`_aware` for the naive ISO text SQLAlchemy writes on SQLite, in half the time (a ValueError
    for anything else: then :func:`_aware` reads it)."""
    return None if value is None else _fromisoformat(value + "+00:00")


_fromisoformat = datetime.fromisoformat


def _time_reader(session: AsyncSession) -> Callable[[Any], datetime | None]:
    return _aware_sqlite if session.bind is not None and session.bind.dialect.name == "sqlite" else _aware


def _day(dialect: str, zone: str, since: datetime) -> str:
    """The date of an activity row in the community's ``zone``: SQLite keeps times as ISO text, PostgreSQL
    as timestamptz. PostgreSQL knows the zones (``:zone`` is bound). SQLite shifts each row by the zone's
    offset at its time: the offset at ``since`` (the window's start), and past each change of the clocks
    after it, the new one — else, for a month after a change, an hour of each day fell on its neighbour
    (23:30 and 00:30 one day apart counted as one day). In UTC, SQLite cuts the text (``date()`` would
    parse every row)."""
    if dialect != "sqlite":
        return "date(a.at AT TIME ZONE :zone)"
    tz = ZoneInfo(zone)
    offset = _offset_minutes(tz, since)
    cases = []
    for change, new in _offset_changes(zone, since.astimezone(UTC).date()):
        if change > since:  # the stored text compares as the times do (YYYY-MM-DD HH:MM:SS.ffffff, UTC)
            cases.append(f"WHEN a.at < '{change:%Y-%m-%d %H:%M:%S}' THEN {_shifted(offset)}")
            offset = new
    if not cases:
        return _shifted(offset)
    return f"CASE {' '.join(cases)} ELSE {_shifted(offset)} END"


def _shifted(minutes: int) -> str:
    return "substr(a.at, 1, 10)" if not minutes else f"date(a.at, '{minutes:+d} minutes')"


def _offset_minutes(zone: ZoneInfo, at: datetime) -> int:
    """The offset at the instant ``at`` (``zone.utcoffset(at)`` would read ``at``'s wall time as local)."""
    offset = at.astimezone(zone).utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 60)


OFFSET_REACH = timedelta(days=367)
"""How far after a window's start its offset changes are looked for: the longest window (365 days), and
the rows written since its start."""


@functools.lru_cache(maxsize=64)
def _offset_changes(zone: str, first_day: date) -> tuple[tuple[datetime, int], ...]:
    """The moments (UTC, to the minute) from ``first_day`` on, within :data:`OFFSET_REACH`, at which the
    zone's offset changes, each with its new offset in minutes. Remembered per zone and day: the nightly
    evaluation reads every page of a community with the same window."""
    tz = ZoneInfo(zone)
    found: list[tuple[datetime, int]] = []
    day = datetime.combine(first_day, time(0), UTC)
    before = _offset_minutes(tz, day)
    for _ in range(OFFSET_REACH.days):
        following = day + timedelta(days=1)
        after = _offset_minutes(tz, following)
        if after != before:
            low, high = day, following  # the change is in (low, high], both whole minutes: found to one
            while high - low > timedelta(minutes=1):
                middle = (low + (high - low) / 2).replace(second=0, microsecond=0)
                if _offset_minutes(tz, middle) == before:
                    low = middle
                else:
                    high = middle
            found.append((high, after))
            before = after
        day = following
    return tuple(found)


MANY_PERSONS = 1000
"""More persons than this are read as the whole community, then picked: as fast, and the lists of ids stay
short (SQLite takes some 32,000 parameters at most)."""


def _persons_filter(persons: Sequence[int]) -> ColumnElement[bool]:
    """``coalesce(person_id, id) IN persons``, written so that the indexes on both columns serve it; for a
    ``range`` (a page of a whole community, see :func:`person_pages`), its bounds instead of its ids."""
    members = table_of(MemberRow).c
    if isinstance(persons, range):
        low, high = persons.start, persons.stop - 1
        return or_(
            members.person_id.between(low, high),
            and_(members.person_id.is_(None), members.id.between(low, high)),
        )
    chosen = list(persons)
    return or_(members.person_id.in_(chosen), and_(members.person_id.is_(None), members.id.in_(chosen)))


def _many(persons: Sequence[int] | None) -> TypeGuard[Sequence[int]]:
    """Too many persons to name in a statement (a range is never named, however wide)."""
    return persons is not None and not isinstance(persons, range) and len(persons) > MANY_PERSONS


def _memberships_of(persons: Sequence[int]) -> ColumnElement[bool]:
    """The memberships of these persons' accounts.

    Asked as ``member_id IN (the accounts)``: SQLite then looks the few accounts up by their indexes and
    each one's membership by its key. Written as a condition on the joined ``members`` row instead, SQLite
    (which keeps no statistics) walks every membership of the community for it — 29 ms against 3 ms for a
    page of 1,000 persons among 100,000 members, and as long for the one person of a contribution."""
    members = table_of(MemberRow).c
    return table_of(Membership).c.member_id.in_(select(members.id).where(_persons_filter(persons)))


Accounts = Sequence[int] | range | None
"""Whose activity to read: these accounts; for a ``range``, the accounts of the persons with ids in it
(a page, see :func:`person_pages`); None, every account."""

_ACCOUNTS_OF_PAGE = (
    "(SELECT id FROM members WHERE person_id BETWEEN :low AND :high"
    " OR (person_id IS NULL AND id BETWEEN :low AND :high))"
)
"""The accounts of a page of persons, for ``IN``: through the indexes on ``members.person_id`` and
``members.id`` — not sorted, not named one by one (15 ms for 5,000 persons, as fast as their ids)."""


def _accounts_condition(column: str, accounts: Accounts, params: dict[str, object]) -> str:
    """`` AND <column> IN …`` for ``accounts`` (nothing for every account), its parameters into ``params``."""
    if accounts is None:
        return ""
    if isinstance(accounts, range):
        params["low"], params["high"] = accounts.start, accounts.stop - 1
        return f" AND {column} IN {_ACCOUNTS_OF_PAGE}"
    params["accounts"] = list(accounts)
    return f" AND {column} IN :accounts"


Account = tuple[int, int, dict[str, int], int]
"""An account's activity in the window: (member id, person id, rows per kind in the kinds' order, distinct
days in the community's zone)."""


async def window_stats(
    session: AsyncSession,
    community_id: int,
    since: datetime,
    weights: Mapping[str, float],
    contributions: Iterable[str],
    *,
    persons: Sequence[int] | None = None,
    last: Mapping[int, datetime] | None = None,
    zone: str = "UTC",
) -> dict[int, Stats]:
    """Each person's score, contributions, active days and score per kind since ``since`` — for all persons
    with activity in the window or a membership (or only ``persons``), in one pass over the window's rows.

    Activity is read per account and summed per person here (only a few accounts are linked); the active
    days of a person with several active accounts are counted over all of them together, a day on two
    accounts once; a day is one in ``zone``, the community's. ``last``: the persons' last-active times,
    when the caller has read them already."""
    if _many(persons):
        everyone = await window_stats(
            session, community_id, since, weights, contributions, last=last, zone=zone
        )
        return {person: everyone[person] for person in persons if person in everyone}
    contributed = set(contributions)
    accounts: Accounts = None
    if isinstance(persons, range):
        accounts = persons  # found by the statement itself: a page has thousands
    elif persons is not None:
        found = await session.execute(select(col(MemberRow.id)).where(_persons_filter(persons)))
        accounts = [member for member in found.scalars() if member is not None]
    activity = await _account_activity(session, community_id, since, weights, contributed, accounts, zone)
    held = Counter(person for _, person, _, _ in activity)
    shared = {person for person, count in held.items() if count > 1}
    shared_days = (
        await _person_days(session, community_id, since, [m for m, p, _, _ in activity if p in shared], zone)
        if shared
        else {}
    )
    if last is None:  # (the nightly evaluation has read it with the page's seats)
        last = await last_active(session, community_id, persons)
    stats: dict[int, Stats] = {}
    summed: dict[int, dict[str, int]] = {}
    for _, person, counts, days in activity:
        if person in shared:
            into = summed.setdefault(person, {})
            for kind, count in counts.items():
                into[kind] = into.get(kind, 0) + count
        else:
            stats[person] = _stats(counts, days, last.get(person), weights, contributed)
    for person, counts in summed.items():
        counts = dict(sorted(counts.items()))
        stats[person] = _stats(counts, shared_days.get(person, 0), last.get(person), weights, contributed)
    for person, seen in last.items():
        if person not in stats:
            stats[person] = Stats(last_active=seen)
    return stats


def _stats(
    counts: dict[str, int],
    days: int,
    last: datetime | None,
    weights: Mapping[str, float],
    contributed: set[str],
) -> Stats:
    """A person's statistics from their rows per kind, which come in the kinds' order (a grouped query's:
    the score adds up the same) and become the score per kind (the same dict, for fewer objects)."""
    by_kind: dict[str, Any] = counts
    score = 0.0
    contributions = 0
    for kind, count in counts.items():
        value = weights.get(kind, 0.0) * count
        by_kind[kind] = value  # only the value changes: iterating on is safe
        score += value
        if kind in contributed:
            contributions += count
    return Stats(round(score, 3), contributions, days, last, by_kind)


COMMON_KINDS = ("message", "reaction")  # most rows: first in the CASE, so most rows need one comparison
UNNAMED, NAMED = "\x1e", "\x1f"  # around a kind with no letter (kinds are names: never these characters)


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def _account_activity(
    session: AsyncSession,
    community_id: int,
    since: datetime,
    weights: Mapping[str, float],
    contributed: set[str],
    accounts: Accounts,
    zone: str,
) -> list[Account]:
    """Each account's rows per kind and distinct days (in ``zone``) in the community since ``since`` (all
    accounts with activity there, or only ``accounts``)."""
    if accounts is not None and not accounts:
        return []
    if dialect_of(session) == "postgresql":
        return await _account_activity_postgresql(session, community_id, since, accounts, zone)
    known = {*weights, *contributed, *DEFAULT_WEIGHTS}
    return await _account_activity_sqlite(session, community_id, since, known, accounts, zone)


async def _account_activity_sqlite(
    session: AsyncSession,
    community_id: int,
    since: datetime,
    known: Iterable[str],
    accounts: Accounts,
    zone: str,
) -> list[Account]:
    """SQLite has no hash aggregation: grouping a big community's 30 days by account and kind would sort
    millions of rows. So the accounts are walked in order (CROSS JOIN keeps ``members`` the outer loop),
    each one's rows in the window read from the covering ``ix_activity_member_window``, and grouped by
    account without sorting: the kinds come back as one letter per row (counted here, which costs less
    than grouping them in SQL), the days as ``count(DISTINCT)``. A kind with no letter comes back whole,
    between separators. The letters and kinds are written into the statement (escaped): compared as
    literals they cost less per row than as parameters."""
    kinds_in_order = sorted(set(known))
    letters = [
        chr(0x21 + index) if index < 90 else chr(0x100 + index) for index in range(len(kinds_in_order))
    ]
    alphabet = list(zip(letters, kinds_in_order, strict=True))  # letters in the kinds' order
    letter_of = {kind: letter for letter, kind in alphabet}
    compared = [kind for kind in COMMON_KINDS if kind in letter_of]
    compared += [kind for kind in kinds_in_order if kind not in compared]
    cases = " ".join(f"WHEN {_sql_string(kind)} THEN {_sql_string(letter_of[kind])}" for kind in compared)
    by_frequency = [(letter_of[kind], kind) for kind in compared]
    unnamed_sql = f"char({ord(UNNAMED)}) || a.kind || char({ord(NAMED)})"
    params: dict[str, object] = {"community": community_id, "since": since}
    only = _accounts_condition("m.id", accounts, params)
    query = text(
        f"""
        SELECT m.id, m.person_id, group_concat(CASE a.kind {cases} ELSE {unnamed_sql} END, ''),
               count(DISTINCT {_day("sqlite", zone, since)})
        FROM members AS m CROSS JOIN activity_events AS a
        WHERE a.member_id = m.id AND a.community_id = :community AND a.at >= :since{only}
        GROUP BY m.id
        """
    ).bindparams(bindparam("since", type_=UTCDateTime()))
    if "accounts" in params:
        query = query.bindparams(bindparam("accounts", expanding=True))
    found: list[Account] = []
    for member, person, coded, days in (await session.execute(query, params)).all():
        if UNNAMED in coded:
            unnamed: dict[str, int] = {}
            coded, *rest = coded.split(UNNAMED)
            for part in rest:
                kind, _, more = part.partition(NAMED)
                unnamed[kind] = unnamed.get(kind, 0) + 1
                coded += more
            unnamed.update(_letters_counted(coded, by_frequency))
            kinds = dict(sorted(unnamed.items()))
        else:
            kinds = _letters_counted(coded, by_frequency)
            if len(kinds) > 1:
                kinds = dict(sorted(kinds.items()))
        found.append((member, person or member, kinds, days))
    return found


def _letters_counted(coded: str, by_frequency: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Rows per kind in an account's letters, the common kinds counted first: most accounts hold only those,
    and the counting stops when every letter is counted (a page's 5,000 accounts, a dozen kinds)."""
    counted: dict[str, int] = {}
    left = len(coded)
    for letter, kind in by_frequency:
        if count := coded.count(letter):
            counted[kind] = count
            left -= count
            if not left:
                break
    return counted


async def _account_activity_postgresql(
    session: AsyncSession, community_id: int, since: datetime, accounts: Accounts, zone: str
) -> list[Account]:
    """PostgreSQL groups with hash tables: one grouped query over the window's rows gives rows per account
    and kind, with the days as bits (``bit_or``, 63 days to a group) — a second grouping by account and
    day would cost as much again. The few linked accounts are mapped to their person here."""
    params: dict[str, object] = {"community": community_id, "since": since, "zone": zone}
    where = "a.community_id = :community AND a.at >= :since"
    where += _accounts_condition("a.member_id", accounts, params)
    if accounts is None:  # the whole community: let the hash table hold its groups (this transaction only)
        await session.execute(text("SET LOCAL work_mem = '64MB'"))
    query = text(
        f"""
        SELECT member_id, kind, count(*), day / 63, bit_or(CAST(1 AS bigint) << (day % 63))
        FROM (
            SELECT a.member_id, a.kind,
                   {_day("postgresql", zone, since)}
                   - date(CAST(:since AS timestamptz) AT TIME ZONE :zone) AS day
            FROM activity_events AS a WHERE {where}
        ) AS windowed
        GROUP BY member_id, kind, day / 63
        """
    ).bindparams(bindparam("since", type_=UTCDateTime()))
    if "accounts" in params:
        query = query.bindparams(bindparam("accounts", expanding=True))
    found: dict[int, dict[str, int]] = {}
    days: dict[tuple[int, int], int] = {}  # (account, group of 63 days) → the days as bits
    for member, kind, count, group, bits in (await session.execute(query, params)).all():
        kinds = found.get(member)
        if kinds is None:
            kinds = found[member] = {}
        kinds[kind] = kinds.get(kind, 0) + count  # a kind's rows may come in several groups of days
        key = (member, group)
        days[key] = days.get(key, 0) | bits
    active_days = dict.fromkeys(found, 0)
    for (member, _), bits in days.items():
        active_days[member] += bits.bit_count()
    members = table_of(MemberRow).c
    linked = await session.execute(
        select(members.id, members.person_id).where(
            members.person_id.is_not(None), members.id.in_(list(found)) if accounts is not None else true()
        )
    )
    person_of = dict(linked.all())
    return [
        (member, person_of.get(member, member), dict(sorted(kinds.items())), active_days[member])
        for member, kinds in found.items()
    ]


async def _person_days(
    session: AsyncSession, community_id: int, since: datetime, accounts: Sequence[int], zone: str
) -> dict[int, int]:
    """Distinct days (in ``zone``) with activity per person, over the given accounts together."""
    dialect = dialect_of(session)
    query = text(
        f"""
        SELECT coalesce(m.person_id, m.id), count(DISTINCT {_day(dialect, zone, since)})
        FROM members AS m JOIN activity_events AS a ON a.member_id = m.id
        WHERE m.id IN :accounts AND a.community_id = :community AND a.at >= :since
        GROUP BY coalesce(m.person_id, m.id)
        """
    ).bindparams(bindparam("since", type_=UTCDateTime()), bindparam("accounts", expanding=True))
    params = {"accounts": list(accounts), "community": community_id, "since": since}
    rows = await session.execute(query, {**params, "zone": zone} if dialect != "sqlite" else params)
    return {int(person): int(days) for person, days in rows}


async def last_active(
    session: AsyncSession, community_id: int, persons: Sequence[int] | None = None
) -> dict[int, datetime]:
    """When each person last did anything in the community (``memberships.last_seen``; activity in a sister
    community does not count here)."""
    if _many(persons):
        everyone = await last_active(session, community_id)
        return {person: everyone[person] for person in persons if person in everyone}
    members, memberships = table_of(MemberRow).c, table_of(Membership).c  # Core: no ORM bookkeeping
    person = func.coalesce(members.person_id, members.id)
    query = (
        select(person, _text(func.max(memberships.last_seen)))
        .select_from(table_of(Membership))
        .join(table_of(MemberRow), members.id == memberships.member_id)
        .where(memberships.community_id == community_id)
        .group_by(person)
    )
    if persons is not None:
        query = query.where(_memberships_of(persons))
    rows = (await session.execute(query)).all()
    read = _time_reader(session)
    try:
        return {int(who): at for who, seen in rows if (at := read(seen)) is not None}
    except ValueError:  # a time SQLAlchemy did not write
        return {int(who): at for who, seen in rows if (at := _aware(seen)) is not None}


async def person_pages(session: AsyncSession, size: int) -> list[range]:
    """The ids persons can have, in ranges of ``size``, for walking a whole community a page at a time: a
    page holds the seats and statistics of at most ``size`` persons, not everyone's (with 100,000
    members, everyone at once is ~40 MB, which the process keeps long after). A range is reached through
    the indexes on ``members.id`` and ``members.person_id``; asking for "the next ``size`` persons"
    instead would sort the community again for every page."""
    top = await session.scalar(select(func.max(table_of(MemberRow).c.id)))
    return [range(low, low + size) for low in range(1, (top or 0) + 1, size)]


async def persons_after(session: AsyncSession, community_id: int, after: int | None, limit: int) -> list[int]:
    """The next ``limit`` persons of the community now (not left, no bots) after the person ``after``, in
    order: a walk over a whole community page by page holds one page, not everyone (with 100,000 members,
    every seat at once is tens of MB, which the process keeps long after the walk)."""
    members, memberships = table_of(MemberRow).c, table_of(Membership).c
    person = func.coalesce(members.person_id, members.id)
    query = (
        select(person)
        .select_from(table_of(Membership))
        .join(table_of(MemberRow), members.id == memberships.member_id)
        .where(memberships.community_id == community_id, memberships.left_at.is_(None))
        .where(members.is_bot.is_(False))
        .distinct()
        .order_by(person)
        .limit(limit)
    )
    if after is not None:
        query = query.where(person > after)
    return [int(who) for who in (await session.execute(query)).scalars()]


async def seats(
    session: AsyncSession, community_id: int, persons: Sequence[int] | None = None
) -> dict[int, Seat]:
    """Every person in the community now (not left), with their memberships and level."""
    if _many(persons):
        everyone = await seats(session, community_id)
        return {person: everyone[person] for person in sorted(set(persons)) if person in everyone}
    members, memberships = table_of(MemberRow).c, table_of(Membership).c  # Core: no ORM bookkeeping
    person = func.coalesce(members.person_id, members.id)
    query = (
        select(
            person,
            memberships.member_id,
            memberships.level,
            _text(memberships.level_since),
            memberships.locked,
            _text(memberships.below_since),
            _text(memberships.joined_at),
        )
        .select_from(table_of(Membership))
        .join(table_of(MemberRow), members.id == memberships.member_id)
        .where(memberships.community_id == community_id, memberships.left_at.is_(None))
        .where(members.is_bot.is_(False))
        .order_by(person, memberships.member_id)
    )
    if persons is not None:
        query = query.where(_memberships_of(persons))
    rows = (await session.execute(query)).all()
    try:
        return _seats(rows, _time_reader(session))
    except ValueError:  # a time SQLAlchemy did not write
        return _seats(rows, _aware)


_PAGE_MEMBERSHIPS = """
    SELECT coalesce(m.person_id, m.id), ms.member_id, ms.level, ms.level_since, ms.locked, ms.below_since,
           ms.joined_at, CASE WHEN ms.left_at IS NULL AND NOT m.is_bot THEN 1 ELSE 0 END, ms.last_seen
    FROM memberships AS ms JOIN members AS m ON m.id = ms.member_id
    WHERE ms.community_id = :community AND ms.member_id BETWEEN :low AND :high
      AND coalesce(m.person_id, m.id) BETWEEN :low AND :high
    UNION ALL
    SELECT m.person_id, ms.member_id, ms.level, ms.level_since, ms.locked, ms.below_since,
           ms.joined_at, CASE WHEN ms.left_at IS NULL AND NOT m.is_bot THEN 1 ELSE 0 END, ms.last_seen
    FROM members AS m {join} memberships AS ms ON ms.community_id = :community AND ms.member_id = m.id
    WHERE m.person_id BETWEEN :low AND :high AND m.id NOT BETWEEN :low AND :high
    ORDER BY 1, 2
"""
"""A page's memberships, each with whether it is a seat (not left, no bot) and when its account was last
seen in the community: the accounts of persons without links are a range of the memberships' key, read in
order, and the few linked ones are found by ``members.person_id`` — rather than every account looked up
one by one. (On SQLite, ``CROSS JOIN`` keeps ``members`` the outer loop; PostgreSQL has no
``CROSS JOIN … ON``.)"""


async def page_seats(
    session: AsyncSession, community_id: int, page: range
) -> tuple[dict[int, Seat], dict[int, datetime]]:
    """:func:`seats` and :func:`last_active` of a page of persons (see :func:`person_pages`) in one
    statement: the nightly evaluation reads both for every page, and both walk the same memberships."""
    join = "JOIN" if dialect_of(session) == "postgresql" else "CROSS JOIN"
    rows = (
        await session.execute(
            text(_PAGE_MEMBERSHIPS.format(join=join)),
            {"community": community_id, "low": page.start, "high": page.stop - 1},
        )
    ).all()
    try:
        return _page_seats(rows, _time_reader(session))
    except ValueError:  # a time SQLAlchemy did not write
        return _page_seats(rows, _aware)


def _page_seats(
    rows: Sequence[Any], aware: Callable[[Any], datetime | None]
) -> tuple[dict[int, Seat], dict[int, datetime]]:
    last: dict[int, datetime] = {}
    for who, *_, seen in rows:
        if seen is not None and ((at := aware(seen)) is not None) and (who not in last or at > last[who]):
            last[who] = at
    return _seats([row[:7] for row in rows if row[7]], aware), last


def _seats(rows: Sequence[Any], aware: Callable[[Any], datetime | None]) -> dict[int, Seat]:
    found: dict[int, Seat] = {}
    for who, member_id, level, since, locked, below, joined in rows:
        seat = found.get(who)
        joined_at = aware(joined)
        assert joined_at is not None  # memberships.joined_at is NOT NULL
        if seat is None:
            found[who] = Seat(who, (member_id,), level, aware(since), bool(locked), aware(below), joined_at)
        else:  # linked accounts: the most central level and the earliest dates speak for the person
            since, below = aware(since), aware(below)
            found[who] = Seat(
                who,
                (*seat.member_ids, member_id),
                min(seat.level, level, key=_centrality),
                min((d for d in (seat.level_since, since) if d), default=None),
                seat.locked or bool(locked),
                seat.below_since or below,
                min(seat.joined_at, joined_at),
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
    one UPDATE per new level (and 5,000 accounts) and one executemany INSERT, whatever the number of moves."""
    if not moves:
        return
    by_level: dict[str, list[int]] = {}
    for seat, new, _, _, _ in moves:
        by_level.setdefault(new, []).extend(seat.member_ids)
    for level, member_ids in by_level.items():
        await _update_memberships(
            session, community_id, member_ids, level=level, level_since=at, below_since=None
        )
    await session.execute(
        insert(table_of(LevelChange)),
        [
            {
                "community_id": community_id,
                "member_id": seat.member_ids[0],
                "old_level": seat.level,
                "new_level": new,
                "actor_id": actor,
                "rule": rule[:300],
                "reason": reason,
                "at": at,
            }
            for seat, new, rule, actor, reason in moves
        ],
    )


async def set_below_since(
    session: AsyncSession, community_id: int, changes: Sequence[tuple[Seat, datetime | None]]
) -> None:
    """Remember (or forget) since when people are below their level's keep thresholds — one UPDATE per
    distinct time (in the nightly run: now, or none)."""
    by_time: dict[datetime | None, list[int]] = {}
    for seat, below in changes:
        by_time.setdefault(below, []).extend(seat.member_ids)
    for below, member_ids in by_time.items():
        await _update_memberships(session, community_id, member_ids, below_since=below)


UPDATE_CHUNK = 5000  # accounts per UPDATE … IN (…): well within SQLite's limit on parameters


async def _update_memberships(
    session: AsyncSession, community_id: int, member_ids: Sequence[int], **values: object
) -> None:
    """Set the same values on these accounts' memberships (a Core statement: no ORM bookkeeping)."""
    table = table_of(Membership).c
    ordered = sorted(member_ids)  # the primary key's order: each page visited once
    for start in range(0, len(ordered), UPDATE_CHUNK):
        await session.execute(
            update(table_of(Membership))
            .where(
                table.community_id == community_id, table.member_id.in_(ordered[start : start + UPDATE_CHUNK])
            )
            .values(**values)
        )


async def person_of(session: AsyncSession, member_id: int) -> int:
    row = await session.get(MemberRow, member_id)
    return (row.person_id or row.id or member_id) if row is not None else member_id


async def accounts_of(session: AsyncSession, person_id: int) -> list[MemberRow]:
    rows = await session.execute(
        select(MemberRow).where(_persons_filter([person_id])).order_by(col(MemberRow.id))
    )
    return list(rows.scalars())


async def history(
    session: AsyncSession, community_id: int, member_ids: Sequence[int], limit: int = 15
) -> list[LevelChange]:
    rows = await session.execute(
        select(LevelChange)
        .where(
            col(LevelChange.community_id) == community_id, col(LevelChange.member_id).in_(list(member_ids))
        )
        .order_by(col(LevelChange.at).desc(), col(LevelChange.id).desc())
        .limit(limit)
    )
    return list(rows.scalars())


async def members_of_seats(session: AsyncSession, seats: Sequence[Seat]) -> dict[int, list[MemberRow]]:
    """The account rows behind each seat, by person (to mirror a level on every platform they use)."""
    ids = sorted({member_id for seat in seats for member_id in seat.member_ids})
    if not ids:
        return {}
    rows = await session.execute(select(MemberRow).where(col(MemberRow.id).in_(ids)))
    by_id = {row.id: row for row in rows.scalars()}
    return {seat.person_id: [by_id[m] for m in seat.member_ids if m in by_id] for seat in seats}


async def untracked_persons(session: AsyncSession) -> set[int]:
    """Persons with an account that turned tracking off (``profile set tracking off``): few, read at once."""
    rows = await session.execute(
        select(func.coalesce(col(MemberRow.person_id), col(MemberRow.id))).where(
            col(MemberRow.tracking).is_(False)
        )
    )
    return set(rows.scalars())
