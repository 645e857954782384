"""What the meetings plugin stores about a person (meetings they planned, their answers, confirmed
attendance, notes they wrote, how many attendances they confirmed as a moderator), for ``profile export``,
and forgetting it.

Forgotten, answers for meetings still to come (and for whole series) are deleted — nobody would be reminded
or mentioned in their place, and a waiting list moves up; answers for past meetings and confirmed
attendance stay, as "a former member", so the community's figures for those meetings are unchanged. Meetings
they planned and notes they wrote are the community's record and stay too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.privacy import FORMER, iso, rows_changed
from plugins.meetings.models import (
    SERIES,
    Attendance,
    Meeting,
    MeetingChange,
    MeetingNote,
    Rsvp,
    occurrence_key,
)


def _occurrence(key: str) -> str:
    return "every occurrence (the series)" if key == SERIES else key


async def personal_data(session: AsyncSession, member_ids: Sequence[int]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    planned = list(
        (
            await session.execute(
                select(Meeting).where(col(Meeting.creator_id).in_(member_ids)).order_by(col(Meeting.id))
            )
        ).scalars()
    )
    if planned:
        found["meetings_planned"] = [
            {
                "meeting": meeting.id,
                "title": meeting.title,
                "place": meeting.place,
                "starts_at": iso(meeting.starts_at),
                "repeats": meeting.rule or "no",
                "cancelled": meeting.cancelled_at is not None,
            }
            for meeting in planned
        ]
    answers = (
        await session.execute(
            select(Rsvp, col(Meeting.title))
            .join(Meeting, col(Meeting.id) == col(Rsvp.meeting_id))
            .where(col(Rsvp.member_id).in_(member_ids))
            .order_by(col(Rsvp.meeting_id), col(Rsvp.occurrence))
        )
    ).all()
    if answers:
        found["answers"] = [
            {
                "meeting": rsvp.meeting_id,
                "title": title,
                "for": _occurrence(rsvp.occurrence),
                "answer": rsvp.answer,
                "at": iso(rsvp.at),
            }
            for rsvp, title in answers
        ]
    attended = (
        await session.execute(
            select(Attendance, col(Meeting.title))
            .join(Meeting, col(Meeting.id) == col(Attendance.meeting_id))
            .where(col(Attendance.member_id).in_(member_ids))
            .order_by(col(Attendance.meeting_id), col(Attendance.occurrence))
        )
    ).all()
    if attended:
        found["attended"] = [
            {
                "meeting": row.meeting_id,
                "title": title,
                "occurrence": row.occurrence,
                "confirmed_at": iso(row.at),
            }
            for row, title in attended
        ]
    confirmed = await _count(session, Attendance, col(Attendance.confirmed_by), member_ids)
    if confirmed:  # others' attendance, so only how many: theirs is in their own export
        found["attendance_you_confirmed_as_moderator"] = confirmed
    notes = list(
        (
            await session.execute(
                select(MeetingNote)
                .where(col(MeetingNote.author_id).in_(member_ids))
                .order_by(col(MeetingNote.id))
            )
        ).scalars()
    )
    if notes:
        found["notes_written"] = [
            {
                "meeting": note.meeting_id,
                "occurrence": note.occurrence,
                "text": note.text,
                "written_at": iso(note.created_at),
            }
            for note in notes
        ]
    return found


async def forget(session: AsyncSession, member_ids: Sequence[int], now: datetime) -> list[str]:
    said: list[str] = []
    # A moved meeting is still to come or past by when it is held, not by the start that names it: an
    # answer kept for a meeting moved into the days to come would list a former member there, and one
    # deleted for a meeting moved to a time that has passed would take her out of its record.
    moved = and_(
        col(MeetingChange.meeting_id) == col(Rsvp.meeting_id),
        col(MeetingChange.occurrence) == col(Rsvp.occurrence),
        col(MeetingChange.moved_to).is_not(None),
        col(MeetingChange.cancelled).is_(False),
    )
    upcoming = await rows_changed(
        session,
        delete(Rsvp).where(
            col(Rsvp.member_id).in_(member_ids),
            or_(
                col(Rsvp.occurrence) == SERIES,
                and_(col(Rsvp.occurrence) >= occurrence_key(now), ~exists().where(moved)),
                exists().where(moved, col(MeetingChange.moved_to) >= now),
            ),
        ),
    )
    if upcoming:
        said.append(
            f"{upcoming} answer{'s' if upcoming != 1 else ''} you gave for meetings still to come (or whole "
            "series) deleted: you will not be reminded or listed."
        )
    past = await _count(session, Rsvp, col(Rsvp.member_id), member_ids)
    attended = await _count(session, Attendance, col(Attendance.member_id), member_ids)
    if past or attended:
        kept = []
        if past:
            kept.append(f"{past} answer{'s' if past != 1 else ''} for past meetings")
        if attended:
            kept.append(f"{attended} confirmed attendance{'s' if attended != 1 else ''}")
        said.append(f"{' and '.join(kept)} kept for the community's figures, as '{FORMER}'.")
    planned = await _count(session, Meeting, col(Meeting.creator_id), member_ids)
    if planned:
        plural = "s" if planned != 1 else ""
        said.append(f"{planned} meeting{plural} you planned kept, planned by '{FORMER}'.")
    notes = await _count(session, MeetingNote, col(MeetingNote.author_id), member_ids)
    if notes:
        said.append(
            f"{notes} meeting note{'s' if notes != 1 else ''} you wrote kept as the meetings' record, "
            f"written by '{FORMER}'."
        )
    return said


async def _count(session: AsyncSession, table: Any, column: Any, member_ids: Sequence[int]) -> int:
    return int(
        await session.scalar(select(func.count()).select_from(table).where(column.in_(member_ids))) or 0
    )
