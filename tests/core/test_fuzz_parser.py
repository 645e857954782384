"""Fuzzing the tokenizer and the parser with what members could type (issue 15, item 3).

For every command any bundled plugin declares, generated argument lines — quotes of every kind, paired or
not, emoji, right-to-left text, combining marks, NUL and other control characters, huge numbers and
durations, dates real and impossible, ``--options``, ``-x`` and lines of 10 kB — either parse or raise
:class:`UsageError` whose message is one line. Nothing else may escape: anything else would reach the
member as the apology instead of a message saying what was wrong. Slash-command values (convert_options)
are held to the same rule. See tests/core/fuzzing.py for the profiles (COPBOT_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.arguments import ParseEnv, convert_options, parse_arguments
from bot.commands import CommandSpec, Kind
from bot.errors import UsageError
from bot.model import Member
from bot.registry import declared_specs, discover_plugins
from bot.tokens import Token, tokenize
from tests.core.fuzzing import (
    TRIED,
    any_text,
    argument_line,
    atom,
    fuzz_settings,
    quoted,
    raw_options,
    report_examples,
)

__all__ = ["report_examples"]
pytestmark = pytest.mark.usefixtures("report_examples")  # prints how many examples were tried

SPECS: list[CommandSpec] = sorted(declared_specs(discover_plugins().values()), key=lambda spec: spec.name)
BY_NAME = {spec.name: spec for spec in SPECS}
EVERY_ZONE = ["UTC", "Europe/Amsterdam", "America/St_Johns", "Pacific/Kiritimati"]  # the caller's, canonical
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def resolve(text: str) -> Member | None:
    return Member("console", text[1:], text[1:]) if text.startswith("@") and len(text) > 1 else None


def one_line(error: UsageError) -> None:
    message = error.message
    assert message.strip(), "an empty error message"
    assert len(message.splitlines()) == 1, f"the error is not one line: {message!r}"
    assert len(message) <= 600, f"the error is {len(message)} characters long: {message[:200]!r}…"


def check_parse(spec: CommandSpec, line: str, zone: str) -> None:
    env = ParseEnv(now=NOW, timezone=zone, resolve_member=resolve)
    try:
        values = parse_arguments(spec, line, env)
    except UsageError as error:
        one_line(error)
        return
    assert set(values) == {option.name for option in spec.options}
    for option in spec.options:
        value = values[option.name]
        if option.kind is Kind.INT and value is not None and not option.many:
            assert option.minimum <= value <= option.maximum
        if option.kind in (Kind.TEXT, Kind.REST) and isinstance(value, str):
            assert value.strip(), f"{option.name} is blank: {value!r}"


@given(
    line=st.one_of(any_text, argument_line(SPECS[0]), st.lists(st.one_of(atom, quoted(atom))).map(" ".join))
)
@fuzz_settings("tokenize")
@example(line='"a\\')
@example(line="\\")
@example(line="“”")
@example(line="'")
@example(line='--x="y')
def test_tokenize_never_fails_and_keeps_the_words(line: str) -> None:
    TRIED[f"{__name__.rsplit('.', 1)[-1]}::tokenize"] += 1
    tokens = tokenize(line)
    assert all(isinstance(token, Token) for token in tokens)
    for token in tokens:
        assert 0 <= token.start < len(line)
        assert not line[token.start].isspace()
    starts = [token.start for token in tokens]
    assert starts == sorted(set(starts))


@given(data=st.data(), zone=st.sampled_from(EVERY_ZONE))
@fuzz_settings("parse_arguments")
@example(data=None, zone="UTC")  # every spec with an empty line, below
def test_every_command_parses_or_says_what_is_wrong_in_one_line(
    data: st.DataObject | None, zone: str
) -> None:
    if data is None:
        for spec in SPECS:
            check_parse(spec, "", zone)
        return
    spec = BY_NAME[data.draw(st.sampled_from(sorted(BY_NAME)), label="command")]
    line = data.draw(argument_line(spec), label="line")
    TRIED[f"{__name__.rsplit('.', 1)[-1]}::parse_arguments"] += 1
    check_parse(spec, line, zone)


@given(data=st.data())
@fuzz_settings("convert_options")
def test_slash_command_values_are_checked_the_same_way(data: st.DataObject) -> None:
    spec = BY_NAME[data.draw(st.sampled_from(sorted(BY_NAME)), label="command")]
    raw = data.draw(raw_options(spec), label="options")
    zone = data.draw(st.sampled_from(EVERY_ZONE), label="zone")
    TRIED[f"{__name__.rsplit('.', 1)[-1]}::convert_options"] += 1
    env = ParseEnv(now=NOW, timezone=zone, resolve_member=resolve)
    try:
        convert_options(spec, raw, env)
    except UsageError as error:
        one_line(error)


# --- what fuzzing found, kept as plain tests ---------------------------------------------------------------


def parse(name: str, line: str) -> dict:
    return parse_arguments(BY_NAME[name], line, ParseEnv(now=NOW, timezone="UTC", resolve_member=resolve))


def error_of(name: str, line: str) -> str:
    with pytest.raises(UsageError) as caught:
        parse(name, line)
    one_line(caught.value)
    return caught.value.message


@pytest.mark.parametrize(
    "line",
    [
        "'a " * 7_000,  # every apostrophe looked for its closing one to the end of the line: minutes
        "next tuesday " * 1_500,  # every run of words was tried as a time: a minute per 1,000 words
        '"a" ' * 5_000,
        "1 " * 10_000,
        "9" * 20_000,
        "1h" * 10_000,
    ],
    ids=["apostrophes", "time-words", "quoted-words", "numbers", "huge-number", "huge-duration"],
)
def test_a_long_line_is_read_quickly_by_every_command(line: str) -> None:
    parse("poll create", "Q A B --closes 2h")  # dateparser's first import is not the line's
    started = time.perf_counter()
    for spec in SPECS:
        check_parse(spec, line, "UTC")
    took = time.perf_counter() - started
    assert took < 15, f"{took:.1f} s for all commands; before, one command alone took many seconds to minutes"


def test_errors_quote_what_was_typed_on_one_line_and_clipped() -> None:
    assert error_of("repertoire show", '"\n"') == "<item-id> must be a whole number, not ''"
    assert error_of("poll results", '"a\u2028b\x00"') == "<poll-id> must be a whole number, not 'a b\ufffd'"
    assert error_of("timezone", '"Europe/\nAmsterdam"').startswith("<zone>: 'Europe/ Amsterdam' is not")
    assert len(error_of("timezone", "x" * 5_000)) < 200
    assert len(error_of("meeting schedule", f'T "{"1" * 5_000}w"')) < 200


def test_huge_numbers_are_too_large_not_a_crash_or_not_a_number() -> None:
    assert error_of("poll results", "9" * 5_000).startswith("<poll-id>: '999")
    assert error_of("poll results", "9" * 5_000).endswith("is too large")
    assert error_of("meeting schedule", f"T 2026-03-10 --duration {'9' * 5_000}m").startswith("--duration:")


def test_an_empty_rest_of_line_is_empty_and_text_keeps_no_nul() -> None:
    assert error_of("repertoire search", '""') == "<query> is empty"
    assert error_of("experts", "“”") == "<topic> is empty"
    assert parse("share", 'tool "Map\x00" see\x00 it')["title"] == "Map"
    assert parse("share", 'tool "Map" a\ud800b')["text"] == "a\ufffdb"  # a lone surrogate cannot be stored
    assert parse("share", "tool Map a\ud800b")["title"] == "Map a\ufffdb"  # nor in a title without quotes
