"""A posted digest: one row per community and period — the record that it was posted (so it never is
twice) and the text the Atom feed serves — and the entries of that text that name a member or show an item
(so that forgetting and hiding a name change them where they were written)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
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


class DigestEntryRow(TableModel, table=True):
    """A line of a posted digest's web copy that names a member or shows a repertoire item (a
    ``bot.plugin.DigestEntry``), with where it is: ``row`` in ``text`` (split at newlines) and the
    ``item``-th ``<li>`` of ``html``. ``line`` is the line as it stands now."""

    __tablename__ = "digest_entries"
    __table_args__ = (
        Index("ix_digest_entries_member", "member_id"),
        Index("ix_digest_entries_item_by", "item_by"),
        Index("ix_digest_entries_item_id", "item_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="digest_posts.id", index=True)
    row: int
    item: int
    line: str = Field(sa_column=Column(Text, nullable=False))
    member_id: int | None = Field(default=None)
    name: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    at: int = 0
    item_by: int | None = Field(default=None)
    item_id: int | None = Field(default=None)  # the repertoire item the line shows (migration 0022)
