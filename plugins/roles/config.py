"""The roles plugin's settings (``[plugins.roles]``): the window, grace and silence that move members, the
weights of each kind of activity, the thresholds per level, names and where moves are announced."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from bot.config_problems import did_you_mean, toml_value
from bot.config_values import RoomMap
from bot.plugin import PluginConfig
from plugins.roles.rules import DEFAULT_REQUIREMENTS, DEFAULT_WEIGHTS, LEVELS, Requirement, Rules

MAX_NAME = 100
"""A level's name is typed by moderators and listed by Discord as a choice (at most 100 characters)."""


class RequirementConfig(PluginConfig):
    score: float = Field(ge=0, examples=[5.0])
    contributions: int = Field(default=0, ge=0)
    active_days: int = Field(default=0, ge=0)
    keep_score: float = Field(default=0, ge=0)
    keep_contributions: int = Field(default=0, ge=0)
    keep_active_days: int = Field(default=0, ge=0)


class RolesConfig(PluginConfig):
    window_days: int = Field(default=30, ge=1, le=365)
    grace_days: int = Field(default=14, ge=0, le=365)
    transactional_after_days: int = Field(default=90, ge=7, le=3650)
    weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    occasional: RequirementConfig = Field(
        default_factory=lambda: RequirementConfig(**_as_dict(DEFAULT_REQUIREMENTS["occasional"]))
    )
    active: RequirementConfig = Field(
        default_factory=lambda: RequirementConfig(**_as_dict(DEFAULT_REQUIREMENTS["active"]))
    )
    names: dict[str, str] = Field(
        default_factory=dict,
        description="level → the name members see",
        examples=[{"core": "Stewards", "active": "Regulars"}],
    )
    announce: RoomMap = Field(
        default_factory=dict, description="community slug → platform → room where promotions are announced"
    )
    announce_demotions: bool = False

    @field_validator("weights")
    @classmethod
    def _over_the_defaults(cls, value: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        """A table names the kinds it changes; the rest keep their defaults (a table replacing them whole
        made a one-key typo weigh every message 0). A kind nothing records is a typo: refused where the
        check knows every kind (check-config and ``run``, from the plugins found)."""
        context = info.context if isinstance(info.context, dict) else {}
        kinds = context.get("activity_kinds")
        if kinds is not None:
            for kind in sorted(value):
                if kind not in kinds:
                    hint = did_you_mean(kind, sorted(kinds))  # ' — did you mean message?', or ''
                    meant = hint.removeprefix(" — did you mean ").removesuffix("?") or "message"
                    raise ValueError(
                        f"copbot records no activity called {kind!r}{hint} "
                        f"(kinds: {', '.join(sorted(kinds))}), "
                        f"like weights = {{ {meant} = {toml_value(value[kind])} }}"
                    )
        return {**DEFAULT_WEIGHTS, **value}

    @field_validator("names")
    @classmethod
    def _known_levels(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(LEVELS))
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a level ({', '.join(LEVELS)})")
        cleaned = {level: name.strip() for level, name in value.items()}
        taken: dict[str, str] = {level: level for level in LEVELS}  # a name members may type → its level
        for level, name in cleaned.items():
            if not name or len(name) > MAX_NAME or not name.isprintable():
                raise ValueError(
                    f"the name of {level} must be 1 to {MAX_NAME} printable characters, like {level} = "
                    '"Stewards"'
                )
            other = taken.get(name.lower())
            if other is not None and other != level:
                raise ValueError(f"{name!r} names both {other} and {level}; members could not tell which")
            taken[name.lower()] = level
        return cleaned

    @field_validator("occasional", "active")
    @classmethod
    def _hysteresis(cls, value: RequirementConfig) -> RequirementConfig:
        """A level that keeps more than it asks moves a member in, out after the grace period, and in
        again at once: a flip every grace period."""
        for asks in ("score", "contributions", "active_days"):
            if getattr(value, f"keep_{asks}") > getattr(value, asks):
                raise ValueError(
                    f"keep_{asks} must not be above {asks}, or members would flip at the boundary"
                )
        return value

    def rules(self) -> Rules:
        return Rules(
            window=timedelta(days=self.window_days),
            weights=self.weights,
            requirements={
                "occasional": Requirement(**self.occasional.model_dump(exclude={"enabled"})),
                "active": Requirement(**self.active.model_dump(exclude={"enabled"})),
            },
            grace=timedelta(days=self.grace_days),
            transactional_after=timedelta(days=self.transactional_after_days),
        )


def _as_dict(requirement: Requirement) -> dict[str, Any]:
    return {key: getattr(requirement, key) for key in requirement.__dataclass_fields__}
