"""Polls: the tally rules, a console vote with a changed mind, anonymity, limits, and closing once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from bot.clock import FakeClock
from bot.errors import UsageError
from bot.model import Member, PollVoted
from bot.tables import ActivityEvent
from plugins.polls.models import Poll, PollCount, PollVote, PollVoter
from plugins.polls.plugin import Polls
from plugins.polls.tally import (
    chart,
    check_poll,
    counts_response,
    parse_choices,
    response_answers,
    split_question,
    tally,
)
from plugins.roles.plugin import Roles

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


# --- pure rules ---------------------------------------------------------------------------------------


def test_single_choice_takes_one_option_and_multi_takes_a_set() -> None:
    options = ["Leakage", "Smart meters", "Nitrate"]
    assert parse_choices(["2"], options, multi=False) == (1,)
    assert parse_choices(["3,1"], options, multi=True) == (0, 2)
    assert parse_choices(["1", "3"], options, multi=True) == (0, 2)
    with pytest.raises(UsageError, match="this poll takes one choice"):
        parse_choices(["1,2"], options, multi=False)
    with pytest.raises(UsageError, match=r"option 1 \(Leakage\) is named twice; name each option once"):
        parse_choices(["3,1", "1"], options, multi=True)
    with pytest.raises(UsageError, match="option 4 does not exist; this poll has options 1–3"):
        parse_choices(["4"], options, multi=True)
    with pytest.raises(UsageError, match="'b' is neither an option's number \\(1–3\\) nor an option"):
        parse_choices(["b"], options, multi=False)


def test_options_can_be_chosen_as_written_and_numbers_come_first() -> None:
    options = ["Leakage", "Smart meters", "Nitrate"]
    assert parse_choices(["smart", "METERS"], options, multi=False) == (1,)
    assert parse_choices(["nitrate,", "smart meters"], options, multi=True) == (1, 2)
    assert parse_choices(["Nitrate,", "1"], options, multi=True) == (0, 2)
    years = ["2027", "2", "2026"]
    assert parse_choices(["2"], years, multi=False) == (1,)  # the second option, which is also "2"
    assert parse_choices(["2026"], years, multi=False) == (2,)
    assert parse_choices(["3"], years, multi=False) == (2,)
    with pytest.raises(UsageError, match="'smart' is neither"):
        parse_choices(["smart"], options, multi=False)


def test_an_option_with_a_comma_in_its_name_can_be_chosen_as_written() -> None:
    """Commas separate choices, so "Rotterdam, NL" was read as two options, "Rotterdam" and "NL", and
    refused: an option with a comma in its name could be chosen only by its number."""
    places = ["Rotterdam, NL", "Gent, BE", "Delft"]
    assert parse_choices(["Rotterdam,", "NL"], places, multi=False) == (0,)
    assert parse_choices(["rotterdam,nl"], places, multi=False) == (0,)  # as any option: any case, spacing
    assert parse_choices(["Gent,", "BE,", "rotterdam,", "NL,", "3"], places, multi=True) == (0, 1, 2)
    assert parse_choices(["1,3"], places, multi=True) == (0, 2)  # numbers are still numbers
    with pytest.raises(UsageError, match="'Rotterdam' is neither an option's number"):
        parse_choices(["Rotterdam"], places, multi=False)
    options = ["A", "B", "C"]
    assert parse_choices(["A,", "B"], options, multi=True) == (0, 1)  # several options, as before
    assert parse_choices(["A,", "B"], [*options, "A, B"], multi=True) == (0, 1)  # still: by number, 4
    assert parse_choices(["Rotterdam,", "NL"], ["Rotterdam", *places], multi=False) == (1,)


def test_native_responses_drop_unknown_answers_and_single_choice_keeps_the_first() -> None:
    assert response_answers([7, 2, 0], 3, multi=False) == (2,)
    assert response_answers([2, 0, 2, 9], 3, multi=True) == (0, 2)
    assert response_answers([5, -1], 3, multi=True) is None  # nothing valid: the response is ignored


def test_the_latest_response_wins_and_responses_after_the_end_are_ignored() -> None:
    later, earlier = T0 + timedelta(minutes=5), T0 + timedelta(minutes=1)
    assert counts_response(at=later, previous_at=earlier, closed_at=None)
    assert not counts_response(at=earlier, previous_at=later, closed_at=None)  # arrived late, but older
    assert not counts_response(
        at=T0 + timedelta(hours=2), previous_at=None, closed_at=T0 + timedelta(hours=1)
    )


def test_tally_and_chart() -> None:
    totals = tally([(0,), (0, 2), (2,), (9,)], 3)
    assert totals == [2, 0, 2]
    assert chart(["Yes", "No", "Maybe"], totals, 3) == [
        "1. Yes   ███████░░░ 2 (67%)",
        "2. No    ░░░░░░░░░░ 0 (0%)",
        "3. Maybe ███████░░░ 2 (67%)",
    ]


@pytest.mark.parametrize(
    ("question", "options", "error"),
    [
        ("", ["A", "B"], "the question is empty"),
        ("Q" * 301, ["A", "B"], "the question has 301 characters; at most 300"),
        ("Q", ["A"], "a poll needs at least 2 options; got 1"),
        ("Q", [str(n) for n in range(21)], "a poll has at most 20 options; got 21"),
        ("Q", ["A", "B" * 101], "option 2 has 101 characters; at most 100"),
        (
            "Q",
            ["Leakage", "Metering", "leakage"],
            "option 3 repeats option 1 ('leakage'); options must differ",
        ),
        ("Q", ["A", "  "], "option 2 is empty"),
    ],
)
def test_every_limit_names_itself(question: str, options: list[str], error: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_poll(question, options)
    assert caught.value.message == error


# --- through the console ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "options", "split"),
    [
        ("What's", ["next?", "Leakage", "Metering"], ("What's next?", ["Leakage", "Metering"])),
        ("Lunch options", ["Other?", "Pizza", "Sushi"], ("Lunch options", ["Other?", "Pizza", "Sushi"])),
        ("Where", ["Rotterdam, NL", "Delft?", "Leiden"], ("Where", ["Rotterdam, NL", "Delft?", "Leiden"])),
        ("Next topic?", ["Leakage", "Metering"], ("Next topic?", ["Leakage", "Metering"])),
    ],
)
def test_an_unquoted_question_runs_to_its_question_mark_and_a_quoted_one_is_whole(
    question: str, options: list[str], split: tuple[str, list[str]]
) -> None:
    """``poll create "Lunch options" "Other?" Pizza Sushi`` asked "Lunch options Other?" of two options."""
    assert split_question(question, options) == split


async def test_a_quoted_question_keeps_an_option_that_ends_with_a_question_mark(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Polls])
    created = await bot.say('!poll create "Lunch options" "Other?" Pizza Sushi')
    assert created[1:5] == [
        "[2] copbot> 📊 Poll #1: Lunch options",
        "    1. Other?",
        "    2. Pizza",
        "    3. Sushi",
    ]


async def test_three_members_vote_one_changes_their_mind(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Polls])
    created = await bot.say('!poll create "Next topic?" Leakage Metering Tariffs')
    assert created[1:5] == [
        "[2] copbot> 📊 Poll #1: Next topic?",
        "    1. Leakage",
        "    2. Metering",
        "    3. Tariffs",
    ]
    assert (await bot.say("ana> !poll vote 1 2"))[1] == "[4] copbot> Your vote in poll #1: Metering"
    await bot.say("bo> !poll vote 1 1")
    await bot.say("cy> !poll vote 1 2")
    assert (await bot.say("bo> !poll vote 1 3"))[1] == "[10] copbot> Your vote in poll #1: Tariffs"
    results = await bot.say("ana> !poll results 1")
    assert results[1:] == [
        "[12] copbot> 📊 Poll #1 (open): Next topic? — 3 voters",
        "     1. Leakage  ░░░░░░░░░░ 0 (0%)",
        "     2. Metering ███████░░░ 2 (67%)",
        "     3. Tariffs  ███░░░░░░░ 1 (33%)",
    ]
    async with bot.services.db.session() as session:
        kinds = (await session.execute(select(ActivityEvent.kind, ActivityEvent.detail))).all()
    assert kinds.count(("poll_vote", "poll 1")) == 3  # each voter's vote counts once: bo's change adds none


async def test_a_changed_vote_counts_as_one_vote_of_activity(console_bot_factory, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    """Voting with !poll vote and changing it in the poll UI counted twice ("poll vote 1" = 2 × 0.5) though
    the tally keeps one vote; now the first vote counts and a change — by command, by the poll UI, or
    Discord's way of removing the vote and voting again — adds nothing."""
    bot = await console_bot_factory([Polls, Roles])
    await bot.say('!poll create "Next topic?" Leakage Metering Tariffs')
    adapter, pipeline = bot.adapter, bot.bot.pipeline
    ana = Member("console", "ana", "ana")

    async def respond(event_id: str, answers: tuple[int, ...], mode: str = "set") -> None:
        clock.advance(timedelta(seconds=10))
        await pipeline.handle(
            adapter,
            PollVoted(
                event_id=event_id,
                room=adapter.room,
                at=clock.now(),
                member=ana,
                poll_message_id="2",
                answers=answers,
                mode=mode,  # type: ignore[arg-type]
            ),
        )

    await bot.say("ana> !poll vote 1 2")
    await respond("r1", (0,))  # changed in the poll UI
    await respond("r2", (0,), "remove")  # Discord: the vote removed …
    await respond("r3", (2,), "add")  # … and cast again
    assert (await bot.say("ana> !poll vote 1 1"))[1].endswith("Your vote in poll #1: Leakage")
    await pipeline.journal.flush()
    async with bot.services.db.session() as session:
        votes = [(v.member_id, v.choices) for v in (await session.execute(select(PollVote))).scalars()]
        kinds = (
            await session.execute(
                select(ActivityEvent.detail).where(
                    ActivityEvent.kind == "poll_vote", ActivityEvent.member_id == 2
                )
            )
        ).all()
    assert votes == [(2, "0")]  # one vote in the tally …
    assert kinds == [("poll 1",)]  # … and one vote's activity
    shown = await bot.say("ana> !role show")
    assert shown[2] == "    Last 30 days: score 0.5 (poll vote 0.5), 0 contributions, 1 active day"


async def test_a_poll_started_in_a_direct_chat_is_refused_and_nothing_is_stored(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Polls])
    said = await bot.say('ana>> !poll create "Next topic?" Leakage Metering')
    assert said[1].startswith(
        "[2] copbot → ana (direct)> start polls in the community's room, where everyone sees them and can"
    )
    assert len(said) == 2
    async with bot.services.db.session() as session:
        assert int(await session.scalar(select(func.count()).select_from(Poll)) or 0) == 0


async def test_close_is_for_the_creator_or_a_moderator_and_ends_voting(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Polls])
    await bot.say('ana> !poll create "Lunch?" Yes No')
    assert (await bot.say("bo> !poll close 1"))[1] == (
        "[4] copbot> Only the poll's creator or a moderator can close poll #1; nothing was changed."
    )
    closed = await bot.say("ana> !poll close 1")
    assert closed[1] == "[6] copbot> 📊 Poll #1 (closed): Lunch? — 0 voters"
    assert (await bot.say("bo> !poll vote 1 1"))[
        1
    ] == "[8] copbot> Poll #1 is closed; votes are no longer counted."
    assert (await bot.say("!poll list"))[1] == "[10] copbot> No open polls. Start one with !poll create."
    assert (await bot.say("ana> !poll close 1"))[1] == (
        "[12] copbot> Poll #1 is already closed; !poll results 1 shows them."
    )


async def test_anonymous_polls_store_no_link_between_voter_and_choice(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Polls])
    created = await bot.say('!poll create "Adopt the new practice?" Yes No Abstain --anonymous')
    assert "vote in a direct message to me (!poll vote 1 <number>)" in created[-1]  # no private buttons here
    voted = await bot.say("ana> !poll vote 1 1")
    assert voted[1:] == [  # the choice goes to ana alone; the room only hears that a vote was recorded
        "[4] copbot → ana (direct)> Your vote in poll #1: Yes (anonymous)",
        "[5] copbot> Your vote in poll #1 is recorded.",
    ]
    in_private = await bot.say("bo>> !poll vote 1 2")
    assert in_private[1:] == ["[7] copbot → bo (direct)> Your vote in poll #1: No (anonymous)"]
    again = await bot.say("ana> !poll vote 1 2")
    assert again[1] == "[9] copbot> You have already voted in poll #1; anonymous votes cannot be changed."
    async with bot.services.db.session() as session:
        assert (await session.execute(select(PollVote))).all() == []
        voters = (await session.execute(select(PollVoter.member_id))).scalars().all()
        counts = {row.option: row.count for row in (await session.execute(select(PollCount))).scalars()}
        details = (
            await session.execute(select(ActivityEvent.detail).where(ActivityEvent.kind == "poll_vote"))
        ).scalars()
        assert len(voters) == 2 and counts == {0: 1, 1: 1}
        assert set(details) == {"poll 1"}  # activity says that they voted, never what
        for table in ("polls_counts", "polls_voters", "activity_events"):
            columns = [row[1] for row in (await session.execute(text(f"PRAGMA table_info({table})"))).all()]
            assert not ({"member_id", "option"} <= set(columns)), f"{table} could link a voter to a choice"


async def test_native_responses_follow_msc3381_rules(console_bot_factory, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Polls])
    await bot.say('!poll create "Pick" A B C')
    adapter, pipeline = bot.adapter, bot.bot.pipeline
    ana = Member("console", "ana", "ana")

    async def respond(event_id: str, answers: tuple[int, ...], at: datetime) -> None:
        await pipeline.handle(
            adapter,
            PollVoted(
                event_id=event_id, room=adapter.room, at=at, member=ana, poll_message_id="2", answers=answers
            ),
        )

    now = clock.now()
    await respond("r1", (1,), now + timedelta(seconds=10))
    await respond("r0", (0,), now + timedelta(seconds=5))  # older, delivered late: ignored
    await respond("r2", (7,), now + timedelta(seconds=20))  # not an answer of this poll: ignored
    async with bot.services.db.session() as session:
        votes = [(v.member_id, v.choices) for v in (await session.execute(select(PollVote))).scalars()]
    assert votes == [(2, "1")]  # member 2 is ana (1 created the poll)
    await bot.say("!poll close 1")
    await respond("r3", (2,), clock.now() + timedelta(minutes=1))  # after the end: ignored
    async with bot.services.db.session() as session:
        votes = [(v.member_id, v.choices) for v in (await session.execute(select(PollVote))).scalars()]
    assert votes == [(2, "1")]


async def test_a_poll_with_closes_closes_once_across_a_restart(console_bot_factory, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    first = await console_bot_factory([Polls])
    await first.say('!poll create "Workshop date?" Mon Tue --closes 2m')
    await first.say("ana> !poll vote 1 2")
    assert await first.services.scheduler.job_ids() == ["poll:1:close"]
    await first.bot.stop()  # copbot goes down before the poll closes

    clock.advance(minutes=3)
    second = await console_bot_factory([Polls])  # overdue work is done while starting
    posted = second.new_lines()
    assert posted[0] == "[1] copbot> 📊 Poll #1 (closed): Workshop date? — 1 voter"
    assert "@" not in "\n".join(posted)  # the results mention nobody
    assert await second.services.scheduler.run_due() == 0
    await second.bot.stop()

    third = await console_bot_factory([Polls])
    clock.advance(hours=1)
    assert await third.services.scheduler.run_due() == 0
    assert third.new_lines() == []
    async with third.services.db.session() as session:
        poll = await session.get(Poll, 1)
        assert poll is not None and poll.closed_at == T0 + timedelta(minutes=2)  # at its deadline


async def test_an_option_named_twice_is_refused_with_an_example_and_nothing_is_stored(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    bot = await console_bot_factory([Polls])
    await bot.say('!poll create "Next topic?" Leakage Metering Tariffs')
    await bot.say('!poll create "Which topics?" Leakage Metering Tariffs --multi')
    single = await bot.say("ana> !poll vote 1 1,1")
    assert single[1:] == [
        "[6] copbot> option 1 (Leakage) is named twice; name each option once. "
        "Usage: !poll vote <poll-id> <choices>… — e.g. !poll vote 1 1"
    ]
    multi = await bot.say("ana> !poll vote 2 3, leakage, 1")
    assert multi[1:] == [
        "[8] copbot> option 1 (Leakage) is named twice; name each option once. "
        "Usage: !poll vote <poll-id> <choices>… — e.g. !poll vote 2 1,3"
    ]
    async with bot.services.db.session() as session:
        assert (await session.execute(select(PollVote))).all() == []
    assert (await bot.say("ana> !poll results 1"))[
        1
    ] == "[10] copbot> 📊 Poll #1 (open): Next topic? — 0 voters"


async def test_a_member_can_vote_with_the_option_as_written(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Polls])
    await bot.say('ana> !poll create "Next topic?" Leakage "Smart meters" Nitrate --multi')
    assert (await bot.say("bo> !poll vote 1 smart meters, nitrate"))[1] == (
        "[4] copbot> Your vote in poll #1: Smart meters, Nitrate"
    )
    assert (await bot.say("bo> !poll vote 1 meters"))[1].startswith(
        "[6] copbot> 'meters' is neither an option's number (1–3) nor an option."
    )


async def test_an_option_with_a_comma_is_voted_for_by_its_name(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Polls])
    await bot.say('ana> !poll create "Where next?" "Rotterdam, NL" "Gent, BE"')
    assert (await bot.say("bo> !poll vote 1 Rotterdam, NL"))[1] == (
        "[4] copbot> Your vote in poll #1: Rotterdam, NL"
    )


async def test_a_poll_closing_on_a_day_runs_through_that_day_in_the_creators_zone(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    from plugins.meetings.plugin import Meetings  # where members set their zone

    bot = await console_bot_factory([Polls, Meetings])  # Mon 2 Mar 09:00 UTC
    await bot.say("!timezone Europe/Amsterdam")
    posted = await bot.say('!poll create "Workshop date?" Mon Tue --closes friday')
    assert "Closes Fri 6 Mar 23:59 CET" in "\n".join(posted)  # not as Friday begins
    later = await bot.say('!poll create "Venue?" Delft Utrecht --closes monday 11:00')
    assert "Closes Mon 2 Mar 11:00 CET" in "\n".join(later)  # later today: today, not next week
    async with bot.services.db.session() as session:
        closes = [
            poll.closes_at for poll in (await session.execute(select(Poll).order_by(Poll.id))).scalars()
        ]
    assert closes == [datetime(2026, 3, 6, 22, 59, 59, tzinfo=UTC), datetime(2026, 3, 2, 10, 0, tzinfo=UTC)]
    past = await bot.say('!poll create "Q" A B --closes 2026-03-01')
    assert past[1].split("> ", 1)[1].startswith("--closes: Sun 1 Mar 23:59 CET has already passed")
