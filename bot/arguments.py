"""A command's words as its handler's keyword arguments, checked against its command's spec.

One parser for every way a command arrives: text typed on Matrix, Discord or the console, and the options a
platform has already split (Discord's slash commands) go through the same converters, so both accept and
refuse exactly the same input, with the same one-line errors.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from bot.commands import HEADING_LENGTH, INT64_MAX, CommandSpec, Kind, OptionSpec
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
from bot.tokens import Token, tokenize, unquote_rest
from bot.zones import UnknownZone, resolve_zone

_LINK_START = re.compile(r"(?:https?://|www\.)", re.IGNORECASE)


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
    positional = [option for option in spec.options if option.positional]
    by_flag = {option.flag: option for option in spec.options if not option.positional}
    tokens = [_undashed(token, by_flag) for token in tokens]
    env = _in_given_zone(spec, tokens, env)
    values: dict[str, Any] = {}
    pending: list[Token] = []
    index = 0
    options_done = False
    while index < len(tokens):
        token = tokens[index]
        slot = len(pending)
        if not options_done and token.text == "--" and not token.quoted:
            # the shell's "end of options", also before free text: what follows is text, the -- is not
            options_done = True
            index += 1
            continue
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
            link = _LINK_START.match(token.text) is not None
            if run > index + 1 or link:  # more than one word, or a link: the heading, and the whole text
                if link:  # no words before the link: it is named by where it points
                    heading = _link_heading(token.text)
                else:
                    words = " ".join(tokens[later].text for later in range(index, run))
                    heading = words.rstrip(".!") + ("…" if cut else "")
                pending.append(Token(heading, token.start))
                stop = _next_option(tokens, run, by_flag, options_done)
                end = tokens[stop].start if stop is not None else len(line)
                rest = positional[slot + 1]
                values[rest.name] = convert(rest, unquote_rest(line[token.start : end]), env)
                pending.append(token)
                index = stop if stop is not None else len(tokens)
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


_TYPED_DASHES = ("—", "–")
"""What phones and word processors make of a typed ``--`` (iOS's smart punctuation: ``—multi``)."""


def _undashed(token: Token, by_flag: dict[str, OptionSpec]) -> Token:
    """``—multi`` as ``--multi`` when this command has that option, as the member typed it before their
    keyboard changed it; any other dash is text (``—all`` of a command without ``--all`` stays a word)."""
    if token.quoted or token.text[:1] not in _TYPED_DASHES:
        return token
    typed = "--" + token.text[1:]
    if typed.partition("=")[0] not in by_flag:
        return token
    return dataclasses.replace(token, text=typed)


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


def _link_heading(link: str) -> str:
    """A link as a heading: where it points, without the scheme, ``www.`` or a closing slash or full stop
    (``https://www.example.org/leakmap/`` → ``example.org/leakmap``), at most HEADING_LENGTH characters."""
    shown = re.sub(r"^(?:https?://)?(?:www\.)?", "", link, flags=re.IGNORECASE).rstrip("/.,;:!?)") or link
    return shown if len(shown) <= HEADING_LENGTH else shown[: HEADING_LENGTH - 1] + "…"


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
    """Name the option that was probably meant: a misspelling (--close) or a short form (-m). The flag is
    shown as typed but cut short: a pasted page after ``--`` is no reply of its own."""
    said = shown(flag)
    if not by_flag:
        return f"{said} is not an option; this command takes none"
    guess: list[str] = []
    if not flag.startswith("--"):
        guess = [known for known in by_flag if known[2:3] == flag[1:2].lower()][:1]
    import difflib  # on use: not loaded at start-up (memory)

    guess = guess or difflib.get_close_matches(flag, list(by_flag), n=1, cutoff=0.6)
    if guess:
        return f"{said} is not an option — did you mean {guess[0]}?"
    return f"{said} is not an option (options: {', '.join(by_flag)})"


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
        return _with_time_of_day(option, text, moment, env), count
    return convert(option, tokens[0].text, env), 1


def _with_time_of_day(option: OptionSpec, text: str, moment: datetime, env: ParseEnv) -> datetime:
    """``moment`` as read from ``text``, unless the option needs a time of day and the text gives none, or
    takes a day alone as through its end (``tomorrow`` reads as this minute tomorrow, which would leave out
    that day's later meetings)."""
    if says_time_of_day(text):
        return moment
    if option.time_of_day:
        raise UsageError(
            f"{_label(option)}: '{_clip(text)}' is a day without a time; say when on it, "
            f"like '{_clip(text)} 15:00'"
        )
    if option.through_day:
        zone = ZoneInfo(env.timezone)
        day = moment.astimezone(zone).date()
        return datetime.combine(day, time(23, 59, 59, fold=1), zone).astimezone(UTC)  # the later of two
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
            return _with_time_of_day(option, text, parse_when(text, now=env.now, tz=env.timezone), env)
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
        choice = option.choice_of(text)
        if choice is None:
            shown = ", ".join(option.shown_choices())
            raise UsageError(f"{label} must be one of {shown}; not '{_clip(text)}'")
        return option.enum_type(choice) if option.enum_type else choice
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


def short_answer(text: str) -> str:
    """A one-word answer to copbot's question (``skip``, ``stop``, ``yes``) as people type it: "Skip.",
    "STOP!" and " yes " are those words — never an organisation called "Skip." or a refused stop."""
    return " ".join(text.lower().split()).rstrip(".!")


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
