"""The welcome plugin's table: a community's own welcome text, which overrides the config's."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field

from bot.db import UTCDateTime
from bot.tables import TableModel


class WelcomeTemplate(TableModel, table=True):
    __tablename__ = "welcome_templates"

    community_id: int = Field(foreign_key="communities.id", primary_key=True)
    template: str = Field(sa_column=Column(Text, nullable=False))
    updated_by: int | None = Field(default=None, foreign_key="members.id")
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
