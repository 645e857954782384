"""A command's signature is its schema.

The registry reads each handler's signature once and builds a :class:`CommandSpec`. From that one
declaration follow the text parser (Matrix, console, Discord prefix), ``help`` and Discord's slash commands:
positional parameters are arguments, keyword-only parameters are ``--options``, ``bool`` keyword-only
parameters are ``--flags``, ``X | None = None`` is optional, ``Literal[...]``/``Enum`` are choices,
``list[X]`` takes several values, and :data:`Text` takes the rest of the line as typed.

The words of a typed line come from :mod:`bot.tokens`, and :mod:`bot.arguments` reads them against a spec
into the handler's keyword arguments.
"""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, get_args, get_origin

from bot.model import Member


def command_body(text: str, prefix: str) -> str | None:
    """What follows the prefix when ``text`` is a command to copbot (the prefix, then no space), else None:
    the pipeline's reading, shared with plugins that must tell commands from what members say."""
    stripped = text.lstrip()
    if stripped.startswith(prefix) and len(stripped) > len(prefix) and not stripped[len(prefix)].isspace():
        return stripped[len(prefix) :]
    return None


class Rest:
    """Marker: the parameter takes the rest of the line exactly as typed, quotes included."""


Text = Annotated[str, Rest()]
"""A parameter of this type takes the rest of the line (``share story "T" some long text``)."""


class Heading:
    """Marker: a title before a rest-of-line text. Typed without quotes, it is more than its first word:
    the text's first words, up to its first link, #tag or full stop (at most :data:`HEADING_LENGTH`
    characters), and the text is then all of it (``share story We fixed the main overnight #pipes``)."""


Title = Annotated[str, Heading()]
HEADING_LENGTH = 80


class TimeOfDay:
    """Marker: the time must say its time of day. A day alone (``friday``, ``3 december``) reads as its
    midnight, or ``tomorrow`` as this very minute tomorrow: fine for when a poll closes, never what
    someone means when planning a meeting — they are asked for the time instead of getting a guess."""


Start = Annotated[datetime, TimeOfDay()]
"""When something is planned to happen: a date and a time of day (``friday 15:00``, ``in 2h``)."""


class ThroughDay:
    """Marker: a day alone (``tomorrow``, ``30 june``, ``2027-06-30``) means through the end of that day in
    the caller's zone, as "until friday" does in speech; a time of day given is kept as typed."""


LastDay = Annotated[datetime, ThroughDay()]
"""The last day something lasts (``--until 2027-06-30``): its meetings on that day included."""


@dataclass(frozen=True, slots=True)
class Range:
    """Marker: the bounds an ``int`` parameter accepts (``Annotated[int, Range(1, 20)]``)."""

    minimum: int
    maximum: int


class ZoneName:
    """Marker: the parameter is an IANA time zone, checked and spelt canonically (``europe/amsterdam``)."""


Zone = Annotated[str, ZoneName()]
"""A time zone. A command with a ``tz`` option reads its times in that zone when it is given."""

INT64_MAX = 2**63 - 1
Id = Annotated[int, Range(1, INT64_MAX)]
"""A stored row's number (a poll, a meeting, an item): positive, and fits the database's 64 bits."""

Duration = timedelta
When = datetime


class Kind(enum.Enum):
    TEXT = "text"
    INT = "int"
    FLAG = "flag"
    DURATION = "duration"
    TIME = "time"
    MEMBER = "member"
    CHOICE = "choice"
    REST = "rest"
    ZONE = "zone"


_PLACEHOLDER = {
    Kind.DURATION: "duration",
    Kind.TIME: "when",
    Kind.MEMBER: "@member",
    Kind.ZONE: "zone",
}


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One typed argument or option of a command."""

    name: str
    kind: Kind
    positional: bool
    required: bool
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] = ()
    many: bool = False
    enum_type: type[enum.Enum] | None = None
    minimum: int = -INT64_MAX
    maximum: int = INT64_MAX
    heading: bool = False
    time_of_day: bool = False
    through_day: bool = False
    suggested: bool = False
    """The plugin suggests values as the option is typed (:func:`bot.plugin.suggests`)."""
    choice_names: tuple[tuple[str, str], ...] = ()
    """(choice, the name members see) for choices the config renames (:meth:`Plugin.choice_names`)."""

    def choice_of(self, text: str) -> str | None:
        """The choice ``text`` names, as the choice itself or by the name members see; None if none."""
        lowered = text.strip().lower()
        if lowered in self.choices:
            return lowered
        return next((choice for choice, name in self.choice_names if name.lower() == lowered), None)

    def shown_choices(self) -> list[str]:
        """The choices as members know them: a renamed one by its name, with the choice beside it."""
        names = dict(self.choice_names)
        return [f"{names[choice]} ({choice})" if choice in names else choice for choice in self.choices]

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def placeholder(self) -> str:
        if self.kind is Kind.CHOICE:
            return "|".join(self.choices)
        return _PLACEHOLDER.get(self.kind, self.name.replace("_", "-"))

    def usage(self) -> str:
        if self.positional:
            text = f"<{self.placeholder()}>" if self.kind is not Kind.CHOICE else self.placeholder()
            if self.many:
                text += "…"
            if self.kind is Kind.REST:
                text = f"<{self.name.replace('_', ' ')}…>"
            return text if self.required else f"[{text}]"
        if self.kind is Kind.FLAG:
            return f"[{self.flag}]"
        text = f"{self.flag} <{self.placeholder()}>"
        return text if self.required else f"[{text}]"


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """Everything a platform needs to offer, parse and explain a command."""

    name: str
    help: str
    options: tuple[OptionSpec, ...]
    mod_only: bool = False
    examples: tuple[str, ...] = ()
    plugin: str = ""
    owner_only: bool = False
    handler_name: str = ""
    details: str = ""
    reads_activity: bool = False
    """The journal's buffered activity is written before the handler runs (see ``bot.plugin.command``)."""

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.name.split())

    def usage(self, prefix: str = "!") -> str:
        parts = [f"{prefix}{self.name}", *(option.usage() for option in self.options)]
        return " ".join(parts)

    def example(self, prefix: str = "!") -> str:
        return f"{prefix}{self.examples[0]}" if self.examples else self.usage(prefix)


# --- spec derivation -----------------------------------------------------------------------------------


class SpecError(TypeError):
    """A command declaration copbot cannot turn into a schema; raised when plugins load, never at runtime."""


_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def derive_spec(
    func: Callable[..., Any],
    *,
    name: str,
    help: str,
    mod_only: bool = False,
    examples: Sequence[str] = (),
    plugin: str = "",
    owner_only: bool = False,
    reads_activity: bool = False,
) -> CommandSpec:
    """Build the spec from ``func(self, ctx, ...)``: the parameters after the context are the options."""
    for word in name.split():
        if not _NAME.match(word):
            raise SpecError(f"command {name!r}: {word!r} must be 1–32 lowercase letters, digits or '-'")
    signature = inspect.signature(func)
    hints = typing.get_type_hints(func, include_extras=True)
    docs = _param_docs(func.__doc__ or "")
    params = list(signature.parameters.values())
    if params and params[0].name == "self":
        params = params[1:]
    if not params:
        raise SpecError(f"command {name!r}: the handler must take the context as its first parameter")
    options: list[OptionSpec] = []
    for param in params[1:]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise SpecError(f"command {name!r}: *args/**kwargs cannot be typed options; use list[...]")
        if param.name not in hints:
            raise SpecError(f"command {name!r}: parameter {param.name!r} needs a type hint")
        options.append(_option(name, param, hints[param.name], docs.get(param.name, "")))
    _check_order(name, options)
    summary = help or (inspect.getdoc(func) or "").split("\n\n")[0].strip()
    details = _details(inspect.getdoc(func) or "")
    return CommandSpec(
        name=name,
        help=summary,
        options=tuple(options),
        mod_only=mod_only,
        examples=tuple(examples),
        plugin=plugin,
        owner_only=owner_only,
        handler_name=func.__name__,
        details=details,
        reads_activity=reads_activity,
    )


def _option(command: str, param: inspect.Parameter, hint: Any, doc: str) -> OptionSpec:
    positional = param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD)
    has_default = param.default is not inspect.Parameter.empty
    default = param.default if has_default else None
    annotated_rest = False
    annotated_zone = False
    heading = False
    time_of_day = False
    through_day = False
    bounds: Range | None = None
    hint, optional = _unwrap_optional(hint)
    if get_origin(hint) is Annotated:
        base, *extras = get_args(hint)
        annotated_rest = any(isinstance(extra, Rest) for extra in extras)
        annotated_zone = any(isinstance(extra, ZoneName) for extra in extras)
        heading = any(isinstance(extra, Heading) for extra in extras)
        time_of_day = any(isinstance(extra, TimeOfDay) for extra in extras)
        through_day = any(isinstance(extra, ThroughDay) for extra in extras)
        bounds = next((extra for extra in extras if isinstance(extra, Range)), None)
        hint, optional_inner = _unwrap_optional(base)
        optional = optional or optional_inner
    many = False
    if get_origin(hint) in (list, Sequence, tuple) or hint is list:
        args = get_args(hint)
        if not args:
            raise SpecError(f"command {command!r}: {param.name!r} must say what the list holds")
        hint = args[0]
        many = True
    kind, choices, enum_type = _kind_of(command, param.name, hint)
    if annotated_zone:
        kind = Kind.ZONE
    if annotated_rest:
        if not positional or many:
            raise SpecError(
                f"command {command!r}: rest-of-line {param.name!r} must be a plain positional str"
            )
        kind = Kind.REST
    if kind is Kind.FLAG:
        if positional:
            raise SpecError(f"command {command!r}: bool {param.name!r} must be keyword-only (a --flag)")
        return OptionSpec(param.name, Kind.FLAG, False, False, bool(default), doc)
    required = not has_default and not optional
    limits: dict[str, int] = {}
    if bounds is not None:
        if kind is not Kind.INT:
            raise SpecError(f"command {command!r}: Range on {param.name!r} needs an int")
        if not -INT64_MAX <= bounds.minimum <= bounds.maximum <= INT64_MAX:
            raise SpecError(f"command {command!r}: the Range of {param.name!r} must fit in 64 bits")
        limits = {"minimum": bounds.minimum, "maximum": bounds.maximum}
    if heading and (kind is not Kind.TEXT or not positional or many):
        raise SpecError(f"command {command!r}: Heading {param.name!r} must be a plain positional str")
    for marked, marker in ((time_of_day, "TimeOfDay"), (through_day, "ThroughDay")):
        if marked and kind is not Kind.TIME:
            raise SpecError(f"command {command!r}: {marker} on {param.name!r} needs a datetime")
    return OptionSpec(
        param.name,
        kind,
        positional,
        required,
        default,
        doc,
        choices,
        many,
        enum_type,
        minimum=limits.get("minimum", -INT64_MAX),
        maximum=limits.get("maximum", INT64_MAX),
        heading=heading,
        time_of_day=time_of_day,
        through_day=through_day,
    )


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [arg for arg in get_args(hint) if arg is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def _kind_of(command: str, name: str, hint: Any) -> tuple[Kind, tuple[str, ...], type[enum.Enum] | None]:
    if hint is bool:
        return Kind.FLAG, (), None
    if hint is str:
        return Kind.TEXT, (), None
    if hint is int:
        return Kind.INT, (), None
    if hint is timedelta:
        return Kind.DURATION, (), None
    if hint is datetime:
        return Kind.TIME, (), None
    if hint is Member:
        return Kind.MEMBER, (), None
    if get_origin(hint) is Literal:
        values = get_args(hint)
        if not all(isinstance(value, str) for value in values):
            raise SpecError(f"command {command!r}: choices of {name!r} must be strings")
        return Kind.CHOICE, tuple(values), None
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return Kind.CHOICE, tuple(str(member.value) for member in hint), hint
    raise SpecError(f"command {command!r}: parameter {name!r} has a type copbot cannot parse: {hint!r}")


def _check_order(command: str, options: list[OptionSpec]) -> None:
    positional = [option for option in options if option.positional]
    seen_optional = False
    for index, option in enumerate(positional):
        if (option.kind is Kind.REST or option.many) and index != len(positional) - 1:
            raise SpecError(f"command {command!r}: {option.name!r} takes several values and must come last")
        if not option.required:
            seen_optional = True
        elif seen_optional:
            raise SpecError(f"command {command!r}: required {option.name!r} follows an optional argument")


_ARGS_HEADER = re.compile(r"^\s*(Args|Arguments|Parameters):\s*$")
_ARG_LINE = re.compile(r"^\s+(\w+):\s*(.+)$")


def _param_docs(doc: str) -> dict[str, str]:
    """Option descriptions from a Google-style ``Args:`` section, as discord.py reads them."""
    found: dict[str, str] = {}
    inside = False
    for line in doc.splitlines():
        if _ARGS_HEADER.match(line):
            inside = True
            continue
        if inside:
            match = _ARG_LINE.match(line)
            if match:
                found[match.group(1)] = match.group(2).strip()
            elif line.strip() and not line.startswith((" ", "\t")):
                inside = False
    return found


def _details(doc: str) -> str:
    paragraphs = [p.strip() for p in doc.split("\n\n")[1:] if p.strip() and not _ARGS_HEADER.match(p)]
    return "\n".join(p for p in paragraphs if not p.startswith(("Args:", "Arguments:", "Parameters:")))
