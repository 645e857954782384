"""Value creation: members' own choices (public, prompts, tracking), the story conversation by direct
message (answer, cycle, public, skip, stop, opting out, expiry), the scheduled rounds (only members active
in the period, never twice), `value story`, `value report` figures against hand-counted ones, and the
value page (private link, escaping, names only of members who chose to show theirs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, insert, select

from bot.clock import FakeClock
from bot.model import ButtonClicked, Capability, Member, Room
from bot.tables import ActivityEvent, MemberRow, Membership
from bot.web.app import create_app
from bot.web.links import sign, signing_key
from plugins.meetings.models import Attendance, Meeting, Rsvp
from plugins.profiles.models import Introduction
from plugins.profiles.plugin import Profiles
from plugins.repertoire.models import Item, Upvote, Use
from plugins.roles.plugin import Roles
from plugins.value import conversation, indicators
from plugins.value.models import Prompt, Round, Story
from plugins.value.plugin import Value

PLUGINS = [Profiles, Value]
QUIET: dict[str, Any] = {"profiles": {"onboarding": False}}
FIRST_ROUND = datetime(2026, 4, 1, 10, 0, tzinfo=UTC)  # "0 10 1 * *" after the fixtures' clock (2 March)
IN_PERIOD = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def said(lines: list[str]) -> list[str]:
    """What copbot wrote, without the numbering."""
    return [
        line.split("> ", 1)[1]
        for line in lines
        if line.startswith("[") and line.split("] ", 1)[1].startswith(("copbot>", "copbot → "))
    ]


async def member(bot, name: str) -> MemberRow:  # type: ignore[no-untyped-def]
    async with bot.services.db.session() as session:
        return (await session.execute(select(MemberRow).where(MemberRow.platform_id == name))).scalar_one()


async def rows(bot, model: Any, *where: Any) -> list[Any]:  # type: ignore[no-untyped-def]
    async with bot.services.db.session() as session:
        return list((await session.execute(select(model).where(*where))).scalars())


async def activity_count(bot, name: str) -> int:  # type: ignore[no-untyped-def]
    row = await member(bot, name)
    async with bot.services.db.session() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(ActivityEvent).where(ActivityEvent.member_id == row.id)
            )
            or 0
        )


async def run_round(bot, clock: FakeClock, when: datetime) -> list[str]:  # type: ignore[no-untyped-def]
    clock.set(when)
    await bot.services.scheduler.run_due()
    return bot.new_lines()


def asked(lines: list[str]) -> list[str]:
    """Whom a round's lines asked, by name."""
    return sorted(
        line.split(" → ")[1].split(" ")[0]
        for line in lines
        if "copbot → " in line and "Now and then I ask" in line
    )


async def asked_bot(console_bot_factory, clock: FakeClock, *names: str):  # type: ignore[no-untyped-def]
    """A bot whose first round asked ``names`` (each said hello in the period)."""
    bot = await console_bot_factory(PLUGINS, plugins=QUIET)
    clock.set(IN_PERIOD)
    for name in names:
        await bot.say(f"{name}> hello")
    lines = await run_round(bot, clock, FIRST_ROUND)
    assert asked(lines) == sorted(names)
    return bot


# --- the member's own choices ---------------------------------------------------------------------------


async def test_profile_set_public_prompts_tracking_say_what_changes_and_are_kept_on_the_member(
    console_bot_factory,
) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, plugins=QUIET)
    fresh = await bot.say("ana> hello")
    assert fresh == ["[1] ana> hello"]
    row = await member(bot, "ana")
    assert (row.public, row.prompts, row.tracking) == (False, True, True)  # the defaults
    assert said(await bot.say("ana> !profile set public on")) == [
        "Saved public: on — your name appears on the community's web pages (the dashboard, the value page)"
    ]
    assert said(await bot.say("ana> !profile set prompts off")) == [
        "Saved prompts: off — I will not ask you for value stories any more; "
        "you can still tell one whenever you like with !value story …"
    ]
    assert said(await bot.say("ana> !profile set tracking off")) == [
        "Saved tracking: off — from now on copbot records none of your activity (messages, reactions, "
        "commands, votes); what you share, vote and plan still works. Your participation level then "
        "changes only by a moderator"
    ]
    row = await member(bot, "ana")
    assert (row.public, row.prompts, row.tracking) == (True, False, False)
    assert said(await bot.say("ana> !profile set public off"))[0].startswith(
        "Saved public: off — the community's web pages never show your name"
    )
    assert said(await bot.say("ana> !profile set prompts on"))[0].startswith(
        "Saved prompts: on — now and then"
    )
    assert said(await bot.say("ana> !profile set tracking on"))[0] == (
        "Saved tracking: on — copbot records your activity again, and your participation level follows "
        "the rules"
    )
    row = await member(bot, "ana")
    assert (row.public, row.prompts, row.tracking) == (False, True, True)
    assert said(await bot.say("ana> !profile set tracking maybe")) == [
        "'maybe' is neither on nor off. Usage: !profile set "
        "org|org-type|country|expertise|interests|timezone|intros|reminders|public|prompts|tracking "
        "<value…> — e.g. !profile set tracking off"
    ]
    assert said(await bot.say("ana> !profile")) == [
        "You have no profile yet; start with !profile onboarding or !profile set"
    ]  # choices made no empty profile


async def test_tracking_off_stops_activity_rows_at_once_and_freezes_the_level(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Profiles, Roles, Value], plugins=QUIET)
    await bot.say("ana> hello")
    await bot.say("bo> hello")
    assert await activity_count(bot, "ana") == 1
    await bot.say("ana> !profile set tracking off")
    assert await activity_count(bot, "ana") == 1  # not even the command that turned it off
    await bot.say("ana> still chatting")
    await bot.say(":react ana 2 👍")
    await bot.say("ana> !value story The call on leak maps changed our survey plan --cycle applied")
    assert await activity_count(bot, "ana") == 1
    assert len(await rows(bot, Story)) == 1  # what she does still works; only the counting stops
    await bot.bot.stop()  # and it holds across a restart (the flag is read at start)
    bot = await console_bot_factory([Profiles, Roles, Value], plugins=QUIET)
    await bot.say("ana> after the restart")
    assert await activity_count(bot, "ana") == 1
    clock.advance(timedelta(days=100))  # a long silence: the rules move bo out, not ana
    await bot.say("!role recompute")
    levels = {row.member_id: row.level for row in await rows(bot, Membership, Membership.community_id == 1)}
    assert levels[(await member(bot, "bo")).id] == "transactional"
    assert levels[(await member(bot, "ana")).id] == "peripheral"
    await bot.say("ana> !profile set tracking on")
    assert await activity_count(bot, "ana") == 2  # counted again from the command that turned it on
    await bot.say("ana> back")
    assert await activity_count(bot, "ana") == 3


# --- the conversation -----------------------------------------------------------------------------------


async def test_a_round_asks_by_dm_and_the_answers_make_a_story(console_bot_factory, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, plugins=QUIET)
    clock.set(IN_PERIOD)
    await bot.say("ana> hello")
    lines = await run_round(bot, clock, FIRST_ROUND)
    assert said(lines) == [
        "Hi ana! Now and then I ask members of Our Community of Practice what the community is worth to "
        "them — it helps the coordinators see what works. Three short questions; answer skip to skip one, "
        "stop to end, or never if you would rather not be asked again."
    ]
    assert lines[1].strip() == (
        "(1/3) What did you take from the community lately — and did it change anything in your work?"
    )
    answered = await bot.say("ana>> The leak-map session: we re-planned our night-flow survey with it.")
    assert said(answered) == ["Thank you!"]
    assert "(2/3) Which of these fits best? Answer with a number (or skip):" in answered[2]
    assert answered[5].strip() == (
        "3. I used something from the community in my work: I tried a tool, followed advice, changed how "
        "I do something."
    )
    wrong = await bot.say("ana>> 7")
    assert said(wrong) == ["'7' is not one of the five; answer with a number from 1 to 5, or skip."]
    public = await bot.say("ana>> 3")
    assert said(public)[0].startswith("(3/3) May your story be shown to the community")
    assert said(await bot.say("ana>> perhaps")) == ["Please answer yes or no (or skip)."]
    done = await bot.say("ana>> yes")
    assert said(done) == [
        "Thank you! Your story is saved — applied value, it may be shown to the community. "
        "Tell another whenever you like: !value story …"
    ]
    (story,) = await rows(bot, Story)
    assert (story.text, story.cycle, story.public, story.source, story.community_id) == (
        "The leak-map session: we re-planned our night-flow survey with it.",
        "applied",
        True,
        "prompt",
        1,
    )
    (prompt,) = await rows(bot, Prompt)
    assert (prompt.outcome, prompt.story_id) == ("done", story.id)
    told = await rows(bot, ActivityEvent, ActivityEvent.kind == "value_story")
    assert [(row.community_id, row.detail) for row in told] == [(1, f"story {story.id}")]
    after = await bot.say("ana>> thanks!")  # the conversation is over: the usual hint again
    assert said(after) == ["Hello! I answer commands here, like !help to see them all."]


async def test_skip_leaves_a_question_open_and_stop_ends_keeping_what_was_said(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    bot = await asked_bot(console_bot_factory, clock, "ana", "bo", "cy")
    await bot.say("ana>> We found a contact at the regulator.")
    await bot.say("ana>> skip")  # no cycle
    assert said(await bot.say("ana>> skip"))[0] == (  # not shown
        "Thank you! Your story is saved — no cycle chosen, kept private: only counted, never shown. "
        "Tell another whenever you like: !value story …"
    )
    assert said(await bot.say("bo>> skip")) == [  # no story: nothing to place, the conversation ends
        "No story this time — thank you all the same. Whenever something comes to mind: !value story …"
    ]
    await bot.say("cy>> Met Ana, now we share pump data")
    assert said(await bot.say("cy>> stop")) == [
        "Stopped here — thank you. Your story is kept — no cycle chosen, kept private: only counted, "
        "never shown."
    ]
    assert said(await bot.say("cy>> 2")) == ["Hello! I answer commands here, like !help to see them all."]
    stories = {(await member(bot, "ana")).id: "ana", (await member(bot, "cy")).id: "cy"}
    assert sorted((stories[s.author_id], s.cycle, s.public) for s in await rows(bot, Story)) == [
        ("ana", None, False),
        ("cy", None, False),
    ]
    outcomes = sorted(p.outcome for p in await rows(bot, Prompt))
    assert outcomes == ["done", "skipped", "stopped"]


async def test_opting_out_in_the_conversation_or_with_profile_set(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    bot = await asked_bot(console_bot_factory, clock, "ana", "bo", "cy")
    assert said(await bot.say("ana>> never")) == [
        "Understood: I will not ask you again. Changed your mind? !profile set prompts on"
    ]
    assert (await member(bot, "ana")).prompts is False
    await bot.say("bo> !profile set prompts off")  # in a room, while his question is open
    assert said(await bot.say("bo>> here is my story after all")) == [
        "Hello! I answer commands here, like !help to see them all."  # the conversation ended quietly
    ]
    assert await rows(bot, Story) == []
    outcomes = {p.member_id: p.outcome for p in await rows(bot, Prompt)}
    assert outcomes[(await member(bot, "ana")).id] == outcomes[(await member(bot, "bo")).id] == "opted_out"
    for name in ("ana", "bo", "cy"):
        await bot.say(f"{name}> still here in April")
    await bot.say("cy>> skip")
    again = await run_round(bot, clock, datetime(2026, 5, 1, 10, 0, tzinfo=UTC))
    assert asked(again) == ["cy"]


async def test_a_command_mid_conversation_asks_the_pending_question_again_once(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    """After !help in the direct chat the story question had scrolled far up, and the member's next message
    answered it unseen; now it is asked again below the command's answer, once — and when onboarding waits
    in the same chat too, only onboarding's question comes back (it goes first)."""
    bot = await asked_bot(console_bot_factory, clock, "ana")
    helped = await bot.say("ana>> !help")
    assert said(helped)[-1] == "Back to my questions (skip skips one, stop ends):"
    assert helped[-1].strip() == (
        "(1/3) What did you take from the community lately — and did it change anything in your work?"
    )
    assert sum("(1/3)" in line for line in helped) == 1
    await bot.say("ana>> We now share pump data with Bo.")
    profiled = await bot.say("ana>> !profle")  # a mistyped command: answered, and the question comes again
    assert said(profiled)[-1] == "Back to my questions (skip skips one, stop ends):"
    assert sum("(2/3) Which of these fits best?" in line for line in profiled) == 1
    assert profiled[-1].strip().startswith("5. ")
    await bot.say("ana>> 3")
    await bot.say("ana>> no")
    (story,) = await rows(bot, Story)
    assert (story.text, story.cycle, story.public) == ("We now share pump data with Bo.", "applied", False)
    after = await bot.say("ana>> !help")  # the conversation is over: nothing asked
    assert not any("Back to my questions" in line for line in after)
    told = await bot.say("ana>> !value story Bo's pump data saved a survey")  # asks its own question
    assert sum("Which of these fits best?" in line for line in told) == 1


async def test_onboarding_goes_first_and_the_story_question_comes_back_when_it_ends(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    """With onboarding and a story question both waiting in the chat, a command brought back only
    onboarding's question, not two at once; the member's answers go to it, and when it ends the story
    question is asked again, so the next message answers a question the member can see."""
    bot = await asked_bot(console_bot_factory, clock, "ana")
    started = await bot.say("ana>> !profile onboarding")
    assert sum("(1/6) What kind of organisation" in line for line in started) == 1
    assert not any("(1/3)" in line or "Back to my questions" in line for line in started)
    helped = await bot.say("ana>> !help")
    assert sum("Back to my questions" in line for line in helped) == 1
    assert sum("(1/6) What kind of organisation" in line for line in helped) == 1
    assert not any("(1/3)" in line for line in helped)
    answered = await bot.say("ana>> 5")  # research: onboarding's answer, not a story
    assert any("(2/6) What is your organisation called?" in line for line in answered)
    assert not any("(1/3)" in line for line in answered)
    assert await rows(bot, Story) == []
    stopped = await bot.say("ana>> stop")
    assert said(stopped)[-1] == "Back to my questions (skip skips one, stop ends):"
    assert stopped[-1].strip() == (
        "(1/3) What did you take from the community lately — and did it change anything in your work?"
    )
    told = await bot.say("ana>> Met Bo at the call; we now share pump data")
    assert said(told) == ["Thank you!"]
    (story,) = await rows(bot, Story)
    assert (story.text, story.source) == ("Met Bo at the call; we now share pump data", "prompt")


async def test_an_unanswered_question_expires_quietly_after_a_week(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    bot = await asked_bot(console_bot_factory, clock, "ana", "bo")
    clock.advance(timedelta(days=6, hours=23))
    assert said(await bot.say("bo>> Still in time")) == ["Thank you!"]
    clock.advance(timedelta(hours=1, minutes=1))
    assert said(await bot.say("ana>> A late story")) == [  # no "your question expired": the usual hint
        "Hello! I answer commands here, like !help to see them all."
    ]
    assert [s.text for s in await rows(bot, Story)] == ["Still in time"]
    outcomes = {p.member_id: p.outcome for p in await rows(bot, Prompt)}
    assert outcomes[(await member(bot, "ana")).id] == "expired"


async def test_the_menus_answer_on_platforms_that_have_them(console_bot_factory, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    buttons = frozenset({Capability.BUTTONS, Capability.DIRECT_MESSAGES})
    menu = conversation.cycle_question(7, buttons, prompted=True).select
    assert menu is not None and menu.custom_id == "value:cycle:7"
    assert [value for value, _ in menu.options] == list(indicators.CYCLES)
    assert all(len(label) <= 100 for _, label in menu.options)  # Discord's limit
    shown = conversation.public_question(7, buttons, prompted=True).select
    assert shown is not None and [value for value, _ in shown.options] == ["yes", "no"]

    bot = await asked_bot(console_bot_factory, clock, "ana")
    await bot.say("ana>> The data-sharing template saved us a month")
    ana = await member(bot, "ana")
    room = Room("console", "direct:ana", community_id="cop", is_direct=True)

    async def click(custom_id: str, value: str, n: int) -> list[str]:
        event = ButtonClicked(
            event_id=f"click-{n}",
            room=room,
            at=clock.now(),
            member=Member("console", "ana", "ana"),
            custom_id=custom_id,
            values=(value,),
        )
        await bot.bot.pipeline.handle(bot.adapter, event)
        return bot.new_lines()

    assert await click(f"value:public:{ana.id}", "yes", 1) == []  # not the question being asked
    picked = said(await click(f"value:cycle:{ana.id}", "realized", 2))
    assert picked[0] == "Noted: Realized value" and picked[1].startswith("(3/3) May your story be shown")
    assert said(await click(f"value:public:{ana.id}", "no", 3))[0] == "Noted: private"
    (story,) = await rows(bot, Story)
    assert (story.cycle, story.public) == ("realized", False)


# --- the rounds -----------------------------------------------------------------------------------------


async def test_a_round_asks_only_members_active_in_the_period_and_never_twice(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, plugins=QUIET)
    await bot.say("old> before the period")  # 2 March 09:00: before the first period (1 March 10:00 on)
    clock.set(IN_PERIOD)
    await bot.say("ana> hello")
    await bot.say("bo> hello")
    await bot.say("cy> !profile set prompts off")
    await bot.say("dee> hello")
    await bot.say(":leave dee")
    await bot.say("eve> hello")
    await bot.say("eve> !value story Our first joint proposal came out of the March call --cycle realized")
    first = await run_round(bot, clock, FIRST_ROUND)
    assert asked(first) == ["ana", "bo"]  # not old (before), cy (prompts off), dee (left), eve (told one)
    (round_,) = await rows(bot, Round)
    assert (round_.period_end, round_.asked) == (FIRST_ROUND, 2)
    assert await bot.services.scheduler.run_due() == 0  # the next round is May's
    payload = {"community": "cop", "job_id": "value:prompts:cop", "due_at": FIRST_ROUND}
    await bot.bot.pipeline.run_job("value.prompt_round", dict(payload))  # the same period, run again
    assert asked(bot.new_lines()) == [] and len(await rows(bot, Prompt)) == 2
    await bot.bot.stop()

    bot = await console_bot_factory(PLUGINS, plugins=QUIET)  # a restart asks nobody again
    assert bot.new_lines() == []
    clock.set(datetime(2026, 4, 10, 9, 0, tzinfo=UTC))
    await bot.say("bo> still here")  # his unanswered April question expired after a week: asked again
    await bot.say("old> back again")
    second = await run_round(bot, clock, datetime(2026, 5, 1, 10, 0, tzinfo=UTC))
    assert asked(second) == ["bo", "old"]  # ana said nothing since the last round
    rounds = await rows(bot, Round)
    assert [(r.period_start, r.period_end) for r in rounds][-1] == (
        FIRST_ROUND,
        datetime(2026, 5, 1, 10, 0, tzinfo=UTC),
    )


async def test_a_round_follows_the_community_schedule_and_can_be_off(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, plugins={**QUIET, "value": {"community_schedules": {"cop": ""}}})
    assert "value:prompts:cop" not in await bot.services.scheduler.job_ids()
    await bot.bot.stop()
    weekly = {**QUIET, "value": {"schedule": "0 9 * * mon"}}
    bot = await console_bot_factory(PLUGINS, plugins=weekly)
    assert await bot.services.scheduler.next_run("value:prompts:cop") == datetime(
        2026, 3, 9, 9, 0, tzinfo=UTC
    )


# --- value story ----------------------------------------------------------------------------------------


async def test_value_story_unprompted_with_or_without_a_cycle(console_bot_factory, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, plugins=QUIET)
    direct = await bot.say(
        "ana> !value story We cut night-flow losses by 8% with the method Bo shared --cycle realized"
    )
    assert said(direct) == [
        "Thank you! Your story is saved as realized value, kept private (add --public to let it be shown)."
    ]
    asked_ = await bot.say("bo> !value story I now see leakage as a customer-trust issue, not only cost")
    assert said(asked_)[0] == "Thanks for your story!"
    assert "Which of these fits best? Answer with a number (or skip):" in asked_[2]
    assert said(asked_)[-1] == (
        "Thank you! Your story is saved; I have sent you a question about it in a direct message."
    )
    assert said(await bot.say("bo>> reframing value"))[0].startswith("May your story be shown")  # no (n/3)
    assert said(await bot.say("bo>> no"))[0].startswith(
        "Thank you! Your story is saved — reframing value, kept"
    )
    await bot.say("cy> !value story We tried the leak map --public")
    assert said(await bot.say("cy>> 3")) == [  # agreed already: no question about it
        "Thank you! Your story is saved — applied value, it may be shown to the community. "
        "Tell another whenever you like: !value story …"
    ]
    too_long = await bot.say("dee> !value story " + "x" * 2001)
    assert said(too_long) == [
        "a story has at most 2,000 characters (this one has 2,001). Usage: !value story <text…> "
        "[--cycle <immediate|potential|applied|realized|reframing>] [--public] — e.g. !value story The "
        "leak-map session saved us a week of field work --cycle realized"
    ]
    stories = await rows(bot, Story)
    assert [(s.cycle, s.public, s.source) for s in sorted(stories, key=lambda s: s.id)] == [
        ("realized", False, "unprompted"),
        ("reframing", False, "unprompted"),
        ("applied", True, "unprompted"),
    ]
    counted = await rows(bot, ActivityEvent, ActivityEvent.kind == "value_story")
    assert len(counted) == 3 and {row.community_id for row in counted} == {1}


async def test_a_story_told_with_its_cycle_answers_the_rounds_open_question(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    """Asked in a round, a member tells their story with `value story … --cycle`: the round's question is
    answered. Their next direct message was taken for a second story, counted as one in the matrix."""
    bot = await asked_bot(console_bot_factory, clock, "ana")
    told = await bot.say("ana> !value story The leak map saved us a week --cycle realized --public")
    assert said(told) == [
        "Thank you! Your story is saved as realized value, it may be shown to the community."
    ]
    after = await bot.say("ana>> thanks, that was it")
    assert said(after) == ["Hello! I answer commands here, like !help to see them all."]
    stories = await rows(bot, Story)
    assert [(s.text, s.cycle, s.source) for s in stories] == [
        ("The leak map saved us a week", "realized", "unprompted")
    ]
    (prompt,) = await rows(bot, Prompt)
    assert prompt.outcome == "replaced"


# --- the report and the page ----------------------------------------------------------------------------


async def seed(bot, now: datetime) -> list[int]:  # type: ignore[no-untyped-def]
    """Two periods of community life; the figures are counted by hand in the tests below."""

    def ago(days: float) -> datetime:
        return now - timedelta(days=days)

    async with bot.services.db.session() as session:
        people = [
            MemberRow(
                platform="console",
                platform_id=f"m{i}",
                display_name=f"m{i}",
                public=i == 0,  # only m0 shows their name on the web
                first_seen=ago(100),
                last_seen=ago(1),
            )
            for i in range(5)
        ]
        session.add_all(people)
        await session.flush()
        m = [p.id for p in people]
        session.add_all(Membership(community_id=1, member_id=i, joined_at=ago(100)) for i in m)
        activity = [  # (kind, detail, member, days ago)
            ("message", "", 0, 1),
            ("message", "", 0, 2),
            ("message", "", 1, 3),
            ("message", "", 2, 5),
            ("poll_vote", "poll 1", 1, 3),
            ("poll_vote", "poll 1", 2, 4),
            ("command", "experts", 3, 2),
            ("command", "experts", 3, 3),
            ("command", "match", 3, 3),
            # the period before
            ("message", "", 0, 40),
            ("message", "", 4, 45),
            ("poll_vote", "poll 0", 4, 45),
            ("command", "experts", 0, 40),
        ]
        await session.execute(
            insert(ActivityEvent.__table__),
            [
                {
                    "member_id": m[who],
                    "community_id": 1,
                    "kind": kind,
                    "platform": "console",
                    "room_id": "console",
                    "detail": detail,
                    "at": ago(days),
                }
                for kind, detail, who, days in activity
            ],
        )
        meeting = Meeting(
            community_id=1,
            platform="console",
            room_id="console",
            title="Monthly call",
            tz="UTC",
            starts_at=ago(70),
            rule="FREQ=DAILY;INTERVAL=10",
            creator_id=m[0],
            created_at=ago(80),
            updated_at=ago(80),
        )
        session.add(meeting)
        await session.flush()

        def occurrence(days: int) -> str:
            return ago(days).strftime("%Y-%m-%dT%H:%M:%SZ")

        session.add_all(
            [
                Attendance(
                    meeting_id=meeting.id,
                    occurrence=occurrence(10),
                    member_id=m[0],
                    confirmed_by=m[0],
                    at=ago(10),
                ),
                Attendance(
                    meeting_id=meeting.id,
                    occurrence=occurrence(10),
                    member_id=m[1],
                    confirmed_by=m[0],
                    at=ago(10),
                ),
                Attendance(
                    meeting_id=meeting.id,
                    occurrence=occurrence(40),
                    member_id=m[0],
                    confirmed_by=m[0],
                    at=ago(40),
                ),
                Rsvp(
                    meeting_id=meeting.id, occurrence=occurrence(10), member_id=m[0], answer="yes", at=ago(12)
                ),
                Rsvp(
                    meeting_id=meeting.id, occurrence=occurrence(10), member_id=m[2], answer="yes", at=ago(11)
                ),
                Rsvp(
                    meeting_id=meeting.id, occurrence=occurrence(10), member_id=m[4], answer="no", at=ago(11)
                ),
            ]
        )

        def item(author: int, created: int, removed: int | None = None) -> Item:
            return Item(
                community_id=1,
                kind="tool",
                title=f"item by m{author}",
                author_id=m[author],
                added_by_id=m[author],
                created_at=ago(created),
                updated_at=ago(created),
                removed_at=ago(removed) if removed is not None else None,
            )

        items = [item(0, 5), item(1, 3, removed=1), item(2, 50)]
        session.add_all(items)
        await session.flush()
        session.add_all(
            [
                Use(item_id=items[0].id, member_id=m[1], at=ago(2)),
                Use(item_id=items[2].id, member_id=m[3], at=ago(45)),
                Upvote(item_id=items[2].id, member_id=m[4], at=ago(48)),
                Introduction(community_id=1, member_a=m[2], member_b=m[3], kind="match", at=ago(7)),
                Introduction(community_id=1, member_a=m[0], member_b=m[4], kind="round", round=1, at=ago(35)),
            ]
        )

        def story(author: int, days: int, cycle: str | None, public: bool, text: str) -> Story:
            return Story(
                community_id=1,
                author_id=m[author],
                text=text,
                cycle=cycle,
                public=public,
                source="prompt",
                created_at=ago(days),
            )

        session.add_all(
            [
                story(0, 4, "applied", True, "We used the map\nand found two leaks in a week"),
                story(1, 3, "realized", False, "Private: our budget went down"),
                story(2, 2, "realized", True, "Saved a week of <b>field</b> work & more"),
                story(3, 1, None, False, "Not placed yet"),
                story(4, 40, "immediate", False, "A good first call"),
            ]
        )
        await session.commit()
    return m


async def test_value_report_matches_hand_counted_figures(console_bot_factory, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, plugins=QUIET)
    await seed(bot, clock.now())
    refused = await bot.say("ana> !value report")
    assert said(refused) == ["!value report is for moderators only; nothing was changed."]
    report = (await bot.say("!value report"))[1:]
    shown = [report[0].split("copbot> ", 1)[1]] + [line.strip() for line in report[1:]]
    assert shown == [
        "Value creation in Our Community of Practice, the last 30 days (the 30 days before in brackets):",
        "Immediate value — Was taking part worth it in itself?",
        "• Active members: 4 (↑ 100% from 2)",  # m0–m3; before: m0, m4
        "• Messages: 4 (↑ 100% from 2)",
        "• Meeting attendance: 2 (↑ 100% from 1)",  # m0 and m1 ten days ago; m0 forty days ago
        "• Poll turnout: 50% (2 of 4; was 50%)",  # m1, m2 of 4 active; m4 of 2 before
        "• Stories: 0 (↓ 100% from 1)",
        "Potential value — Did members gain something they may use later?",
        "• Repertoire items added: 1 (= before)",  # the removed one does not count
        "• Introductions made: 1 (= before)",
        # ties now: m0–m1 (met 10 days ago), m0–m2 and m1–m2 (same meeting, 11 days ago); before: m0–m4
        # (introduced), m2–m3 (m3 applied m2's item 45 days ago: earlier than their introduction),
        # m2–m4 (upvote). m4's "no" makes no tie.
        "• New member-to-member ties: 3 (= before)",
        "• Expert look-ups: 2 (↑ 100% from 1)",  # `match` is not an expert look-up
        "• Stories: 0 (= before)",
        "Applied value — Was what the community offers put to use?",
        "• Repertoire items applied: 1 (= before)",
        "• Stories: 1 (↑ from 0)",
        "latest story shared: “We used the map” — m0",
        "Realized value — Did it make a difference that matters?",
        "• Stories: 2 (↑ from 0)",
        "latest story shared: “Saved a week of <b>field</b> work & more” — a member",  # m2 is not public
        "Reframing value — Did it change what counts as success?",
        "• Stories: 0 (= before)",
        "Stories whose author has not chosen a cycle yet: 1",
    ]


async def test_the_value_page_needs_the_link_escapes_stories_and_names_only_public_members(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, plugins=QUIET)
    now = clock.now()
    await seed(bot, now)
    await bot.say("ana> !profile set public on")
    await bot.say('ana> !value story <script>alert("x")</script> @everyone --cycle potential --public')
    key = await signing_key(bot.services.db, bot.services.settings.web.secret, now)
    token = sign(key, "dashboard:cop", now + timedelta(days=1))
    async with TestClient(TestServer(create_app(bot.services))) as client:
        assert (await client.get("/c/cop/value")).status == 403
        assert (await client.get("/c/cop/value?key=forged")).status == 403
        assert (await client.get(f"/c/nowhere/value?key={token}")).status == 404
        response = await client.get(f"/c/cop/value?key={token}")
        assert response.status == 200
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
        page = await response.text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "Saved a week of &lt;b&gt;field&lt;/b&gt; work &amp; more" in page
    assert "Private: our budget" not in page and "Not placed yet" not in page  # not agreed to show
    authors = page.split('<ul class="plain" id="stories">')[1].split("</ul>")[0]
    assert authors.count('<span class="author">a member</span>') == 1  # m2's story
    assert '<span class="author">m0</span>' in authors and '<span class="author">ana</span>' in authors
    assert "m2" not in authors
    row = page.split('data-indicator="new_ties"')[1].split("</tr>")[0]
    assert '<td class="now">3</td>' in row and '<td class="before muted">3</td>' in row
    turnout = page.split('data-indicator="poll_voters"')[1].split("</tr>")[0]
    assert "40% (2 of 5)" in turnout  # ana is active now too
    assert f"?key={token}" in page  # the navigation carries the key


def test_every_indicator_is_defined_once_with_a_cycle_and_a_source() -> None:
    keys = [indicator.key for indicator in indicators.INDICATORS]
    assert len(keys) == len(set(keys))
    for cycle in indicators.CYCLES:
        assert indicators.of_cycle(cycle), f"{cycle} has no indicator"
        assert indicators.BY_KEY[f"stories_{cycle}"].cycle == cycle
    assert all(
        indicator.definition and indicator.cycle in indicators.CYCLES for indicator in indicators.INDICATORS
    )
    assert (
        indicators.parse_cycle("4") == "realized" and indicators.parse_cycle("Realised value") == "realized"
    )
    assert indicators.parse_cycle("6") is None
    assert indicators.first_line("  \nfirst words here\nsecond") == "first words here"
    assert indicators.first_line("word " * 40, 20) == "word word word word…"


async def test_a_meeting_moved_across_the_periods_edge_counts_when_it_took_place(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock, database_url: str
) -> None:
    """The weekly call of Tue 3 Mar is moved to Thu 5 Mar, and ana and bo come. A report whose 30 days
    begin on 5 Mar at noon counts their attendance in those 30 days, when the meeting took place — not in
    the 30 days before, where its planned date was (what is stored keeps naming the planned date)."""
    from plugins.meetings.plugin import Meetings

    bot = await console_bot_factory([*PLUGINS, Meetings], plugins=QUIET, database_url=database_url)
    for name in ("ana", "bo"):
        await bot.say(f"{name}> hello")
    await bot.say('!meeting schedule "Call" 2026-03-03 15:00 --every weekly')
    moved = await bot.say("!meeting move 1 2026-03-05 15:00")
    assert "moved to Thu 5 Mar 15:00 UTC" in moved[1]
    clock.set(datetime(2026, 3, 5, 17, tzinfo=UTC))
    confirmed = await bot.say("!meeting attended 1 @ana @bo")
    assert confirmed[1].endswith("Attendance at Call of Thu 5 Mar 15:00 UTC: 2 confirmed.")
    async with bot.services.db.session() as session:
        keys = set((await session.execute(select(Attendance.occurrence))).scalars())
    assert keys == {"2026-03-03T15:00:00Z"}
    clock.set(datetime(2026, 4, 4, 12, tzinfo=UTC))  # the 30 days from Thu 5 Mar 12:00
    report = [line.strip() for line in (await bot.say("!value report"))[1:]]
    assert "• Meeting attendance: 2 (↑ from 0)" in report, report
    clock.set(datetime(2026, 4, 4, 16, tzinfo=UTC))  # the 30 days from 16:00, after it: the ones before
    report = [line.strip() for line in (await bot.say("!value report"))[1:]]
    assert "• Meeting attendance: 0 (↓ 100% from 2)" in report, report
