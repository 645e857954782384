"""The text parser: quoting, flags, every option type, and each error message members can meet."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import pytest

from bot.arguments import ParseEnv, parse_arguments
from bot.commands import SpecError, Start, Text, TimeOfDay, Title, derive_spec
from bot.errors import UsageError
from bot.model import Member
from bot.tokens import tokenize

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


def env(tz: str = "UTC") -> ParseEnv:
    def resolve(text: str) -> Member | None:
        return Member("console", text[1:], text[1:]) if text.startswith("@") and len(text) > 1 else None

    return ParseEnv(now=NOW, timezone=tz, resolve_member=resolve)


class Kind(enum.Enum):
    STORY = "story"
    TOOL = "tool"


async def create(
    ctx: object,
    question: str,
    options: list[str],
    *,
    multi: bool = False,
    anonymous: bool = False,
    closes: datetime | None = None,
) -> None:
    """Start a poll."""


async def typed(
    ctx: object,
    count: int,
    length: timedelta,
    who: Member,
    level: Literal["core", "active"],
    kind: Kind,
    *,
    when: datetime | None = None,
    tag: list[str] | None = None,
) -> None:
    """Everything at once."""


async def share(ctx: object, title: str, body: Text) -> None:
    """Share something."""


CREATE = derive_spec(create, name="poll create", help="Start a poll", examples=['poll create "Q?" "A" "B"'])
TYPED = derive_spec(typed, name="typed", help="")
SHARE = derive_spec(share, name="share", help="")


async def share_titled(ctx: object, title: Title, body: Text, *, kind: str | None = None) -> None:
    """Share something; a title typed without quotes runs on."""


TITLED = derive_spec(share_titled, name="share", help="")


def test_quoting_groups_words_and_keeps_escaped_quotes() -> None:
    assert [t.text for t in tokenize('a "two words" \'single q\' say\\ it "x \\" y"')] == [
        "a",
        "two words",
        "single q",
        "say it",
        'x " y',
    ]


def test_curly_quotes_from_phones_group_too() -> None:
    assert [t.text for t in tokenize("“Next topic?” ‘Leak detection’")] == ["Next topic?", "Leak detection"]


def test_unclosed_quote_is_an_error_when_the_word_is_used() -> None:
    assert tokenize('"never closed')[0].unclosed == '"'
    with pytest.raises(UsageError, match='a quote " is not closed'):
        parse_arguments(CREATE, '"never closed', env())


def test_positional_list_and_flags() -> None:
    values = parse_arguments(CREATE, '"Next topic?" Leakage "Smart metering" --multi', env())
    assert values == {
        "question": "Next topic?",
        "options": ["Leakage", "Smart metering"],
        "multi": True,
        "anonymous": False,
        "closes": None,
    }


def test_option_with_duration_value_reads_as_a_time_from_now() -> None:
    values = parse_arguments(CREATE, "Q A B --closes 2h", env())
    assert values["closes"] == NOW + timedelta(hours=2)


def test_option_with_natural_language_time_spanning_words() -> None:
    values = parse_arguments(CREATE, 'Q A B --closes "tomorrow 15:00" --anonymous', env("Europe/Amsterdam"))
    assert values["closes"] == datetime(2026, 3, 3, 14, 0, tzinfo=UTC)  # 15:00 CET
    assert values["anonymous"] is True
    unquoted = parse_arguments(CREATE, "Q A B --closes next tuesday 10:00", env())
    assert unquoted["closes"] == datetime(2026, 3, 3, 10, 0, tzinfo=UTC)  # the coming Tuesday


def test_iso_time_is_read_in_the_callers_zone() -> None:
    values = parse_arguments(CREATE, "Q A B --closes=2026-12-03T15:00", env("America/New_York"))
    assert values["closes"] == datetime(2026, 12, 3, 20, 0, tzinfo=UTC)


def test_every_typed_kind() -> None:
    values = parse_arguments(TYPED, "3 90m @ana CORE tool --when 2026-04-01 10:00 --tag a,b --tag c", env())
    assert values == {
        "count": 3,
        "length": timedelta(minutes=90),
        "who": Member("console", "ana", "ana"),
        "level": "core",
        "kind": Kind.TOOL,
        "when": datetime(2026, 4, 1, 10, 0, tzinfo=UTC),
        "tag": ["a", "b", "c"],
    }


def test_rest_of_line_keeps_text_exactly() -> None:
    values = parse_arguments(SHARE, '"Leak map" see  "this" --and that', env())
    assert values == {"title": "Leak map", "body": 'see  "this" --and that'}


def test_double_dash_ends_options() -> None:
    values = parse_arguments(CREATE, "Q -- --multi B", env())
    assert values["options"] == ["--multi", "B"]
    assert values["multi"] is False


@pytest.mark.parametrize(
    ("spec", "line", "message"),
    [
        (CREATE, "", "<question> is missing"),
        (CREATE, "Q", "<options> is missing"),
        (CREATE, "Q A --sometimes", "--sometimes is not an option (options: --multi, --anonymous, --closes)"),
        (CREATE, "Q A --close 2h", "--close is not an option — did you mean --closes?"),
        (CREATE, "Q A B -m", "-m is not an option — did you mean --multi?"),
        (CREATE, "Q A B --multi --multi", "--multi is given twice"),
        (CREATE, "Q A --closes", "--closes needs a value <when>"),
        (CREATE, "Q A --multi=yes", "--multi is a switch and takes no value"),
        (CREATE, "Q A --closes whenever", "--closes: 'whenever' is not a time I understand"),
        (CREATE, "Q A --closes 2h --closes 3h", "--closes is given twice"),
        (TYPED, "three 1h @a core story", "<count> must be a whole number, not 'three'"),
        (TYPED, "3 90x @a core story", "<duration>: '90x' is not a duration (use a number and a unit"),
        (TYPED, "3 1h ana core story", "<@member> must mention a member (like @ana), not 'ana'"),
        (TYPED, "3 1h @a boss story", "<level> must be one of core, active; not 'boss'"),
        (TYPED, "3 1h @a core poem", "<kind> must be one of story, tool; not 'poem'"),
        (TYPED, "3 1h @a core story extra", "unexpected argument 'extra'"),
        (SHARE, '"Title"', "<body> is missing"),
        (CREATE, '"" A', "<question> is empty"),
        # found by the fuzzer's slow profile: an open « before -- made the line one flag, echoed whole
        (CREATE, "Q A " + "«-- " * 2500, "-- «-- «-- «-- «-- «-- «-- «-- «-- «-- … is not an option"),
    ],
)
def test_error_messages(spec, line: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError) as caught:
        parse_arguments(spec, line, env())
    assert caught.value.message.startswith(message)
    assert "\n" not in caught.value.message


def test_usage_and_example_lines() -> None:
    assert CREATE.usage() == "!poll create <question> <options>… [--multi] [--anonymous] [--closes <when>]"
    assert CREATE.example("?") == '?poll create "Q?" "A" "B"'
    assert TYPED.usage() == (
        "!typed <count> <duration> <@member> core|active story|tool [--when <when>] [--tag <tag>]"
    )


async def attended(ctx: object, meeting: int, members: list[Member]) -> None:
    """Record who came."""


def test_a_slash_command_member_option_given_one_resolved_member_is_a_list_of_it() -> None:
    """Discord resolves a user option to one member: it must not be turned into text and parsed again."""
    from bot.arguments import convert_options

    spec = derive_spec(attended, name="meeting attended", help="")
    ana = Member("discord", "1", "ana")
    assert convert_options(spec, {"meeting": 3, "members": ana}, env()) == {"meeting": 3, "members": [ana]}
    typed = convert_options(spec, {"meeting": 3, "members": "@ana @bo"}, env())
    assert [member.id for member in typed["members"]] == ["ana", "bo"]


@pytest.mark.parametrize(
    ("line", "title", "body"),
    [
        # without quotes the title is the text's first words, up to a link, a #tag or a full stop …
        ("We fixed the main overnight", "We fixed the main overnight", "We fixed the main overnight"),
        ("We fixed it. It took hours #pipes", "We fixed it", "We fixed it. It took hours #pipes"),
        ("Leak map of Delft https://x.org #gis", "Leak map of Delft", "Leak map of Delft https://x.org #gis"),
        ("Why so slow? Nobody knows", "Why so slow?", "Why so slow? Nobody knows"),
        ("Map https://x.org", "Map", "https://x.org"),  # one word before the link: the title, as before
        # … and the options of the command still end the text
        ("Leak map --kind tool", "Leak map", "Leak map"),
        # quoted, the title is what the quotes hold
        ('"Leak map" of Delft', "Leak map", "of Delft"),
        ('"Map" the Delft one', "Map", "the Delft one"),
        # a long one is cut at a word, with an ellipsis, and the text keeps every word
        ("word " * 30, ("word " * 16).strip() + "…", ("word " * 30).strip()),
    ],
)
def test_a_title_typed_without_quotes_runs_on_to_a_link_tag_or_full_stop(
    line: str, title: str, body: str
) -> None:
    values = parse_arguments(TITLED, line, env())
    assert (values["title"], values["body"]) == (title, body)


def test_a_heading_must_be_a_positional_text() -> None:
    async def wrong(ctx: object, *, title: Title | None = None) -> None:
        """Not positional."""

    with pytest.raises(SpecError, match="Heading 'title' must be a plain positional str"):
        derive_spec(wrong, name="wrong", help="")


async def plan(ctx: object, title: str, start: Start, *, until: datetime | None = None) -> None:
    """Plan something: its start needs a time of day, the last day of a series does not."""


PLAN = derive_spec(plan, name="plan", help="")


@pytest.mark.parametrize(
    ("line", "start"),
    [
        ('"Call" friday 15:00', datetime(2026, 3, 6, 15, 0, tzinfo=UTC)),
        ('"Call" in 2h', NOW + timedelta(hours=2)),
        ('"Call" 2026-03-10 09:30', datetime(2026, 3, 10, 9, 30, tzinfo=UTC)),
        ('"Call" tuesday at 9', datetime(2026, 3, 3, 9, 0, tzinfo=UTC)),
        ('"Call" tomorrow noon --until 2026-06-30', datetime(2026, 3, 3, 12, 0, tzinfo=UTC)),
    ],
)
def test_a_start_with_its_time_of_day_is_read(line: str, start: datetime) -> None:
    assert parse_arguments(PLAN, line, env())["start"] == start


@pytest.mark.parametrize("day", ["friday", "tomorrow", "2026-03-10", "3 april"])
def test_a_start_that_names_only_a_day_asks_for_the_time(day: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_arguments(PLAN, f'"Call" {day}', env())
    assert str(raised.value) == f"<when>: '{day}' is a day without a time; say when on it, like '{day} 15:00'"


def test_a_day_alone_is_still_a_time_where_none_is_asked_for() -> None:
    values = parse_arguments(PLAN, '"Call" friday 15:00 --until 2026-06-30', env())
    assert values["until"] == datetime(2026, 6, 30, tzinfo=UTC)


def test_time_of_day_marks_only_a_time() -> None:
    async def wrong(ctx: object, title: Annotated[str, TimeOfDay()]) -> None:
        """Not a time."""

    with pytest.raises(SpecError, match="TimeOfDay on 'title' needs a datetime"):
        derive_spec(wrong, name="wrong", help="")


def test_an_option_whose_dashes_a_phone_joined_is_still_that_option() -> None:
    """iOS's smart punctuation turns a typed ``--`` into an em dash: ``—multi`` was a third poll option."""
    values = parse_arguments(CREATE, "Q A B —multi –closes=2h", env())
    assert values["options"] == ["A", "B"]
    assert values["multi"] is True
    assert values["closes"] == NOW + timedelta(hours=2)
    assert parse_arguments(SHARE, "Title —a dash that is no option", env())["body"] == (
        "—a dash that is no option"
    )
    assert parse_arguments(CREATE, 'Q A "—multi"', env())["options"] == ["A", "—multi"]
    ended = parse_arguments(TITLED, '"Leak map" some text —kind tool', env())  # ends the rest of the line
    assert (ended["body"], ended["kind"]) == ("some text", "tool")


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("friday 10:00", datetime(2026, 3, 6, 10, 0)),  # typed at 09:00 that Friday: in an hour
        ("fri 10am", datetime(2026, 3, 6, 10, 0)),
        ("on friday at 10:00", datetime(2026, 3, 6, 10, 0)),
        ("friday 08:00", datetime(2026, 3, 13, 8, 0)),  # passed already today: next week's
        ("next friday 10:00", datetime(2026, 3, 13, 10, 0)),
        ("saturday 10:00", datetime(2026, 3, 7, 10, 0)),
    ],
)
def test_a_weekday_named_on_that_weekday_is_today_while_its_time_is_ahead(
    typed: str, meant: datetime
) -> None:
    from zoneinfo import ZoneInfo

    from bot.timeparse import parse_when

    auckland = ZoneInfo("Pacific/Auckland")
    now = datetime(2026, 3, 6, 9, 0, tzinfo=auckland)  # Friday morning in Auckland, Thursday in UTC
    assert parse_when(typed, now=now, tz="Pacific/Auckland") == meant.replace(tzinfo=auckland).astimezone(UTC)


async def test_a_double_dash_before_free_text_ends_the_options_and_is_not_kept(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """``--`` is the shell's "end of options": what follows is text, and the ``--`` itself is no part of it
    (a story stored as "-- --story text", a search for "-- --kind" refused as a missing value)."""
    from sqlalchemy import select

    from plugins.polls.models import Poll
    from plugins.polls.plugin import Polls
    from plugins.repertoire.models import Item
    from plugins.repertoire.plugin import Repertoire

    bot = await console_bot_factory([Repertoire, Polls])
    said = await bot.say('ana> !share story "Night logging" -- --story of a night shift')
    assert "Added to the repertoire as #1 (story): Night logging." in said[1]
    said = await bot.say("ana> !repertoire edit 1 -- --pressure logging at night")
    assert said[1:] == ["[4] copbot> #1 is updated."]
    said = await bot.say("ana> !repertoire search -- --kind pressure")
    assert "needs a value" not in "\n".join(said) and "Sorry" not in "\n".join(said), said
    said = await bot.say('ana> !poll create -- "--Which night?" A B')
    assert said[1] == "[8] copbot> 📊 Poll #1: --Which night?"
    async with bot.services.db.session() as session:
        item = (await session.scalars(select(Item))).one()
        poll = (await session.scalars(select(Poll))).one()
    assert item.body == "--pressure logging at night"
    assert poll.question == "--Which night?"
