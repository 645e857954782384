"""The value plugin's tables: stories members tell, the conversations that ask for them, the rounds run."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field

from bot.db import UTCDateTime
from bot.tables import TableModel

MAX_STORY = 2000


def _utc(*, nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


class Story(TableModel, table=True):
    """A member's value-creation story: what they took from the community and what it changed.

    ``cycle`` is the member's own pick (immediate … reframing), None until they chose; ``public`` is the
    author's consent to show the story (their name is shown only if their member row is public too);
    ``source`` is ``prompt`` (asked in a round) or ``unprompted`` (``value story``).
    """

    __tablename__ = "value_stories"
    __table_args__ = (Index("ix_value_stories_community_at", "community_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id")
    author_id: int = Field(foreign_key="members.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    cycle: str | None = Field(default=None, max_length=16)
    public: bool = False
    source: str = Field(max_length=16)
    created_at: datetime = Field(sa_column=_utc())


class Prompt(TableModel, table=True):
    """One conversation in a direct message asking for (or about) a story: which question is next.

    ``step``: 0 the story itself, 1 which cycle fits, 2 whether it may be shown. Ended conversations are
    kept (``ended_at``, ``outcome``): they are the record that the member was asked in a period.
    """

    __tablename__ = "value_prompts"
    __table_args__ = (
        Index("ix_value_prompts_member_open", "member_id", "ended_at"),
        Index("ix_value_prompts_community_asked", "community_id", "asked_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id")
    member_id: int = Field(foreign_key="members.id")
    story_id: int | None = Field(default=None, foreign_key="value_stories.id")
    step: int = 0
    asked_at: datetime = Field(sa_column=_utc())
    expires_at: datetime = Field(sa_column=_utc())
    ended_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    outcome: str = Field(default="", max_length=16)
    """done, stopped, skipped, opted_out, expired, replaced; unreachable: a question the platform refused
    to deliver by direct message (the conversation ends, what was said is kept)."""


class Round(TableModel, table=True):
    """A scheduled round of prompts for one community and period: run once, even across restarts."""

    __tablename__ = "value_rounds"
    __table_args__ = (UniqueConstraint("community_id", "period_end", name="uq_value_round"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id")
    period_start: datetime = Field(sa_column=_utc())
    period_end: datetime = Field(sa_column=_utc())
    ran_at: datetime = Field(sa_column=_utc())
    asked: int = 0
