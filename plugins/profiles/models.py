"""The profiles plugin's tables: profiles, onboarding conversations, introductions made."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field

from bot.db import UTCDateTime
from bot.tables import TableModel


def _utc(*, nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


class Profile(TableModel, table=True):
    """What a member tells the community about themselves. Tags are stored comma-separated, normalised."""

    __tablename__ = "profiles"

    member_id: int = Field(foreign_key="members.id", primary_key=True)
    org: str = Field(default="", max_length=200)
    org_type: str | None = Field(default=None, max_length=32)
    country: str | None = Field(default=None, max_length=2)
    expertise: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    interests: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    intros: bool = False
    updated_at: datetime = Field(sa_column=_utc())


class Onboarding(TableModel, table=True):
    """A newcomer's onboarding conversation in a direct message: which question is next."""

    __tablename__ = "profiles_onboarding"

    member_id: int = Field(foreign_key="members.id", primary_key=True)
    community_id: int | None = Field(default=None, foreign_key="communities.id")
    step: int = 0
    started_at: datetime = Field(sa_column=_utc())
    expires_at: datetime = Field(sa_column=_utc())


class Introduction(TableModel, table=True):
    """Two members copbot introduced (by `match` or in an intro round), so no pair is repeated blindly."""

    __tablename__ = "profiles_introductions"
    __table_args__ = (Index("ix_profiles_introductions_pair", "member_a", "member_b"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int | None = Field(default=None, foreign_key="communities.id")
    member_a: int = Field(foreign_key="members.id")
    member_b: int = Field(foreign_key="members.id")
    kind: str = Field(max_length=16)
    round: int | None = None
    at: datetime = Field(sa_column=_utc())
