"""Meetings through the console: plan, answer, list, be reminded once at the right time (also across a
restart), a cap's waiting list, moving and cancelling, notes, attendance, every bad input, the .ics feed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import icalendar
import pytest
import recurring_ical_events
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.clock import FakeClock
from bot.model import Capability
from bot.tables import ActivityEvent, MemberRow
from bot.web.app import create_app
from plugins.meetings.models import SERIES, Attendance, Meeting, MeetingChange, MeetingNote, Rsvp
from plugins.meetings.plugin import Meetings
from plugins.profiles.plugin import Profiles
from plugins.roles.plugin import Roles

PLUGINS = [Meetings, Profiles]
PLAN = '!meeting schedule "Leakage call" 2026-03-10 15:00 --every weekly --where https://meet.example'


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


async def count(bot, model) -> int:  # type: ignore[no-untyped-def]
    async with bot.services.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def text(lines: list[str]) -> str:
    return "\n".join(lines)


async def test_plan_answer_list_and_be_reminded_once_at_the_right_time(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    bot = await console_bot_factory(PLUGINS)
    assert (await bot.say("!timezone europe/amsterdam"))[1].startswith(
        "[2] copbot> Time zone set: Europe/Amsterdam"
    )
    planned = await bot.say(PLAN)
    assert planned[1] == (
        "[4] copbot> Meeting #1 planned for Tue 10 Mar 15:00 CET (14:00 UTC), weekly on Tuesdays."
    )
    assert "Answer with !meeting rsvp 1 yes|no|maybe or react ✅ ❌ ❔ to this message." in text(planned)
    assert (await bot.say("ana> !meeting rsvp 1 yes"))[1] == (
        "[6] copbot> You are coming to Leakage call Tue 10 Mar 14:00 UTC."
    )
    await bot.say("bo> !profile set timezone America/New_York")
    assert (await bot.say("bo> !meeting rsvp 1 maybe"))[1] == (
        "[10] copbot> You might come to Leakage call Tue 10 Mar 10:00 EDT."  # bo's own zone
    )
    reacted = await bot.say(":react cy 4 ✅")
    assert reacted[1] == "[12] copbot → cy (direct)> You are coming to Leakage call Tue 10 Mar 14:00 UTC."
    await bot.say("dee> !meeting rsvp 1 no")
    listed = await bot.say("!meeting list")
    assert listed[1:4] == [
        "[16] copbot> Meetings in the next 30 days (times in Europe/Amsterdam):",
        "     #1 Tue 10 Mar 15:00 CET Leakage call — https://meet.example · ✅ 2 · ❔ 1 · ❌ 1",
        "     #1 Tue 17 Mar 15:00 CET Leakage call — https://meet.example · ✅ 0 · ❔ 0 · ❌ 0",
    ]
    assert "#1 Tue 31 Mar 15:00 CEST Leakage call" in text(listed)  # after the change to summer time
    shown = text(await bot.say("ana> !meeting show 1"))
    assert "Coming (2): ana, cy" in shown and "Maybe (1): bo" in shown and "@" not in shown  # no pings

    scheduler = bot.services.scheduler
    clock.set(utc(2026, 3, 9, 13, 59))
    assert await scheduler.run_due() == 0
    clock.set(utc(2026, 3, 9, 14, 0))
    assert await scheduler.run_due() == 1
    assert bot.new_lines() == [
        "[19] copbot> ⏰ Leakage call starts in 24 hours: Tue 10 Mar 15:00 CET — https://meet.example."
        " @ana @bo @cy"  # yes and maybe; not dee, who said no
    ]
    clock.set(utc(2026, 3, 10, 13, 45))
    assert await scheduler.run_due() == 1
    assert bot.new_lines()[0].startswith("[20] copbot> ⏰ Leakage call starts in 15 minutes")
    assert await scheduler.job_ids() == ["meeting:1:reminder"]  # one job, rolled on to next week
    assert await scheduler.next_run("meeting:1:reminder") == utc(2026, 3, 16, 14)
    async with bot.services.db.session() as session:
        rsvps = (await session.execute(select(ActivityEvent.kind).where(ActivityEvent.kind == "rsvp"))).all()
    assert len(rsvps) == 4


async def test_reminders_are_sent_once_across_restarts_and_a_missed_one_is_skipped(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    first = await console_bot_factory(PLUGINS)
    await first.say('!meeting schedule "Weekly" 2026-03-03 10:00 --every weekly --count 3')
    await first.say("ana> !meeting rsvp 1 yes --all")
    await first.bot.stop()

    clock.set(utc(2026, 3, 2, 10, 30))  # down through the 24-hour reminder; back 30 minutes late
    second = await console_bot_factory(PLUGINS)
    assert [line for line in second.new_lines() if "⏰" in line] == [
        "[1] copbot> ⏰ Weekly starts in 23 hours 30 minutes: Tue 3 Mar 10:00 UTC. @ana"  # the time left
    ]
    await second.bot.stop()
    third = await console_bot_factory(PLUGINS)  # restarted again at once: nothing repeated
    assert third.new_lines() == []
    await third.bot.stop()

    clock.set(utc(2026, 3, 3, 11))  # down through the 15-minute reminder and the meeting itself
    fourth = await console_bot_factory(PLUGINS)
    assert fourth.new_lines() == []  # missed by more than its lead time: skipped, not sent late
    assert await fourth.services.scheduler.next_run("meeting:1:reminder") == utc(2026, 3, 9, 10)
    clock.set(utc(2026, 3, 9, 10))
    assert await fourth.services.scheduler.run_due() == 1
    assert fourth.new_lines() == ["[1] copbot> ⏰ Weekly starts in 24 hours: Tue 10 Mar 10:00 UTC. @ana"]
    clock.set(utc(2026, 3, 20))  # down again through the rest of the series
    assert await fourth.services.scheduler.run_due() == 1  # the missed reminder, which ends the series' job
    assert fourth.new_lines() == []
    assert await fourth.services.scheduler.job_ids() == []  # the series is over: no job left
    async with fourth.services.db.session() as session:
        from bot.tables import OutboxRow

        keys = (await session.execute(select(OutboxRow.key))).scalars().all()
    assert len(keys) == len(set(keys)) == 2  # each reminder stored (and sent) once


async def test_after_weeks_down_a_series_goes_straight_to_its_next_reminder(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """Not one scheduler run per missed reminder (sixteen here, each sending nothing): the start runs the
    stale job once and plans the reminder of the next meeting still to come."""
    first = await console_bot_factory(PLUGINS)
    await first.say('!meeting schedule "Weekly" 2026-03-03 10:00 --every weekly')
    await first.say("ana> !meeting rsvp 1 yes --all")
    await first.bot.stop()

    clock.set(utc(2026, 4, 29, 12))  # eight weeks down: the meeting of Tue 28 Apr is over
    second = await console_bot_factory(PLUGINS)
    assert second.new_lines() == []  # nothing of the weeks missed is sent late
    assert await second.services.scheduler.next_run("meeting:1:reminder") == utc(2026, 5, 4, 10)
    assert await second.services.scheduler.run_due() == 0
    clock.set(utc(2026, 5, 4, 10))
    assert await second.services.scheduler.run_due() == 1
    assert second.new_lines() == ["[1] copbot> ⏰ Weekly starts in 24 hours: Tue 5 May 10:00 UTC. @ana"]
    async with second.services.db.session() as session:
        meeting = await session.get(Meeting, 1)
    assert meeting is not None and meeting.reminded_through == utc(2026, 5, 4, 10)


async def test_a_full_meeting_keeps_a_waiting_list_that_moves_up_with_a_message(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Site visit" 2026-03-12 10:00 --cap 2 --where "WWTP Harnaschpolder"')
    await bot.say("ana> !meeting rsvp 1 yes")
    await bot.say("bo> !meeting rsvp 1 yes")
    waiting = await bot.say("cy> !meeting rsvp 1 yes")
    assert waiting[1] == (
        "[8] copbot> Meeting #1 is full (2 places): you are number 1 on the waiting list for "
        "Thu 12 Mar 10:00 UTC; I will tell you when a place frees up."
    )
    freed = await bot.say("ana> !meeting rsvp 1 no")
    moved = (
        "[11] copbot → cy (direct)> A place freed up: you are now coming to Site visit "
        "(Thu 12 Mar 10:00 UTC)."
    )
    assert moved in freed
    shown = text(await bot.say("!meeting show 1"))
    assert "Coming (2): bo, cy" in shown and "Waiting" not in shown
    await bot.say('!meeting schedule "Lab tour" 2026-03-13 10:00 --cap 1')
    await bot.say("ana> !meeting rsvp 2 yes")
    assert "Meeting #2 is full (1 place): you are number 1" in text(await bot.say("bo> !meeting rsvp 2 yes"))
    assert "Length 1h, once, 1 place\n" in text(await bot.say("!meeting show 2"))


async def test_a_series_of_one_meeting_says_one_time(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    planned = await bot.say('!meeting schedule "Kick-off" 2026-03-10 15:00 --every weekly --count 1')
    assert (
        planned[1] == "[2] copbot> Meeting #1 planned for Tue 10 Mar 15:00 UTC, weekly on Tuesdays, 1 time."
    )
    assert "Repeats: weekly on Tuesdays, 1 time\n" in text(planned)  # not "1 times"
    shown = text(await bot.say('!meeting schedule "Call" 2026-03-10 15:00 --every monthly --count 2'))
    assert "monthly, 2 times." in shown


async def test_saying_the_same_answer_again_keeps_the_place_in_a_full_meeting(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """Confirming is not changing: yes for the series again, yes for the next meeting after yes for the
    series (or a ✅), or yes for the series after yes for the next meeting keeps one's place; before, each
    sent the one who had the place to the back of the queue and moved the first one waiting up."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Lab tour" 2026-03-10 10:00 --every weekly --cap 1')
    await bot.say("ana> !meeting rsvp 1 yes --all")
    clock.advance(minutes=1)
    await bot.say("bo> !meeting rsvp 1 yes --all")
    for again in ("ana> !meeting rsvp 1 yes --all", "ana> !meeting rsvp 1 yes", ":react ana 2 ✅"):
        clock.advance(minutes=1)
        said = text(await bot.say(again))
        assert "You are coming to Lab tour" in said and "waiting list" not in said, again
        assert "A place freed up" not in said, again
    await bot.say('!meeting schedule "Site visit" 2026-03-12 10:00 --every weekly --cap 1')
    await bot.say("ana> !meeting rsvp 2 yes")
    clock.advance(minutes=1)
    await bot.say("bo> !meeting rsvp 2 yes")
    clock.advance(minutes=1)
    series = text(await bot.say("ana> !meeting rsvp 2 yes --all"))
    assert "You are coming to Site visit every meeting" in series
    for meeting in (1, 2):
        shown = text(await bot.say(f"!meeting show {meeting}"))
        assert "Coming (1): ana" in shown and "Waiting (1): bo" in shown
    clock.advance(minutes=1)
    freed = text(await bot.say("ana> !meeting rsvp 1 no"))  # a changed answer still frees the place
    assert "A place freed up: you are now coming to Lab tour" in freed
    clock.advance(minutes=1)
    back = text(await bot.say("ana> !meeting rsvp 1 yes --all"))  # yes again: behind bo, for that one
    assert "you are number 1 on the waiting list for Tue 10 Mar 10:00 UTC" in back
    assert "Coming (1): bo" in text(await bot.say("!meeting show 1"))


async def test_who_moves_up_in_a_later_meeting_of_the_series_is_told_too(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """No for the whole series frees a place in every meeting still to come, but only the next one's
    waiting list was looked at: bo, who already had the next place and waited for the later ones, moved up
    in all of them without a word."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Lab tour" 2026-03-10 10:00 --every weekly --cap 1')
    await bot.say("ana> !meeting rsvp 1 yes --all")
    clock.advance(minutes=1)
    await bot.say("bo> !meeting rsvp 1 yes --all")  # waits for every tour
    clock.advance(minutes=1)
    first = await bot.say("ana> !meeting rsvp 1 no")  # not to the first: bo has its place
    assert [line for line in first if "(direct)" in line] == [
        "[9] copbot → bo (direct)> A place freed up: you are now coming to Lab tour (Tue 10 Mar 10:00 UTC)."
    ]
    clock.advance(minutes=1)
    rest = await bot.say("ana> !meeting rsvp 1 no --all")  # nor to the others
    assert [line for line in rest if "(direct)" in line] == [
        "[12] copbot → bo (direct)> A place freed up: you are now coming to Lab tour (Tue 17 Mar 10:00 UTC)."
    ]  # the first of the tours answered alike, for the series: it stands for them all, one message
    await bot.say("cy> !meeting rsvp 1 yes --all")  # nobody is waiting now: nobody to tell
    clock.advance(minutes=1)
    assert [line for line in await bot.say("bo> !meeting rsvp 1 no --all") if "(direct)" in line] == [
        "[17] copbot → cy (direct)> A place freed up: you are now coming to Lab tour (Tue 10 Mar 10:00 UTC)."
    ]  # the next tour and all after it alike: one message, as before


async def test_an_answer_for_the_series_leaves_the_answers_for_meetings_that_took_place(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """ "No to every meeting from now on" is for the meetings to come: it deleted the yes given for last
    week's, so bo, who only waited for a place then, took ana's and attendance --all-yes confirmed him."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Lab tour" 2026-03-03 10:00 --every weekly --cap 1')
    await bot.say("ana> !meeting rsvp 1 yes")
    clock.advance(minutes=1)
    await bot.say("bo> !meeting rsvp 1 yes")
    clock.set(utc(2026, 3, 3, 12))  # the first tour took place
    said = text(await bot.say("ana> !meeting rsvp 1 no --all"))
    assert "You are not coming to Lab tour every meeting of the series, starting Tue 10 Mar" in said
    confirmed = await bot.say("!meeting attended 1 --all-yes")
    assert confirmed[1] == "[10] copbot> Attendance at Lab tour of Tue 3 Mar 10:00 UTC: 1 confirmed."
    async with bot.services.db.session() as session:
        there = (await session.execute(select(Attendance.member_id))).scalars().all()
        ana = await session.scalar(select(MemberRow.id).where(MemberRow.platform_id == "ana"))
    assert there == [ana]
    assert (await bot.say("ana> !meeting notes 1 We saw the new membranes"))[1].startswith(
        "[12] copbot> Notes added for Lab tour"
    )


async def test_an_answer_for_the_series_speaks_for_the_meetings_after_it_not_those_held_before(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """cy said yes to every tour only after the first took place: attendance --all-yes confirmed her for
    it. And dee, who had said yes to every tour, keeps that yes for the tours held before she said no to
    the rest: their record."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Lab tour" 2026-03-03 10:00 --every weekly')
    await bot.say("dee> !meeting rsvp 1 yes --all")
    clock.set(utc(2026, 3, 3, 12))  # the first tour took place
    await bot.say("cy> !meeting rsvp 1 yes --all")
    confirmed = await bot.say("!meeting attended 1 --all-yes")
    assert confirmed[1].endswith("Attendance at Lab tour of Tue 3 Mar 10:00 UTC: 1 confirmed.")
    clock.set(utc(2026, 3, 10, 12))  # the second took place too
    assert "You are not coming to Lab tour every meeting of the series" in text(
        await bot.say("dee> !meeting rsvp 1 no --all")
    )
    async with bot.services.db.session() as session:
        dee = await session.scalar(select(MemberRow.id).where(MemberRow.platform_id == "dee"))
        there = (await session.execute(select(Attendance.member_id))).scalars().all()
        kept = (
            await session.execute(
                select(Rsvp.occurrence, Rsvp.answer).where(Rsvp.member_id == dee).order_by(Rsvp.occurrence)
            )
        ).all()
    assert there == [dee]  # not cy, who answered after the tour
    answers = dict(kept)
    assert answers.pop(SERIES) == "no" and list(answers.values()) == ["yes", "yes"]  # the two tours held
    confirmed = await bot.say("!meeting attended 1 --all-yes")  # the second tour: dee and cy came
    assert confirmed[1].endswith("Attendance at Lab tour of Tue 10 Mar 10:00 UTC: 2 confirmed."), confirmed


async def test_a_reaction_taken_back_withdraws_the_answer_it_gave(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    """ana took her ✅ back from the announcement: she stayed a yes, holding the only place, and was still
    reminded. Taking it back withdraws her answer, and bo, waiting, moves up; an answer changed since (by a
    command) stays."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Lab tour" 2026-03-03 10:00 --cap 1')  # the announcement is [2]
    await bot.say(":react ana 2 ✅")
    await bot.say(":react bo 2 ✅")
    taken_back = await bot.say(":unreact ana 2 ✅")
    assert taken_back == [
        "[7] * ana took back ✅ from [2]",
        "[8] copbot → ana (direct)> Your answer for Lab tour Tue 3 Mar 10:00 UTC is withdrawn.",
        "[9] copbot → bo (direct)> A place freed up: you are now coming to Lab tour (Tue 3 Mar 10:00 UTC).",
    ]
    shown = text(await bot.say("!meeting show 1"))
    assert "Coming (1): bo" in shown and "ana" not in shown
    await bot.say(":react cy 2 ❔")
    await bot.say("cy> !meeting rsvp 1 no")
    assert len(await bot.say(":unreact cy 2 ❔")) == 1  # her answer is a no now: nothing to withdraw
    assert "Not coming (1): cy" in text(await bot.say("!meeting show 1"))


async def test_move_and_cancel_are_for_the_creator_or_a_moderator_and_tell_who_comes(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    bot = await console_bot_factory(PLUGINS)
    await bot.say('ana> !meeting schedule "Call" 2026-03-10 15:00 --every weekly')
    await bot.say("bo> !meeting rsvp 1 yes --all")
    refused = await bot.say("cy> !meeting move 1 2026-03-11 15:00")
    assert (
        refused[1]
        == "[6] copbot> Only the meeting's creator or a moderator can change meeting #1; nothing was changed."
    )
    assert await count(bot, MeetingChange) == 0
    moved = await bot.say("ana> !meeting move 1 2026-03-11 16:00")
    assert moved[1] == (
        "[8] copbot> Meeting #1 moved to Wed 11 Mar 16:00 UTC. The series' other meetings keep their time."
    )
    assert (
        moved[2] == "[9] copbot → bo (direct)> Call moved from Tue 10 Mar 15:00 UTC to Wed 11 Mar 16:00 UTC."
    )
    listed = text(await bot.say("bo> !meeting list"))
    assert "#1 Wed 11 Mar 16:00 UTC (moved) Call" in listed and "#1 Tue 17 Mar 15:00 UTC Call" in listed
    one = await bot.say("!meeting cancel 1 --occurrence 2026-03-17")  # a moderator
    assert one[1] == "[13] copbot> Meeting #1 on Tue 17 Mar 15:00 UTC is cancelled; the series goes on."
    assert one[2] == "[14] copbot → bo (direct)> Call on Tue 17 Mar 15:00 UTC is cancelled."
    assert "Tue 17 Mar" not in text(await bot.say("!meeting list"))
    wrong_day = await bot.say("!meeting cancel 1 --occurrence 2026-03-18")
    assert wrong_day[1].startswith("[18] copbot> meeting #1 does not take place on Wed 18 Mar 2026.")
    whole = await bot.say("ana> !meeting cancel 1")
    assert whole[1] == "[20] copbot> Meeting #1 (Call) is cancelled."
    assert await bot.services.scheduler.job_ids() == []
    assert (await bot.say("!meeting list"))[1].startswith("[23] copbot> No meetings in the next 30 days.")
    answers = await count(bot, Rsvp)
    late = await bot.say("cy> !meeting rsvp 1 yes")
    assert late[1] == "[25] copbot> Meeting #1 (Call) is cancelled; there is nothing to answer."
    assert await count(bot, Rsvp) == answers
    shown = text(await bot.say("!meeting show 1"))
    assert "Cancelled." in shown and "Next:" not in shown
    again = await bot.say("ana> !meeting cancel 1")
    assert (
        again[1]
        == "[29] copbot> Meeting #1 was cancelled already, on Mon 2 Mar 09:00 UTC; nothing was changed."
    )


async def test_a_meeting_of_a_series_moves_only_between_its_neighbours_and_within_the_series(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Call" 2026-03-10 15:00 --every weekly --count 3')  # 10, 17, 24 March
    await bot.say("bo> !meeting rsvp 1 yes --all")
    jobs = await bot.services.scheduler.job_ids()
    between = "in a series, a meeting moves only to a time between the meetings before and after it"
    usage = "Usage: !meeting move <meeting-id> <when> [--occurrence <when>] — e.g. !meeting move 1"
    for line, reply in [
        (  # the next meeting, moved beyond the two after it and the end of the series
            '!meeting move 1 "2027-06-01 10:00"',
            "[6] copbot> Tue 1 Jun 10:00 UTC is not before the series' next meeting (Tue 17 Mar 15:00 UTC); "
            f"{between}. {usage} 2026-03-11 15:00",
        ),
        (
            "!meeting move 1 2026-06-01 10:00 --occurrence 2026-03-24",
            "[8] copbot> Mon 1 Jun 10:00 UTC is past the end of the series; its last meeting can move only "
            f"to before Tue 31 Mar 15:00 UTC. {usage} 2026-03-25 15:00 --occurrence 2026-03-24",
        ),
        (
            "!meeting move 1 2026-03-10 15:00 --occurrence 2026-03-17",  # onto the meeting before it
            "[10] copbot> Tue 10 Mar 15:00 UTC is not after the series' meeting before it "
            f"(Tue 10 Mar 15:00 UTC); {between}. {usage} 2026-03-18 15:00 --occurrence 2026-03-17",
        ),
    ]:
        assert (await bot.say(line))[1:] == [reply]  # one line: bo is told of no move
    async with bot.services.db.session() as session:
        meeting = await session.get(Meeting, 1)
    assert meeting is not None and meeting.sequence == 0  # nothing was written
    assert await count(bot, MeetingChange) == 0 and await bot.services.scheduler.job_ids() == jobs

    later = text(await bot.say("!meeting move 1 2026-03-27 10:00 --occurrence 2026-03-24"))  # the last one
    assert "copbot> Meeting #1 moved to Fri 27 Mar 10:00 UTC." in later
    assert "copbot> Meeting #1 moved to Mon 16 Mar 15:00 UTC." in text(
        await bot.say("!meeting move 1 2026-03-16 15:00")
    )
    await bot.say("!meeting cancel 1 --occurrence 2026-03-17")  # its turn is free now
    freed = text(await bot.say("!meeting move 1 2026-03-18 15:00 --occurrence 2026-03-10"))
    assert "copbot> Meeting #1 moved to Wed 18 Mar 15:00 UTC." in freed
    # a moved meeting is named by the day it now takes place too, as `meeting list` shows it
    cancelled = text(await bot.say("!meeting cancel 1 --occurrence 2026-03-27"))  # the 24th's meeting
    assert "copbot> Meeting #1 on Fri 27 Mar 10:00 UTC is cancelled; the series goes on." in cancelled
    assert "#1 Wed 18 Mar 15:00 UTC (moved) Call" in text(await bot.say("!meeting list"))  # all that is left


async def test_those_waiting_for_a_place_hear_of_a_move_and_a_cancellation(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Site visit" 2026-03-12 10:00 --cap 1')
    await bot.say("ana> !meeting rsvp 1 yes")
    await bot.say("bo> !meeting rsvp 1 yes")  # waiting
    moved = await bot.say("!meeting move 1 2026-03-13 10:00")
    assert (
        "[10] copbot → bo (direct)> Site visit moved from Thu 12 Mar 10:00 UTC to Fri 13 Mar 10:00 UTC."
        in moved
    )
    cancelled = await bot.say("!meeting cancel 1")
    assert "[13] copbot → ana (direct)> Site visit on Fri 13 Mar 10:00 UTC is cancelled." in cancelled
    assert "[14] copbot → bo (direct)> Site visit on Fri 13 Mar 10:00 UTC is cancelled." in cancelled


async def test_a_cancelled_meeting_is_shown_cancelled_without_anyone_coming(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """show of a cancelled series said "Cancelled." and then listed who was coming to the meeting that
    would have been next, as if it were still held."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Call" 2026-03-10 15:00 --every weekly')
    await bot.say("ana> !meeting rsvp 1 yes --all")
    await bot.say("!meeting cancel 1")
    shown = await bot.say("!meeting show 1")
    assert shown[1:] == [
        "[9] copbot> 📅 Meeting #1: Call",
        "    Cancelled.",
        "    Length 1h, weekly on Tuesdays",
    ]


async def test_cancelling_a_one_off_meeting_on_a_day_it_is_not_held_is_refused(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """--occurrence names a day; a one-off meeting not held that day was cancelled anyway (and who came was
    told), as if the day had not been given."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Site visit" 2026-03-12 10:00')
    await bot.say("ana> !meeting rsvp 1 yes")
    refused = await bot.say("!meeting cancel 1 --occurrence 2026-03-20")
    assert refused[1].startswith("[6] copbot> meeting #1 does not take place on Fri 20 Mar 2026.")
    assert len(refused) == 2  # ana is told nothing
    async with bot.services.db.session() as session:
        meeting = await session.get(Meeting, 1)
        assert meeting is not None and meeting.cancelled_at is None and meeting.sequence == 0
    cancelled = await bot.say("!meeting cancel 1 --occurrence 2026-03-12")
    assert cancelled[1] == "[8] copbot> Meeting #1 (Site visit) is cancelled."


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('!meeting schedule "Call" 2026-03-01 15:00', "Sun 1 Mar 15:00 UTC has already passed"),
        ('!meeting schedule "Call" 5/4/2026 15:00', "<when>: '5/4/2026' could be 5 April or 4 May"),
        (
            '!meeting schedule "Call" 2026-03-10 15:00 --tz Europe/Amsterdm',
            "--tz: 'Europe/Amsterdm' is not a time zone — did you mean Europe/Amsterdam?",
        ),
        ('!meeting schedule "Call" 2026-03-10 15:00 --every FREQ=HOURLY', "'FREQ=HOURLY' needs FREQ=DAILY"),
        (  # an interval of 0 once crashed after the announcement was posted
            '!meeting schedule "Call" 2026-03-10 15:00 --every "FREQ=DAILY;INTERVAL=0"',
            "INTERVAL must be a whole number from 1 up (INTERVAL=2: every other time)",
        ),
        (
            '!meeting schedule "Call" 2026-03-10 15:00 --every "FREQ=WEEKLY;INTERVAL=-1"',
            "INTERVAL must be a whole number from 1 up",
        ),
        (
            '!meeting schedule "Call" 2026-03-10 15:00 --every weekly --until 2029-01-01',
            "the series would run beyond two years",
        ),
        (
            '!meeting schedule "Call" 2026-03-10 15:00 --count 3',
            "--until and --count are for repeating meetings",
        ),
        (
            '!meeting schedule "' + "T" * 201 + '" 2026-03-10 15:00',
            "the title has 201 characters; at most 200",
        ),
        ('!meeting schedule "Call" 2026-03-10 15:00 --duration 8d', "--duration must be from 5m to 7d"),
        (
            '!meeting schedule "Call" 2026-03-29 02:30 --tz Europe/Amsterdam',
            "02:30 does not exist on 29 Mar 2026",
        ),
        (  # 12 March 2026 is a Thursday: the rule's first meeting is the Monday after
            '!meeting schedule "Call" 2026-03-12 15:00 --every "FREQ=WEEKLY;BYDAY=MO,WE"',
            "the rule has no meeting at the time given; its first would be Mon 16 Mar 15:00",
        ),
        (  # a day alone would be its midnight: asked for the time, not guessed
            '!meeting schedule "Call" friday --every weekly',
            "<when>: 'friday' is a day without a time; say when on it, like 'friday 15:00'",
        ),
        ('!meeting schedule "Call" 2026-03-10', "'2026-03-10' is a day without a time"),
        (  # planned in a direct chat, it would be announced and reminded there only
            'ana>> !meeting schedule "Call" 2026-03-10 15:00',
            "plan meetings in the community's room, where everyone sees the announcement and can answer",
        ),
        ("!meeting rsvp 9 yes", "There is no meeting #9"),
        ("!meeting rsvp 1 perhaps", "<answer> must be one of yes, no, maybe; not 'perhaps'"),
    ],
)
async def test_bad_input_is_one_line_and_stores_nothing(console_bot_factory, line: str, message: str) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    said = await bot.say(line)
    answer = said[1]
    assert message in answer, answer
    assert "\n" not in answer and len(said) == 2  # one reply, and nothing posted before it
    assert await count(bot, Meeting) == 0 and await count(bot, Rsvp) == 0
    assert await bot.services.scheduler.job_ids() == []


async def test_times_are_read_in_the_given_zone_and_echoed_with_utc(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    planned = await bot.say(
        '!meeting schedule "NY call" 2026-03-10 10:00 --tz america/new_york --duration 90m'
    )
    assert planned[1] == "[2] copbot> Meeting #1 planned for Tue 10 Mar 10:00 EDT (14:00 UTC), once."
    async with bot.services.db.session() as session:
        meeting = await session.get(Meeting, 1)
    assert meeting is not None and (meeting.tz, meeting.starts_at, meeting.duration_minutes) == (
        "America/New_York",
        utc(2026, 3, 10, 14),
        90,
    )


async def test_a_meeting_in_another_zone_is_echoed_in_the_callers_zone_too(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    bot = await console_bot_factory(PLUGINS)
    edits: list[str] = []

    async def edit(room, message_id: str, content) -> None:  # type: ignore[no-untyped-def]
        edits.append(content.text)

    bot.adapter.edit = edit  # an adapter that edits the announcement in place (Matrix, Discord)
    bot.adapter.capabilities = bot.adapter.capabilities | {Capability.EDITS}
    await bot.say("!timezone Europe/Amsterdam")
    planned = await bot.say('!meeting schedule "NY call" 2026-03-05 15:00 --tz America/New_York')
    assert (
        planned[1] == "[4] copbot> Meeting #1 planned for Thu 5 Mar 15:00 EST (21:00 CET, 20:00 UTC), once."
    )
    late = await bot.say('!meeting schedule "Late NY call" 2026-03-05 19:00 --tz America/New_York')
    assert late[1] == (  # another day in Amsterdam: the day is said
        "[6] copbot> Meeting #2 planned for Thu 5 Mar 19:00 EST "
        "(Fri 6 Mar 01:00 CET, Fri 6 Mar 00:00 UTC), once."
    )
    same = await bot.say('!meeting schedule "Call" 2026-03-05 15:00 --tz Europe/Amsterdam')
    assert same[1] == "[8] copbot> Meeting #3 planned for Thu 5 Mar 15:00 CET (14:00 UTC), once."  # as before
    await bot.say("ana> !meeting rsvp 1 yes")
    await asyncio.sleep(0.05)  # the edit runs after the answer's commit
    assert edits and edits[-1] == "Meeting #1 planned for Thu 5 Mar 15:00 EST (21:00 CET, 20:00 UTC), once."


async def test_a_move_to_a_past_time_is_echoed_in_the_zone_it_was_typed_in(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """A meeting planned with --tz is moved in the caller's zone; the refusal showed the time typed in the
    meeting's zone instead (15:00 typed in Amsterdam came back as 09:00 EST)."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say("!timezone Europe/Amsterdam")
    await bot.say('!meeting schedule "Visit" 2026-03-12 10:00 --tz America/New_York')
    refused = await bot.say("!meeting move 1 2026-03-01 15:00")
    assert refused[1].startswith(
        "[6] copbot> Sun 1 Mar 15:00 CET (14:00 UTC) has already passed; pick a time in the future."
    )


async def test_an_offset_is_stored_as_its_etc_zone_and_one_between_hours_is_refused(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    bot = await console_bot_factory(PLUGINS)
    assert (await bot.say("!timezone UTC+2"))[1] == (
        "[2] copbot> Time zone set: Etc/GMT-2 (UTC+2 all year, no summer time; "
        "it is Mon 2 Mar 11:00 +02 there now)."
    )
    assert (await bot.say("!timezone UTC-05:00"))[1].startswith(
        "[4] copbot> Time zone set: Etc/GMT+5 (UTC-5 all year, no summer time;"
    )
    assert (await bot.say("!timezone GMT+1"))[1].startswith(
        "[6] copbot> Time zone set: Etc/GMT-1 (UTC+1 all year, no summer time;"
    )
    refused = await bot.say("!timezone UTC+5:30")
    assert refused[1].startswith(
        "[8] copbot> <zone>: 'UTC+5:30' is not a whole hour from UTC, and only whole hours have a zone of "
        "their own (UTC+2 is Etc/GMT-2); use your place's zone, like Asia/Kolkata or Asia/Colombo."
    )
    assert (await bot.say("!timezone"))[1] == (
        "[10] copbot> Your time zone is Etc/GMT-1 (UTC+1 all year, no summer time); "
        "it is Mon 2 Mar 10:00 +01 there now."
    )
    planned = await bot.say('!meeting schedule "Call" 2026-03-10 15:00 --tz utc+2')
    assert (
        planned[1] == "[12] copbot> Meeting #1 planned for Tue 10 Mar 15:00 +02 (14:00 +01, 13:00 UTC), once."
    )
    between = await bot.say('!meeting schedule "Call" 2026-03-10 15:00 --tz UTC+5:30')
    assert between[1].startswith("[14] copbot> --tz: 'UTC+5:30' is not a whole hour from UTC")
    async with bot.services.db.session() as session:
        meeting = await session.get(Meeting, 1)
        zone = await session.scalar(select(MemberRow.timezone).where(MemberRow.platform_id == "you"))
    assert meeting is not None and meeting.tz == "Etc/GMT-2" and zone == "Etc/GMT-1"
    assert await count(bot, Meeting) == 1


async def test_notes_attendance_and_reminders_by_direct_message(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Workshop" 2026-03-03 10:00')
    await bot.say("ana> !profile set reminders dm")
    await bot.say("ana> !meeting rsvp 1 yes")
    await bot.say("bo> !meeting rsvp 1 yes")
    clock.set(utc(2026, 3, 3, 9, 45))
    # the day-before reminder, pointless now, and the 15-minute one it plans: both in one pass
    assert await bot.services.scheduler.run_due() == 2
    sent = bot.new_lines()
    assert "[9] copbot> ⏰ Workshop starts in 15 minutes: Tue 3 Mar 10:00 UTC. @bo" in sent
    assert "[10] copbot → ana (direct)> ⏰ Workshop starts in 15 minutes: Tue 3 Mar 10:00 UTC." in sent
    early = await bot.say("ana> !meeting notes 1 too early")
    assert early[1] == "[12] copbot> Meeting #1 has not taken place yet."
    clock.set(utc(2026, 3, 3, 12))
    assert (await bot.say("cy> !meeting notes 1 I was not there"))[1].startswith(
        "[14] copbot> Notes of meeting #1 are added by those who came"
    )
    assert (await bot.say("ana> !meeting notes 1 Agreed: pilot the leak map in Delft"))[1] == (
        "[16] copbot> Notes added for Workshop of Tue 3 Mar 10:00 UTC."
    )
    refused = await bot.say("ana> !meeting attended 1 --all-yes")
    assert refused[1] == "[18] copbot> !meeting attended is for moderators only; nothing was changed."
    confirmed = await bot.say("!meeting attended 1 --all-yes")
    assert confirmed[1] == "[20] copbot> Attendance at Workshop of Tue 3 Mar 10:00 UTC: 2 confirmed."
    await bot.say("cy> I was there after all")  # a member copbot knows, unlike a mistyped name
    again = await bot.say("!meeting attended 1 @bo @cy")
    assert again[1] == (  # not "1 already were"
        "[23] copbot> Attendance at Workshop of Tue 3 Mar 10:00 UTC: 1 confirmed, 1 already was."
    )
    assert await count(bot, Attendance) == 3 and await count(bot, MeetingNote) == 1
    members = await count(bot, MemberRow)
    typo = await bot.say("!meeting attended 1 @ana @nobdy")
    assert typo[1] == "[25] copbot> nobdy is not a member of this community yet; nothing was recorded."
    assert await count(bot, MemberRow) == members and await count(bot, Attendance) == 3
    assert (await bot.say("!meeting attended 1 --all-yes"))[1].endswith(": 0 confirmed, 2 already were.")
    async with bot.services.db.session() as session:
        counted = (
            (
                await session.execute(
                    select(MemberRow.platform_id)
                    .join(ActivityEvent, ActivityEvent.member_id == MemberRow.id)
                    .where(ActivityEvent.kind == "attendance")
                )
            )
            .scalars()
            .all()
        )
    assert sorted(counted) == ["ana", "bo", "cy"]  # attendance counts for the attendee, not the moderator


async def test_forgetting_a_member_judges_a_moved_meeting_by_when_it_is_held(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """Forgotten, a member's answers for meetings still to come are deleted and those for past ones kept;
    a moved meeting was judged by the time it first had: an answer for a meeting moved into the days to
    come was kept (she would still be listed), one moved to a time that has passed was deleted."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Lab tour" 2026-03-03 10:00 --every weekly')
    await bot.say('!meeting schedule "Call" 2026-03-04 10:00 --every weekly')
    await bot.say("zofia> !meeting rsvp 1 yes")
    await bot.say("zofia> !meeting rsvp 2 yes")
    await bot.say("!meeting move 1 2026-03-09 10:00")  # Tue 3 Mar's tour: Mon 9 Mar, still to come
    await bot.say("!meeting move 2 2026-03-02 12:00")  # Wed 4 Mar's call: today, soon over
    clock.set(utc(2026, 3, 3, 12))
    await bot.say("zofia> !profile forget")
    done = text(await bot.say("zofia> !profile forget --confirm"))
    assert "1 answer you gave for meetings still to come (or whole series) deleted" in done
    assert "1 answer for past meetings" in done
    async with bot.services.db.session() as session:
        kept = (await session.execute(select(Rsvp.meeting_id, Rsvp.occurrence))).all()
    assert kept == [(2, "2026-03-04T10:00:00Z")]  # the call that took place; not the tour to come


async def test_the_calendar_feed_answers_not_modified_until_a_meeting_changes(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    """Calendar apps ask again and again: the feed's ETag says whether anything changed (304: nothing to
    send), and a move, a cancellation or a new meeting gives the next fetch the new feed."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Leakage call" 2026-03-10 15:00 --every weekly')
    path = (await bot.say("!meeting ics"))[1].rsplit(" ", 1)[1].removeprefix("http://127.0.0.1:8080")
    async with TestClient(TestServer(create_app(bot.services))) as client:
        first = await client.get(path)
        etag, body = first.headers["ETag"], await first.read()
        assert first.status == 200 and etag.startswith('"') and b"Leakage call" in body
        again = await client.get(path)
        assert again.headers["ETag"] == etag and await again.read() == body  # the same bytes
        unchanged = await client.get(path, headers={"If-None-Match": f'"other", W/{etag}'})
        assert unchanged.status == 304 and await unchanged.read() == b""
        for change, shown in (
            ("!meeting move 1 2026-03-11 16:00", b"RECURRENCE-ID"),
            ('!meeting schedule "Site visit" 2026-03-12 10:00', b"Site visit"),
            ("!meeting cancel 2", b"STATUS:CANCELLED"),
        ):
            await bot.say(change)
            changed = await client.get(path, headers={"If-None-Match": etag})
            assert changed.status == 200 and changed.headers["ETag"] != etag
            etag, body = changed.headers["ETag"], await changed.read()
            assert shown in body, change


async def test_the_calendar_feed_matches_copbots_list_and_needs_its_key(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Leakage call" 2026-03-10 15:00 --every weekly --tz Europe/Amsterdam')
    await bot.say("!meeting cancel 1 --occurrence 2026-03-24")
    await bot.say('!meeting schedule "Visit" 2026-03-12 10:00 --duration 3h')
    url = (await bot.say("!meeting ics"))[1].rsplit(" ", 1)[1]
    assert url.startswith("http://127.0.0.1:8080/c/cop/meetings.ics?key=")
    async with TestClient(TestServer(create_app(bot.services))) as client:
        assert (await client.get("/c/cop/meetings.ics")).status == 403
        assert (await client.get("/c/cop/meetings.ics?key=0.forged")).status == 403
        assert (await client.get("/c/nowhere/meetings.ics")).status == 404
        response = await client.get(url.removeprefix("http://127.0.0.1:8080"))
        assert response.status == 200 and response.content_type == "text/calendar"
        calendar = icalendar.Calendar.from_ical(await response.read())
    window = (utc(2026, 3, 2), utc(2026, 4, 15))
    theirs = sorted(
        (str(event["SUMMARY"]), event["DTSTART"].dt.astimezone(UTC))
        for event in recurring_ical_events.of(calendar).between(*window)
    )
    async with bot.services.db.session() as session:
        from plugins.meetings.queries import upcoming

        listed, _ = await upcoming(session, None, *window)
        ours = sorted((item.meeting.title, item.occurrence.start) for item in listed)
    assert theirs == ours
    assert ("Leakage call", utc(2026, 3, 24, 14)) not in theirs  # cancelled: an EXDATE
    assert ("Leakage call", utc(2026, 3, 31, 13)) in theirs  # 15:00 summer time
    described = {str(event["DESCRIPTION"]) for event in calendar.walk("VEVENT")}
    assert "Meeting #2 of cop. Answer in the chat with !meeting rsvp 2 yes|no|maybe." in described  # as typed


async def test_the_calendar_feed_changes_its_etag_with_the_prefix_its_descriptions_name(  # type: ignore[no-untyped-def]
    console_bot_factory, monkeypatch
) -> None:
    """Each event says how to answer (`!meeting rsvp 1`); after the operator changed the prefix, a calendar
    asking with its ETag heard "not modified" and kept the old command."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Visit" 2026-03-12 10:00')
    url = (await bot.say("!meeting ics"))[1].rsplit(" ", 1)[1].removeprefix("http://127.0.0.1:8080")
    async with TestClient(TestServer(create_app(bot.services))) as client:
        first = await client.get(url)
        etag = first.headers["ETag"]
        assert (await client.get(url, headers={"If-None-Match": etag})).status == 304
        monkeypatch.setattr("plugins.meetings.feed.platform_prefix", lambda adapter, default: "?")
        again = await client.get(url, headers={"If-None-Match": etag})
        assert again.status == 200 and again.headers["ETag"] != etag
        assert "Answer in the chat with ?meeting rsvp 1" in (await again.read()).decode()


async def test_a_fixed_offset_abbreviation_says_it_has_no_summer_time(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    assert (await bot.say("!timezone EST"))[1] == (
        "[2] copbot> Time zone set: EST (UTC-5 all year, no summer time; America/New_York follows summer "
        "time; it is Mon 2 Mar 04:00 EST there now)."
    )
    assert "summer" not in (await bot.say("!timezone CET"))[1]  # CET has Central Europe's summer time


async def test_a_meeting_moves_at_most_two_years_ahead_as_it_is_planned(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Site visit" 2026-03-10 15:00')
    far = await bot.say("!meeting move 1 2029-03-10 15:00")
    assert far[1].startswith("[4] copbot> a meeting can be moved at most two years ahead.")
    async with bot.services.db.session() as session:
        meeting = await session.get(Meeting, 1)
    assert meeting is not None and meeting.starts_at == utc(2026, 3, 10, 15, 0)
    assert await count(bot, MeetingChange) == 0


async def test_occurrence_is_the_day_of_the_callers_calendar_not_the_meetings(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    """A daily call at 10:00 in Berlin is at 18:00 in Tokyo the same day and at 02:00 in Los Angeles the
    same day; a member names a meeting by the day their own list shows it on. Read in Berlin's calendar,
    Tokyo's 12 March (midnight there is still the 11th in Berlin) cancelled the meeting of the 11th."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Daily" 2026-03-10 10:00 --every daily --tz Europe/Berlin')
    await bot.say("!timezone Asia/Tokyo")
    assert (await bot.say("!meeting cancel 1 --occurrence 2026-03-12"))[1] == (
        "[6] copbot> Meeting #1 on Thu 12 Mar 18:00 JST is cancelled; the series goes on."
    )
    assert (await bot.say('!meeting move 1 "2026-03-14 20:00" --occurrence 2026-03-14'))[1] == (
        "[8] copbot> Meeting #1 moved to Sat 14 Mar 20:00 JST (11:00 UTC)."
        " The series' other meetings keep their time."
    )
    await bot.say('!meeting schedule "Late" 2026-03-10 20:00 --every daily --tz Europe/Berlin')  # 04:00 JST
    refused = (await bot.say('!meeting move 2 "2026-03-15 05:00" --occurrence 2026-03-13'))[1]
    assert "not before the series' next meeting (Sat 14 Mar 04:00 JST)" in refused
    assert refused.endswith("--occurrence 2026-03-13")  # the example names the day as the caller does
    async with bot.services.db.session() as session:
        changes = {
            row.occurrence: (row.cancelled, row.moved_to)
            for row in (await session.execute(select(MeetingChange))).scalars()
        }
    assert changes == {
        "2026-03-12T09:00:00Z": (True, None),
        "2026-03-14T09:00:00Z": (False, utc(2026, 3, 14, 11)),
    }
    await bot.say("!timezone America/Los_Angeles")  # west of Berlin: the same day either way
    assert (
        "on Mon 16 Mar 02:00 PDT is cancelled"
        in (await bot.say("!meeting cancel 1 --occurrence 2026-03-16"))[1]
    )


async def test_a_day_whose_midnight_the_clocks_skip_is_still_a_day(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """Cairo's clocks go from 00:00 to 01:00 on the last Friday of April (Havana, Santiago and Beirut's
    at midnight too): a date typed alone there was refused as '00:00 does not exist', and an --until
    day read as 01:00 would have ended the series before that day's meeting."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say("!timezone Africa/Cairo")
    planned = await bot.say('!meeting schedule "Daily" 2026-04-20 15:00 --every daily --until 2026-04-24')
    assert planned[1].startswith("[4] copbot> Meeting #1 planned for Mon 20 Apr 15:00 EET")
    said = await bot.say("!meeting cancel 1 --occurrence 2026-04-23")
    assert said[1] == "[6] copbot> Meeting #1 on Thu 23 Apr 15:00 EET is cancelled; the series goes on."
    said = await bot.say("!meeting move 1 2026-04-24 17:00 --occurrence 2026-04-24")
    assert said[1] == (
        "[8] copbot> Meeting #1 moved to Fri 24 Apr 17:00 EEST (14:00 UTC)."
        " The series' other meetings keep their time."
    )
    async with bot.services.db.session() as session:
        meeting = await session.get(Meeting, 1)
    assert meeting is not None and meeting.until_at == utc(2026, 4, 24, 20, 59, 59)  # 23:59:59 EEST


async def test_until_a_day_in_words_includes_that_days_meeting(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """`--until tomorrow` read as this very minute tomorrow (dateparser's way with it), so a meeting later
    than that minute lost its day; a day alone now runs to the end of that day, as `--until 2026-03-10`."""
    clock.set(utc(2026, 3, 9, 10))  # a Monday, 10:00 UTC
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Daily" "today 15:00" --every daily --until tomorrow')
    await bot.say('!meeting schedule "Evening" "today 18:00" --every daily --until "thursday 12:00"')
    await bot.say('!meeting schedule "Weekday" "today 16:00" --every daily --until thursday')
    async with bot.services.db.session() as session:
        through, timed, weekday = [await session.get(Meeting, number) for number in (1, 2, 3)]
    assert through is not None and through.until_at == utc(2026, 3, 10, 23, 59, 59)
    assert timed is not None and timed.until_at == utc(2026, 3, 12, 12)  # a time given is kept as typed
    assert weekday is not None and weekday.until_at == utc(2026, 3, 12, 23, 59, 59)


async def test_a_series_at_a_time_the_clocks_skip_or_repeat_says_when_that_meeting_is(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """Lisbon's clocks go from 01:00 to 02:00 on 29 March and from 02:00 back to 01:00 on 25 October. A
    daily 01:30 over those days was planned without a word, and `meeting list` then showed 02:30 that day
    (a one-off at such a time is refused): the planner is told which day and when that meeting is."""
    clock.set(utc(2026, 3, 27, 9))
    bot = await console_bot_factory(PLUGINS)
    await bot.say("!timezone Europe/Lisbon")
    planned = await bot.say('!meeting schedule "Night shift" 2026-03-28 01:30 --every daily --count 3')
    assert planned[1].startswith("[4] copbot> Meeting #1 planned for Sat 28 Mar 01:30 WET, daily, 3 times.")
    assert planned[-1] == (
        "[5] copbot> 01:30 does not exist on Sun 29 Mar in Europe/Lisbon (the clocks go forward): "
        "that meeting is at 02:30 WEST."
    )
    listed = text(await bot.say("!meeting list"))
    assert "#1 Sun 29 Mar 02:30 WEST Night shift" in listed
    planned = await bot.say('!meeting schedule "Autumn" 2026-10-24 01:30 --every daily --count 3')
    assert planned[-1] == (
        "[10] copbot> 01:30 happens twice on Sun 25 Oct in Europe/Lisbon (the clocks go back): "
        "that meeting is at the first, 01:30 WEST (00:30 UTC)."
    )
    planned = await bot.say('!meeting schedule "Weekly" 2026-03-28 09:00 --every weekly')
    assert planned[-1].strip().startswith("Answer with !meeting rsvp 3")  # nothing to say at 09:00


async def test_a_quarterly_or_yearly_series_is_planned_by_its_name(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    quarterly = text(await bot.say('!meeting schedule "Steering group" 2026-03-10 15:00 --every quarterly'))
    assert "every 3 months" in quarterly
    yearly = text(await bot.say('!meeting schedule "Annual meetup" 2026-06-10 10:00 --every yearly'))
    assert "yearly" in yearly
    listed = text(await bot.say("!meeting list"))
    assert "Steering group" in listed
    async with bot.services.db.session() as session:
        rules = [
            meeting.rule
            for meeting in (await session.execute(select(Meeting).order_by(Meeting.id))).scalars()
        ]
    assert rules == ["FREQ=MONTHLY;INTERVAL=3", "FREQ=YEARLY"]
    wrong = text(await bot.say('!meeting schedule "X" 2026-03-10 15:00 --every sometimes'))
    assert "use daily, weekly, biweekly, monthly, quarterly, yearly or an RRULE" in wrong


async def test_a_reminder_due_while_copbot_was_down_is_sent_at_start_not_a_pass_later(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """Down through both reminders' times, back ten minutes before the meeting: the start sends the
    15-minute reminder (the day-before one is pointless now). Before, the start ran the stale day-before
    job, which planned the 15-minute one at a time already past, and that waited for the scheduler's next
    pass — never, for a process that stops right after starting. A meeting that started while copbot was
    down gets no reminder: "starts in 0 minutes" after it began tells nobody anything."""
    first = await console_bot_factory(PLUGINS)
    await first.say('!meeting schedule "Workshop" 2026-03-03 10:00')
    await first.say('!meeting schedule "Review" 2026-03-03 09:30 --duration 90m')
    await first.say("ana> !meeting rsvp 1 yes")
    await first.say("ana> !meeting rsvp 2 yes")
    await first.bot.stop()

    clock.set(utc(2026, 3, 3, 9, 50))  # the review started 20 minutes ago and is still going on
    second = await console_bot_factory(PLUGINS)
    assert [line for line in second.new_lines() if "⏰" in line] == [
        "[1] copbot> ⏰ Workshop starts in 10 minutes: Tue 3 Mar 10:00 UTC. @ana"
    ]
    assert await second.services.scheduler.run_due() == 0  # nothing left waiting for a pass
    assert await second.services.scheduler.job_ids() == []  # both one-off meetings are done with
    async with second.services.db.session() as session:
        from bot.tables import OutboxRow

        keys = (await session.execute(select(OutboxRow.key))).scalars().all()
    assert [key.split("@")[0] for key in keys if key.startswith("meeting:")] == ["meeting:1:reminder"]


async def test_a_member_who_leaves_is_no_longer_coming_but_the_meetings_held_keep_them(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """ana said yes to the whole series and came to the first meeting, then left the community. The
    meetings to come no longer count her (the first one waiting takes her place and is told), the
    reminders no longer mention her; the meeting she came to keeps her answer and her attendance. Back
    again, she answers again, as anyone new does."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Lab tour" 2026-03-10 15:00 --every weekly --cap 2')
    await bot.say("ana> !meeting rsvp 1 yes --all")
    await bot.say("bo> !meeting rsvp 1 yes --all")
    await bot.say("cy> !meeting rsvp 1 yes --all")  # waits for a place
    clock.set(utc(2026, 3, 11, 9))
    await bot.services.scheduler.run_due()  # the first meeting's reminders, missed: none sent
    await bot.say("!meeting attended 1 --all-yes")

    left = await bot.say(":leave ana")
    assert any(
        "copbot → cy (direct)> A place freed up: you are now coming to Lab tour (Tue 17 Mar 15:00 UTC)."
        in line
        for line in left
    ), left
    shown = text(await bot.say("!meeting show 1"))
    assert "Coming (2): bo, cy" in shown and "ana" not in shown and "Waiting" not in shown
    assert "Lab tour · ✅ 2 · ❔ 0 · ❌ 0" in text(await bot.say("!meeting list"))
    async with bot.services.db.session() as session:
        ana = await session.scalar(select(MemberRow.id).where(MemberRow.platform_id == "ana"))
        hers = (await session.execute(select(Rsvp).where(Rsvp.member_id == ana))).scalars().all()
        came = (await session.execute(select(Attendance).where(Attendance.member_id == ana))).scalars().all()
    # the meeting held keeps what she said and that she came; nothing is left for the meetings to come
    assert [(row.occurrence, row.answer) for row in hers] == [("2026-03-10T15:00:00Z", "yes")]
    assert [row.occurrence for row in came] == ["2026-03-10T15:00:00Z"]

    clock.set(utc(2026, 3, 16, 15))
    assert await bot.services.scheduler.run_due() == 1
    assert [line.split("> ", 1)[1] for line in bot.new_lines()] == [
        "⏰ Lab tour starts in 24 hours: Tue 17 Mar 15:00 UTC. @bo @cy"  # not @ana
    ]

    await bot.say(":join ana")
    assert "ana" not in text(await bot.say("!meeting show 1"))  # back: her old answers are not
    again = await bot.say("ana> !meeting rsvp 1 yes")
    assert "you are number 1 on the waiting list" in text(again)


async def test_cancelling_a_whole_series_tells_who_comes_that_the_series_ends(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """bo said yes to every meeting of a weekly call; its creator cancels the whole series. Before, bo was
    told only "Call on Tue 10 Mar 15:00 UTC is cancelled." — the words for one meeting of a series, so he
    would have come the week after; now he is told the series ends. One meeting cancelled keeps its words."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say('ana> !meeting schedule "Call" 2026-03-10 15:00 --every weekly')
    await bot.say("bo> !meeting rsvp 1 yes --all")
    one = said(await bot.say("ana> !meeting cancel 1 --occurrence 2026-03-10"))
    assert one[-1] == "copbot → bo (direct)> Call on Tue 10 Mar 15:00 UTC is cancelled."
    whole = said(await bot.say("ana> !meeting cancel 1"))
    assert whole == [
        "copbot> Meeting #1 (Call) is cancelled.",
        "copbot → bo (direct)> Call, weekly on Tuesdays, is cancelled: there will be no more meetings "
        "(the next was to be on Tue 17 Mar 15:00 UTC).",
    ]
    one_off = await bot.say('ana> !meeting schedule "Visit" 2026-03-12 10:00')
    assert "Meeting #2 planned" in text(one_off)
    await bot.say("bo> !meeting rsvp 2 yes")
    assert said(await bot.say("ana> !meeting cancel 2"))[-1] == (
        "copbot → bo (direct)> Visit on Thu 12 Mar 10:00 UTC is cancelled."
    )


def said(lines: list[str]) -> list[str]:
    """What copbot said, without the line numbers."""
    return [line.split("] ", 1)[1] for line in lines if "copbot" in line.split(">", 1)[0]]


async def test_a_title_with_braces_can_be_moved_and_cancelled_and_those_coming_are_told(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """Before, a meeting titled "Call {team}" could not be moved or cancelled once someone had said yes:
    the title was read as part of the message's template, and the planner got the apology. Now it moves,
    and who comes is told, the braces as typed."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say('ana> !meeting schedule "Call {team} {0}" 2026-03-10 15:00 --every weekly')
    await bot.say("bo> !meeting rsvp 1 yes --all")
    moved = said(await bot.say("ana> !meeting move 1 2026-03-11 15:00"))
    assert moved == [
        "copbot> Meeting #1 moved to Wed 11 Mar 15:00 UTC. The series' other meetings keep their time.",
        "copbot → bo (direct)> Call {team} {0} moved from Tue 10 Mar 15:00 UTC to Wed 11 Mar 15:00 UTC.",
    ]
    one = said(await bot.say("ana> !meeting cancel 1 --occurrence 2026-03-17"))
    assert one[-1] == "copbot → bo (direct)> Call {team} {0} on Tue 17 Mar 15:00 UTC is cancelled."
    whole = said(await bot.say("ana> !meeting cancel 1"))
    assert whole == [
        "copbot> Meeting #1 (Call {team} {0}) is cancelled.",
        "copbot → bo (direct)> Call {team} {0}, weekly on Tuesdays, is cancelled: there will be no more "
        "meetings (the next was to be on Wed 11 Mar 15:00 UTC).",
    ]
    async with bot.services.db.session() as session:
        meeting = await session.get(Meeting, 1)
    assert meeting is not None and meeting.cancelled_at is not None


async def test_moving_a_meeting_of_a_series_says_the_others_keep_their_time(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """A coordinator who wants the weekly call an hour later types `meeting move 1 ... 16:00`. Before, the
    reply was "Meeting #1 moved to Tue 10 Mar 16:00 UTC." — read as the series moved, while only its next
    meeting did and the week after was still at 15:00. Now the reply says so; a one-off's reply is as it
    was."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say('!meeting schedule "Call" 2026-03-10 15:00 --every weekly')
    moved = said(await bot.say("!meeting move 1 2026-03-10 16:00"))
    assert moved == [
        "copbot> Meeting #1 moved to Tue 10 Mar 16:00 UTC. The series' other meetings keep their time."
    ]
    listed = text(await bot.say("!meeting list"))
    assert "#1 Tue 10 Mar 16:00 UTC (moved) Call" in listed and "#1 Tue 17 Mar 15:00 UTC Call" in listed
    await bot.say('!meeting schedule "Visit" 2026-03-12 10:00')
    assert said(await bot.say("!meeting move 2 2026-03-12 11:00")) == [
        "copbot> Meeting #2 moved to Thu 12 Mar 11:00 UTC."
    ]


async def test_help_says_the_configured_list_days(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """`help meeting list` said "30 days" whatever `[plugins.meetings] list_days` was."""
    bot = await console_bot_factory([Meetings], plugins={"meetings": {"list_days": 14}})
    explained = await bot.say("!help meeting list")
    assert explained[1] == "[2] copbot> !meeting list"
    assert explained[2] == "    The meetings of the coming 14 days, in your time zone, with who comes."
    listed = "\n".join(await bot.say("!help"))
    assert "!meeting list — The meetings of the coming 14 days, in your time zone, with who comes." in listed
    assert "30 days" not in listed
    assert (await bot.say("!meeting list"))[1].startswith("[6] copbot> No meetings in the next 14 days.")
    async with bot.services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Meeting)) == 0
    default = await console_bot_factory([Meetings])
    assert (
        (await default.say("!help meeting list"))[2].strip().startswith("The meetings of the coming 30 days")
    )


async def test_attended_confirms_a_person_named_on_both_linked_accounts_once(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """ana and ana.home are one person (`profile link`): confirming both is one attendance, said and
    stored once, as the value report counts it; naming her other account later finds her already there."""
    bot = await console_bot_factory([*PLUGINS, Roles])  # `profile link` is the roles plugin's
    for name in ("ana", "ana.home", "bo"):
        await bot.say(f"{name}> hello")
    asked = await bot.say("ana> !profile link")
    code = asked[1].split("Your link code: ", 1)[1].split(".", 1)[0]
    assert "are one person now" in text(await bot.say(f"ana.home> !profile link {code}"))
    await bot.say('!meeting schedule "Workshop" 2026-03-03 10:00')
    clock.set(utc(2026, 3, 3, 12))
    confirmed = await bot.say("!meeting attended 1 @ana @ana.home @bo")
    assert confirmed[1].endswith("copbot> Attendance at Workshop of Tue 3 Mar 10:00 UTC: 2 confirmed.")
    assert await count(bot, Attendance) == 2
    again = await bot.say("!meeting attended 1 @ana.home")
    assert again[1].endswith(
        "copbot> Attendance at Workshop of Tue 3 Mar 10:00 UTC: 0 confirmed, 1 already was."
    )
    assert await count(bot, Attendance) == 2


async def test_cancelling_what_is_cancelled_already_says_so_and_changes_nothing(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """A second cancel of one meeting of a series, or of the whole series, says it is cancelled already
    (the series: since when) — not that the meeting "does not take place" that day — and writes nothing:
    no change, no new sequence for the calendar feed, nobody told again."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say('ana> !meeting schedule "Call" 2026-03-10 15:00 --every weekly')
    await bot.say("bo> !meeting rsvp 1 yes --all")
    one = await bot.say("ana> !meeting cancel 1 --occurrence 2026-03-17")
    assert one[1].endswith("copbot> Meeting #1 on Tue 17 Mar 15:00 UTC is cancelled; the series goes on.")

    async def stored() -> tuple[int, int]:
        async with bot.services.db.session() as session:
            meeting = await session.get(Meeting, 1)
            assert meeting is not None
            return meeting.sequence, await count(bot, MeetingChange)

    before = await stored()
    again = await bot.say("ana> !meeting cancel 1 --occurrence 2026-03-17")
    assert again[1:] == [
        "[9] copbot> The meeting of Tue 17 Mar 2026 (meeting #1) was cancelled already; nothing was changed."
    ]
    assert await stored() == before
    moved = await bot.say("ana> !meeting move 1 2026-03-18 15:00 --occurrence 2026-03-17")
    assert moved[1].endswith(
        "copbot> The meeting of Tue 17 Mar 2026 (meeting #1) was cancelled already; nothing was changed."
    )
    assert await stored() == before
    clock.set(utc(2026, 3, 4, 8, 30))
    await bot.say("ana> !meeting cancel 1")
    before = await stored()
    clock.set(utc(2026, 3, 5, 12))
    whole = await bot.say("ana> !meeting cancel 1")
    assert whole[1:] == [
        "[16] copbot> Meeting #1 was cancelled already, on Wed 4 Mar 08:30 UTC; nothing was changed."
    ]
    day = await bot.say("ana> !meeting cancel 1 --occurrence 2026-03-24")
    assert day[1].endswith(
        "copbot> Meeting #1 was cancelled already, on Wed 4 Mar 08:30 UTC; nothing was changed."
    )
    assert await stored() == before


async def test_a_moved_meeting_cancelled_and_named_again_by_its_new_day_is_cancelled_already(  # type: ignore[no-untyped-def]
    console_bot_factory, database_url: str
) -> None:
    """Tuesday's call moved to Thursday and cancelled there: cancelling (or moving) Thursday's again says
    it is cancelled already, as naming its planned Tuesday does — not that nothing takes place that day
    (on SQLite and PostgreSQL: the moved day is read from the stored changes)."""
    bot = await console_bot_factory(PLUGINS, database_url=database_url)
    await bot.say('ana> !meeting schedule "Call" 2026-03-10 15:00 --every weekly')
    await bot.say("ana> !meeting move 1 2026-03-19 15:00 --occurrence 2026-03-17")
    cancelled = await bot.say("ana> !meeting cancel 1 --occurrence 2026-03-19")
    assert cancelled[1] == "[6] copbot> Meeting #1 on Thu 19 Mar 15:00 UTC is cancelled; the series goes on."
    changes = await count(bot, MeetingChange)
    already = "The meeting of {} (meeting #1) was cancelled already; nothing was changed."
    again = await bot.say("ana> !meeting cancel 1 --occurrence 2026-03-19")
    assert again[1:] == ["[8] copbot> " + already.format("Thu 19 Mar 2026")]
    moved = await bot.say("ana> !meeting move 1 2026-03-20 15:00 --occurrence 2026-03-19")
    assert moved[1:] == ["[10] copbot> " + already.format("Thu 19 Mar 2026")]
    planned = await bot.say("ana> !meeting cancel 1 --occurrence 2026-03-17")
    assert planned[1:] == ["[12] copbot> " + already.format("Tue 17 Mar 2026")]
    wrong = await bot.say("ana> !meeting cancel 1 --occurrence 2026-03-18")  # nothing that day, ever
    assert wrong[1].startswith("[14] copbot> meeting #1 does not take place on Wed 18 Mar 2026.")
    assert await count(bot, MeetingChange) == changes
