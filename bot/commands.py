"""A command's signature is its schema.

The registry reads each handler's signature once and builds a :class:`CommandSpec`. From that one
declaration follow the text parser (Matrix, console, Discord prefix), ``help`` and Discord's slash commands:
positional parameters are arguments, keyword-only parameters are ``--options``, ``bool`` keyword-only
parameters are ``--flags``, ``X | None = None`` is optional, ``Literal[...]``/``Enum`` are choices,
``list[X]`` takes several values, and :data:`Text` takes the rest of the line as typed.
"""

from __future__ import annotations

import bisect
import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, get_args, get_origin

from bot.errors import UsageError
from bot.model import Member
from bot.timeparse import (
    DoubtfulTime,
    TimeParseError,
    parse_duration,
    parse_when,
    says_time_of_day,
    shown,
)
from bot.zones import UnknownZone, resolve_zone


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

_LINK_START = re.compile(r"(?:https?://|www\.)", re.IGNORECASE)


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
    )


def _option(command: str, param: inspect.Parameter, hint: Any, doc: str) -> OptionSpec:
    positional = param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD)
    has_default = param.default is not inspect.Parameter.empty
    default = param.default if has_default else None
    annotated_rest = False
    annotated_zone = False
    heading = False
    time_of_day = False
    bounds: Range | None = None
    hint, optional = _unwrap_optional(hint)
    if get_origin(hint) is Annotated:
        base, *extras = get_args(hint)
        annotated_rest = any(isinstance(extra, Rest) for extra in extras)
        annotated_zone = any(isinstance(extra, ZoneName) for extra in extras)
        heading = any(isinstance(extra, Heading) for extra in extras)
        time_of_day = any(isinstance(extra, TimeOfDay) for extra in extras)
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
    if time_of_day and kind is not Kind.TIME:
        raise SpecError(f"command {command!r}: TimeOfDay on {param.name!r} needs a datetime")
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
        **limits,
        heading=heading,
        time_of_day=time_of_day,
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


# --- tokenising ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    """One word as typed. ``unclosed`` holds the quote character of a group that never closed: that is an
    error only if the word is used as a value (a rest-of-line argument takes the raw text instead)."""

    text: str
    start: int
    quoted: bool = False
    unclosed: str = ""

    @property
    def is_option(self) -> bool:
        return (
            not self.quoted
            and self.text.startswith("--")
            and len(self.text) > 2
            and not self.text[2:3].isdigit()
        )

    @property
    def is_short_option(self) -> bool:
        """``-m``: not an option copbot has (options are written in full), so an error, not a value."""
        return not self.quoted and _SHORT_OPTION.match(self.text) is not None


_SHORT_OPTION = re.compile(r"^-[A-Za-z][A-Za-z-]*$")
# Quote pairs, the curly ones phones insert included. Single quotes double as apostrophes.
_OPENING = {'"': '"', "“": "”", "„": "“", "«": "»", "'": "'", "‘": "’", "’": "’"}
_APOSTROPHE_LIKE = {"'", "‘", "’"}
_ESCAPABLE = {'"', "'", "\\", " ", "\t", "“", "”", "‘", "’"}
_SPECIAL = re.compile("[" + re.escape("".join(_OPENING)) + r"\\]")
"""A line without these characters is plain words, split on whitespace (``\\S`` is ``not str.isspace``)."""
_PLAIN_WORD = re.compile(r"\S+")


def tokenize(line: str) -> list[Token]:
    """Shell-style words, with the apostrophes people write taken as letters.

    A quote groups words only where it opens a word and closes one (followed by a space or the end):
    ``"What's next?"`` is one word, ``l'eau``, ``O'Brien`` and ``Don't`` stay as typed, and a lone
    leading apostrophe (``'90s``) is a letter too. A double quote that never closes is remembered on its
    token (see :class:`Token`). A backslash escapes a quote, a space or a backslash.
    """
    if _SPECIAL.search(line) is None:  # most commands: no quote, no escape — plain words
        return [Token(word.group(), word.start()) for word in _PLAIN_WORD.finditer(line)]
    return _tokenize_quoted(line)


def _tokenize_quoted(line: str) -> list[Token]:
    """:func:`tokenize` for a line with quotes or backslashes (for any line, in fact: the same tokens)."""
    tokens: list[Token] = []
    index, length = 0, len(line)
    closers: dict[str, list[int]] = {}
    while index < length:
        while index < length and line[index].isspace():
            index += 1
        if index >= length:
            break
        start = index
        buffer: list[str] = []
        quoted = False
        unclosed = ""
        while index < length and not line[index].isspace():
            char = line[index]
            opens_word = index == start or (line.startswith("--", start) and line[index - 1] == "=")
            if char in _OPENING and opens_word:
                end = _closing(line, index, _OPENING[char], closers)
                if end is not None:
                    buffer.append(_unescape(line[index + 1 : end]))
                    quoted = index == start  # a quoted --option=value is still an option
                    index = end + 1
                    continue
                if char not in _APOSTROPHE_LIKE:
                    unclosed = char
                    buffer.append(_unescape(line[index + 1 :]))
                    index = length
                    break
            if char == "\\" and index + 1 < length and line[index + 1] in _ESCAPABLE:
                buffer.append(line[index + 1])
                index += 2
                continue
            buffer.append(char)
            index += 1
        tokens.append(Token("".join(buffer), start, quoted, unclosed))
    return tokens


def _closing(line: str, opening: int, closing: str, closers: dict[str, list[int]]) -> int | None:
    """Where the quote opened at ``opening`` closes: a ``closing`` character that ends a word.

    Where such characters are is found once per line (``closers``, by character): scanning the rest of the
    line for each opening quote took seconds on a long line of apostrophes (``'a 'a 'a …``)."""
    positions = closers.get(closing)
    if positions is None:
        positions = closers[closing] = _word_ends(line, closing)
    found = bisect.bisect_right(positions, opening)
    return positions[found] if found < len(positions) else None


def _word_ends(line: str, closing: str) -> list[int]:
    """The positions of ``closing`` that end a word and are not escaped, in order."""
    positions: list[int] = []
    end = line.find(closing)
    while end != -1:
        escaped = end > 0 and line[end - 1] == "\\" and closing in "\"'"
        ends_word = end + 1 >= len(line) or line[end + 1].isspace()
        if ends_word and not escaped:
            positions.append(end)
        end = line.find(closing, end + 1)
    return positions


def _unescape(text: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in _ESCAPABLE:
            out.append(text[index + 1])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def unquote_rest(text: str) -> str:
    """Rest-of-line text wrapped whole in one pair of quotes is the same text without them, so quoting
    behaves alike in every command (``experts "women's networks"`` = ``experts women's networks``)."""
    stripped = text.strip()
    tokens = tokenize(stripped)
    if len(tokens) == 1 and tokens[0].quoted and not tokens[0].unclosed:
        opener = stripped[0]
        if opener in _OPENING and stripped.endswith(_OPENING[opener]) and len(stripped) >= 2:
            return tokens[0].text
    return stripped


# --- parsing ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ParseEnv:
    """What parsing needs from the caller's situation: now, their zone, and how mentions look here."""

    now: datetime
    timezone: str = "UTC"
    resolve_member: Callable[[str], Member | None] = field(default=lambda _text: None)


def parse_arguments(
    spec: CommandSpec, line: str, env: ParseEnv, *, tokens: list[Token] | None = None
) -> dict[str, Any]:
    """Turn the text after the command's name into keyword arguments for its handler.

    Raises UsageError with one line saying what was wrong; the caller adds the usage example.
    """
    tokens = tokenize(line) if tokens is None else tokens
    env = _in_given_zone(spec, tokens, env)
    positional = [option for option in spec.options if option.positional]
    by_flag = {option.flag: option for option in spec.options if not option.positional}
    values: dict[str, Any] = {}
    pending: list[Token] = []
    index = 0
    options_done = False
    while index < len(tokens):
        token = tokens[index]
        slot = len(pending)
        if (
            positional
            and slot < len(positional)
            and positional[slot].kind is Kind.REST
            and not (token.is_option and not options_done)
        ):
            # The rest of the line — up to an option this command has, if one follows
            # (``repertoire search leak detection --kind tool``); other dashes are text.
            stop = _next_option(tokens, index + 1, by_flag, options_done)
            end = tokens[stop].start if stop is not None else len(line)
            values[positional[slot].name] = convert(
                positional[slot], unquote_rest(line[token.start : end]), env
            )
            pending.append(token)
            if stop is None:
                index = len(tokens)
                break
            index = stop
            continue
        if (
            positional
            and slot + 1 < len(positional)
            and positional[slot].heading
            and positional[slot + 1].kind is Kind.REST
            and not token.quoted
            and not (token.is_option and not options_done)
        ):
            run, cut = _heading_run(tokens, index, by_flag, options_done)
            if run > index + 1:  # more than one word: the heading, and the whole text after it
                words = " ".join(tokens[later].text for later in range(index, run))
                pending.append(Token(words.rstrip(".!") + ("…" if cut else ""), token.start))
                stop = _next_option(tokens, run, by_flag, options_done)
                end = tokens[stop].start if stop is not None else len(line)
                rest = positional[slot + 1]
                values[rest.name] = convert(rest, unquote_rest(line[token.start : end]), env)
                pending.append(token)
                index = stop if stop is not None else len(tokens)
                continue
        if not options_done and token.text == "--" and not token.quoted:
            options_done = True
            index += 1
            continue
        if token.is_option and not options_done:
            index = _take_option(spec, by_flag, tokens, index, values, env)
            continue
        if token.is_short_option and not options_done:
            raise UsageError(_unknown_option(token.text, by_flag))
        pending.append(token)
        index += 1
    _assign_positionals(spec, positional, pending, values, env)
    for option in spec.options:
        if option.name in values:
            continue
        if option.required:
            what = f"<{option.placeholder()}>" if option.positional else option.flag
            raise UsageError(f"{what} is missing")
        values[option.name] = option.default if not option.many or option.default is not None else []
    return values


def _next_option(
    tokens: list[Token], start: int, by_flag: dict[str, OptionSpec], options_done: bool
) -> int | None:
    """The index of the next option this command has, from ``start`` on; other dashes are text."""
    if options_done:
        return None
    return next(
        (
            later
            for later in range(start, len(tokens))
            if tokens[later].is_option and tokens[later].text.partition("=")[0] in by_flag
        ),
        None,
    )


def _heading_run(
    tokens: list[Token], index: int, by_flag: dict[str, OptionSpec], options_done: bool
) -> tuple[int, bool]:
    """Where a heading typed without quotes ends, and whether its length cut it short: before a link, a
    #tag, a quoted word or an option, after a word that ends a sentence, or before the word that would
    make it longer than HEADING_LENGTH."""
    end = index + 1
    length = len(tokens[index].text)
    while end < len(tokens) and not tokens[end - 1].text.endswith((".", "!", "?")):
        following = tokens[end]
        if (
            following.quoted
            or following.text.startswith("#")
            or _LINK_START.match(following.text) is not None
            or (not options_done and following.is_option and following.text.partition("=")[0] in by_flag)
        ):
            return end, False
        if length + 1 + len(following.text) > HEADING_LENGTH:
            return end, True
        length += 1 + len(following.text)
        end += 1
    return end, False


def _take_option(
    spec: CommandSpec,
    by_flag: dict[str, OptionSpec],
    tokens: list[Token],
    index: int,
    values: dict[str, Any],
    env: ParseEnv,
) -> int:
    token = tokens[index]
    flag, _, inline = token.text.partition("=")
    option = by_flag.get(flag)
    if option is None:
        raise UsageError(_unknown_option(flag, by_flag))
    if option.kind is Kind.FLAG:
        if inline:
            raise UsageError(f"{flag} is a switch and takes no value")
        if option.name in values:
            raise UsageError(f"{flag} is given twice")
        values[option.name] = True
        return index + 1
    if inline:
        raw_values = [Token(inline, token.start, False)]
        next_index = index + 1
    else:
        following = []
        cursor = index + 1
        while cursor < len(tokens) and not tokens[cursor].is_option:
            following.append(tokens[cursor])
            cursor += 1
        if not following:
            raise UsageError(f"{flag} needs a value <{option.placeholder()}>")
        _closed(following[0])
        if option.kind is Kind.TIME:
            value, used = _convert_time_greedy(option, following, env, max_words=4)
            _store(values, option, value)
            return index + 1 + used
        raw_values = [following[0]]
        next_index = index + 2
    for raw in raw_values:
        parts = [part for part in raw.text.split(",") if part.strip()] if option.many else [raw.text]
        for part in parts:
            _store(values, option, convert(option, part.strip(), env))
    return next_index


def _in_given_zone(spec: CommandSpec, tokens: list[Token], env: ParseEnv) -> ParseEnv:
    """``meeting schedule … 15:00 --tz America/New_York``: with a zone option given, every time of the
    command is read in that zone, wherever the option stands in the line."""
    zone_options = [o for o in spec.options if o.kind is Kind.ZONE and not o.positional and o.name == "tz"]
    if not zone_options:
        return env
    flag = zone_options[0].flag
    for index, token in enumerate(tokens):
        name, _, inline = token.text.partition("=")
        if token.is_option and name == flag:
            given = inline or (tokens[index + 1].text if index + 1 < len(tokens) else "")
            if given:
                zone = convert(zone_options[0], given, env)
                return ParseEnv(now=env.now, timezone=zone, resolve_member=env.resolve_member)
    return env


def _unknown_option(flag: str, by_flag: dict[str, OptionSpec]) -> str:
    """Name the option that was probably meant: a misspelling (--close) or a short form (-m)."""
    if not by_flag:
        return f"{flag} is not an option; this command takes none"
    guess: list[str] = []
    if not flag.startswith("--"):
        guess = [known for known in by_flag if known[2:3] == flag[1:2].lower()][:1]
    import difflib  # on use: not loaded at start-up (memory)

    guess = guess or difflib.get_close_matches(flag, list(by_flag), n=1, cutoff=0.6)
    if guess:
        return f"{flag} is not an option — did you mean {guess[0]}?"
    return f"{flag} is not an option (options: {', '.join(by_flag)})"


def _closed(token: Token) -> Token:
    """The token, if its quotes are closed; a word used as a value must not have an open quote."""
    if token.unclosed:
        raise UsageError(f"a quote {token.unclosed} is not closed")
    return token


def _store(values: dict[str, Any], option: OptionSpec, value: Any) -> None:
    if option.many:
        values.setdefault(option.name, []).append(value)
    else:
        if option.name in values:
            raise UsageError(f"{option.flag} is given twice")
        values[option.name] = value


def _assign_positionals(
    spec: CommandSpec,
    positional: list[OptionSpec],
    pending: list[Token],
    values: dict[str, Any],
    env: ParseEnv,
) -> None:
    cursor = 0
    for slot, option in enumerate(positional):
        if option.name in values:  # rest-of-line already taken
            cursor = len(pending)
            continue
        remaining = pending[cursor:]
        if not remaining:
            break
        needed_after = sum(1 for later in positional[slot + 1 :] if later.required)
        if option.many:
            take = remaining[: max(len(remaining) - needed_after, 0)]
            values[option.name] = [convert(option, _closed(token).text, env) for token in take]
            cursor += len(take)
        elif option.kind is Kind.TIME:
            usable = remaining[: max(len(remaining) - needed_after, 1)]
            value, used = _convert_time_greedy(option, usable, env, max_words=len(usable))
            for token in usable[:used]:
                _closed(token)
            values[option.name] = value
            cursor += used
        else:
            values[option.name] = convert(option, _closed(remaining[0]).text, env)
            cursor += 1
    if cursor < len(pending):
        extra = _closed(pending[cursor]).text
        raise UsageError(f"unexpected argument '{_clip(extra)}'")


MAX_TIME_WORDS = 6
"""The most words one time takes (``on 3 december 2026 at 15:00``)."""


def _convert_time_greedy(
    option: OptionSpec, tokens: list[Token], env: ParseEnv, *, max_words: int
) -> tuple[datetime, int]:
    """Times may span several words (``next tuesday 10:00``): take the longest run that reads as a time.

    At most :data:`MAX_TIME_WORDS` words: each try is a dateparser call, so trying every run of a long
    line would take minutes (a 1,000-word message kept the bot busy for a minute) and hold up everyone."""
    if tokens[0].quoted:
        return convert(option, tokens[0].text, env), 1
    limit = min(max_words, len(tokens), MAX_TIME_WORDS)
    for count in range(limit, 0, -1):
        if any(token.quoted for token in tokens[1:count]):
            continue
        text = " ".join(token.text for token in tokens[:count])
        try:
            moment = parse_when(text, now=env.now, tz=env.timezone)
        except DoubtfulTime as error:
            raise UsageError(f"{_label(option)}: {error}") from None
        except TimeParseError:
            continue
        return _with_time_of_day(option, text, moment), count
    return convert(option, tokens[0].text, env), 1


def _with_time_of_day(option: OptionSpec, text: str, moment: datetime) -> datetime:
    """``moment`` as read from ``text``, unless the option needs a time of day and the text gives none."""
    if option.time_of_day and not says_time_of_day(text):
        raise UsageError(
            f"{_label(option)}: '{_clip(text)}' is a day without a time; say when on it, "
            f"like '{_clip(text)} 15:00'"
        )
    return moment


def _label(option: OptionSpec) -> str:
    """How an error names the option: ``--closes``, ``<when>``, ``<level>``."""
    if not option.positional:
        return option.flag
    if option.kind is Kind.CHOICE:
        return f"<{option.name.replace('_', '-')}>"
    return f"<{option.placeholder()}>"


def convert(option: OptionSpec, text: str, env: ParseEnv) -> Any:
    """One value from its text, with an error that names the option and what it accepts."""
    label = _label(option)
    kind = option.kind
    if kind in (Kind.TEXT, Kind.REST):
        text = storable(text)
        if not text.strip():
            raise UsageError(f"{label} is empty")
        return text
    if kind is Kind.INT:
        if _HUGE_NUMBER.match(text):  # int() refuses 4,300 digits; 31 are out of any range already
            number = INT64_MAX + 1 if not text.strip().startswith("-") else -INT64_MAX - 1
            return _in_range(option, label, number, text)
        try:
            number = int(text.replace("_", "x"))  # int() would take 1_000; members don't mean that
        except ValueError:
            raise UsageError(f"{label} must be a whole number, not '{_clip(text)}'") from None
        return _in_range(option, label, number, text)
    if kind is Kind.DURATION:
        try:
            return parse_duration(text)
        except TimeParseError as error:
            raise UsageError(f"{label}: {error}") from None
    if kind is Kind.TIME:
        try:
            return _with_time_of_day(option, text, parse_when(text, now=env.now, tz=env.timezone))
        except TimeParseError as error:
            raise UsageError(f"{label}: {error}") from None
    if kind is Kind.ZONE:
        try:
            return resolve_zone(text)
        except UnknownZone as error:
            raise UsageError(f"{label}: {error}") from None
    if kind is Kind.MEMBER:
        member = env.resolve_member(text)
        if member is None:
            raise UsageError(f"{label} must mention a member (like @ana), not '{_clip(text)}'")
        return member
    if kind is Kind.CHOICE:
        lowered = text.lower()
        if lowered not in option.choices:
            raise UsageError(f"{label} must be one of {', '.join(option.choices)}; not '{_clip(text)}'")
        return option.enum_type(lowered) if option.enum_type else lowered
    raise AssertionError(kind)


def _in_range(option: OptionSpec, label: str, number: int, text: str) -> int:
    if option.minimum <= number <= option.maximum:
        return number
    if option.maximum == INT64_MAX and number > INT64_MAX:
        raise UsageError(f"{label}: '{_clip(text)}' is too large")
    if option.minimum == -INT64_MAX and number < -INT64_MAX:
        raise UsageError(f"{label}: '{_clip(text)}' is too small")
    if option.maximum == INT64_MAX:
        raise UsageError(f"{label} must be {option.minimum} or more, not {_clip(text)}")
    raise UsageError(f"{label} must be from {option.minimum} to {option.maximum}, not {_clip(text)}")


def _clip(text: str, limit: int = 40) -> str:
    return shown(text, limit)


_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
_HUGE_NUMBER = re.compile(r"\s*[+-]?0*[1-9][0-9]{30,}\s*$", re.ASCII)


def storable(text: str) -> str:
    """Text a member typed, as the databases and platforms can keep it: PostgreSQL refuses NUL in text,
    and a lone surrogate (which a Matrix event's JSON can carry) cannot be encoded as UTF-8 at all. NULs
    are dropped and lone surrogates become �; everything else is kept exactly."""
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(lambda match: "" if match.group(0) == "\x00" else "\ufffd", text)


def convert_options(spec: CommandSpec, raw: dict[str, Any], env: ParseEnv) -> dict[str, Any]:
    """Values a platform already split into options (Discord's slash commands), checked like typed text.

    Platforms deliver durations, times, choices and lists as strings; they go through the same converters
    as the text parser, so a slash command and a typed command accept and refuse exactly the same input.
    """
    known = {option.name for option in spec.options}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise UsageError(f"unknown option {unknown[0]}")
    values: dict[str, Any] = {}
    for option in spec.options:
        given = raw.get(option.name)
        if given is None or given == "":
            if option.required:
                what = f"<{option.placeholder()}>" if option.positional else option.flag
                raise UsageError(f"{what} is missing")
            values[option.name] = option.default if not option.many or option.default is not None else []
            continue
        if option.kind is Kind.FLAG:
            values[option.name] = bool(given)
        elif option.many:
            if isinstance(given, list):
                items = given
            elif isinstance(given, str):
                items = [token.text for token in tokenize(given)]
            else:  # one value the platform already resolved (a member picked in a slash command)
                items = [given]
            values[option.name] = [
                item if not isinstance(item, str) else convert(option, item, env) for item in items
            ]
        elif isinstance(given, str):
            values[option.name] = convert(option, given, env)
        elif option.kind is Kind.INT and isinstance(given, int) and not isinstance(given, bool):
            values[option.name] = _in_range(option, option.flag, given, str(given))
        elif option.kind is Kind.MEMBER and isinstance(given, Member):
            values[option.name] = given
        else:
            values[option.name] = convert(option, str(given), env)
    return values
