"""The meetings plugin's tables. Times are UTC; a meeting's own zone says how its rule repeats.

Occurrences are not stored: they follow from the rule (see recurrence.py). What is stored per occurrence —
a cancellation or a move, RSVPs, attendance, notes — is keyed by the occurrence's *original* start, and a
whole-series RSVP by the key ``SERIES``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field

from bot.db import UTCDateTime
from bot.tables import TableModel

SERIES = "*"


def _utc(*, nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


def occurrence_key(original: datetime) -> str:
    """The stored name of an occurrence: its original start, as UTC ISO text (sorts in time order)."""
    return original.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def occurrence_time(key: str) -> datetime:
    return datetime.strptime(key, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


class Meeting(TableModel, table=True):
    __tablename__ = "meetings"
    __table_args__ = (Index("ix_meetings_announcement", "platform", "announcement_id"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int | None = Field(default=None, foreign_key="communities.id", index=True)
    platform: str = Field(max_length=32)
    room_id: str = Field(max_length=255)
    title: str = Field(max_length=200)
    place: str = Field(default="", max_length=500)
    tz: str = Field(max_length=64)
    starts_at: datetime = Field(sa_column=_utc())  # the first occurrence
    duration_minutes: int = 60
    rule: str | None = Field(default=None, max_length=500)  # RRULE without DTSTART/UNTIL/COUNT
    until_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    count: int | None = None
    cap: int | None = None
    creator_id: int = Field(foreign_key="members.id")
    created_at: datetime = Field(sa_column=_utc())
    updated_at: datetime = Field(sa_column=_utc())
    sequence: int = 0  # bumped on every change the calendar feed shows
    cancelled_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    announcement_id: str = Field(default="", max_length=255)
    platform_event_id: str = Field(default="", max_length=255)  # the mirrored Discord scheduled event
    platform_event_for: str = Field(default="", max_length=32)  # which occurrence it shows now
    reminded_through: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    """The due time of the last reminder handled: the next is planned after it, also after a restart."""


class MeetingChange(TableModel, table=True):
    """One occurrence of a series cancelled, or moved to ``moved_to``."""

    __tablename__ = "meetings_changes"

    meeting_id: int = Field(foreign_key="meetings.id", primary_key=True)
    occurrence: str = Field(primary_key=True, max_length=32)
    cancelled: bool = False
    moved_to: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class Rsvp(TableModel, table=True):
    """A member's answer for one occurrence, or (``occurrence`` = SERIES) for every occurrence.

    ``at`` orders the yes answers when the meeting has a cap: the first ``cap`` are in, the rest wait.
    """

    __tablename__ = "meetings_rsvps"

    meeting_id: int = Field(foreign_key="meetings.id", primary_key=True)
    occurrence: str = Field(primary_key=True, max_length=32)
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    answer: str = Field(max_length=8)  # yes, no, maybe
    at: datetime = Field(sa_column=_utc())


class Attendance(TableModel, table=True):
    """A moderator confirmed that the member was there."""

    __tablename__ = "meetings_attendance"

    meeting_id: int = Field(foreign_key="meetings.id", primary_key=True)
    occurrence: str = Field(primary_key=True, max_length=32)
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    confirmed_by: int = Field(foreign_key="members.id")
    at: datetime = Field(sa_column=_utc())


class MeetingNote(TableModel, table=True):
    """Minutes of an occurrence, as plain records the repertoire can reference."""

    __tablename__ = "meetings_notes"

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    occurrence: str = Field(max_length=32)
    author_id: int = Field(foreign_key="members.id")
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=_utc())
    updated_at: datetime = Field(sa_column=_utc())
