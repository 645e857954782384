"""The polls plugin's tables. Anonymous polls keep only who voted and the counts, never who chose what."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field

from bot.db import UTCDateTime
from bot.tables import TableModel


def _utc(*, nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


class Poll(TableModel, table=True):
    __tablename__ = "polls"
    __table_args__ = (Index("ix_polls_message", "platform", "message_id"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int | None = Field(default=None, foreign_key="communities.id", index=True)
    platform: str = Field(max_length=32)
    room_id: str = Field(max_length=255)
    message_id: str = Field(default="", max_length=255)
    question: str = Field(max_length=300)
    options: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of strings
    multi: bool = False
    anonymous: bool = False
    creator_id: int = Field(foreign_key="members.id")
    created_at: datetime = Field(sa_column=_utc())
    closes_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class PollVote(TableModel, table=True):
    """A member's current choice in an open (not anonymous) poll; ``at`` orders native responses."""

    __tablename__ = "polls_votes"

    poll_id: int = Field(foreign_key="polls.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    choices: str = Field(max_length=100)  # comma-separated 0-based indexes
    at: datetime = Field(sa_column=_utc())


class PollVoter(TableModel, table=True):
    """That a member voted in an anonymous poll — not what they chose."""

    __tablename__ = "polls_voters"

    poll_id: int = Field(foreign_key="polls.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True)


class PollCount(TableModel, table=True):
    """An anonymous poll's running count per option."""

    __tablename__ = "polls_counts"

    poll_id: int = Field(foreign_key="polls.id", primary_key=True)
    option: int = Field(primary_key=True)
    count: int = 0


class PollForgottenVoter(TableModel, table=True):
    """That an account of someone who asked to be forgotten voted in an anonymous poll still open: a keyed
    one-way mark of the poll and the account (see plugins/polls/privacy.py), never their name or id. Their
    choice was never stored, so their vote cannot be withdrawn: the mark refuses a second vote from the
    same account, back as a new member, until the poll closes, when the marks are deleted."""

    __tablename__ = "polls_forgotten_voters"

    poll_id: int = Field(foreign_key="polls.id", primary_key=True)
    marker: str = Field(max_length=64, primary_key=True)
