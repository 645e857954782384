"""``COPBOT_…`` environment variables as settings values, shaped like the file's.

``COPBOT_WEB__PORT=9090`` is ``{"web": {"port": "9090"}}``: the prefix is cut, ``__`` separates nested
keys, names are case-insensitive (keys come out lower-case), and a value meant for a list or a table — or a
table of settings, like ``COPBOT_WEB='{"port": 9090}'`` — is read as JSON (variables for a table and for
its keys are merged, the keys winning); in a plugin's table, whose types are the plugin's, text that is a
JSON list or table. Other values stay text, which validation converts (the file's values are checked
strictly, a variable's are text). Only variables that start with the name of a setting are read:
``COPBOT_CONFIG`` and the tests' own ``COPBOT_…`` variables are not settings.

This is what pydantic-settings' environment source did for copbot, without its import (~1.6 MB of memory
for the life of the process, for a job done once at start-up).
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

DELIMITER = "__"


class BrokenJSON(ValueError):
    """A variable for a list or a table does not hold JSON; ``location`` is its key path (``("discord",
    "command_guilds")`` for ``COPBOT_DISCORD__COMMAND_GUILDS``), so the message names that variable."""

    def __init__(self, location: tuple[str, ...]) -> None:
        super().__init__(f"the variable for {'.'.join(location)!r} is not valid JSON")
        self.location = location


class _Unknown:
    """The type of a key no setting has (a typo, or a list's index): its value stays text."""


def environment_values(model: type[BaseModel], environ: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """The values ``environ`` gives ``model``'s fields; raises :class:`BrokenJSON` for the first variable
    meant for a list or a table that holds no JSON."""
    start = prefix.lower()
    variables = {name.lower(): value for name, value in environ.items() if name.lower().startswith(start)}
    found: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        variable = start + name
        annotation = info.annotation
        complex_field = _is_complex(annotation)
        value: Any = None
        if variable in variables:
            value = variables[variable]
            if complex_field:
                value = _json(value, (name,))
                if value is None:
                    continue  # JSON null: as if unset
        nested = {
            key[len(variable) + len(DELIMITER) :]: text
            for key, text in variables.items()
            if key.startswith(variable + DELIMITER)
        }
        if nested and complex_field and (value is None or isinstance(value, dict)):
            exploded = _explode(nested, annotation, name)
            value = exploded if value is None else _deep_merge(value, exploded)
        if value is not None:
            found[name] = value
    return found


def _explode(nested: Mapping[str, str], annotation: Any, field: str) -> dict[str, Any]:
    """``{"port": "9090", "tls__cert": "x"}`` → ``{"port": "9090", "tls": {"cert": "x"}}``, JSON read where
    the key's type is a list or a table."""
    result: dict[str, Any] = {}
    for path, text in nested.items():
        *keys, last = path.split(DELIMITER)
        into: Any = result
        target = annotation
        for key in keys:
            target = _sub_annotation(target, key)
            if isinstance(into, dict):
                into = into.setdefault(key, {})
        target = _sub_annotation(target, last)
        value: Any = text
        if text and _is_complex(target):
            value = _json(text, (field, *keys, last))
        elif target is Any:
            value = _json_or_text(text)
        if isinstance(into, dict):
            into[last] = value
    return result


def _json_or_text(text: str) -> Any:
    """A key of a plugin's table, whose type is the plugin's (not known here): JSON for a list or a table
    (``COPBOT_PLUGINS__MEETINGS__REMINDERS='["2h"]'``) is read as one, anything else stays text — a welcome
    text that starts with ``{member}`` is no JSON."""
    if text.lstrip()[:1] not in ("[", "{"):
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, list | dict) else text


def _json(text: str, location: tuple[str, ...]) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise BrokenJSON(location) from None


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        merged[key] = (
            _deep_merge(below, value) if isinstance(value, dict) and isinstance(below, dict) else value
        )
    return merged


def _members(annotation: Any) -> tuple[Any, ...] | None:
    """The types of a union (``X | None`` included), or None for any other annotation."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return tuple(arg for arg in typing.get_args(annotation) if arg is not type(None))
    return None


def _is_complex(annotation: Any) -> bool:
    """A list, tuple, set, table or model (or an optional one): written as JSON in a variable."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _is_complex(typing.get_args(annotation)[0])
    members = _members(annotation)
    if members is not None:
        return any(_is_complex(member) for member in members)
    kind = typing.get_origin(annotation) or annotation
    if not isinstance(kind, type) or issubclass(kind, str | bytes):
        return False
    return issubclass(kind, BaseModel | Mapping | list | tuple | set | frozenset)


def _sub_annotation(annotation: Any, key: str) -> Any:
    """The type of ``key`` inside ``annotation``: a model's field, a table's values (Any inside Any, as in a
    plugin's table); else unknown."""
    if annotation is Any:
        return Any
    if typing.get_origin(annotation) is typing.Annotated:
        return _sub_annotation(typing.get_args(annotation)[0], key)
    members = _members(annotation)
    if members is not None:
        for member in members:
            found = _sub_annotation(member, key)
            if found is not _Unknown:
                return found
        return _Unknown
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        info = annotation.model_fields.get(key)
        return info.annotation if info is not None else _Unknown
    origin = typing.get_origin(annotation)
    if isinstance(origin, type) and issubclass(origin, Mapping):
        arguments = typing.get_args(annotation)
        return arguments[1] if len(arguments) == 2 else Any
    return _Unknown
