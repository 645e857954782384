"""Welcome, onboarding, profiles, experts and match, driven through the console adapter."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.clock import FakeClock
from bot.tables import MemberRow, Membership
from plugins.profiles import fields
from plugins.profiles.models import Introduction, Onboarding, Profile
from plugins.profiles.plugin import Profiles
from plugins.welcome.plugin import Welcome

PLUGINS = [Welcome, Profiles]


async def profile_of(bot, name: str) -> Profile | None:  # type: ignore[no-untyped-def]
    async with bot.services.db.session() as session:
        member_id = await session.scalar(select(MemberRow.id).where(MemberRow.platform_id == name))
        return await session.get(Profile, member_id) if member_id else None


async def test_newcomer_is_welcomed_onboarded_in_a_dm_and_findable(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    lines = await bot.say(":join ana")
    assert lines[1] == (
        "[2] copbot> Welcome to Our Community of Practice, @ana! We share what works in our field. "
        "Be kind, share what you know, credit others. Say hello and tell us what you are working on."
    )
    assert lines[2].startswith("[3] copbot → ana (direct)> Hi ana, welcome!")
    assert "(1/6) What kind of organisation do you work for? Answer with a number:" in "\n".join(lines)
    assert (await bot.say("ana>> 5"))[
        1
    ] == "[5] copbot → ana (direct)> (2/6) What is your organisation called?"
    await bot.say("ana>> KWR Water Research")
    invalid = await bot.say("ana>> Nederlnd")
    assert invalid[1].startswith("[9] copbot → ana (direct)> 'Nederlnd' is not a country I know")
    assert invalid[2].strip() == "(3/6) Which country do you work in? (a name or a code like NL)"
    await bot.say("ana>> Netherlands")
    await bot.say("ana>> skip")  # expertise skipped
    await bot.say("ana>> nature-based solutions, Leak detection")
    done = await bot.say("ana>> Europe/Amsterdam")
    assert done[1].startswith("[17] copbot → ana (direct)> Thank you! Here is the profile I saved")
    text = "\n".join(done)
    assert "Organisation: KWR Water Research (Research)" in text and "Expertise: —" in text
    shown = "\n".join(await bot.say("!profile @ana"))
    assert "Country: Netherlands" in shown
    assert "Interests: nature-based solutions, Leak detection" in shown  # as typed
    assert "Time zone: Europe/Amsterdam" in shown

    profile = await profile_of(bot, "ana")
    assert profile is not None
    assert (profile.org_type, profile.org, profile.country, profile.expertise) == (
        "research",
        "KWR Water Research",
        "NL",
        "",
    )
    async with bot.services.db.session() as session:
        member = (await session.execute(select(MemberRow).where(MemberRow.platform_id == "ana"))).scalar_one()
        membership = await session.get(Membership, (1, member.id))
        assert member.timezone == "Europe/Amsterdam"
        assert membership is not None and membership.level == "peripheral"
        assert await session.get(Onboarding, member.id) is None  # finished
    found = "\n".join(await bot.say("bo> !experts leaks"))
    assert "1. @ana (Research, Netherlands) — interests: Leak detection" in found


async def test_onboarding_takes_a_numbered_answer_with_its_full_stop_or_bracket(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    for name, answer, org_type in [("ana", "1.", "utility"), ("bo", "2)", "industry")]:
        await bot.say(f":join {name}")
        answered = await bot.say(f"{name}>> {answer}")
        assert answered[1].endswith(f"copbot → {name} (direct)> (2/6) What is your organisation called?")
        await bot.say(f"{name}>> stop")
        profile = await profile_of(bot, name)
        assert profile is not None and profile.org_type == org_type
    await bot.say(":join cy")
    refused = await bot.say("cy>> 10.")  # still a number: out of the list, said as such
    assert refused[1].endswith(
        "(direct)> '10.' is not an organisation type; use a number from 1 to 9. Try again, or answer skip."
    )


async def test_profile_and_onboarding_read_an_offset_as_the_timezone_command_does(
    console_bot_factory,
) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    saved = await bot.say("ana> !profile set timezone utc+2")
    assert saved[1] == "[2] copbot> Saved timezone: Etc/GMT-2 (UTC+2 all year, no summer time)"
    await bot.say("bo> !profile onboarding")
    for _ in range(5):
        await bot.say("bo>> skip")
    between = await bot.say("bo>> UTC+5:30")
    assert between[1].startswith(
        "[17] copbot → bo (direct)> 'UTC+5:30' is not a whole hour from UTC, and only whole hours have a "
        "zone of their own (UTC+2 is Etc/GMT-2); use your place's zone, like Asia/Kolkata or Asia/Colombo. "
        "Try again, or answer skip."
    )
    done = "\n".join(await bot.say("bo>> GMT-3"))
    assert "Thank you! Here is the profile I saved" in done
    assert "Time zone: Etc/GMT+3 (UTC-3 all year, no summer time)" in done


async def test_stop_ends_onboarding_and_restarting_asks_again(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    await bot.say(":join bo")
    stopped = await bot.say("bo>> stop")
    assert stopped[1] == (
        "[5] copbot → bo (direct)> Stopped here, thanks! Nothing is saved yet: !profile onboarding asks "
        "again, !profile set fills in one field."
    )
    assert (await bot.say("bo>> 1")) == [  # no conversation any more: a hint, not a question
        "[6] bo → copbot (direct)> 1",
        "[7] copbot → bo (direct)> Hello! I answer commands here, like !help to see them all.",
    ]
    restarted = await bot.say("bo> !profile onboarding")
    assert "(1/6) What kind of organisation" in "\n".join(restarted)
    assert restarted[-1] == "[10] copbot> I have sent you the questions in a direct message."


async def test_skip_and_stop_with_a_full_stop_skip_and_stop_and_write_nothing(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """'Skip.' was saved as the organisation's name, 'Stop!' refused as not a country."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say(":join ana")
    await bot.say("ana>> 1")
    skipped = await bot.say("ana>> Skip.")  # the organisation's name
    assert skipped[1].endswith("(direct)> (3/6) Which country do you work in? (a name or a code like NL)")
    stopped = await bot.say("ana>> Stop!")
    assert "Stopped here, thanks! Here is what I saved" in stopped[1]
    profile = await profile_of(bot, "ana")
    assert profile is not None and (profile.org_type, profile.org, profile.country) == ("utility", "", None)
    async with bot.services.db.session() as session:
        assert await session.get(Onboarding, profile.member_id) is None


async def test_a_command_mid_onboarding_asks_the_pending_question_again_once(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """After !help in the direct chat the question had scrolled far up, and the next skip or answer went to
    it unseen; now the question is asked again below the command's answer, once."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say(":join ana")
    await bot.say("ana>> 5")  # research; now asked for the organisation's name
    helped = await bot.say("ana>> !help")
    assert helped[-2].endswith("copbot → ana (direct)> Back to my questions (skip skips one, stop finishes):")
    assert helped[-1].strip() == "(2/6) What is your organisation called?"
    assert sum("(2/6)" in line for line in helped) == 1
    wrong = await bot.say("ana>> !profle")  # a mistyped command is answered, and the question comes again
    assert sum("(2/6) What is your organisation called?" in line for line in wrong) == 1
    assert wrong[-1].endswith("(2/6) What is your organisation called?")
    answered = await bot.say("ana>> KWR Water Research")
    assert answered[1].endswith("(direct)> (3/6) Which country do you work in? (a name or a code like NL)")
    profile = await profile_of(bot, "ana")
    assert profile is not None and (profile.org_type, profile.org) == ("research", "KWR Water Research")
    again = await bot.say("ana>> !profile onboarding")  # asks the first question itself: not twice
    assert sum("(1/6) What kind of organisation" in line for line in again) == 1
    await bot.say("ana>> stop")
    after = await bot.say("ana>> !help")  # no conversation any more: nothing asked
    assert not any("(direct)> Back to my questions" in line for line in after)


async def test_profile_onboarding_asks_again_without_welcoming_an_existing_member(
    console_bot_factory,
) -> None:  # type: ignore[no-untyped-def]
    """'Hi ana, welcome!' greeted someone who had been here all along and asked to answer again."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say("ana> hello all")
    await bot.say("ana> !profile set org KWR Water Research")
    again = await bot.say("ana> !profile onboarding")
    assert again[1] == (
        "[5] copbot → ana (direct)> Hi ana, here are the questions again. Answer skip to keep what you have, "
        "stop to finish."
    )
    assert "welcome" not in "\n".join(again).lower()
    await bot.say("ana>> 5")
    kept = await bot.say("ana>> skip")  # the organisation's name: kept as it was
    assert kept[1].endswith("(3/6) Which country do you work in? (a name or a code like NL)")
    profile = await profile_of(bot, "ana")
    assert profile is not None and (profile.org_type, profile.org) == ("research", "KWR Water Research")
    await bot.say("bo> hello")  # a member who never told anything: asked, not welcomed either
    first = await bot.say("bo>> !profile onboarding")
    assert first[1] == (
        "[13] copbot → bo (direct)> Hi bo! A few quick questions so people in Our Community of Practice know "
        "who you are and who to introduce you to. Answer skip to skip a question, stop to finish."
    )


async def test_onboarding_expires_quietly_after_seven_days(console_bot_factory, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    await bot.say(":join cy")
    clock.advance(timedelta(days=7, minutes=1))
    assert await bot.say("cy>> 2") == [  # no "your onboarding expired": just the usual hint
        "[4] cy → copbot (direct)> 2",
        "[5] copbot → cy (direct)> Hello! I answer commands here, like !help to see them all.",
    ]
    assert await profile_of(bot, "cy") is None


async def test_a_member_who_comes_back_is_welcomed_back_not_onboarded(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    await bot.say(":join dee")
    await bot.say(":leave dee")
    back = await bot.say(":join dee")
    assert back == [
        "[5] * dee joined",
        "[6] copbot> Welcome back to Our Community of Practice, @dee! Good to see you again.",
    ]


async def test_welcome_set_and_preview(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    bad = await bot.say("!welcome set Hello {membr}!")
    assert bad[1] == (
        "[2] copbot> unknown placeholder {membr} — did you mean {member}? "
        "Usage: !welcome set <template…> — "
        "e.g. !welcome set Welcome {member} to {community}! Read the rules: {rules}"
    )
    refused = await bot.say("ana> !welcome set Hi {member}")
    assert refused[1] == "[4] copbot> !welcome set is for moderators only; nothing was changed."
    saved = await bot.say("!welcome set Hi {member}, this is {community}. {braces} stay {")
    assert saved[1].startswith("[6] copbot> unknown placeholder {braces}")
    await bot.say("!welcome set Hi {member}, this is {community}!")
    preview = await bot.say("!welcome preview")
    assert preview[1] == "[10] copbot> Newcomers see: Hi @newcomer, this is Our Community of Practice!"
    joined = await bot.say(":join eve")
    assert joined[1] == "[12] copbot> Hi @eve, this is Our Community of Practice!"


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (
            "!profile set org-type bakery",
            "'bakery' is not an organisation type; choose one of utility, industry",
        ),
        ("!profile set org-type 12", "'12' is not an organisation type; use a number from 1 to 9"),
        ("!profile set country Atlantis", "'Atlantis' is not a country I know; use a name like Netherlands"),
        (
            "!profile set timezone Mars/Base",
            "'Mars/Base' is not a time zone; use an IANA name like Europe/Amsterdam",
        ),
        ("!profile set timezone CEST", "'CEST' is not a time zone — did you mean CET or Europe/Paris?"),
        ("!profile set timezone Mars/Olympus", "'Mars/Olympus' is not a time zone; use an IANA name"),
        ("!profile set expertise , ;", "no tags found; separate them with commas"),
        (
            "!profile set interests " + ", ".join(f"t{n}" for n in range(21)),
            "21 tags is too many (at most 20)",
        ),
        (
            "!profile set expertise " + "x" * 41,
            "'" + "x" * 40 + "…' is too long for a tag (at most 40 characters)",
        ),
        ("!profile set org " + "o" * 201, "an organisation's name has at most 200 characters"),
        ("!profile set intros maybe", "'maybe' is neither on nor off"),
        ("!profile set colour blue", "<field> must be one of org, org-type, country"),
        ("!profile set country", "<value> is missing"),
    ],
)
async def test_every_profile_field_refuses_bad_input_and_writes_nothing(  # type: ignore[no-untyped-def]
    console_bot_factory, line: str, error: str
) -> None:
    bot = await console_bot_factory(PLUGINS)
    reply = (await bot.say(f"ana> {line}"))[1]
    assert reply.startswith(f"[2] copbot> {error}"), reply
    assert "Usage: !profile set" in reply and "e.g. !profile set" in reply
    assert await profile_of(bot, "ana") is None


@pytest.mark.parametrize(
    ("typed", "saved"),
    [
        ("The Netherlands", "Netherlands (NL)"),
        ("Holland", "Netherlands (NL)"),
        ("Turkey", "Türkiye (TR)"),
        ("Russia", "Russian Federation (RU)"),
        ("Great Britain", "United Kingdom (GB)"),
        ("Curacao", "Curaçao (CW)"),
        ("Cote d’Ivoire", "Côte d'Ivoire (CI)"),
        ("the Philippines", "Philippines (PH)"),
    ],
)
async def test_a_country_is_taken_as_people_name_it(console_bot_factory, typed: str, saved: str) -> None:  # type: ignore[no-untyped-def]
    """Not only ISO 3166's own spelling: with "the", without accents, or by the name in common use where
    ISO has another ("Russian Federation", "Türkiye") — these were refused as "not a country I know"."""
    bot = await console_bot_factory(PLUGINS)
    assert (await bot.say(f"ana> !profile set country {typed}"))[1] == f"[2] copbot> Saved country: {saved}"


async def test_match_suggests_someone_new_with_a_reason_and_records_it(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    for line in [
        ":join ana",
        "ana>> stop",
        ":join bo",
        "bo>> stop",
        ":join cy",
        "cy>> stop",
        "ana> !profile set interests leak detection, smart metering",
        "ana> !profile set org-type utility",
        "ana> !profile set country NL",
        "bo> !profile set expertise leak detection",
        "bo> !profile set org-type regulator",
        "bo> !profile set country Belgium",
        "cy> !profile set interests smart metering",
    ]:
        await bot.say(line)

    async def match() -> str:
        return (await bot.say("ana> !match"))[1].split("copbot> ", 1)[1]

    assert await match() == (
        "Meet @bo: They know about leak detection, which interests you — "
        "and they bring a regulator view and experience from Belgium."
    )
    assert await match() == "Meet @cy: You share smart metering."
    assert (await match()).startswith("I have nobody new to suggest right now")
    async with bot.services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Introduction)) == 2


async def test_match_suggests_members_active_lately_or_new_never_the_silent_or_gone(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """Activity in the last 60 days (``active_days``) or having joined in them counts; someone who left, or
    has said nothing for longer, is not suggested — whatever their profile says."""
    bot = await console_bot_factory(PLUGINS)
    for line in [
        ":join dee",
        "dee>> stop",
        "dee> !profile set expertise leak detection",
        "eve>> !profile set expertise leak detection",  # in a direct message: not yet in the community
        ":join ana",
        "ana>> stop",
        "ana> !profile set interests leak detection",
    ]:
        await bot.say(line)
    clock.advance(timedelta(days=61))
    for line in [
        ":join eve",
        "eve>> stop",
        ":join gus",
        "gus>> stop",
        "gus> !profile set expertise leak detection",
        ":join fay",
        "fay>> stop",
        "fay> !profile set expertise leak detection",
        ":leave fay",  # active this week, but gone
    ]:
        await bot.say(line)

    suggested = []
    while (reply := (await bot.say("ana> !match"))[1].split("copbot> ", 1)[1]).startswith("Meet "):
        suggested.append(reply)
    assert suggested == [
        "Meet @eve: They know about leak detection, which interests you.",
        "Meet @gus: They know about leak detection, which interests you.",
    ]
    assert reply.startswith("I have nobody new to suggest right now")
    assert "Tell me your interests first" in (await bot.say("zed> !match"))[1]


async def test_intro_rounds_pair_opted_in_members_by_direct_message(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(
        PLUGINS,
        plugins={"profiles": {"intro_rounds": "0 9 * * mon", "intro_rooms": {"cop": {"console": "console"}}}},
    )
    for name in ("ana", "bo", "cy", "dee"):
        await bot.say(f":join {name}")
        await bot.say(f"{name}>> stop")
        await bot.say(f"{name}> !profile set intros on")
    await bot.say("eve> !profile set intros off")
    clock.advance(days=7)
    assert await bot.services.scheduler.run_due() == 1
    output = bot.new_lines()
    intros = [line for line in output if "(direct)> This round's introduction" in line]
    assert len(intros) == 4
    assert output[-1].endswith(
        "Intro round 1: 2 introductions sent by direct message. Join the next one with "
        "!profile set intros on."
    )
    async with bot.services.db.session() as session:
        rounds = (await session.execute(select(Introduction.round, Introduction.kind))).all()
    assert rounds == [(1, "round"), (1, "round")]


async def test_match_finds_a_topic_in_common_whatever_its_accents(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """`experts` finds "réutilisation" for "reutilisation"; `match` compared the tags by case only, so two
    members writing the same topic with and without its accents had nothing in common."""
    bot = await console_bot_factory(PLUGINS)
    for line in [
        ":join ana",
        "ana>> stop",
        ":join bo",
        "bo>> stop",
        "ana> !profile set interests Réutilisation des eaux",
        "bo> !profile set expertise reutilisation des EAUX, Énergie",
        "ana> !profile set expertise energie",
    ]:
        await bot.say(line)
    assert (await bot.say("ana> !match"))[1].split("copbot> ", 1)[1] == (
        "Meet @bo: They know about reutilisation des EAUX, which interests you; you share Énergie."
    )
    assert fields.tags("énergie, Energie") == ["énergie"]  # one profile's tags: the same tag once


async def test_the_first_welcome_of_make_run_reads_well(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """With no config (what `make run` starts: the console, the default community, every plugin) the
    welcome read "We share what works in sharing what works.": the default community's domain filled the
    template's {domain}. The default community has no domain of its own now, and the welcome says
    "our field" where a community names none."""
    from bot.registry import discover_plugins
    from bot.tables import CommunityRow

    bot = await console_bot_factory(list(discover_plugins().values()))
    lines = await bot.say(":join ana")
    assert lines[1] == (
        "[2] copbot> Welcome to Our Community of Practice, @ana! We share what works in our field. "
        "Be kind, share what you know, credit others. Say hello and tell us what you are working on."
    )
    async with bot.services.db.session() as session:
        assert await session.scalar(select(CommunityRow.domain)) == ""
    about = "\n".join(await bot.say("!about"))
    assert "sharing what works" not in about


def test_make_run_welcomes_the_first_newcomer_in_plain_words(tmp_path: Path) -> None:
    """`copbot run` with no config, as `make run` starts it, with a newcomer joining on the console."""
    from tests.core.test_startup import copbot

    done = copbot(tmp_path, "run", stdin=":join ana\n")
    assert done.returncode == 0, done.stderr
    welcome = done.stdout.splitlines()[1]
    assert welcome == (
        "[2] copbot> Welcome to Our Community of Practice, @ana! We share what works in our field. "
        "Be kind, share what you know, credit others. Say hello and tell us what you are working on."
    )
