"""The roles plugin's tables: every level change, and the one-time codes that join two accounts.

The level itself lives on the core ``memberships`` row (with ``level_since``, ``locked`` and
``below_since``), since every plugin reads it; this plugin is the only one that writes it after the
welcome.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field

from bot.db import UTCDateTime
from bot.tables import TableModel


def _utc(*, nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


class LevelChange(TableModel, table=True):
    """Who moved whom from where to where, when, and why — a moderator, or the rule that fired."""

    __tablename__ = "roles_history"
    __table_args__ = (Index("ix_roles_history_member", "community_id", "member_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id")
    member_id: int = Field(foreign_key="members.id")
    old_level: str = Field(max_length=16)
    new_level: str = Field(max_length=16)
    actor_id: int | None = Field(default=None, foreign_key="members.id")  # None: a rule
    rule: str = Field(default="", max_length=300)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    at: datetime = Field(sa_column=_utc())


class LinkCode(TableModel, table=True):
    """A one-time code: typed by the same person on their other account, it joins the two."""

    __tablename__ = "roles_link_codes"

    code: str = Field(primary_key=True, max_length=16)
    member_id: int = Field(foreign_key="members.id")
    expires_at: datetime = Field(sa_column=_utc())
