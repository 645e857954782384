"""The figures a coordinator reads, cross-checked against a month whose truth is known: `stats`, `value
report`, the digest, `role list`, poll results and the dashboard agree with each other and with what the
members did (direct chats, tracking off, members who left and came back not counted where they must not be).
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.clock import FakeClock
from bot.tables import ActivityEvent, MemberRow, Membership
from bot.web.app import create_app
from plugins.dashboard.plugin import Dashboard
from plugins.digest.models import DigestPost
from plugins.digest.plugin import DigestPlugin
from plugins.meetings.models import Attendance, Rsvp
from plugins.meetings.plugin import Meetings
from plugins.polls.plugin import Polls
from plugins.profiles.plugin import Profiles
from plugins.repertoire.plugin import Repertoire
from plugins.roles.models import LevelChange
from plugins.roles.plugin import Roles
from plugins.value.plugin import Value
from plugins.welcome.plugin import Welcome

PLUGINS = [Welcome, Profiles, Polls, Meetings, Repertoire, Roles, DigestPlugin, Dashboard, Value]
COMMUNITIES = [{"slug": "cop", "name": "Water CoP", "timezone": "Europe/Amsterdam"}]


def replies(lines: list[str]) -> list[str]:
    """What copbot answered, one line each, without the numbering."""
    return [line.split("> ", 1)[-1].strip() for line in lines if "copbot" in line or line.startswith(" ")]


async def test_stats_counts_what_happened_this_very_moment_as_the_value_report_does(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, communities=COMMUNITIES)
    for name in ("ana", "bo"):
        await bot.say(f":join {name}")
        await bot.say(f"{name}>> stop")
    await bot.say("ana> hello all")
    await bot.say("bo> hi ana")
    await bot.say('ana> !share tool "Leak map" https://example.org/map')
    async with bot.services.db.session() as session:  # what is stored: ana's and bo's, at this moment
        at_now = await session.scalar(
            select(func.count(func.distinct(ActivityEvent.member_id))).where(ActivityEvent.at == clock.now())
        )
    assert at_now == 2
    stats = replies(await bot.say("!stats"))
    assert "Active in the last 30 days: 2 (↑ from 0)" in stats, stats
    assert "Contributions in 30 days: repertoire item 1 (↑ from 0)" in stats, stats
    report = replies(await bot.say("!value report"))  # `you` took part now too: the `stats` command
    assert "• Active members: 3 (↑ from 0)" in report and "• Repertoire items added: 1 (↑ from 0)" in report
    stats = replies(await bot.say("!stats"))
    assert "Active in the last 30 days: 3 (↑ from 0)" in stats, stats
    # a month and an hour later, that moment is in the period before, counted once
    clock.advance(timedelta(days=30, hours=1))
    stats = replies(await bot.say("!stats"))
    assert "Active in the last 30 days: 0 (↓ 100% from 3)" in stats, stats
    assert "Contributions in 30 days: repertoire item 0 (↓ 100% from 1)" in stats, stats


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


async def test_each_digest_compares_with_the_figures_the_digest_before_it_showed_across_a_clock_change(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    """Weekly digests on Mondays at 09:00 in Amsterdam, which moves to summer time on Sunday 29 March: the
    week before a digest is the previous Monday 09:00 to this one, as its own digest counted it — not 168
    hours, which start an hour late (or early) when the clocks changed in between."""
    bot = await console_bot_factory(
        PLUGINS, communities=COMMUNITIES, plugins={"digest": {"rooms": {"cop": {"console": "console"}}}}
    )
    mondays = [utc(2026, 3, 9, 8), utc(2026, 3, 16, 8), utc(2026, 3, 23, 8), utc(2026, 3, 30, 7)]
    mondays.append(utc(2026, 4, 6, 7))  # 09:00 in Amsterdam: CET (UTC+1) until 29 March, then CEST (UTC+2)
    said = [
        utc(2026, 3, 16, 8, 30),  # Monday 16 March 09:30 CET: the week of 16–23 March
        utc(2026, 3, 18, 12),
        utc(2026, 3, 23, 7, 30),  # Monday 23 March 08:30 CET: still the week of 16–23 March
        *(utc(2026, 3, 25, hour) for hour in (9, 10, 11)),  # the week of 23–30 March
        *(utc(2026, 4, 1, hour) for hour in (9, 10, 11)),  # the week of 30 March – 6 April
    ]
    messages: list[str] = []
    for week, (previous, monday) in enumerate(itertools.pairwise([clock.now(), *mondays])):
        clock.set(previous + timedelta(hours=2))
        await bot.say(f":join newcomer{week}")  # news every week: no digest is a quiet one
        for moment in [at for at in said if previous <= at < monday]:
            clock.set(moment)
            await bot.say(f"ana> a note at {moment:%d %H:%M}")
        clock.set(monday)
        bot.new_lines()
        assert await bot.services.scheduler.run_due() >= 1
        posted = bot.new_lines()
        messages += [line.strip() for line in posted if line.strip().startswith("• Messages:")]
    assert messages == [
        "• Messages: 3 (↑ from 0)",  # 16–23 March
        "• Messages: 3 (= before)",  # 23–30 March (the clocks change on the 29th)
        "• Messages: 3 (= before)",  # 30 March – 6 April
    ], messages
    async with bot.services.db.session() as session:  # the periods stored: Monday 09:00 to Monday 09:00
        stored = (await session.execute(select(DigestPost.period_start, DigestPost.period_end))).all()
    assert [(start, end) for start, end in stored if start >= mondays[1]] == list(
        itertools.pairwise(mondays[1:])
    )


async def test_a_member_whose_second_account_joins_is_not_a_new_member_in_the_digest(
    console_bot_factory, clock: FakeClock, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """ana and dee have been members since March; in April their home accounts join and they link them
    (`profile link`; dee asks for the code on the new account, which then is the one that counts): each is
    one member, as `role list`, `stats` and the dashboard count them, and not a newcomer of April. bo, who
    joined in April, is; and so is cy, whose two accounts both joined in April — once."""
    bot = await console_bot_factory(
        PLUGINS,
        communities=COMMUNITIES,
        plugins={"digest": {"rooms": {"cop": {"console": "console"}}}},
        database_url=database_url,
    )
    for name in ("ana", "dee"):
        await bot.say(f":join {name}")
        await bot.say(f"{name}>> stop")
    clock.set(utc(2026, 4, 1, 12))
    for name in ("ana.home", "dee.home", "bo", "cy", "cy.phone"):
        await bot.say(f":join {name}")
        await bot.say(f"{name}>> stop")
    for first, second in (("ana", "ana.home"), ("dee.home", "dee"), ("cy", "cy.phone")):
        asked = await bot.say(f"{first}> !profile link")
        code = asked[1].split("Your link code: ", 1)[1].split(".", 1)[0]
        assert "are one person now" in "\n".join(await bot.say(f"{second}> !profile link {code}"))
    clock.advance(timedelta(minutes=5))
    listed = replies(await bot.say("!role list"))
    assert "peripheral: 4" in listed, listed  # ana, dee, bo and cy
    clock.advance(timedelta(minutes=5))
    posted = "\n".join(await bot.say("!digest now"))
    assert "New members (3)" in posted, posted  # bo, cy, and you (who spoke first in April)
    assert "• bo" in posted and "• cy" in posted and "• you" in posted
    assert "• ana" not in posted and "• dee" not in posted and "• cy.phone" not in posted
    async with bot.services.db.session() as session:
        stored = (await session.execute(select(DigestPost.text))).scalars().one()
    assert "New members (3)" in stored  # the feed's copy (names only of those who show them)


async def test_the_dashboard_counts_a_vote_as_one_action_however_it_was_cast(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    """ "Actions" on the dashboard are, as the page says, messages, reactions, votes, answers and
    contributions: a vote typed as a command is one action (as one cast in the platform's own poll), and
    the commands a coordinator types to read the figures (`stats`, `poll create`) are none."""
    public = [{**COMMUNITIES[0], "public": True}]
    bot = await console_bot_factory(PLUGINS, communities=public)
    for name in ("ana", "bo"):
        await bot.say(f":join {name}")
        await bot.say(f"{name}>> stop")
    clock.advance(timedelta(hours=1))
    said = await bot.say("ana> hello all")
    number = said[0].split("]", 1)[0].lstrip("[")
    await bot.say("bo> hi ana")
    await bot.say(f":react bo {number} 👍")
    await bot.say('!poll create "Next topic?" Leakage Metering')
    await bot.say("ana> !poll vote 1 1")
    await bot.say("!stats")
    clock.advance(timedelta(minutes=5))
    async with bot.services.db.session() as session:  # stored: every row, the commands among them
        kinds = dict(
            (
                await session.execute(select(ActivityEvent.kind, func.count()).group_by(ActivityEvent.kind))
            ).all()
        )
    assert kinds == {"message": 2, "reaction": 1, "poll_vote": 1, "command": 3}
    async with TestClient(TestServer(create_app(bot.services))) as client:
        page = await (await client.get("/c/cop")).text()
        home = await (await client.get("/")).text()
    total = re.search(r'<span id="activity-total">(\d+)</span>', page)
    assert total is not None and total.group(1) == "4", total  # 2 messages, a reaction, a vote
    assert re.findall(r'<td class="(active|actions)">(\d+)</td>', home) == [("active", "3"), ("actions", "4")]


async def test_a_person_who_answers_from_both_linked_accounts_is_counted_once_at_a_meeting(
    console_bot_factory, clock: FakeClock, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """ana linked her home account to hers: she is one person, and says yes from one account, then no
    from the other — she is not coming, counted once (her latest answer), in `meeting show`, the
    announcement's counts, the digest and the dashboard; bo's yes is the one yes."""
    bot = await console_bot_factory(
        PLUGINS,
        communities=[{**COMMUNITIES[0], "public": True}],
        plugins={"digest": {"rooms": {"cop": {"console": "console"}}}},
        database_url=database_url,
    )
    for name in ("ana", "ana.home", "bo"):
        await bot.say(f":join {name}")
        await bot.say(f"{name}>> stop")
    asked = await bot.say("ana> !profile link")
    code = asked[1].split("Your link code: ", 1)[1].split(".", 1)[0]
    assert "are one person now" in "\n".join(await bot.say(f"ana.home> !profile link {code}"))
    await bot.say('!meeting schedule "Call" 2026-03-05 15:00')
    await bot.say("ana> !meeting rsvp 1 yes")
    await bot.say("bo> !meeting rsvp 1 maybe")
    clock.advance(timedelta(minutes=1))
    await bot.say("ana.home> !meeting rsvp 1 no")
    await bot.say("bo> !meeting rsvp 1 yes")
    shown = replies(await bot.say("!meeting show 1"))
    assert "Coming (1): bo" in shown and "Not coming (1): ana.home" in shown, shown
    assert "Maybe (0): —" in shown
    async with bot.services.db.session() as session:  # both accounts' answers are kept as given
        stored = (await session.execute(select(Rsvp.answer).order_by(Rsvp.member_id))).scalars().all()
    assert stored == ["yes", "no", "yes"]
    preview = "\n".join(await bot.say("!digest preview"))
    assert "Call · ✅ 1 · ❔ 0 · ❌ 1" in preview, preview
    async with TestClient(TestServer(create_app(bot.services))) as client:
        page = await (await client.get("/c/cop")).text()
    assert "Call · 1 coming, 0 maybe, 1 not coming" in page, page


async def test_experts_lists_a_person_with_linked_accounts_once_with_all_they_know(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    """ana's profile names leak detection and her linked home account shared a leak map: she is one
    expert, listed once with both reasons — not twice, as two members — and ranked on both."""
    bot = await console_bot_factory(PLUGINS, communities=COMMUNITIES)
    for name in ("ana", "ana.home", "bo"):
        await bot.say(f":join {name}")
        await bot.say(f"{name}>> stop")
    await bot.say("ana> !profile set expertise leak detection")
    asked = await bot.say("ana> !profile link")
    code = asked[1].split("Your link code: ", 1)[1].split(".", 1)[0]
    assert "are one person now" in "\n".join(await bot.say(f"ana.home> !profile link {code}"))
    await bot.say('ana.home> !share tool "Leak map" https://example.org/map')
    await bot.say('bo> !share tool "Leak finder" https://example.org/finder')
    await bot.say('bo> !share story "Leak hunt" how we found it')
    shown = replies(await bot.say("!experts leak"))
    assert shown == [
        "Members who know about leak:",
        '1. @ana — expertise: leak detection; shared 1 item titled "Leak map"',
        '2. @bo — shared 2 items, among them "Leak finder"',
    ], shown


async def test_new_ties_are_between_persons_not_between_one_persons_accounts(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    """ana (with her linked home account) upvotes bo's item from one account and applies it from the other,
    and both her accounts say yes to the meeting bo comes to: one new tie, ana–bo — not one per account,
    and none between ana and herself."""
    bot = await console_bot_factory(PLUGINS, communities=COMMUNITIES)
    for name in ("ana", "ana.home", "bo"):
        await bot.say(f":join {name}")
        await bot.say(f"{name}>> stop")
    asked = await bot.say("ana> !profile link")
    code = asked[1].split("Your link code: ", 1)[1].split(".", 1)[0]
    assert "are one person now" in "\n".join(await bot.say(f"ana.home> !profile link {code}"))
    await bot.say('bo> !share tool "Leak finder" https://example.org/finder')
    await bot.say("ana> !repertoire upvote 1")
    await bot.say("ana.home> !repertoire used 1")
    await bot.say('!meeting schedule "Call" 2026-03-05 15:00')
    for name in ("ana", "ana.home", "bo"):
        await bot.say(f"{name}> !meeting rsvp 1 yes")
    report = replies(await bot.say("!value report"))
    assert "• New member-to-member ties: 1 (↑ from 0)" in report, report
    assert "• Repertoire items applied: 1 (↑ from 0)" in report


async def test_poll_turnout_counts_a_person_voting_from_two_linked_accounts_once(
    console_bot_factory, clock: FakeClock, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """Poll turnout is voters as a share of the active members, both persons: ana voting from her two
    linked accounts is one voter of the three active members (ana, bo and you) — 33%, not 67%."""
    bot = await console_bot_factory(PLUGINS, communities=COMMUNITIES, database_url=database_url)
    for name in ("ana", "ana.home", "bo"):
        await bot.say(f":join {name}")
        await bot.say(f"{name}>> stop")
    asked = await bot.say("ana> !profile link")
    code = asked[1].split("Your link code: ", 1)[1].split(".", 1)[0]
    assert "are one person now" in "\n".join(await bot.say(f"ana.home> !profile link {code}"))
    await bot.say("bo> hello")
    await bot.say('!poll create "Next topic?" Leakage Metering')
    await bot.say("ana> !poll vote 1 1")
    await bot.say("ana.home> !poll vote 1 2")
    async with bot.services.db.session() as session:  # stored: a vote row for each account
        votes = await session.scalar(
            select(func.count()).select_from(ActivityEvent).where(ActivityEvent.kind == "poll_vote")
        )
    assert votes == 2
    report = replies(await bot.say("!value report"))
    assert "• Active members: 3 (↑ from 0)" in report, report
    assert "• Poll turnout: 33% (1 of 3)" in report, report


async def test_stats_compares_newcomer_conversion_with_the_levels_newcomers_had_then(
    console_bot_factory, clock: FakeClock, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """ana and bo joined 80 days ago; a moderator moved ana to occasional 20 days ago. Today one of the
    two newcomers converted (50%); 30 days ago neither had (0%) — the 'was' is not today's levels."""
    bot = await console_bot_factory(PLUGINS, communities=COMMUNITIES, database_url=database_url)
    joined = clock.now()
    for name in ("ana", "bo"):
        await bot.say(f":join {name}")
        await bot.say(f"{name}>> stop")
    clock.set(joined + timedelta(days=60))
    assert "occasional" in "\n".join(await bot.say("!role set @ana occasional leads the leak group"))
    clock.set(joined + timedelta(days=80))
    stats = replies(await bot.say("!stats"))
    assert "occasional: 1 (↑ from 0)" in stats, stats  # the levels 30 days ago, from the history
    assert (
        "Newcomer conversion: 50% of the 2 who joined 30–90 days ago are occasional or more (was 0%)" in stats
    ), stats


async def test_moving_inward_says_how_many_more_moved_than_it_lists(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    """23 members moved inward this week: the digest lists the first 20 and says 3 more moved, as its other
    sections do, rather than reading as 20."""
    bot = await console_bot_factory(PLUGINS, communities=COMMUNITIES)
    names = [f"member{number:02}" for number in range(1, 24)]
    for name in names:
        await bot.say(f":join {name}")
        await bot.say(f"{name}>> stop")
        await bot.say(f"!role set @{name} occasional leads a working group")
    async with bot.services.db.session() as session:  # stored: 23 moves in the history
        moved = await session.scalar(select(func.count()).select_from(LevelChange))
    assert moved == 23
    preview = [line.strip() for line in await bot.say("!digest preview")]
    section = preview[preview.index("Moving inward") + 1 :]
    section = section[: section.index("")]
    assert len(section) == 21 and section[0] == "• member01 → occasional", section
    assert section[-1] == "• … and 3 more", section


async def test_linked_accounts_at_different_levels_are_one_member_at_one_level_everywhere(
    console_bot_factory, clock: FakeClock, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """ana's home account was moved to active before she linked it to her first (peripheral) account: she is
    one active member — in `role list`, in `stats` and on the dashboard alike, not active in one and
    peripheral in the others."""
    bot = await console_bot_factory(
        PLUGINS, communities=[{**COMMUNITIES[0], "public": True}], database_url=database_url
    )
    for name in ("ana", "bo", "ana.home"):
        await bot.say(f":join {name}")
        await bot.say(f"{name}>> stop")
    await bot.say("!role set @ana.home active leads the leak group")
    asked = await bot.say("ana> !profile link")
    code = asked[1].split("Your link code: ", 1)[1].split(".", 1)[0]
    assert "are one person now" in "\n".join(await bot.say(f"ana.home> !profile link {code}"))
    listed = replies(await bot.say("!role list"))
    assert listed[2:5] == ["active: 1", "occasional: 0", "peripheral: 2"], listed  # ana; bo and you
    stats = replies(await bot.say("!stats"))
    assert stats[2:5] == ["active: 1 (↑ from 0)", "occasional: 0 (= before)", "peripheral: 2 (↑ from 0)"], (
        stats
    )
    async with TestClient(TestServer(create_app(bot.services))) as client:
        page = await (await client.get("/c/cop")).text()
    rings = dict(
        re.findall(r'<tr data-level="(\w+)"><th scope="row">\w+</th><td class="count">(\d+)</td>', page)
    )
    assert (rings["active"], rings["peripheral"]) == ("1", "2"), rings
    async with bot.services.db.session() as session:  # stored: both of ana's accounts are active
        levels = (
            await session.execute(
                select(MemberRow.platform_id, Membership.level)
                .join(Membership, Membership.member_id == MemberRow.id)
                .where(MemberRow.platform_id.in_(["ana", "ana.home"]))
                .order_by(MemberRow.platform_id)
            )
        ).all()
    assert [tuple(row) for row in levels] == [("ana", "active"), ("ana.home", "active")]


async def test_meeting_attendance_counts_a_person_confirmed_on_both_linked_accounts_once(
    console_bot_factory, clock: FakeClock, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """A moderator confirms ana on both of her linked accounts, and bo: two persons were at the meeting,
    as `meeting show` counted her once among those coming — the value report says 2, not 3."""
    bot = await console_bot_factory(PLUGINS, communities=COMMUNITIES, database_url=database_url)
    for name in ("ana", "ana.home", "bo"):
        await bot.say(f":join {name}")
        await bot.say(f"{name}>> stop")
    asked = await bot.say("ana> !profile link")
    code = asked[1].split("Your link code: ", 1)[1].split(".", 1)[0]
    assert "are one person now" in "\n".join(await bot.say(f"ana.home> !profile link {code}"))
    await bot.say('!meeting schedule "Call" 2026-03-05 15:00')
    clock.set(datetime(2026, 3, 6, 9, tzinfo=UTC))
    confirmed = replies(await bot.say("!meeting attended 1 @ana @ana.home @bo"))
    assert "2 confirmed" in confirmed[0], confirmed  # and stored once per person
    async with bot.services.db.session() as session:  # as copbot stored it before: once per account
        home = await session.scalar(select(MemberRow.id).where(MemberRow.platform_id == "ana.home"))
        you = await session.scalar(select(MemberRow.id).where(MemberRow.platform_id == "you"))
        assert home is not None and you is not None
        key = (await session.scalar(select(Attendance.occurrence))) or ""
        session.add(
            Attendance(meeting_id=1, occurrence=key, member_id=home, confirmed_by=you, at=clock.now())
        )
        await session.commit()
    report = replies(await bot.say("!value report"))
    assert "• Meeting attendance: 2 (↑ from 0)" in report, report


async def test_a_person_who_leaves_on_one_linked_account_but_stays_on_the_other_still_comes(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    """ana answered yes from her first account, then that account left while her linked second account
    stays in the community: she is still in it, and still coming. bo, who left with his only account, is
    not."""
    bot = await console_bot_factory(PLUGINS, communities=COMMUNITIES)
    for name in ("ana", "ana.home", "bo"):
        await bot.say(f":join {name}")
        await bot.say(f"{name}>> stop")
    asked = await bot.say("ana> !profile link")
    code = asked[1].split("Your link code: ", 1)[1].split(".", 1)[0]
    assert "are one person now" in "\n".join(await bot.say(f"ana.home> !profile link {code}"))
    await bot.say('!meeting schedule "Call" 2026-03-05 15:00')
    await bot.say("ana> !meeting rsvp 1 yes")
    await bot.say("bo> !meeting rsvp 1 yes")
    await bot.say(":leave ana")
    await bot.say(":leave bo")
    shown = replies(await bot.say("!meeting show 1"))
    assert "Coming (1): ana" in shown, shown
    async with bot.services.db.session() as session:
        kept = (await session.execute(select(Rsvp.member_id))).scalars().all()
    assert len(kept) == 1
