"""Typed settings from ``config.toml`` plus ``COPBOT_…`` environment variables.

Environment variables win over the file, so secrets never need to be written down: ``COPBOT_DATABASE_URL``,
``COPBOT_WEB__PORT``, ``COPBOT_MATRIX__PASSWORD`` (``__`` separates nested keys). A mistyped key is an error
that names the key's dotted path, never a silently ignored setting.

Every problem in a file is reported in one pass: the values of the file and the environment are merged
first, then the settings, the checks across keys, and any extra checks the caller adds (the plugin tables,
see :mod:`bot.plugin_config_check`) all run on that merged input, whether or not the others passed.
This module knows nothing about plugins: the registry depends on the config, never the other way round.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeGuard, TypeVar, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.config_env import BrokenJSON, environment_values
from bot.config_problems import (
    ENV_PREFIX,
    Location,
    describe,
    did_you_mean,
    dotted,
    env_name,
    not_json,
)
from bot.config_values import matrix_room
from bot.db import DEFAULT_URL, async_url
from bot.zones import resolve_zone

SUPPORTED_DATABASES = "sqlite:///path.db or postgresql://user:pass@host/db"
_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
_MATRIX_USER = re.compile(r"^@[^:\s]+:\S+$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_zone(value: str) -> str:
    """The canonical IANA spelling: ``europe/amsterdam`` is what people type and means Europe/Amsterdam."""
    return resolve_zone(value)  # its UnknownZone is a ValueError that suggests the closest names


GUILD_EXAMPLE = "234567890123456789"
MODERATORS_EXAMPLE = ["matrix:@ana:example.org", "console:ana"]
"""Examples that check-config shows beside a mistake (see :func:`bot.config_problems.example`); the
values of config.example.toml, where the default ("", []) shows nothing."""


EVERY_INTERFACE = ("0.0.0.0", "::", "")
LOOPBACK = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}
"""The address on this machine of a server that listens on every interface (IPv4, IPv6)."""


class WebConfig(Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = Field(default="", examples=["https://copbot.example.org"])
    secret: str = Field(
        default="",
        description="signs private links; '' = one generated and kept in the DB",
        examples=["a-long-random-text"],
    )

    @field_validator("public_url")
    @classmethod
    def _openable(cls, value: str) -> str:
        """Every link copbot hands out starts with it: without a scheme (``copbot.example.org``) chat apps
        show it as text and calendar apps refuse it, so a link that cannot be opened is caught here."""
        if value:
            parts = urlsplit(value)
            if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    "must be the address people open, starting with https:// or http://, "
                    f"like https://copbot.example.org (got {value!r})"
                )
        return value

    def base_url(self) -> str:
        """Where members reach the web part: ``public_url``, else the local address. A host that means
        every interface (``0.0.0.0``, the image's) is no address to open — browsers refuse ``0.0.0.0`` and
        ``http://:::8080`` is no URL — so the link names this machine's loopback, which at least opens on
        it (check-config warns to set ``public_url``); an IPv6 address goes in brackets."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = LOOPBACK.get(self.host, self.host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"


class ConsoleConfig(Strict):
    enabled: bool | None = None
    moderators: list[str] = Field(default_factory=lambda: ["you"])
    community: str = Field(default="", examples=["water"])


Level = Literal["core", "active", "occasional", "peripheral", "transactional"]
"""A participation level (the roles plugin moves members between them)."""


def is_level(name: str) -> TypeGuard[Level]:
    """``name`` is a participation level (so it can look up a map keyed by :data:`Level`)."""
    return name in get_args(Level)


class CommunityMatrixConfig(Strict):
    """A community's Matrix part: its rooms (ids or aliases), or a space whose child rooms all belong to it.

    ``accept_invites_from`` lists Matrix ids whose invites the bot accepts for this community, attaching
    the room they invite it to; invites from anyone else to rooms not listed here are declined.

    ``level_power_levels`` mirrors participation levels as power levels in every room of the community
    copbot is in (levels not listed get the room's ``users_default``); ``level_rooms`` names a room per
    level that members are invited to when they reach that level.
    """

    rooms: list[str] = Field(default_factory=list, examples=[["#water:example.org"]])
    space: str = Field(default="", examples=["#water-space:example.org"])
    accept_invites_from: list[str] = Field(default_factory=list, examples=[["@coordinator:example.org"]])
    level_power_levels: dict[Level, int] = Field(default_factory=dict, examples=[{"core": 50, "active": 10}])
    level_rooms: dict[Level, str] = Field(
        default_factory=dict, examples=[{"core": "#water-core:example.org"}]
    )

    @field_validator("accept_invites_from")
    @classmethod
    def _matrix_user_ids(cls, value: list[str]) -> list[str]:
        """Invites are matched on the inviter's exact id: a display name or a bare name never matches."""
        for user in value:
            if not _MATRIX_USER.match(user):
                raise ValueError(f"{user!r} is not a Matrix user id (like @coordinator:example.org)")
        return value

    @field_validator("rooms")
    @classmethod
    def _room_ids_or_aliases(cls, value: list[str]) -> list[str]:
        for room in value:
            matrix_room(room)
        return value

    @field_validator("level_rooms")
    @classmethod
    def _level_rooms_are_rooms(cls, value: dict[str, str]) -> dict[str, str]:
        for room in value.values():
            matrix_room(room)
        return value


class CommunityDiscordConfig(Strict):
    """A community's Discord part: its guild (server), and optionally which of its channels it uses."""

    guild_id: str = Field(pattern=r"^\d{15,21}$", examples=[GUILD_EXAMPLE])
    channels: list[str] = Field(default_factory=list, examples=[["general", "345678901234567890"]])
    moderator_roles: list[str] = Field(default_factory=list, examples=[["Coordinators"]])
    level_roles: dict[Level, str] = Field(
        default_factory=dict, examples=[{"core": "Core", "active": "Active"}]
    )


class CommunityConfig(Strict):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$", examples=["water"])
    name: str = Field(min_length=1, max_length=200, examples=["Water Utilities CoP"])
    domain: str = Field(default="", examples=["drinking water distribution"])
    timezone: str = "UTC"
    rules: str = Field(default="", examples=["Share what works, ask freely, credit others."])
    public: bool = False  # public pages and feeds; private ones need a signed link
    # sister communities (slugs): items pass to them
    share_with: list[str] = Field(default_factory=list, examples=[["waste"]])
    moderators: list[str] = Field(default_factory=list, examples=[MODERATORS_EXAMPLE])
    matrix: CommunityMatrixConfig | None = Field(default=None, examples=[{"rooms": ["#water:example.org"]}])
    discord: CommunityDiscordConfig | None = None

    _zone = field_validator("timezone")(_check_zone)


class MatrixConfig(Strict):
    """The bot's Matrix account. Give a password (a device is created once and its token kept in the
    database) or an access token; secrets can come from ``COPBOT_MATRIX__PASSWORD`` and friends."""

    homeserver: str = Field(pattern=r"^https?://", examples=["https://matrix.example.org"])
    user_id: str = Field(pattern=r"^@[^:]+:.+$", examples=["@copbot:example.org"])
    password: str = Field(default="", examples=["the-account-password"])
    access_token: str = Field(default="", examples=["syt_the_token"])
    device_name: str = "copbot"
    moderator_power_level: int = 50
    connect_timeout: float = Field(default=30.0, gt=0, le=3600)


DISCORD_API = "https://discord.com/api/v10"
DISCORD_GATEWAY = "wss://gateway.discord.gg/"


class DiscordConfig(Strict):
    """The bot's Discord application. ``token`` is best given as ``COPBOT_DISCORD__TOKEN``.

    ``api_base_url`` and ``gateway_url`` default to Discord's; point them at a Discord-compatible
    self-hosted server (or the tests' server) to run copbot there.
    """

    token: str = Field(min_length=1, examples=["the-bot-token"])
    application_id: str = Field(default="", pattern=r"^(\d{15,21})?$", examples=["123456789012345678"])
    message_content: bool = False
    members: bool = True
    command_guilds: list[str] = Field(default_factory=list, examples=[[GUILD_EXAMPLE]])
    moderator_roles: list[str] = Field(default_factory=list, examples=[["Coordinators"]])
    api_base_url: str = Field(default=DISCORD_API, pattern=r"^https?://")
    gateway_url: str = Field(default=DISCORD_GATEWAY, pattern=r"^wss?://")
    guild_ready_timeout: float = Field(default=2.0, gt=0, le=60)
    shard_count: int | None = Field(default=None, ge=1, le=10_000, examples=[2])
    """Discord's sharding: with ``shard_ids``, this process connects only those shards of ``shard_count``
    (a guild is on shard ``(guild_id >> 22) % shard_count``; direct messages come on shard 0)."""
    shard_ids: list[int] = Field(default_factory=list, examples=[[0]])


class InstanceConfig(Strict):
    """This process's share of a deployment of several copbot processes on one PostgreSQL database.

    ``communities`` lists the slugs this process serves ([] = all); their rooms, commands and scheduled
    jobs are its own, and every other community's are another process's. A second process started with
    the same ``name`` waits as a standby (``standby = true``) and takes over when the first one dies.
    ``name`` ("" = derived from the communities) keys that lock and, when the communities are divided, this
    process's own periodic jobs, its queued messages and its Matrix session (device and sync token);
    ``direct_messages`` (None = only the process serving the first listed community, the one with Discord
    shard 0 when sharded, or an undivided one) says whether this process answers members' direct messages
    (and, on Matrix, invites to rooms of no community).
    """

    name: str = Field(default="", pattern=r"^([a-z0-9][a-z0-9-]{0,63})?$", examples=["water-waste"])
    communities: list[str] = Field(default_factory=list, examples=[["water"]])
    standby: bool = True
    direct_messages: bool | None = None


DEFAULT_COMMUNITY = CommunityConfig(
    slug="cop",
    name="Our Community of Practice",
    # no domain: it is the community's to name, and the welcome's "We share what works in {domain}" read
    # "… in sharing what works" with a made-up one (the welcome says "our field" where none is named)
    rules="Be kind, share what you know, credit others.",
)


class Settings(BaseModel):
    """The whole configuration; every key is documented in config.example.toml.

    Built from the file and the environment by :func:`read_settings` (the environment is read there, see
    :mod:`bot.config_env`); ``Settings(...)`` itself takes only what it is given, as tests build it.
    """

    model_config = ConfigDict(extra="forbid", validate_default=True)

    prefix: str = Field(default="!", min_length=1, max_length=3)
    database_url: str = DEFAULT_URL
    timezone: str = "UTC"
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    log_file: str = Field(default="", examples=["copbot.log"])
    moderators: list[str] = Field(default_factory=list, examples=[MODERATORS_EXAMPLE])
    # a table's example shows one key of it: the message is one line
    web: WebConfig = Field(default_factory=WebConfig, examples=[{"port": 8080}])
    console: ConsoleConfig = Field(default_factory=ConsoleConfig, examples=[{"enabled": True}])
    matrix: MatrixConfig | None = None
    discord: DiscordConfig | None = None
    instance: InstanceConfig = Field(default_factory=InstanceConfig, examples=[{"communities": ["water"]}])
    communities: list[CommunityConfig] = Field(
        default_factory=list, examples=[[{"slug": "water", "name": "Water Utilities CoP"}]]
    )
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict, examples=[{"digest": {"enabled": False}}]
    )

    _zone = field_validator("timezone")(_check_zone)

    @field_validator("prefix")
    @classmethod
    def _prefix_without_spaces(cls, value: str) -> str:
        """A prefix with a space in it can never be typed as the start of a command."""
        if any(character.isspace() for character in value):
            raise ValueError(f"must be 1 to 3 characters without spaces, like '!' (got {value!r})")
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        """copbot ships the SQLite and PostgreSQL drivers only; anything else would fail at start-up."""
        try:
            driver = make_url(async_url(value)).drivername
        except (ArgumentError, ValueError):
            raise ValueError(f"not a database URL; use {SUPPORTED_DATABASES}") from None
        if driver not in _DRIVERS:
            raise ValueError(f"copbot cannot use {driver!r} databases; use {SUPPORTED_DATABASES}")
        return value

    def community_list(self) -> list[CommunityConfig]:
        return self.communities or [DEFAULT_COMMUNITY]

    def served_communities(self) -> list[CommunityConfig]:
        """The communities this process serves: all of them, unless ``[instance] communities`` divides —
        or, without that list, Discord's sharding does: then those whose guild is on this process's shards
        (communities without a Discord guild go with shard 0, like direct messages)."""
        wanted = set(self.instance.communities)
        if wanted:
            return [c for c in self.community_list() if c.slug in wanted]
        return [c for c in self.community_list() if self._on_my_shards(c)]

    def _on_my_shards(self, community: CommunityConfig) -> bool:
        discord = self.discord
        if discord is None or not discord.shard_ids or discord.shard_count is None:
            return True
        shard = shard_of(community.discord.guild_id, discord.shard_count) if community.discord else 0
        return shard in discord.shard_ids

    @property
    def partitioned(self) -> bool:
        """Some configured community is served by another process."""
        return len(self.served_communities()) < len(self.community_list())

    @property
    def instance_name(self) -> str:
        """Names this process's share: the configured name, else its communities ("" when undivided)."""
        if self.instance.name or not self.partitioned:
            return self.instance.name
        return "+".join(sorted(c.slug for c in self.served_communities()))[:64]

    @property
    def answers_direct_messages(self) -> bool:
        """Whether this process answers direct messages: as configured, else the process with Discord's
        shard 0 (where Discord sends them) when sharded, else the one serving the first community."""
        if self.instance.direct_messages is not None:
            return self.instance.direct_messages
        discord = self.discord
        if discord is not None and discord.shard_ids and discord.shard_count is not None:
            return 0 in discord.shard_ids
        return not self.partitioned or self.community_list()[0] in self.served_communities()

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
    """One or more bad keys; each problem is ``dotted.path: reason``. Warnings found on the way come along,
    so that check-config shows them next to the errors."""

    def __init__(self, source: str, problems: list[str], warnings: Sequence[str] = ()) -> None:
        self.source = source
        self.problems = problems
        self.warnings = list(warnings)
        super().__init__("\n".join(f"{source}: {problem}" for problem in problems))


@dataclass(frozen=True)
class RawConfig:
    """The file's values with the environment's on top, before validation.

    Checks read this rather than a validated :class:`Settings`, so that one bad key never hides the
    problems of another; they must therefore expect any shape and leave shapes to pydantic.
    """

    data: dict[str, Any]
    file: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    variables: frozenset[Location] = frozenset()
    """The key path of each ``COPBOT_…`` variable set (``("web", "port")`` for ``COPBOT_WEB__PORT``)."""

    def from_env(self, location: Location) -> bool:
        """The value at ``location`` (or where it is missing) is the environment's: a variable's table is
        merged with the file's key by key, anything else from a variable replaces the file's."""
        below: Any = self.file
        top: Any = self.environment
        for part in location:
            if top is _NOTHING:
                return False
            if below is _NOTHING or not (isinstance(top, dict) and isinstance(below, dict)):
                return True
            below, top = below.get(part, _NOTHING), top.get(part, _NOTHING)
        return top is not _NOTHING

    def label(self, location: Location) -> str:
        """How the operator wrote this key: the environment variable it came from, with the place in its
        JSON after it (``COPBOT_COMMUNITIES[0].public``), else its dotted path."""
        if self.from_env(location):
            for end in range(len(location), 0, -1):
                if location[:end] in self.variables:
                    return env_name(location[:end]) + dotted(location[end:], nested=True)
        return dotted(location)


_NOTHING: Any = object()


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


Check = Callable[[RawConfig], Findings]
"""An extra check on the merged input, e.g. the plugin tables; see bot.plugin_config_check."""


@dataclass(frozen=True)
class Loaded:
    settings: Settings
    warnings: list[str]


def load_settings(path: str | Path | None = None, *, checks: Sequence[Check] = ()) -> Settings:
    """Read, validate and return the settings; raise ConfigError naming every bad key."""
    return read_settings(path, checks=checks).settings


def read_settings(path: str | Path | None = None, *, checks: Sequence[Check] = ()) -> Loaded:
    """The settings and the warnings about them; raise ConfigError naming every bad key, all in one go."""
    source = str(path) if path else "(defaults)"
    findings = Findings()
    raw = _merged_input(path, source, findings)
    settings = _validate(raw, findings)
    findings.problems += _cross_checks(raw)
    findings.warnings += _web_warnings(raw)
    for check in checks:
        found = check(raw)
        findings.problems += found.problems
        findings.warnings += found.warnings
    if findings.problems or settings is None:
        raise ConfigError(source, findings.problems, findings.warnings)
    return Loaded(settings, findings.warnings)


def _merged_input(path: str | Path | None, source: str, findings: Findings) -> RawConfig:
    data = _read_file(Path(path), source) if path is not None else {}
    environment = _environment(findings)
    variables = frozenset(
        tuple(name[len(ENV_PREFIX) :].lower().split("__"))
        for name in os.environ
        if name.upper().startswith(ENV_PREFIX)
    )
    return RawConfig(_merge(data, environment), data, environment, variables)


def _environment(findings: Findings) -> dict[str, Any]:
    """The ``COPBOT_…`` values; a variable holding broken JSON is reported and left out, not the others."""
    environ = dict(os.environ)
    for _ in range(len(Settings.model_fields) + 1):
        try:
            return environment_values(Settings, environ, ENV_PREFIX)
        except BrokenJSON as error:
            findings.problems.append(not_json(Settings, error.location))
            variable = env_name(error.location).lower()
            environ = {k: v for k, v in environ.items() if k.lower() != variable}
    return {}


def _read_file(file: Path, source: str) -> dict[str, Any]:
    if file.is_dir():  # "file not found" would send the operator looking for a file that is not missing
        raise ConfigError(source, ["is a directory; give the path of the configuration file in it"])
    if not file.is_file():
        raise ConfigError(source, ["file not found"])
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(source, [f"not valid TOML: {error}"]) from None
    except UnicodeDecodeError:
        raise ConfigError(source, ["not UTF-8 text"]) from None
    except OSError as error:
        raise ConfigError(source, [f"cannot be read: {error.strerror or error}"]) from None


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Tables are merged key by key; anything else from ``top`` wins."""
    merged = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        merged[key] = _merge(below, value) if isinstance(value, dict) and isinstance(below, dict) else value
    return merged


def _validate(raw: RawConfig, findings: Findings) -> Settings | None:
    settings, errors = validate_as_written(Settings, raw.data, raw)
    findings.problems += [describe(item, model=Settings, label=raw.label) for item in errors]
    return settings


M = TypeVar("M", bound=BaseModel)


def validate_as_written(
    model: type[M],
    data: Any,
    raw: RawConfig,
    prefix: Location = (),
    context: dict[str, Any] | None = None,
) -> tuple[M | None, list[ErrorDetails]]:
    """``data`` as ``model`` (None when it is not one), and the errors to report.

    TOML values have types, so the file is read strictly: ``enabled = "yes"`` or ``port = "8080"`` is a
    mistake there, not another way to write true or 8080. A variable's value is always text, so what came
    from the environment (``COPBOT_WEB__ENABLED=false``, and JSON within it) is converted as before. Two
    passes rather than a converter of our own: the strict one only for the file's errors. ``context``
    (see :func:`bot.config_values.validation_context`) gets the warnings of one pass only.
    """
    trial = None if context is None else {**context, "warnings": []}
    try:
        valid = model.model_validate(data, strict=True, context=trial)
    except ValidationError as error:
        written = [e for e in error.errors() if not raw.from_env((*prefix, *e["loc"]))]
    else:
        if context is not None and trial is not None:
            context["warnings"] += trial["warnings"]
        return valid, []
    try:
        return model.model_validate(data, context=context), written
    except ValidationError as error:
        variables = [e for e in error.errors() if raw.from_env((*prefix, *e["loc"]))]
        return None, written + variables


def shard_of(guild_id: str, shard_count: int) -> int:
    """The shard Discord sends a guild's events on: ``(guild_id >> 22) % shard_count``."""
    return (int(guild_id) >> 22) % shard_count


def community_slugs(data: Mapping[str, Any]) -> list[str]:
    """The slugs of the configured communities (the default one when none is), as far as they are readable."""
    communities = data.get("communities")
    if not isinstance(communities, list) or not communities:
        return [DEFAULT_COMMUNITY.slug]
    return [c["slug"] for c in communities if isinstance(c, dict) and isinstance(c.get("slug"), str)]


def _cross_checks(raw: RawConfig) -> list[str]:
    """Rules across keys, on the merged input: each applies only where the keys it reads are readable."""
    return [
        *_duplicate_slugs(raw),
        *_matrix_secret(raw),
        *_console_community(raw),
        *_sisters(raw),
        *_instance_communities(raw),
        *_shards(raw),
    ]


def _web_warnings(raw: RawConfig) -> list[str]:
    """A web part listening on every interface with no ``public_url``: the links copbot hands out name
    this machine's loopback address (see :meth:`WebConfig.base_url`), which members elsewhere cannot open."""
    web = raw.data.get("web")
    if not isinstance(web, dict) or _switched_off(web.get("enabled", True)) or web.get("public_url"):
        return []
    host = web.get("host")
    if host not in EVERY_INTERFACE:
        return []
    return [
        f"{raw.label(('web', 'host'))}: {host!r} listens on every network interface, but links in messages "
        "(dashboard, meeting ics, digest subscribe) need the address people use: set [web] public_url (or "
        'COPBOT_WEB__PUBLIC_URL), like public_url = "https://copbot.example.org"'
    ]


def _whole(value: Any) -> int | None:
    """A whole number as the file (``2``) or a variable (``"2"``) gives it; None for anything else."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _switched_off(value: Any) -> bool:
    """``false`` in the file, or as a variable writes it (``COPBOT_WEB__ENABLED=false``, ``no``, ``0``)."""
    return value is False or (isinstance(value, str) and value.strip().lower() in ("false", "no", "off", "0"))


def _instance_communities(raw: RawConfig) -> list[str]:
    """``[instance] communities`` names configured communities."""
    instance = raw.data.get("instance")
    wanted = instance.get("communities") if isinstance(instance, dict) else None
    slugs = community_slugs(raw.data)
    problems = []
    for position, slug in enumerate(wanted if isinstance(wanted, list) else []):
        if isinstance(slug, str) and slug not in slugs:
            key = raw.label(("instance", "communities", position))
            problems.append(f"{key}: no community with slug {slug!r}{did_you_mean(slug, slugs)}")
    return problems


def _shards(raw: RawConfig) -> list[str]:
    """Shard ids come with a shard count, each below it."""
    discord = raw.data.get("discord")
    if not isinstance(discord, dict):
        return []
    ids, count = discord.get("shard_ids"), _whole(discord.get("shard_count"))
    if not isinstance(ids, list) or not ids:
        return []
    if count is None:
        return [f"{raw.label(('discord', 'shard_ids'))}: set shard_count too, e.g. shard_count = 2"]
    problems = [
        f"{raw.label(('discord', 'shard_ids', position))}: {shard} is not a shard of {count} "
        f"(0 to {count - 1})"
        for position, shard in enumerate(ids)
        if isinstance(shard, int) and not 0 <= shard < count
    ]
    return problems + _communities_off_shards(raw, ids, count)


def _communities_off_shards(raw: RawConfig, shards: list[Any], count: int) -> list[str]:
    """A community this process is told to serve must have its guild on this process's shards: Discord
    would never send it that guild's events."""
    instance = raw.data.get("instance")
    wanted = instance.get("communities") if isinstance(instance, dict) else None
    communities = raw.data.get("communities")
    if not isinstance(wanted, list) or not isinstance(communities, list) or count < 1:
        return []
    problems = []
    for community in communities:
        if not isinstance(community, dict) or community.get("slug") not in wanted:
            continue
        discord = community.get("discord")
        guild = discord.get("guild_id") if isinstance(discord, dict) else None
        if isinstance(guild, str) and guild.isdigit() and shard_of(guild, count) not in shards:
            position = wanted.index(community["slug"])
            problems.append(
                f"{raw.label(('instance', 'communities', position))}: {community['slug']!r} is on Discord "
                f"shard {shard_of(guild, count)} of {count}, which this process does not connect "
                f"(shard_ids = {shards})"
            )
    return problems


def _duplicate_slugs(raw: RawConfig) -> list[str]:
    communities = raw.data.get("communities")
    problems, seen = [], set()
    for index, community in enumerate(communities if isinstance(communities, list) else []):
        slug = community.get("slug") if isinstance(community, dict) else None
        if isinstance(slug, str) and slug in seen:
            problems.append(
                f"{raw.label(('communities', index, 'slug'))}: {slug!r} is used by another community"
            )
        seen.add(slug)
    return problems


def _sisters(raw: RawConfig) -> list[str]:
    """``share_with`` names other configured communities."""
    communities = raw.data.get("communities")
    listed = communities if isinstance(communities, list) else []
    slugs = [c.get("slug") for c in listed if isinstance(c, dict)]
    problems = []
    for index, community in enumerate(listed):
        sisters = community.get("share_with") if isinstance(community, dict) else None
        for position, sister in enumerate(sisters if isinstance(sisters, list) else []):
            if sister not in slugs or sister == community.get("slug"):
                known = ", ".join(str(slug) for slug in slugs if slug != community.get("slug")) or "none"
                problems.append(
                    f"{raw.label(('communities', index, 'share_with', position))}: "
                    f"{sister!r} is not another community here (communities: {known})"
                )
    return problems


def _matrix_secret(raw: RawConfig) -> list[str]:
    matrix = raw.data.get("matrix")
    if isinstance(matrix, dict) and not (matrix.get("password") or matrix.get("access_token")):
        return ["matrix: set password or access_token (or COPBOT_MATRIX__PASSWORD)"]
    return []


def _console_community(raw: RawConfig) -> list[str]:
    console = raw.data.get("console")
    chosen = console.get("community") if isinstance(console, dict) else None
    slugs = community_slugs(raw.data)
    if isinstance(chosen, str) and chosen and chosen not in slugs:
        key = raw.label(("console", "community"))
        return [f"{key}: no community with slug {chosen!r}{did_you_mean(chosen, slugs)}"]
    return []
