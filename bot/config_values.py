"""Value types that plugin configs share, checked when the config is loaded rather than when first used.

A room map naming a community that does not exist, or a cron line APScheduler cannot read, would
otherwise be found only when a welcome is posted or the scheduler starts, long after the operator left.

Checks that need the rest of the config (which communities exist) read it from the validation context
that check-config and ``copbot run`` pass (see :mod:`bot.plugin_config_check`); without a context (a plugin
loaded in a test) those checks are skipped. Warnings go into the context too: they are shown by
check-config but do not refuse the file.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeGuard, get_args

from pydantic import AfterValidator, Field, ValidationInfo

from bot.config_problems import did_you_mean

Platform = Literal["console", "matrix", "discord"]
PLATFORMS: tuple[Platform, ...] = get_args(Platform)


def is_platform(name: str) -> TypeGuard[Platform]:
    """``name`` is one of the platforms (so it can look up a map keyed by :data:`Platform`)."""
    return name in PLATFORMS


CRON_EXAMPLE = "0 9 * * mon"


def validation_context(communities: list[str]) -> dict[str, Any]:
    """What the checks below read: the configured community slugs, and a list to collect warnings in."""
    return {"communities": communities, "warnings": []}


def warn(info: ValidationInfo, message: str) -> None:
    """Record a warning about this field for check-config; outside a config check there is no one to tell."""
    context = info.context
    if isinstance(context, dict) and isinstance(context.get("warnings"), list):
        context["warnings"].append(f"{info.field_name}: {message}")


def _known_communities(value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
    context = info.context if isinstance(info.context, dict) else {}
    communities = context.get("communities")
    if communities is None:
        return value
    for slug in value:
        if slug not in communities:
            raise ValueError(
                f"no community with slug {slug!r}{did_you_mean(slug, communities)} "
                f"(communities: {', '.join(communities)})"
            )
    return value


def matrix_room(room: str) -> str:
    """A Matrix room id or alias, as copbot can join and post to it; raises ValueError for anything else."""
    # Room ids of room version 12 have no ":server" part (!opaque); aliases always do.
    is_id = room.startswith("!") and len(room) > 1
    is_alias = room.startswith("#") and ":" in room
    if not (is_id or is_alias):
        raise ValueError(f"{room!r} is neither a room id (!abc or !abc:server) nor an alias (#name:server)")
    return room


DISCORD_CHANNEL_EXAMPLE = "345678901234567890"


def _rooms_a_platform_can_post_to(value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """A Matrix room that is neither id nor alias, or a Discord channel by name (copbot posts to a channel
    id), would otherwise be found at the first welcome or digest, as a post that never arrives."""
    for slug, rooms in value.items():
        for platform, room in rooms.items():
            where = f"the {platform} room of {slug}, {room!r},"
            if platform == "matrix":
                try:
                    matrix_room(room)
                except ValueError as error:
                    raise ValueError(f"{where} {str(error).removeprefix(repr(room) + ' ')}") from None
            if platform == "discord" and not (room.isdigit() and 15 <= len(room) <= 21):
                like = f'like discord = "{DISCORD_CHANNEL_EXAMPLE}"'
                raise ValueError(f"{where} must be a channel id (15 to 21 digits), {like}")
    return value


PerCommunity = AfterValidator(_known_communities)
"""For a table keyed by community slug, ``Annotated[dict[str, X], PerCommunity]``: a misspelt slug would
otherwise be a setting silently never used."""

RoomMap = Annotated[
    dict[str, dict[Platform, str]],
    PerCommunity,
    AfterValidator(_rooms_a_platform_can_post_to),
    Field(examples=[{"water": {"matrix": "#water:example.org"}}]),
]
"""community slug → platform → room id, e.g. ``{ water = { matrix = "!abc:example.org" } }``."""


def _cron(value: str) -> str:
    if not value.strip():
        return ""
    from apscheduler.triggers.cron import CronTrigger  # already loaded by the scheduler; lazy for tests

    try:
        CronTrigger.from_crontab(value)
    except ValueError as error:
        raise ValueError(
            f"{value!r} is not a cron schedule ({error}); write minute hour day month weekday, "
            f"like {CRON_EXAMPLE!r} for Mondays 09:00"
        ) from None
    return value


CronSchedule = Annotated[str, AfterValidator(_cron), Field(examples=[CRON_EXAMPLE])]
"""A crontab line (``0 9 * * mon``), or "" for none."""
