"""Shared pieces of the fuzz tests (tests/core/test_fuzz_*.py): hypothesis profiles and what members type.

Two profiles. ``fast``, the default in ``make test``: 400 examples in all (:data:`FAST`). ``slow``, chosen by
``COPBOT_FUZZ_EXAMPLES=N``: N examples in all, shared among the fuzz tests in the same proportions (CI runs
it with 10,000 after ``make test``; the cheap parser tests get most of them, a command through the whole
pipeline costs some 50 ms). Every fuzz test counts the examples it tried, listed with the run's measured
figures.
"""

from __future__ import annotations

import os
import string
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from bot.commands import CommandSpec, Kind, OptionSpec
from tests.figures import report

FAST = {"tokenize": 100, "parse_arguments": 150, "convert_options": 50, "commands": 100}
"""Examples per fuzz test in the fast profile; the slow profile keeps the proportions."""
TOTAL = int(os.environ.get("COPBOT_FUZZ_EXAMPLES", "0") or 0)
PROFILE = "slow" if TOTAL else "fast"


def examples(test: str) -> int:
    """How many examples ``test`` (a key of :data:`FAST`) tries in this run's profile."""
    if not TOTAL:
        return FAST[test]
    return max(1, round(TOTAL * FAST[test] / sum(FAST.values())))


def fuzz_settings(test: str) -> settings:
    """Random (not the database of earlier failures: CI starts clean anyway) and no deadline (the first
    dateparser import takes a second)."""
    return settings(
        max_examples=examples(test),
        deadline=None,
        database=None,
        derandomize=False,
        print_blob=True,
        phases=(Phase.explicit, Phase.generate, Phase.target, Phase.shrink),
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,  # one bot serves every example of a test, on purpose
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )


TRIED: Counter[str] = Counter()
"""Examples tried, by test name; printed by :func:`report_examples`."""


@pytest.fixture(scope="module", autouse=False)
def report_examples(request: pytest.FixtureRequest) -> Iterator[Counter[str]]:
    """Yield the counter; at the end of the module say how many examples each test tried (a figure of the
    run's summary: ``make test`` runs the module in a worker process, whose output is not shown)."""
    yield TRIED
    module = request.module.__name__.rsplit(".", 1)[-1]
    lines = [f"{name}: {count} examples" for name, count in sorted(TRIED.items()) if name.startswith(module)]
    total = sum(TRIED[name] for name in TRIED if name.startswith(module) and "(" not in name)
    summary = f"fuzz ({PROFILE} profile) {module}: {total} examples tried — " + "; ".join(
        line.split("::", 1)[-1] for line in lines
    )
    report(summary)


# --- what members type ---------------------------------------------------------------------------------

QUOTES = ['"', "'", "“", "”", "‘", "’", "«", "»", "„", "`", "```"]
QUOTE_PAIRS = [('"', '"'), ("'", "'"), ("“", "”"), ("‘", "’"), ("«", "»"), ("„", "“"), ("’", "’")]
ODD = [
    "\x00",
    "\x01",
    "\x07",
    "\x08",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\u200b",  # zero-width space
    "\u200d",  # zero-width joiner
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\u2028",  # line separator
    "\u2029",
    "\ufeff",
    "\ufffd",
    "\r",
    "\r\n",
    "\n",
    "\t",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x1e",
    "\u3000",
    "\xa0",
    "\\",
    "\\\\",
    "\\ ",
    '\\"',
    "{",
    "}",
    "{member}",
    "{0}",
    "{member.__class__}",
    "%s",
    "%(x)s",
    "#",
    "#tag",
    "##",
    ",",
    ",,",
    ";",
    "=",
    "--",
    "-",
    "—",
    "–",
]
SCRIPTS = [
    "👍",
    "👩🏽‍💻",
    "🇳🇱",
    "🏳️‍🌈",
    "e\u0301",  # e + combining acute
    "Z\u0351\u0364\u0322\u0347a\u0353l\u0317g\u0322o",  # zalgo
    "مرحبا",  # Arabic (RTL)
    "שלום",  # Hebrew (RTL)
    "\u202ecba",
    "日本語",
    "한국어",
    "Ελληνικά",
    "ǅ",
    "ß",
    "İ",
    "ﬁ",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "١٢٣",  # Arabic-Indic digits
    "²",
    "Ⅻ",
    "𝟗",
]
MENTIONS = ["@ana", "@zed", "@you", "@bo", "@", "@@", "@everyone", "@here", "@room", "<@123>", "<@&123>"]
NUMBERS = [
    "0",
    "1",
    "2",
    "3",
    "-1",
    "+1",
    "01",
    "1_000",
    "1e3",
    "0x10",
    "1.5",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "99999999999999999999999999999999999999",
    "9" * 4300,  # Python's int() limit for decimal strings is 4300 digits
    "9" * 5000,
]
DURATIONS = [
    "90m",
    "2h",
    "1h30m",
    "3d",
    "1w",
    "0m",
    "0s",
    "1s",
    "3650d",
    "3651d",
    "521w",
    "99999999999999999999w",
    "9" * 500 + "d",
    "1H",
    "1 h",
    "1h 30m",
    "h",
    "m1",
    "1y",
    "in 2h",
]
DATES = [
    "2026-03-10",
    "2026-03-10 15:00",
    "2026-03-10T15:00",
    "2026-03-10T15:00:00+14:00",
    "2026-03-10T15:00:00-12:00",
    "2026-03-10T15:00Z",
    "2026-03-29 02:30",  # does not exist in Europe
    "2026-10-25 02:30",  # happens twice in Europe
    "2026-02-30",
    "2026-13-01",
    "2026-00-00",
    "0001-01-01",
    "0001-01-01 00:00",
    "9999-12-31 23:59",
    "9999-12-31T23:59:59-14:00",
    "99999-01-01",
    "1970-01-01",
    "3/12/2026",
    "25/12/2026",
    "31/31/2026",
    "0/0",
    "12.12.12",
    "tomorrow",
    "tomorrow 15:00",
    "next tuesday",
    "next tuesday 10:00",
    "thursday 15:00",
    "15:00",
    "25:00",
    "noon",
    "midnight",
    "in 3 days",
    "in 99999 years",
    "yesterday",
    "now",
    "last year",
    "10000 years ago",
    "next week",
    "1 Jan",
    "31 Feb",
    "December 3",
]
ZONES = [
    "Europe/Amsterdam",
    "europe/amsterdam",
    "UTC",
    "CET",
    "CEST",
    "PST",
    "Etc/GMT+12",
    "Etc/GMT-14",
    "Pacific/Kiritimati",
    "America/St_Johns",
    "amsterdam",
    "Europe/Amsterdm",
    "localtime",
    "Factory",
    "../../etc/passwd",
    "Europe/",
    "/",
]
URLS = [
    "https://example.org",
    "https://example.org/a?b=c&d=<e>",
    "http://[::1]:80/",
    "javascript:alert(1)",
    "[x](javascript:alert(1))",
    "<https://example.org>",
    "ftp://x",
    "mailto:a@b.c",
]
MARKUP = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '<a href="https://matrix.to/#/@x:y">x</a>',
    "**bold**",
    "__u__",
    "~~s~~",
    "||spoiler||",
    "`code`",
    "```py\nprint(1)\n```",
    "> quote",
    "# Heading",
    "&amp;",
    "&lt;",
    "]]>",
    "<!--",
]
RULES = [
    "weekly",
    "biweekly",
    "fortnightly",
    "monthly",
    "daily",
    "yearly",
    "FREQ=MONTHLY;BYDAY=1TU",
    "RRULE:FREQ=WEEKLY;BYDAY=MO,WE",
    "FREQ=DAILY;INTERVAL=0",
    "FREQ=DAILY;INTERVAL=-1",
    "FREQ=DAILY;INTERVAL=99999999999999999999",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=MONTHLY;BYMONTHDAY=31",
    "FREQ=MONTHLY;BYDAY=5FR",
    "FREQ=MONTHLY;BYSETPOS=-1;BYDAY=MO,TU,WE,TH,FR",
    "FREQ=WEEKLY;BYDAY=XX",
    "FREQ=WEEKLY;WKST=ZZ",
    "FREQ=MINUTELY",
    "FREQ=SECONDLY",
    "FREQ=WEEKLY;COUNT=3",
    "FREQ=WEEKLY;UNTIL=20270101",
    "FREQ=WEEKLY;BYHOUR=25",
    "FREQ=WEEKLY;BYYEARDAY=400",
    "FREQ=YEARLY;BYWEEKNO=60",
    "FREQ=",
    "=",
    ";",
    "FREQ=WEEKLY;;",
]
WORDS = [
    "yes",
    "no",
    "maybe",
    "story",
    "tool",
    "core",
    "active",
    "md",
    "json",
    "org",
    "expertise",
    "interests",
    "public",
    "prompts",
    "tracking",
    "on",
    "off",
    "true",
    "sister",
    "cop",
    "wastewater",
    "Vitens",
    "leak",
    "detection",
    "all",
    "none",
    "help",
    "O'Brien",
    "Don't",
    "l'eau",
    "'90s",
    "rock'n'roll",
    "it’s",
]

plain_text = st.text(alphabet=string.ascii_letters + string.digits + " .,!?'-", min_size=1, max_size=30)
any_text = st.text(min_size=0, max_size=20)  # every code point, surrogates and controls included
odd_text = st.lists(st.sampled_from(ODD + SCRIPTS + QUOTES), min_size=1, max_size=5).map("".join)


def huge(word: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A word repeated into a line of about 10 kB."""
    return word.map(lambda w: (w + " ") * max(1, 10_000 // (len(w) + 1)))


atom = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from(SCRIPTS),
    st.sampled_from(ODD),
    st.sampled_from(MENTIONS),
    st.sampled_from(NUMBERS),
    st.sampled_from(DURATIONS),
    st.sampled_from(DATES),
    st.sampled_from(ZONES),
    st.sampled_from(URLS),
    st.sampled_from(MARKUP),
    st.sampled_from(RULES),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    plain_text,
    any_text,
    odd_text,
)


@st.composite
def quoted(draw: st.DrawFn, inner: st.SearchStrategy[str]) -> str:
    """A value in quotes of any kind: paired, unpaired, reversed or unclosed."""
    text = draw(inner)
    opening, closing = draw(st.sampled_from(QUOTE_PAIRS))
    shape = draw(st.sampled_from(["pair", "pair", "open", "close", "reversed", "mixed"]))
    if shape == "pair":
        return f"{opening}{text}{closing}"
    if shape == "open":
        return opening + text
    if shape == "close":
        return text + closing
    if shape == "reversed":
        return f"{closing}{text}{opening}"
    return f"{opening}{text}{draw(st.sampled_from(QUOTES))}"


def option_word(spec: CommandSpec) -> st.SearchStrategy[str]:
    """``--name``, ``--name=value``, a misspelt or unknown option, ``-x``, ``--``."""
    flags = [option.flag for option in spec.options if not option.positional] or ["--all"]
    return st.one_of(
        st.sampled_from(flags),
        st.builds(lambda f, v: f"{f}={v}", st.sampled_from(flags), atom),
        st.sampled_from(["--", "---", "--=", "--=x", "-x", "-m", "-1", "--1", "--x-y", "--ALL", "—all"]),
        st.builds(lambda f: f[:-1], st.sampled_from(flags)),
        st.text(alphabet=string.ascii_lowercase + "-_", min_size=1, max_size=12).map(lambda t: "--" + t),
    )


good_text = st.one_of(
    plain_text,
    plain_text,
    st.sampled_from(WORDS + SCRIPTS + MARKUP + URLS),
    st.lists(
        st.one_of(plain_text, st.sampled_from(WORDS + SCRIPTS + MARKUP + MENTIONS)), min_size=1, max_size=4
    )
    .map(" ".join)
    .filter(str.strip),
)
GOOD: dict[Kind, list[str]] = {
    Kind.INT: ["1", "2", "3", "1", "2"],
    Kind.DURATION: ["90m", "2h", "1d", "30m", "1w"],
    Kind.TIME: [
        "2026-03-20 15:00",
        "tomorrow 15:00",
        "next tuesday 10:00",
        "3d",
        "2026-03-10",
        "friday 17:00",
    ],
    Kind.MEMBER: ["@ana", "@zed", "@you"],
    Kind.ZONE: ["Europe/Amsterdam", "UTC", "America/New_York", "asia/tokyo"],
}
GOOD_BY_NAME: dict[str, list[str]] = {
    "every": ["weekly", "monthly", "biweekly", "FREQ=MONTHLY;BYDAY=1TU", "daily"],
    "community": ["sister", "cop", "wastewater"],
    "command": ["poll", "poll create", "help", "meeting schedule", "share"],
    "code": ["ABC123", "x"],
    "cycle": ["realized", "applied", "immediate"],
    "format": ["md", "json"],
    "count": ["3", "10"],
    "cap": ["2", "10"],
}


def good_value(option: OptionSpec) -> st.SearchStrategy[str]:
    """A value of the option's kind that a member could well mean."""
    if option.kind is Kind.CHOICE:
        return st.sampled_from(option.choices)
    if option.name in GOOD_BY_NAME:
        return st.sampled_from(GOOD_BY_NAME[option.name])
    if option.kind in GOOD:
        return st.sampled_from(GOOD[option.kind])
    return good_text


def bad_value(option: OptionSpec) -> st.SearchStrategy[str]:
    """A value of roughly the option's kind that is often wrong: out of range, impossible, odd."""
    kind = option.kind
    if kind is Kind.INT:
        return st.one_of(st.sampled_from(NUMBERS), atom)
    if kind is Kind.DURATION:
        return st.one_of(st.sampled_from(DURATIONS), atom)
    if kind is Kind.TIME:
        return st.one_of(st.sampled_from(DATES), st.sampled_from(DURATIONS), atom)
    if kind is Kind.MEMBER:
        return st.one_of(st.sampled_from(MENTIONS), atom)
    if kind is Kind.CHOICE:
        return st.one_of(st.sampled_from(option.choices).map(str.upper), atom)
    if kind is Kind.ZONE:
        return st.one_of(st.sampled_from(ZONES), atom)
    if option.name == "every":
        return st.one_of(st.sampled_from(RULES), atom)
    return st.one_of(st.sampled_from(URLS + MARKUP), odd_text, any_text, atom)


def value_for(option: OptionSpec) -> st.SearchStrategy[str]:
    """A value of the option's kind, sometimes a good one and sometimes not."""
    return st.one_of(good_value(option), bad_value(option))


def double_quoted(text: str) -> str:
    """``"text"``, its own quotes and backslashes escaped as the tokenizer reads them."""
    return '"' + text.rstrip("\\").replace("\\", "\\\\").replace('"', '\\"') + '"'


def word_for(option: OptionSpec, value: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """The value as typed: as it is, or in quotes of some kind (a value with a space needs them)."""
    return st.one_of(value, value, quoted(value))


@st.composite
def argument_line(draw: st.DrawFn, spec: CommandSpec) -> str:
    """The text after a command's name: mostly shaped like its usage, often broken, sometimes 10 kB."""
    shape = draw(st.sampled_from(["good"] * 4 + ["usage"] * 2 + ["example", "junk", "huge", "empty"]))
    if shape == "empty":
        return draw(st.sampled_from(["", " ", "\t", "--", '""', "“”"]))
    if shape == "example" and spec.examples:
        example = draw(st.sampled_from(spec.examples))
        return example[len(spec.name) :].strip()
    words: list[str] = []
    if shape == "junk":
        words = draw(st.lists(st.one_of(atom, quoted(atom), option_word(spec)), max_size=8))
    else:
        bad_one_in = 0 if shape == "good" else 3  # how many values in one are bad ones (0: none)

        def value(option: OptionSpec) -> str:
            if bad_one_in and draw(st.integers(1, bad_one_in)) == 1:
                return draw(word_for(option, bad_value(option)))
            text = draw(good_value(option))
            if option.kind is Kind.TEXT and (" " in text or draw(st.booleans())):
                return double_quoted(text)  # one word, however many it has
            return text

        for option in spec.options:
            if option.positional:
                if not option.required and draw(st.booleans()):
                    continue
                count = draw(st.integers(1, 3)) if option.many or option.kind is Kind.REST else 1
                words += [value(option) for _ in range(count)]
            elif draw(st.integers(0, 2)) == 0:
                if option.kind is Kind.FLAG:
                    words.append(option.flag)
                elif draw(st.integers(0, 3)) == 0:
                    words.append(f"{option.flag}={value(option)}")
                else:
                    words += [option.flag, value(option)]
        if shape == "usage" and draw(st.integers(0, 2)) == 0:
            extra = draw(st.lists(st.one_of(atom, option_word(spec)), min_size=1, max_size=3))
            for word in extra:
                words.insert(draw(st.integers(0, len(words))), word)
    if shape == "huge":
        words.append(draw(huge(st.one_of(atom, quoted(atom)))))
        if draw(st.booleans()):
            words.insert(0, draw(huge(atom)))
    separator = draw(st.sampled_from([" ", " ", " ", "  ", "\t", " \u3000", "\xa0", "\n"]))
    return separator.join(words)


def raw_options(spec: CommandSpec) -> st.SearchStrategy[dict[str, object]]:
    """What a platform's slash command could deliver: option name → string, int, bool or list."""
    entries = {
        option.name: st.one_of(
            value_for(option),
            st.integers(min_value=-(2**70), max_value=2**70),
            st.booleans(),
            st.lists(value_for(option), max_size=3),
            st.just(""),
            st.none(),
        )
        for option in spec.options
    }
    fixed = st.fixed_dictionaries({}, optional=entries)
    unknown = st.dictionaries(st.sampled_from(["bogus", "x", ""]), atom, max_size=1)
    return st.one_of(fixed, fixed, fixed, st.builds(lambda a, b: {**a, **b}, fixed, unknown))
