"""The ``[plugins.meetings]`` table: reminder leads (per community if wanted) and how far ``list`` looks."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field, field_validator

from bot.config_values import PerCommunity
from bot.plugin import PluginConfig
from bot.timeparse import TimeParseError, parse_duration


def _leads(values: list[str]) -> list[str]:
    for value in values:
        try:
            parse_duration(value)
        except TimeParseError as error:
            raise ValueError(str(error)) from None
    return values


class MeetingsConfig(PluginConfig):
    reminders: list[str] = Field(default_factory=lambda: ["24h", "15m"], max_length=5)
    community_reminders: Annotated[dict[str, list[str]], PerCommunity] = Field(
        default_factory=dict,
        description="community slug → reminder leads, instead of `reminders`",
        examples=[{"water": ["2d", "1h"]}],
    )
    list_days: int = Field(default=30, ge=1, le=366)

    _check = field_validator("reminders")(_leads)

    @field_validator("community_reminders")
    @classmethod
    def _each(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for leads in value.values():
            _leads(leads)
        return value

    def leads(self, community_slug: str | None) -> list[timedelta]:
        """The community's reminder leads, longest first."""
        chosen = self.community_reminders.get(community_slug or "", self.reminders)
        return sorted((parse_duration(lead) for lead in chosen), reverse=True)
