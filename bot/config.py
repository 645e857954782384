"""Typed settings from ``config.toml`` plus ``COPBOT_…`` environment variables.

Environment variables win over the file, so secrets never need to be written down: ``COPBOT_DATABASE_URL``,
``COPBOT_WEB__PORT``, ``COPBOT_MATRIX__PASSWORD`` (``__`` separates nested keys). A mistyped key is an error
that names the key's dotted path, never a silently ignored setting.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.db import DEFAULT_URL
from bot.timeparse import is_valid_timezone


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_zone(value: str) -> str:
    if not is_valid_timezone(value):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Amsterdam)")
    return value


class WebConfig(Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = ""


class ConsoleConfig(Strict):
    enabled: bool | None = None
    moderators: list[str] = Field(default_factory=lambda: ["you"])
    community: str = ""


class CommunityMatrixConfig(Strict):
    """A community's Matrix part: its rooms (ids or aliases), or a space whose child rooms all belong to it.

    ``accept_invites_from`` lists Matrix ids whose invites the bot accepts for this community, attaching
    the room they invite it to; invites from anyone else to rooms not listed here are declined.
    """

    rooms: list[str] = Field(default_factory=list)
    space: str = ""
    accept_invites_from: list[str] = Field(default_factory=list)

    @field_validator("rooms")
    @classmethod
    def _room_ids_or_aliases(cls, value: list[str]) -> list[str]:
        for room in value:
            # Room ids of room version 12 have no ":server" part (!opaque); aliases always do.
            is_id = room.startswith("!") and len(room) > 1
            is_alias = room.startswith("#") and ":" in room
            if not (is_id or is_alias):
                raise ValueError(
                    f"{room!r} is neither a room id (!abc or !abc:server) nor an alias (#name:server)"
                )
        return value


class CommunityDiscordConfig(Strict):
    """A community's Discord part: its guild (server), and optionally which of its channels it uses."""

    guild_id: str = Field(pattern=r"^\d{15,21}$")
    channels: list[str] = Field(default_factory=list)
    moderator_roles: list[str] = Field(default_factory=list)
    level_roles: dict[Literal["core", "active", "occasional", "peripheral", "transactional"], str] = Field(
        default_factory=dict
    )


class CommunityConfig(Strict):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    domain: str = ""
    timezone: str = "UTC"
    rules: str = ""
    moderators: list[str] = Field(default_factory=list)
    matrix: CommunityMatrixConfig | None = None
    discord: CommunityDiscordConfig | None = None

    _zone = field_validator("timezone")(_check_zone)


class MatrixConfig(Strict):
    """The bot's Matrix account. Give a password (a device is created once and its token kept in the
    database) or an access token; secrets can come from ``COPBOT_MATRIX__PASSWORD`` and friends."""

    homeserver: str = Field(pattern=r"^https?://")
    user_id: str = Field(pattern=r"^@[^:]+:.+$")
    password: str = ""
    access_token: str = ""
    device_name: str = "copbot"
    moderator_power_level: int = 50


DISCORD_API = "https://discord.com/api/v10"
DISCORD_GATEWAY = "wss://gateway.discord.gg/"


class DiscordConfig(Strict):
    """The bot's Discord application. ``token`` is best given as ``COPBOT_DISCORD__TOKEN``.

    ``api_base_url`` and ``gateway_url`` default to Discord's; point them at a Discord-compatible
    self-hosted server (or the tests' server) to run copbot there.
    """

    token: str = Field(min_length=1)
    application_id: str = Field(default="", pattern=r"^(\d{15,21})?$")
    message_content: bool = False
    members: bool = True
    command_guilds: list[str] = Field(default_factory=list)
    moderator_roles: list[str] = Field(default_factory=list)
    api_base_url: str = Field(default=DISCORD_API, pattern=r"^https?://")
    gateway_url: str = Field(default=DISCORD_GATEWAY, pattern=r"^wss?://")
    guild_ready_timeout: float = Field(default=2.0, gt=0, le=60)


DEFAULT_COMMUNITY = CommunityConfig(
    slug="cop",
    name="Our Community of Practice",
    domain="sharing what works",
    rules="Be kind, share what you know, credit others.",
)


class Settings(BaseSettings):
    """The whole configuration; every key is documented in config.example.toml."""

    model_config = SettingsConfigDict(
        env_prefix="COPBOT_",
        env_nested_delimiter="__",
        extra="forbid",
        nested_model_default_partial_update=True,
    )

    prefix: str = Field(default="!", min_length=1, max_length=3)
    database_url: str = DEFAULT_URL
    timezone: str = "UTC"
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    moderators: list[str] = Field(default_factory=list)
    web: WebConfig = Field(default_factory=WebConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    matrix: MatrixConfig | None = None
    discord: DiscordConfig | None = None
    communities: list[CommunityConfig] = Field(default_factory=list)
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict)

    _zone = field_validator("timezone")(_check_zone)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return env_settings, init_settings

    def community_list(self) -> list[CommunityConfig]:
        return self.communities or [DEFAULT_COMMUNITY]

    @property
    def platforms_configured(self) -> list[str]:
        """Chat platforms with a configuration table; later platforms add themselves here."""
        return [name for name in ("matrix", "discord") if getattr(self, name, None) is not None]

    @property
    def console_enabled(self) -> bool:
        if self.console.enabled is not None:
            return self.console.enabled
        return not self.platforms_configured


class ConfigError(Exception):
    """One or more bad keys; each problem is ``dotted.path: reason``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {problem}" for problem in problems))


def load_settings(path: str | Path | None = None, *, validate_plugins: bool = True) -> Settings:
    """Read, validate and return the settings; raise ConfigError naming every bad key."""
    source = str(path) if path else "(defaults)"
    data: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(source, ["file not found"])
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(source, [f"not valid TOML: {error}"]) from None
        except UnicodeDecodeError:
            raise ConfigError(source, ["not UTF-8 text"]) from None
    try:
        settings = Settings(**data)
    except ValidationError as error:
        raise ConfigError(source, [_describe(item) for item in error.errors()]) from None
    problems = _cross_checks(settings)
    if validate_plugins:
        from bot.registry import validate_plugin_configs  # plugin discovery imports plugins

        problems += validate_plugin_configs(settings)
    if problems:
        raise ConfigError(source, problems)
    return settings


def _cross_checks(settings: Settings) -> list[str]:
    problems = []
    slugs = [community.slug for community in settings.communities]
    for index, slug in enumerate(slugs):
        if slug in slugs[:index]:
            problems.append(f"communities[{index}].slug: {slug!r} is used by another community")
    if settings.matrix is not None and not (settings.matrix.password or settings.matrix.access_token):
        problems.append("matrix: set password or access_token (or COPBOT_MATRIX__PASSWORD)")
    console_community = settings.console.community
    if console_community and console_community not in {c.slug for c in settings.community_list()}:
        problems.append(f"console.community: no community with slug {console_community!r}")
    return problems


def dotted(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _describe(item: Any) -> str:
    location = tuple(part for part in item["loc"] if part not in ("function-after",))
    kind = item["type"]
    if kind == "extra_forbidden":
        return f"{dotted(location)}: unknown key"
    if kind == "missing":
        return f"{dotted(location)}: missing required value"
    message = item["msg"].removeprefix("Value error, ")
    given = item.get("input")
    if kind not in ("value_error",) and not isinstance(given, dict | list):
        message += f" (got {given!r})"
    return f"{dotted(location)}: {message}"
