"""What real members type, through the console (issue 9): each test stands for a family of inputs.

Apostrophes and quotes, tags in the member's own words, numbers out of range, time zones and dates,
suggestions and hints, deadlines that hold before their job runs, and members copbot never saw join.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.clock import FakeClock
from bot.model import Member, PollVoted
from bot.tables import MemberRow, Membership
from plugins.polls.models import Poll, PollVote
from plugins.polls.plugin import Polls
from plugins.profiles.models import Profile
from plugins.profiles.plugin import Profiles
from plugins.welcome.models import WelcomeTemplate
from plugins.welcome.plugin import Welcome

PLUGINS = [Welcome, Profiles, Polls]


async def rows(bot, model) -> int:  # type: ignore[no-untyped-def]
    async with bot.services.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def profile_of(bot, name: str) -> Profile | None:  # type: ignore[no-untyped-def]
    async with bot.services.db.session() as session:
        member = await session.scalar(select(MemberRow).where(MemberRow.platform_id == name))
        return await session.get(Profile, member.id) if member is not None else None


def reply(lines: list[str]) -> str:
    """The bot's answer to one typed line, without its console number."""
    return lines[1].split("> ", 1)[1]


# --- 5. apostrophes and quotes ------------------------------------------------------------------------


async def test_apostrophes_are_letters_in_every_free_text(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    saved = await bot.say("!welcome set Don't be shy, {member}! Welcome to O'Brien & Sons")
    assert reply(saved).startswith("Welcome text saved. Newcomers will see: Don't be shy, @newcomer!")
    assert reply(await bot.say("!profile set org O'Brien & Sons")) == "Saved org: O'Brien & Sons"
    assert reply(await bot.say("!profile set expertise l'eau, women's networks")) == (
        "Saved expertise: l'eau, women's networks"
    )
    assert reply(await bot.say("!experts women's networks")) == "Members who know about women's networks:"
    created = await bot.say("!poll create What's next? Leakage Metering")
    assert created[1:4] == ["[10] copbot> 📊 Poll #1: What's next?", "     1. Leakage", "     2. Metering"]
    typographic = await bot.say("!poll create “What’s next?” ‘l’eau potable’ Metering")
    assert typographic[1:4] == [
        "[12] copbot> 📊 Poll #2: What’s next?",
        "     1. l’eau potable",
        "     2. Metering",
    ]
    single = await bot.say("!poll create 'Where's the meeting?' Delft Utrecht")
    assert single[1] == "[14] copbot> 📊 Poll #3: Where's the meeting?"
    async with bot.services.db.session() as session:
        template = await session.get(WelcomeTemplate, 1)
    assert template is not None and template.template.startswith("Don't be shy")


async def test_quotes_around_a_whole_value_are_not_part_of_it(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    assert reply(await bot.say('!profile set org "Vitens"')) == "Saved org: Vitens"
    assert reply(await bot.say("!profile set interests “women’s networks”, 'leak detection'")) == (
        "Saved interests: women’s networks, leak detection"
    )
    await bot.say('!welcome set "Hi {member}, this is {community}"')
    async with bot.services.db.session() as session:
        template = await session.get(WelcomeTemplate, 1)
    assert template is not None and template.template == "Hi {member}, this is {community}"
    quoted = await bot.say('!experts "women’s networks"')
    assert reply(quoted) == reply(await bot.say("!experts women’s networks"))  # the same either way
    profile = await profile_of(bot, "you")
    assert profile is not None and profile.org == "Vitens"


async def test_an_unclosed_quote_is_one_line_with_usage_and_example(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    answer = reply(await bot.say('!poll create "Next topic A B'))
    assert answer.startswith('a quote " is not closed. Usage: !poll create <question> <options>…')
    assert "e.g. !poll create" in answer
    assert await rows(bot, Poll) == 0


# --- 6. tags keep the member's words ------------------------------------------------------------------


async def test_tags_are_shown_as_typed_and_refusals_say_which(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    saved = await bot.say("!profile set expertise it's, .NET, <b>leaks</b>, 🌊, 水管理, Leak Detection")
    assert reply(saved) == "Saved expertise: it's, .NET, <b>leaks</b>, 🌊, 水管理, Leak Detection"
    profile = await profile_of(bot, "you")
    assert profile is not None and profile.expertise == "it's, .NET, <b>leaks</b>, 🌊, 水管理, Leak Detection"
    assert reply(await bot.say("!profile set interests leak detection, LEAK  detection")) == (
        "Saved interests: leak detection"  # the same tag twice, whatever its case and spacing
    )
    refused = reply(await bot.say("!profile set interests water, ..., reuse"))
    assert refused.startswith("'...' has no words in it; a tag needs letters, digits or symbols.")
    too_long = reply(await bot.say("!profile set interests " + "x" * 41))
    assert too_long.startswith("'" + "x" * 40 + "…' is too long for a tag (at most 40 characters)")
    profile = await profile_of(bot, "you")
    assert profile is not None and profile.interests == "leak detection"  # refusals wrote nothing


async def test_an_organisation_with_control_characters_is_refused_and_nothing_written(
    console_bot_factory,
) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    assert reply(await bot.say("!profile set org Vitens")) == "Saved org: Vitens"
    refused = reply(await bot.say("!profile set org Vit\u202eens\u200b"))  # a right-to-left override
    assert refused.startswith("'Vit?ens?' contains control characters; write it as plain text"), refused
    profile = await profile_of(bot, "you")
    assert profile is not None and profile.org == "Vitens"


async def test_experts_finds_tags_by_their_words_and_shows_them_as_typed(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    await bot.say("ana> !profile set expertise .NET, Leak Detection")
    found = await bot.say("bo> !experts leaks")
    assert found[1:] == [
        "[4] copbot> Members who know about leaks:",
        "    1. @ana — expertise: Leak Detection",
    ]
    networks = await bot.say("bo> !experts networks")  # "net" is no match for "networks"
    assert reply(networks).startswith("Nobody's profile or shared items mention networks yet.")


# --- 7. numbers and durations out of range ------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("!poll vote 99999999999999999999999 1", "<poll-id>: '99999999999999999999999' is too large."),
        ("!poll vote 0 1", "<poll-id> must be 1 or more, not 0."),
        ("!poll results -5", "<poll-id> must be 1 or more, not -5."),
        (
            '!poll create "Q" A B --closes 9999999999999m',
            "--closes: '9999999999999m' is too long; at most 3650d.",
        ),
        ('!poll create "Q" A B --closes 99999-01-01', "--closes: '99999-01-01' is not a time I understand"),
        (
            '!poll create "Q" A B --closes "2027-02-29 10:00"',
            "--closes: '2027-02-29' is not a date: February 2027 has 28 days",
        ),
        ('!poll create "Q" A B --closes "tomorrow 25:00"', "--closes: '25:00' is not a time of day"),
        ("!poll vote 1 99999999999999999999999", "option 99999999999999999999999 does not exist"),
    ],
)
async def test_numbers_out_of_range_get_the_usage_line_not_an_apology(  # type: ignore[no-untyped-def]
    console_bot_factory, caplog: pytest.LogCaptureFixture, line: str, error: str
) -> None:
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!poll create "Lunch?" Yes No')
    answer = reply(await bot.say(line))
    assert answer.startswith(error)
    assert ("Sorry" not in answer and "Usage:" in answer) or "does not exist" in answer
    assert not [record for record in caplog.records if record.levelname == "ERROR"]
    assert await rows(bot, Poll) == 1 and await rows(bot, PollVote) == 0


# --- 8. time zones and dates --------------------------------------------------------------------------


async def test_time_zones_in_any_case_and_iana_abbreviations(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    assert (
        reply(await bot.say("!profile set timezone europe/amsterdam")) == "Saved timezone: Europe/Amsterdam"
    )
    assert reply(await bot.say("!profile set timezone CET")) == "Saved timezone: CET"
    typo = reply(await bot.say("!profile set timezone Europe/Amsterdm"))
    assert typo.startswith("'Europe/Amsterdm' is not a time zone — did you mean Europe/Amsterdam?")
    city = reply(await bot.say("!profile set timezone new york"))
    assert city.startswith("'new york' is not a time zone — did you mean America/New_York?")
    async with bot.services.db.session() as session:
        member = await session.scalar(select(MemberRow).where(MemberRow.platform_id == "you"))
    assert member is not None and member.timezone == "CET"


async def test_ambiguous_numeric_dates_are_refused_with_the_iso_form(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    answer = reply(await bot.say('!poll create "Q" A B --closes 2/2/2026'))
    assert answer.startswith("--closes: Mon 2 Feb 23:59 UTC has already passed")  # one reading: no doubt
    ambiguous = reply(await bot.say('!poll create "Q" A B --closes 5/3/2026 10:00'))
    assert ambiguous.startswith(
        "--closes: '5/3/2026' could be 5 March or 3 May; write the date as year-month-day: 2026-03-05"
    )
    clear = await bot.say('!poll create "Q" A B --closes 25/3/2026 10:00')
    assert "Closes Wed 25 Mar 10:00 UTC" in clear[-1]
    assert await rows(bot, Poll) == 1


# --- 9. suggestions, hints and dead ends --------------------------------------------------------------


async def test_did_you_mean_is_close_and_only_offers_what_the_caller_may_use(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    assert reply(await bot.say("!meeting list")) == "Unknown command !meeting. Type !help for the list."
    assert reply(await bot.say("ana> !welcom preview")) == "Unknown command !welcom. Type !help for the list."
    assert reply(await bot.say("!welcom preview")) == (
        "Unknown command !welcom — did you mean !welcome? Type !help for the list."
    )
    assert reply(await bot.say("ana> !poll lst")) == (
        "!poll lst is not a command — did you mean !poll list? "
        "(!poll has: close, create, list, results, vote)"
    )
    assert reply(await bot.say("!experst leaks")) == (
        "Unknown command !experst — did you mean !experts? Type !help for the list."
    )


async def test_help_for_a_command_that_is_also_a_group_lists_the_group(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    shown = "\n".join(await bot.say("ana> !help profile"))
    assert "!profile [<@member>]" in shown
    assert (
        "!profile set org|org-type|country|expertise|interests|timezone|intros|reminders|public|prompts|"
        "tracking <value…>" in shown
    )
    assert "!profile onboarding — Answer the onboarding questions again" in shown


async def test_near_commands_and_direct_messages_get_a_short_hint(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    assert reply(await bot.say("!")) == "Type !help to see what I can do."
    assert reply(await bot.say("!  help")) == "Write commands without a space after !, like !help."
    assert (
        reply(await bot.say("ana>> hello there"))
        == "Hello! I answer commands here, like !help to see them all."
    )
    assert await bot.say("ana> ! what a day") == ["[7] ana> ! what a day"]  # chat, not a near-command


async def test_short_and_repeated_flags_are_errors(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    assert reply(await bot.say('!poll create "Q" A B -m')).startswith(
        "-m is not an option — did you mean --multi?"
    )
    assert reply(await bot.say('!poll create "Q" A B --multi --multi')).startswith("--multi is given twice.")
    assert reply(await bot.say('!poll create "Q" A B --close 2d')).startswith(
        "--close is not an option — did you mean --closes?"
    )
    assert await rows(bot, Poll) == 0


async def test_intros_on_does_not_promise_rounds_nobody_set_up(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    answer = reply(await bot.say("!profile set intros on"))
    assert answer.startswith("Saved intros: on — but no intro rounds are scheduled yet")
    assert "next intro round" not in answer
    configured = await console_bot_factory(PLUGINS, plugins={"profiles": {"intro_rounds": "0 9 * * mon"}})
    assert reply(await configured.say("!profile set intros on")) == (
        "Saved intros: on — you will be paired in the next intro round"
    )


async def test_a_member_already_present_who_joins_again_is_not_welcomed_again(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    first = await bot.say(":join ana")
    assert first[1].startswith("[2] copbot> Welcome to Our Community of Practice, @ana!")
    assert await bot.say(":join ana") == ["[4] * ana joined"]  # a repeated join: no news
    await bot.say(":leave ana")
    back = await bot.say(":join ana")
    assert back[1] == "[7] copbot> Welcome back to Our Community of Practice, @ana! Good to see you again."


# --- 2. the deadline is the poll's own ----------------------------------------------------------------


async def test_past_its_deadline_a_poll_is_closed_before_its_job_runs(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!poll create "Workshop date?" Mon Tue --closes 2m')
    await bot.say("ana> !poll vote 1 1")
    clock.advance(minutes=3)  # the deadline passed; the close job has not run yet
    late = await bot.say("bo> !poll vote 1 2")
    assert reply(late) == "Poll #1 is closed; votes are no longer counted."
    assert reply(await bot.say("!poll list")) == "No open polls. Start one with !poll create."
    assert reply(await bot.say("!poll results 1")) == "📊 Poll #1 (closed): Workshop date? — 1 voter"
    await bot.bot.pipeline.handle(  # a vote from a platform's own poll UI, cast after the deadline
        bot.adapter,
        PollVoted(
            event_id="late-native",
            room=bot.adapter.room,
            at=clock.now(),
            member=Member("console", "cy", "cy"),
            poll_message_id="2",
            answers=(1,),
        ),
    )
    assert await rows(bot, PollVote) == 1
    assert await bot.services.scheduler.run_due() == 1  # the close posts the results as they were
    assert bot.new_lines()[0] == "[11] copbot> 📊 Poll #1 (closed): Workshop date? — 1 voter"


# --- 4. members copbot never saw join -----------------------------------------------------------------


async def test_whoever_speaks_in_the_room_is_a_member(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    await bot.say("ana> good morning all")  # ana was here before copbot: no join was ever seen
    await bot.say("ana> !profile set expertise leak detection")
    await bot.say("bo> !profile set interests leak detection, reuse")  # bo's first act is a command
    assert reply(await bot.say("cy> !experts leak")) == "Members who know about leak:"
    match = await bot.say("bo> !match")
    assert reply(match).startswith("Meet @ana: They know about leak detection, which interests you")
    async with bot.services.db.session() as session:
        members = (
            await session.execute(
                select(MemberRow.platform_id, Membership.left_at).join(
                    Membership, Membership.member_id == MemberRow.id
                )
            )
        ).all()
    assert sorted(members) == [("ana", None), ("bo", None), ("cy", None)]
    direct = await bot.say("dee>> hello")  # a direct message is not presence in the room
    assert "dee" not in [name for name, _ in members] and len(direct) == 2


async def test_a_repeating_rule_too_long_to_keep_is_refused_with_its_limit(  # type: ignore[no-untyped-def]
    console_bot_factory, database_url: str
) -> None:
    """``--every`` takes an RRULE as typed, and a meeting keeps at most 500 characters of it: a longer one
    (``BYDAY=TU,TU,…``) was the apology on PostgreSQL, which refuses the row, and on SQLite a meeting whose
    every answer repeated "Tuesdays" two hundred times. Now it is refused with the limit, like a title."""
    from plugins.meetings.models import Meeting
    from plugins.meetings.plugin import Meetings

    bot = await console_bot_factory([Meetings, Profiles], database_url=database_url)
    rule = "FREQ=WEEKLY;BYDAY=" + ",".join(["TU"] * 200)
    answer = reply(await bot.say(f'!meeting schedule "Call" 2026-03-10 15:00 --every "{rule}"'))
    assert answer.startswith(f"the rule has {len(rule)} characters; at most 500"), answer
    assert "e.g. !meeting schedule" in answer, answer
    assert await rows(bot, Meeting) == 0
    planned = reply(await bot.say('!meeting schedule "Call" 2026-03-10 15:00 --every "FREQ=WEEKLY;BYDAY=TU"'))
    assert planned.startswith("Meeting #1 planned for Tue 10 Mar 15:00 UTC, weekly on Tuesdays"), planned
