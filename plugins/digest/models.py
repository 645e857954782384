"""A posted digest: one row per community and period — the record that it was posted (so it never is
twice) and the text the Atom feed serves."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field

from bot.db import UTCDateTime
from bot.tables import TableModel


def _utc(*, nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


class DigestPost(TableModel, table=True):
    __tablename__ = "digest_posts"
    __table_args__ = (UniqueConstraint("community_id", "period_end", name="uq_digest_period"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id")
    period_start: datetime = Field(sa_column=_utc())
    period_end: datetime = Field(sa_column=_utc())
    posted_at: datetime = Field(sa_column=_utc())
    title: str = Field(max_length=300)
    # plain text, as the web shows it (DigestSection.web_lines: only members who chose to be named there)
    text: str = Field(sa_column=Column(Text, nullable=False))
    html: str = Field(sa_column=Column(Text, nullable=False))  # escaped HTML, for the Atom feed
    quiet: bool = False
