"""CommandSpecs → Discord application commands, and an interaction's options → the spec's raw values.

Pure functions, no discord.py import: Discord's limits are checked here when plugins load (an error names
the offending command), and the payload's hash decides whether the command set must be synced at all.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from bot.commands import CommandSpec, Kind, OptionSpec, SpecError
from bot.suggest import Suggestion
from bot.zones import complete_zones

NAME = re.compile(r"^[-_\w]{1,32}$")
MAX_OPTIONS = 25
MAX_DESCRIPTION = 100
MAX_CHOICES = 25
MANAGE_GUILD = 1 << 5

SUB_COMMAND, SUB_COMMAND_GROUP, STRING, INTEGER, BOOLEAN, USER = 1, 2, 3, 4, 5, 6
DISCORD_INT_LIMIT = 2**53
_TYPES = {
    Kind.TEXT: STRING,
    Kind.REST: STRING,
    Kind.DURATION: STRING,
    Kind.TIME: STRING,
    Kind.CHOICE: STRING,
    Kind.INT: INTEGER,
    Kind.FLAG: BOOLEAN,
    Kind.MEMBER: USER,
    Kind.ZONE: STRING,
}
_HINTS = {
    Kind.DURATION: "a duration like 90m, 2h, 3d",
    Kind.TIME: "a time like tomorrow 15:00, or YYYY-MM-DD 15:00",
    Kind.MEMBER: "a member",
    Kind.ZONE: "a time zone like Europe/Amsterdam",
}


def describe(text: str, fallback: str) -> str:
    text = " ".join((text or fallback).split())
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"


def _check_name(command: str, name: str, what: str) -> None:
    if not NAME.match(name) or name != name.lower():
        raise SpecError(
            f"command {command!r}: {what} {name!r} must be 1–32 lowercase letters, digits, - or _"
        )


def option_payload(spec: CommandSpec, option: OptionSpec) -> dict[str, Any]:
    _check_name(spec.name, option.name, "option")
    description = option.help or _HINTS.get(option.kind, option.name.replace("_", " "))
    if option.many:
        description = f"{description} (several: separate with spaces, quote phrases)"
    payload: dict[str, Any] = {
        "type": _TYPES[option.kind],
        "name": option.name,
        "description": describe(description, option.name),
        "required": option.required,
    }
    if option.kind is Kind.CHOICE and not option.many:
        if len(option.choices) > MAX_CHOICES:
            raise SpecError(
                f"command {spec.name!r}: option {option.name!r} has more than {MAX_CHOICES} choices"
            )
        named = dict(option.choice_names)
        payload["choices"] = [{"name": named.get(c, c), "value": c} for c in option.choices]
    if (option.kind is Kind.ZONE or option.suggested) and not option.many and "choices" not in payload:
        # offered as typed: ~600 IANA names, or a plugin's rows (see focused())
        payload["autocomplete"] = True
    if option.kind is Kind.INT and not option.many:
        # Discord's own bounds are ±2^53; within them, the client refuses out-of-range numbers itself.
        payload["min_value"] = max(option.minimum, -DISCORD_INT_LIMIT)
        payload["max_value"] = min(option.maximum, DISCORD_INT_LIMIT)
    return payload


def _leaf(spec: CommandSpec, name: str) -> dict[str, Any]:
    if len(spec.options) > MAX_OPTIONS:
        raise SpecError(
            f"command {spec.name!r} has {len(spec.options)} options; Discord allows {MAX_OPTIONS}"
        )
    options = [option_payload(spec, option) for option in spec.options]
    options.sort(key=lambda option: not option["required"])  # Discord wants required options first
    return {"name": name, "description": describe(spec.help, spec.name), "options": options}


BARE = "show"


def slash_name(spec: CommandSpec, groups: set[str]) -> tuple[str, ...]:
    """Discord cannot run a command that also has sub-commands: ``profile`` next to ``profile set``
    becomes ``/profile show``."""
    return (*spec.path, BARE) if len(spec.path) == 1 and spec.path[0] in groups else spec.path


def build_payload(specs: Sequence[CommandSpec], *, hide_mod_commands: bool = True) -> list[dict[str, Any]]:
    """The bulk-overwrite body: one-word commands, and groups (``poll create``) as sub-commands.

    ``hide_mod_commands``: a moderator-only command is offered by Discord only to members with Manage
    Server. Only right when that is the only way to moderate: Discord then never sends the command of a
    moderator by a configured role or by name, and copbot's own check (per member) never runs."""
    top: dict[str, dict[str, Any]] = {}
    groups = {spec.path[0] for spec in specs if len(spec.path) > 1}
    for spec in sorted(specs, key=lambda s: s.name):
        words = slash_name(spec, groups)
        for word in words:
            _check_name(spec.name, word, "name")
        if len(words) > 3:
            raise SpecError(f"command {spec.name!r}: Discord allows at most a group and a sub-command")
        if len(words) == 1:
            command = _leaf(spec, words[0])
            command["type"] = 1
            if spec.mod_only and hide_mod_commands:
                command["default_member_permissions"] = str(MANAGE_GUILD)
            top[words[0]] = command
            continue
        root = top.setdefault(
            words[0],
            {"type": 1, "name": words[0], "description": f"{words[0]} commands", "options": []},
        )
        parent = root
        if len(words) == 3:
            group = next((o for o in root["options"] if o["name"] == words[1]), None)
            if group is None:
                group = {
                    "type": SUB_COMMAND_GROUP,
                    "name": words[1],
                    "description": f"{words[1]}",
                    "options": [],
                }
                root["options"].append(group)
            parent = group
        sub = _leaf(spec, words[-1])
        sub["type"] = SUB_COMMAND
        parent["options"].append(sub)
        if len(parent["options"]) > MAX_OPTIONS:
            raise SpecError(f"group {words[0]!r} has more than {MAX_OPTIONS} sub-commands")
    return list(top.values())


def payload_hash(payload: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def invoked(data: dict[str, Any], known: Collection[str] = ()) -> tuple[str, dict[str, Any]]:
    """The full command name (``poll create``) and the leaf options by name, from interaction data."""
    name, options = _leaf_options(data, known)
    return name, {option["name"]: option.get("value") for option in options}


def _leaf_options(data: dict[str, Any], known: Collection[str]) -> tuple[str, list[dict[str, Any]]]:
    """The full command name and the options given to it, past its group and sub-command."""
    words = [data["name"]]
    options: list[dict[str, Any]] = data.get("options") or []
    while options and options[0].get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP):
        words.append(options[0]["name"])
        options = options[0].get("options") or []
    name = " ".join(words)
    if words[-1] == BARE and name not in known and len(words) == 2:
        name = words[0]
    return name, options


def focused(
    specs: Mapping[str, CommandSpec], data: dict[str, Any]
) -> tuple[CommandSpec, OptionSpec, str] | None:
    """The command, the option being typed in an autocomplete interaction and what is typed so far (at
    most 100 characters, Discord's limit), or None for an option copbot does not complete."""
    name, options = _leaf_options(data, specs)
    typing = next((option for option in options if option.get("focused")), None)
    spec = specs.get(name)
    if typing is None or spec is None:
        return None
    option = next((o for o in spec.options if o.name == typing["name"]), None)
    if option is None or not (option.kind is Kind.ZONE or option.suggested):
        return None
    return spec, option, str(typing.get("value") or "")[:100]


def zone_suggestions(typed: str) -> list[Suggestion]:
    """The time zones that fit a zone being typed, at most :data:`MAX_CHOICES` (Discord's limit); a
    plugin's suggestions for its ids come through the pipeline instead (see discord_interactions)."""
    return [Suggestion(zone, zone) for zone in complete_zones(typed, MAX_CHOICES)]
