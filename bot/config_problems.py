"""Validation errors in plain words, each on one line that starts with the key it is about.

Operators read these, not Python programmers: "Input should be a valid integer" means nothing to someone
editing a TOML file, "must be a whole number" does. The key is named the way the operator wrote it: its
dotted path in the file, or the environment variable (``COPBOT_WEB__PORT``) when the value came from there.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

Location = tuple[int | str, ...]
Label = Callable[[Location], str]

ENV_PREFIX = "COPBOT_"

SECRET_KEYS = frozenset({"password", "access_token", "token"})
"""Keys whose value is never repeated in a message: error output ends up in logs and chat channels."""

_KIND_WORDS: dict[str, str] = {
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text (in quotes)",
    "list_type": "must be a list",
    "dict_type": "must be a table of key = value pairs",
    "model_type": "must be a table of key = value pairs",
    "model_attributes_type": "must be a table of key = value pairs",
    "missing": "missing required value",
    "url_parsing": "must be a web address like https://example.org",
}

_PATTERN_WORDS: dict[str, str] = {
    r"^[a-z0-9][a-z0-9-]{0,63}$": "must be a short key of lower-case letters, digits and '-'",
    r"^\d{15,21}$": "must be a Discord id: 15 to 21 digits",
    r"^(\d{15,21})?$": "must be a Discord id (15 to 21 digits) or empty",
    r"^https?://": "must start with https:// (or http://)",
    r"^wss?://": "must start with wss:// (or ws://)",
    r"^@[^:]+:.+$": "must be a Matrix user id",
    r"^(DEBUG|INFO|WARNING|ERROR)$": "must be one of DEBUG, INFO, WARNING, ERROR",
}


def dotted(location: Location, *, nested: bool = False) -> str:
    """``communities[0].slug``; ``nested``: a place inside a key already named (``[0].slug``, or '')."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path or nested else str(part))
    return path or ("" if nested else "(top level)")


def not_json(model: type[BaseModel], location: Location) -> str:
    """The line for a variable meant for a list or a table that holds no JSON, with that variable right."""
    name = env_name(location)
    return f"{name}: lists and tables in environment variables are written as JSON" + _like(
        model, location, name, exact_variable=True
    )


def env_name(location: Location) -> str:
    """The environment variable for a key: ``("web", "port")`` → ``COPBOT_WEB__PORT``."""
    return ENV_PREFIX + "__".join(str(part).upper() for part in location)


def did_you_mean(typed: str, choices: Iterable[str]) -> str:
    """' — did you mean X?' for a near miss, else ''; a suggestion is only worth giving when it is close."""
    import difflib  # on use: not loaded at start-up (memory)

    close = difflib.get_close_matches(typed, list(choices), n=1, cutoff=0.6)
    return f" — did you mean {close[0]}?" if close else ""


def describe(
    item: Any, *, model: type[BaseModel] | None, prefix: Location = (), label: Label = dotted
) -> str:
    """One pydantic error as ``key: reason``; ``prefix`` places a nested model (a plugin table) in the file.

    Why not pydantic's own text: operators edit TOML, and "Input should be a valid integer" is Python talk.
    """
    location: Location = tuple(item["loc"])
    if location and location[-1] == "[key]":  # a dict key that is not allowed: name the key itself
        location = location[:-1]
    key = label(prefix + location)
    kind = item["type"]
    if kind == "extra_forbidden":
        hint = _nearest_key(model, prefix, location, in_environment=key == env_name(prefix + location))
        return f"{key}: unknown key{hint}"
    if kind == "list_type" and isinstance(item.get("input"), dict) and _list_of_tables(model, location):
        # [communities] written for [[communities]]: 'like ["a", "b"]' would show the wrong fix
        if key.startswith(ENV_PREFIX):  # and in a variable, the fix is JSON, not brackets
            like = _like(model, location, key, exact_variable=key == env_name(prefix + location))
            each = f"a table for each {_singular(location)}"
            return f"{key}: must be a JSON list with {each}{like} (got one table)"
        table = dotted(prefix + location)
        block = f"a block headed [[{table}]], with two brackets"
        return f"{key}: each {_singular(location)} is {block} (got one [{table}] table)"
    reason = _reason(kind, item)
    if _quoted(kind, item.get("input")):
        reason += ", without quotes"
    if kind not in _EXPLAINED:
        like = _like(model, location, key, exact_variable=key == env_name(prefix + location))
        reason += like or (', like ["a", "b"]' if kind == "list_type" else "")
    if kind not in ("value_error", "assertion_error", "missing") and _worth_repeating(item, location):
        given = item["input"]
        reason += f" (got {toml_value(given) if isinstance(given, bool) else repr(given)})"
    return f"{key}: {reason}"


_EXPLAINED = frozenset({"value_error", "assertion_error", "literal_error", "enum"})
"""Kinds whose reason already shows what is right: a check's own words (with its example), or the choices."""


_SWITCH_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "1", "0"})


def _quoted(kind: str, given: Any) -> bool:
    """A switch or a number written in quotes (``enabled = "yes"``, ``port = "8080"``): TOML has types,
    and the file is read strictly, so the fix is to drop the quotes (and say true or false)."""
    if not isinstance(given, str):
        return False
    if kind == "bool_type":
        return given.strip().lower() in _SWITCH_WORDS
    if kind in ("int_type", "float_type"):
        try:
            float(given)
        except ValueError:
            return False
        return True
    return False


def _like(model: type[BaseModel] | None, location: Location, key: str, *, exact_variable: bool) -> str:
    """', like port = 8080': the key written right, as the operator writes it — a line of TOML, a variable
    (``COPBOT_WEB__PORT=8080``, JSON for a list or a table) or, inside a variable's JSON, a JSON pair."""
    found = example(model, location)
    if found is None:
        return ""
    name, value = found
    if exact_variable:
        return f", like {key}={_shell_word(value)}"
    if key.startswith(ENV_PREFIX):
        return f", like {json.dumps(name)}: {json.dumps(value, ensure_ascii=False)}"
    return f", like {_toml_key(name)} = {toml_value(value)}"


def example(model: type[BaseModel] | None, location: Location) -> tuple[str, Any] | None:
    """A correct ``(key, value)`` for the key at ``location`` in ``model``, or None when there is none.

    The value is the field's ``examples`` (declared where the default shows nothing, like ``moderators``),
    else its default, else ``true`` for a switch. Below a field, an entry of a table keeps the operator's own
    key (``rooms.water`` → ``water = { matrix = … }``); an item of a list shows the whole list.
    """
    annotation: Any = model
    named: tuple[str, FieldInfo] | None = None
    below: list[int | str] = []
    for part in location:
        current = model_in(annotation) if not isinstance(part, int) else None
        info = current.model_fields.get(part) if current is not None and isinstance(part, str) else None
        if info is not None and isinstance(part, str):
            named, below, annotation = (part, info), [], info.annotation
        else:
            below.append(part)
            annotation = _inside(annotation, part)
    if named is None:
        return None
    name, value = named[0], _field_example(named[1])
    for part in below:
        if isinstance(part, int) or not isinstance(value, Mapping) or not value:
            return (named[0], _field_example(named[1])) if value is not None else None
        name, value = str(part), value.get(part, next(iter(value.values())))
    return None if value is None else (name, value)


def _field_example(info: FieldInfo) -> Any:
    if info.examples:
        return info.examples[0]
    try:
        default = info.get_default(call_default_factory=True)
    except ValueError:  # a factory made from the other keys, which an example cannot know
        default = PydanticUndefined
    if isinstance(default, BaseModel):
        default = default.model_dump(exclude_defaults=True)
    if default is not PydanticUndefined and default not in (None, "", [], {}):
        return default
    if bool in (info.annotation, *typing.get_args(info.annotation)):
        return True
    inner = model_in(info.annotation)
    if inner is None or typing.get_origin(info.annotation) is list:
        return None
    required = {
        key: _field_example(field) for key, field in inner.model_fields.items() if field.is_required()
    }
    return required if required and None not in required.values() else None


def _inside(annotation: Any, part: int | str) -> Any:
    """The type one step into ``annotation``: a list's item, a table's value (Any when unknown)."""
    for member in (annotation, *typing.get_args(annotation)):
        origin = typing.get_origin(member)
        arguments = typing.get_args(member)
        if isinstance(part, int) and origin is list and arguments:
            return arguments[0]
        if not isinstance(part, int) and origin is dict and len(arguments) == 2:
            return arguments[1]
    return Any


def toml_value(value: Any) -> str:
    """``value`` as TOML writes it inline: ``true``, ``"text"``, ``["a", "b"]``, ``{ core = 50 }``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        pairs = ", ".join(f"{_toml_key(str(key))} = {toml_value(item)}" for key, item in value.items())
        return f"{{ {pairs} }}" if pairs else "{}"
    return json.dumps(value, ensure_ascii=False, default=str)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _shell_word(value: Any) -> str:
    """``value`` as a variable holds it: text as it is, lists and tables as JSON; quoted for a shell."""
    import shlex  # on use: only a bad variable needs it

    if isinstance(value, bool):
        return "true" if value else "false"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return shlex.quote(text)


def _list_of_tables(model: type[BaseModel] | None, location: Location) -> bool:
    """Whether the key at ``location`` in ``model`` is a list of tables (``[[communities]]`` blocks)."""
    parent = model
    for part in location[:-1]:
        if isinstance(part, int):
            continue
        field = parent.model_fields.get(part) if parent is not None else None
        parent = model_in(field.annotation) if field is not None else None
    field = parent.model_fields.get(str(location[-1])) if parent is not None and location else None
    if field is None:
        return False
    annotation = field.annotation
    return typing.get_origin(annotation) is list and model_in(annotation) is not None


def _singular(location: Location) -> str:
    """``communities`` → ``community``: what one block of a list of tables is."""
    name = str(location[-1])
    return name[:-3] + "y" if name.endswith("ies") else name.removesuffix("s")


def _nearest_key(
    model: type[BaseModel] | None, prefix: Location, location: Location, *, in_environment: bool
) -> str:
    """' — did you mean port?' for a misspelt key; for a variable, the variable it should have been; with no
    near miss, the keys the table takes, which are few enough to list."""
    if not location:
        return ""
    import difflib  # on use: not loaded at start-up (memory)

    keys = known_keys(model, location[:-1])
    near = difflib.get_close_matches(str(location[-1]), keys, n=1, cutoff=0.6)
    if not near:
        return f" (keys here: {', '.join(keys)})" if keys else ""
    named = env_name((*prefix, *location[:-1], near[0])) if in_environment else near[0]
    return f" — did you mean {named}?"


def _reason(kind: str, item: Any) -> str:
    context = item.get("ctx") or {}
    if kind in _KIND_WORDS:
        return _KIND_WORDS[kind]
    if kind == "value_error":
        return str(item["msg"]).removeprefix("Value error, ")
    if kind == "assertion_error":
        return str(item["msg"]).removeprefix("Assertion failed, ")
    if kind == "string_pattern_mismatch":
        pattern = str(context.get("pattern", ""))
        return _PATTERN_WORDS.get(pattern, f"does not have the expected form ({pattern})")
    if kind in ("literal_error", "enum"):
        return f"must be one of {context.get('expected', '')}"
    return _bounds(kind, context) or str(item["msg"])


def _bounds(kind: str, context: dict[str, Any]) -> str | None:
    if kind == "greater_than_equal":
        return f"must be at least {context['ge']}"
    if kind == "greater_than":
        return f"must be more than {context['gt']}"
    if kind == "less_than_equal":
        return f"must be at most {context['le']}"
    if kind == "less_than":
        return f"must be less than {context['lt']}"
    if kind == "string_too_short":
        least = context.get("min_length", 1)
        return "must not be empty" if least == 1 else f"must have at least {least} characters"
    if kind == "string_too_long":
        return f"must have at most {context.get('max_length')} characters"
    if kind == "too_short":
        return f"must have at least {context.get('min_length')} items"
    if kind == "too_long":
        return f"must have at most {context.get('max_length')} items"
    return None


def _worth_repeating(item: Any, location: Location) -> bool:
    given = item.get("input")
    secret = any(isinstance(part, str) and part in SECRET_KEYS for part in location)
    return not secret and not isinstance(given, dict | list) and len(repr(given)) <= 80


def known_keys(model: type[BaseModel] | None, location: Sequence[int | str]) -> list[str]:
    """The keys a table at ``location`` inside ``model`` accepts, for "did you mean"."""
    current = model
    for part in location:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if current is not None else None
        current = model_in(field.annotation) if field is not None else None
    return list(current.model_fields) if current is not None else []


def model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``X | None`` or ``list[X]``; None for plain values."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = model_in(argument)
        if found is not None:
            return found
    return None
