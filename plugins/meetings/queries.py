"""The meetings plugin's queries: a meeting with its times, answers per occurrence, what is coming up."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Select, Table, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement
from sqlmodel import col

from bot.tables import MemberRow, table_of
from plugins.meetings.models import (
    SERIES,
    Attendance,
    Meeting,
    MeetingChange,
    Rsvp,
    occurrence_key,
    occurrence_time,
)
from plugins.meetings.recurrence import (
    Occurrence,
    Series,
    occurrences_between,
    remembered_between,
    series_key,
)
from plugins.meetings.rsvp import Answer, Roster, roster


def series_of(meeting: Meeting | Any, changes: Sequence[MeetingChange | Any]) -> Series:
    """A meeting's times (from its ORM object or a plain row of the meetings table, and its changes')."""
    cancelled: frozenset[datetime] = frozenset()
    moves: dict[datetime, datetime] = {}
    if changes:  # most series have none
        cancelled = frozenset(occurrence_time(c.occurrence) for c in changes if c.cancelled)
        moves = {
            occurrence_time(c.occurrence): c.moved_to
            for c in changes
            if c.moved_to is not None and not c.cancelled
        }
    return Series(
        start=meeting.starts_at,
        tz=meeting.tz,
        rule=meeting.rule,
        until=meeting.until_at,
        count=meeting.count,
        cancelled=cancelled,
        moves=moves,
    )


def unchanged_key(meeting: Meeting | Any) -> tuple[object, ...]:
    """The :meth:`Series.key` of a meeting none of whose occurrences was moved or cancelled, read off its
    row without building the Series."""
    return series_key(meeting.starts_at, meeting.tz, meeting.rule, meeting.until_at, meeting.count)


MeetingIds = Sequence[int] | Select[Any]
"""Meetings by their ids, or a subquery of their ids: a list over a thousand series binds none of them."""


async def changes_of(session: AsyncSession, meeting_ids: MeetingIds) -> dict[int, list[Any]]:
    """Each meeting's moved and cancelled occurrences, as plain rows (read here, never changed)."""
    return await _rows_by_meeting(session, table_of(MeetingChange), meeting_ids)


async def _rows_by_meeting(
    session: AsyncSession, table: Table, meeting_ids: MeetingIds
) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = defaultdict(list)
    if isinstance(meeting_ids, Sequence) and not meeting_ids:
        return found
    for row in await session.execute(select(table).where(table.c.meeting_id.in_(meeting_ids))):
        found[row.meeting_id].append(row)
    return found


async def series(session: AsyncSession, meeting: Meeting) -> Series:
    assert meeting.id is not None
    return series_of(meeting, (await changes_of(session, [meeting.id]))[meeting.id])


async def change(session: AsyncSession, meeting_id: int, original: datetime) -> MeetingChange:
    """The stored change of one occurrence, created empty if there is none yet."""
    key = occurrence_key(original)
    row = await session.get(MeetingChange, (meeting_id, key))
    if row is None:
        row = MeetingChange(meeting_id=meeting_id, occurrence=key)
        session.add(row)
    return row


async def cancelled_moves(session: AsyncSession, meeting_id: int) -> list[datetime]:
    """Where the meeting's occurrences that were moved and then cancelled had been moved to (a Series
    knows them by their original start only)."""
    rows = await session.scalars(
        select(col(MeetingChange.moved_to)).where(
            col(MeetingChange.meeting_id) == meeting_id,
            col(MeetingChange.cancelled),
            col(MeetingChange.moved_to).is_not(None),
        )
    )
    return [moved for moved in rows if moved is not None]


async def answers(session: AsyncSession, meeting_ids: MeetingIds) -> dict[int, list[Any]]:
    """The answers given for each meeting's occurrences and series, as plain rows, each with the person
    who gave it (``person``: linked accounts are one person, who comes or not once)."""
    found: dict[int, list[Any]] = defaultdict(list)
    if isinstance(meeting_ids, Sequence) and not meeting_ids:
        return found
    rsvps, members = table_of(Rsvp), table_of(MemberRow)
    query = (
        select(rsvps, func.coalesce(members.c.person_id, members.c.id).label("person"))
        .join(members, members.c.id == rsvps.c.member_id)
        .where(rsvps.c.meeting_id.in_(meeting_ids))
    )
    for row in await session.execute(query):
        found[row.meeting_id].append(row)
    return found


def roster_for(rows: Iterable[Rsvp | Any], occurrence: Occurrence, cap: int | None) -> Roster:
    """Who answered what for one occurrence: their answer for it, else their answer for the series — if
    they gave it before the occurrence began (yes to every meeting from now on says nothing of last week's,
    whose record attendance and notes read)."""
    key = occurrence_key(occurrence.original)
    return roster(
        (
            Answer(
                row.member_id,
                row.answer,
                row.at,
                for_series=row.occurrence == SERIES,
                person=getattr(row, "person", None),
            )
            for row in rows
            if row.occurrence == key or (row.occurrence == SERIES and row.at <= occurrence.start)
        ),
        cap,
    )


async def occurrence_roster(session: AsyncSession, meeting: Meeting, occurrence: Occurrence) -> Roster:
    assert meeting.id is not None
    return roster_for((await answers(session, [meeting.id]))[meeting.id], occurrence, meeting.cap)


async def drop_answer(session: AsyncSession, meeting_id: int, key: str, member_id: int) -> None:
    """A member's answer for one occurrence, withdrawn (their answer for the series, if any, holds again)."""
    row = await session.get(Rsvp, (meeting_id, key, member_id))
    if row is not None:
        await session.delete(row)
        await session.flush()


async def set_answer(
    session: AsyncSession,
    meeting_id: int,
    key: str,
    member_id: int,
    answer: str,
    at: datetime,
    *,
    times: Series | None = None,
) -> None:
    """A member's answer for one occurrence, or for the series (which overrides their single answers that
    say otherwise, for the meetings still to come).

    Answers for meetings that have started (at ``at``; ``moves``: the series' moved ones) stay as they
    were: what was said for last week's meeting is its record — who attendance ``--all-yes`` confirms, who
    may add its notes, who waited for a place and did not come — and "no to every meeting from now on"
    must not rewrite it.

    An answer's time is its place in a cap's queue, so only a changed answer goes to the back. Saying again
    what one has said — yes for the series again, yes for the next meeting after yes for the series, or
    for the series after yes for the next meeting, a ✅ on the announcement — keeps the place: a
    confirmation must never hand one's place to the first one waiting. And a series answer that changes
    one's answer for a meeting (yes for the series after no for the next meeting) is, for that meeting, a
    changed answer: it goes to the back of that meeting's queue, behind whoever took the place meanwhile.

    A series answer speaks for the meetings that begin after it was given (``roster_for``); when it
    changes, the meetings held under the old one keep it, as answers of their own."""
    moves = times.moves if times is not None else {}
    mine = {
        row.occurrence: row
        for row in await session.scalars(
            select(Rsvp).where(col(Rsvp.meeting_id) == meeting_id, col(Rsvp.member_id) == member_id)
        )
    }
    if key == SERIES:
        for occurrence, single in mine.items():
            if occurrence == SERIES or single.answer == answer:
                continue
            original = occurrence_time(occurrence)
            if moves.get(original, original) > at:
                single.answer, single.at = answer, at  # changed for that meeting: to the back of its queue
        before = mine.get(SERIES)
        if before is not None and before.answer != answer and times is not None:
            for held in times.occurrences(before.at, at):  # their record: the answer they had
                if occurrence_key(held.original) not in mine:
                    session.add(
                        Rsvp(
                            meeting_id=meeting_id,
                            occurrence=occurrence_key(held.original),
                            member_id=member_id,
                            answer=before.answer,
                            at=before.at,
                        )
                    )
    row = mine.get(key)
    if row is None:
        series = mine.get(SERIES)
        since = series.at if series is not None and series.answer == answer else at
        session.add(Rsvp(meeting_id=meeting_id, occurrence=key, member_id=member_id, answer=answer, at=since))
    elif row.answer != answer:
        row.answer, row.at = answer, at  # a changed answer goes to the back of the queue
    await session.flush()


async def move_answers(session: AsyncSession, meeting_id: int, old: str, new: str) -> None:
    """The answers for one occurrence follow it to a new key (a one-off meeting moved: its key is its
    start), in the order they were given."""
    if old != new:
        await session.execute(
            update(Rsvp)
            .where(col(Rsvp.meeting_id) == meeting_id, col(Rsvp.occurrence) == old)
            .values(occurrence=new)
            .execution_options(synchronize_session=False)
        )


async def active(session: AsyncSession, community_id: int | None) -> list[Meeting]:
    """The community's meetings that are not cancelled (all communities when None)."""
    query = select(Meeting).where(col(Meeting.cancelled_at).is_(None))
    if community_id is not None:
        query = query.where(col(Meeting.community_id) == community_id)
    return list((await session.execute(query.order_by(col(Meeting.id)))).scalars())


@dataclass(frozen=True)
class Upcoming:
    meeting: Meeting
    occurrence: Occurrence
    roster: Roster


async def upcoming(
    session: AsyncSession,
    community_id: int | None,
    start: datetime,
    end: datetime,
    *,
    limit: int | None = None,
) -> tuple[list[Upcoming], int]:
    """The first ``limit`` occurrences of the community's meetings in ``[start, end)`` in time order, with
    their answers, and how many there are in all.

    Of a thousand series only the columns that make their times are read (as plain rows: ORM objects
    cost more than the dates); the whole row and the answers are read only for what is shown."""
    table = table_of(Meeting)
    chosen: ColumnElement[bool] = table.c.cancelled_at.is_(None)
    if community_id is not None:
        chosen = and_(chosen, table.c.community_id == community_id)
    times = select(*(table.c[name] for name in TIMES)).where(chosen)
    meetings: list[Any] = list(await session.execute(times))
    changes = await changes_of(session, select(table.c.id).where(chosen)) if meetings else {}
    # Compared as tuples: start, meeting, original start (distinct within a series, so the occurrences
    # after them are never compared).
    found: list[tuple[datetime, int, datetime, Occurrence]] = []
    for meeting in meetings:
        changed = changes.get(meeting.id, ())
        if changed:
            occurrences = occurrences_between(series_of(meeting, changed), start, end)
        else:  # most series: the Series is built only if its window is not remembered
            occurrences = remembered_between(
                unchanged_key(meeting), partial(series_of, meeting, ()), start, end
            )
        found += [
            (occurrence.start, meeting.id, occurrence.original, occurrence) for occurrence in occurrences
        ]
    shown = sorted(found) if limit is None else heapq.nsmallest(limit, found)
    ids = sorted({meeting_id for _, meeting_id, _, _ in shown})
    rows: dict[int, Any] = {}
    if ids:
        rows = {row.id: row for row in await session.execute(select(table).where(table.c.id.in_(ids)))}
    replies = await answers(session, ids)
    return [
        Upcoming(
            rows[meeting_id], occurrence, roster_for(replies[meeting_id], occurrence, rows[meeting_id].cap)
        )
        for _, meeting_id, _, occurrence in shown
    ], len(found)


TIMES = ("id", "starts_at", "tz", "rule", "until_at", "count")
"""The columns of a meeting its occurrences are made of (:func:`series_of`)."""


async def members_by_id(session: AsyncSession, member_ids: Iterable[int]) -> dict[int, MemberRow]:
    wanted = sorted(set(member_ids))
    if not wanted:
        return {}
    rows = await session.execute(select(MemberRow).where(col(MemberRow.id).in_(wanted)))
    return {row.id: row for row in rows.scalars() if row.id is not None}


async def attended(session: AsyncSession, meeting_id: int, key: str) -> set[int]:
    rows = await session.execute(
        select(col(Attendance.member_id)).where(
            col(Attendance.meeting_id) == meeting_id, col(Attendance.occurrence) == key
        )
    )
    return set(rows.scalars())
