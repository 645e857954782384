"""The repertoire's tables. An item belongs to one community; a copy shared with a sister community is an
item of its own that names where it came from. Tags are stored as the member wrote them, comma-separated,
and searched through the full-text index (SQLite FTS5 ``repertoire_fts``; on PostgreSQL a generated
``search`` tsvector column with a GIN index, made by the migration)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint, false
from sqlmodel import Field

from bot.db import UTCDateTime
from bot.tables import TableModel

KINDS = ("story", "tool", "experience", "practice", "resource")


def _utc(*, nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


class Item(TableModel, table=True):
    __tablename__ = "repertoire_items"
    __table_args__ = (
        UniqueConstraint("community_id", "origin_platform", "origin_message_id", name="uq_repertoire_origin"),
        Index("ix_repertoire_community_kind", "community_id", "kind"),
        # everything a suggestion reads while a number is typed (migration 0015)
        Index("ix_repertoire_titles", "community_id", "removed_at", "id", "title", "kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id")
    kind: str = Field(max_length=16)
    title: str = Field(max_length=200)
    body: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    url: str = Field(default="", max_length=1000)
    tags: str = Field(default="", max_length=500)  # as written, comma-separated
    author_id: int = Field(foreign_key="members.id", index=True)  # who is credited
    added_by_id: int = Field(foreign_key="members.id")  # who saved or shared it
    origin_platform: str | None = Field(default=None, max_length=32)
    origin_room: str | None = Field(default=None, max_length=255)
    origin_message_id: str | None = Field(default=None, max_length=255)  # saved with 📌: saved once
    source_link: str = Field(default="", max_length=1000)  # a link to the original message
    # copbot's "📌 Saved … as #N" beside the original (kept once sent): taken back if the original is deleted
    thanks_message_id: str | None = Field(default=None, max_length=255)
    meeting_id: int | None = Field(default=None)  # from a meeting's notes
    copied_from_id: int | None = Field(default=None)  # shared from a sister community's item
    created_at: datetime = Field(sa_column=_utc())
    updated_at: datetime = Field(sa_column=_utc())
    removed_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    removed_by_id: int | None = Field(default=None)


class Upvote(TableModel, table=True):
    __tablename__ = "repertoire_upvotes"
    __table_args__ = (Index("ix_repertoire_upvotes_at", "at", "item_id"),)  # a period's upvotes (the digest)

    item_id: int = Field(foreign_key="repertoire_items.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    at: datetime = Field(sa_column=_utc())


class Use(TableModel, table=True):
    """A member applied the item in their work ("I applied this"): applied value, once per member.

    ``withdrawn``: the member was forgotten. The mark no longer stands on the item ("applied by"), so
    that the person, back as a new member, counts once there; the value report still counts what happened
    in its period."""

    __tablename__ = "repertoire_uses"

    item_id: int = Field(foreign_key="repertoire_items.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    at: datetime = Field(sa_column=_utc())
    withdrawn: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
