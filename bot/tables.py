"""The core's tables. Plugins own their own tables (prefixed with their name) in their folders."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Table, Text, UniqueConstraint, inspect
from sqlalchemy import false as sa_false
from sqlalchemy import true as sa_true
from sqlmodel import Field, SQLModel
from sqlmodel._compat import SQLModelConfig  # the type of model_config (not re-exported)

from bot.db import UTCDateTime


def _utc(*, nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable, index=index)


def table_of(model: type[SQLModel]) -> Table:
    """The Core ``Table`` of a table model, for Core statements (``insert(table_of(Row))``, ``.c``).

    SQLAlchemy's mapping sets ``Model.__table__``, but SQLModel's class does not declare it to type checkers.
    """
    table = inspect(model).local_table
    assert isinstance(table, Table), model
    return table


class TableModel(SQLModel):
    """The base of copbot's table models (the core's and the plugins'): SQLModel with Pydantic's validator
    and serializer built on first use instead of when the class is defined.

    A table model's instances come from the database or from keyword arguments, neither of which SQLModel
    validates, so at start-up each of the ~30 tables only paid for Pydantic machinery nothing calls: ~12 ms
    of every start and ~0.5 MB resident. ``model_validate`` / ``model_dump`` still work, the same, and
    build it the first time they are called.
    """

    model_config = SQLModelConfig(defer_build=True)


class CommunityRow(TableModel, table=True):
    __tablename__ = "communities"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    domain: str = Field(default="", max_length=500)
    timezone: str = Field(default="UTC", max_length=64)
    created_at: datetime = Field(sa_column=_utc())


class RoomRow(TableModel, table=True):
    """Which platform room belongs to which community (from the config, or attached at run time)."""

    __tablename__ = "rooms"
    __table_args__ = (UniqueConstraint("platform", "room_id", name="uq_rooms_platform_room"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    room_id: str = Field(max_length=255)
    community_id: int = Field(foreign_key="communities.id", index=True)
    added_at: datetime = Field(sa_column=_utc())


class MemberRow(TableModel, table=True):
    """One platform identity; ``timezone`` is the member's own zone for reading and showing times."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("platform", "platform_id", name="uq_members_platform_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    platform_id: str = Field(max_length=255)
    display_name: str = Field(default="", max_length=255)
    is_bot: bool = False
    timezone: str | None = Field(default=None, max_length=64)
    reminders: str = Field(
        default="room", max_length=8, sa_column_kwargs={"server_default": "room"}
    )  # "room": mentioned where the meeting is; "dm": by direct message
    public: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})
    """The member's name may appear on the community's web pages (``profile set public on``)."""
    prompts: bool = Field(default=True, sa_column_kwargs={"server_default": sa_true()})
    """The member may be asked for value-creation stories (``profile set prompts off`` stops it)."""
    tracking: bool = Field(default=True, sa_column_kwargs={"server_default": sa_true()})
    """copbot records the member's activity (``profile set tracking off`` stops it)."""
    person_id: int | None = Field(default=None, index=True)
    """Accounts of one person (a Discord and a Matrix account, linked) share the person's id: that of the
    account they linked to. None: this account is a person of its own."""
    first_seen: datetime = Field(sa_column=_utc())
    last_seen: datetime = Field(sa_column=_utc())


class ActivityEvent(TableModel, table=True):
    """Every message, reaction, command and vote: the raw material of participation levels."""

    __tablename__ = "activity_events"
    __table_args__ = (
        # Each member's activity in a window from the index alone, grouped by member: participation levels.
        Index("ix_activity_member_window", "member_id", "community_id", "at", "kind"),
        # A period's figures (messages, active members, contributions) from the index alone: the digest.
        Index("ix_activity_community_window", "community_id", "at", "kind", "member_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    community_id: int | None = Field(default=None, foreign_key="communities.id")
    member_id: int = Field(foreign_key="members.id")
    kind: str = Field(max_length=32)
    platform: str = Field(max_length=32)
    room_id: str = Field(default="", max_length=255)
    detail: str = Field(default="", max_length=255)
    at: datetime = Field(sa_column=_utc())


class HandledEvent(TableModel, table=True):
    """Platform event ids already handled, so an event delivered twice is handled once."""

    __tablename__ = "handled_events"

    platform: str = Field(primary_key=True, max_length=32)
    event_id: str = Field(primary_key=True, max_length=255)
    handled_at: datetime = Field(sa_column=_utc(index=True))


class StateRow(TableModel, table=True):
    """Small pieces of restart-safe state (a sync token, a command-set hash), by scope and key."""

    __tablename__ = "state"

    scope: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=128)
    value: str = Field(default="", sa_type=Text)
    updated_at: datetime = Field(sa_column=_utc())


class Membership(TableModel, table=True):
    """Who belongs to which community, since when, and whether they left (kept: they may come back)."""

    __tablename__ = "memberships"

    community_id: int = Field(foreign_key="communities.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    joined_at: datetime = Field(sa_column=_utc())
    left_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    level: str = Field(default="peripheral", max_length=16, sa_column_kwargs={"server_default": "peripheral"})
    level_since: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    locked: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})
    below_since: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    last_seen: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    """When the member last did anything in this community (``members.last_seen`` is anywhere): silence
    here moves them to transactional here, however busy they are in a sister community."""


class OutboxRow(TableModel, table=True):
    """A message that belongs to a unit of work: committed with it, sent after it (see bot/outbox.py)."""

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("key", name="uq_outbox_key"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=255)
    platform: str = Field(max_length=32)
    target: str = Field(sa_type=Text)
    content: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_column=_utc())
    sent_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True, index=True))
    message_id: str = Field(default="", max_length=255)
    attempts: int = 0
    last_error: str = Field(default="", max_length=500)
    owner: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})
    """The instance that queued it ([instance] name): with several processes, each sends its own."""
