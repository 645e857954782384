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


RoomMap = Annotated[
    dict[str, dict[Platform, str]],
    AfterValidator(_known_communities),
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
