"""The digest: its sections from seeded data, a quiet period, escaping, embed limits, once per period across
restarts (a catch-up once, `digest now` then the tick once), the Atom feed, and `stats` figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, insert, select

from bot.clock import FakeClock
from bot.plugin import DigestSection
from bot.tables import ActivityEvent, MemberRow, Membership
from bot.web.app import create_app
from plugins.digest.models import DigestPost
from plugins.digest.plugin import DigestPlugin
from plugins.digest.render import CARD_LIMIT, FIELD_LIMIT, Digest, as_cards, as_html, as_text, period
from plugins.meetings.plugin import Meetings
from plugins.polls.plugin import Polls
from plugins.profiles.plugin import Profiles
from plugins.repertoire.plugin import Repertoire
from plugins.roles.models import LevelChange
from plugins.roles.plugin import Roles
from plugins.welcome.plugin import Welcome

PLUGINS = [Welcome, Profiles, Polls, Meetings, Repertoire, Roles, DigestPlugin]
ROOMS: dict[str, Any] = {"digest": {"rooms": {"cop": {"console": "console"}}}}
MONDAY = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)  # the first scheduled digest after the fixtures' clock


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


async def posts(bot) -> int:  # type: ignore[no-untyped-def]
    async with bot.services.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(DigestPost)) or 0)


async def test_a_week_of_community_life_becomes_one_digest(console_bot_factory, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, plugins=ROOMS)
    await bot.say(":join ana")
    await bot.say("ana>> 5")
    await bot.say("ana>> KWR")
    await bot.say("ana>> Netherlands")
    await bot.say("ana>> stop")
    await bot.say(":join bo")
    await bot.say('ana> !share tool "Leak <b>map</b> @everyone" https://example.org/map #gis')
    await bot.say("bo> !repertoire upvote 1")
    await bot.say('!poll create "Next topic?" Leakage Metering')
    await bot.say("ana> !poll vote 1 1")
    await bot.say("bo> !poll vote 1 1")
    await bot.say("!poll close 1")
    await bot.say('!poll create "Venue?" Delft Utrecht')
    await bot.say('!meeting schedule "Monthly call" 2026-03-10 15:00 --where https://meet.example')
    await bot.say("ana> !meeting rsvp 1 yes")
    await bot.say("!role set @bo active runs the metering group")
    bot.new_lines()
    clock.set(MONDAY)
    assert await bot.services.scheduler.run_due() >= 1
    posted = "\n".join(line for line in bot.new_lines() if "copbot>" in line or line.startswith("    "))
    assert "📰 Our Community of Practice — 2–9 Mar 2026" in posted
    assert "New members (3)" in posted and "ana (Research, Netherlands)" in posted
    assert "Moving inward" in posted and "bo → active" in posted
    assert "#1 [tool] Leak <b>map</b> @everyone — ana" in posted  # as written; platforms escape it
    assert "Most upvoted" in posted and "#1 Leak <b>map</b> @everyone · 1▲" in posted
    assert (
        "Coming up this week" in posted
        and "Tue 10 Mar 15:00 UTC — Monthly call (https://meet.example) · ✅ 1" in posted
    )
    assert "Open polls" in posted and "#2 Venue?" in posted
    assert "Poll results" in posted and "#1 Next topic? — Leakage (100%, 2 voters)" in posted
    assert "Activity (the period before in brackets)" in posted and "Contributions: 1 (↑ from 0)" in posted
    async with bot.services.db.session() as session:
        post = (await session.execute(select(DigestPost))).scalar_one()
    assert (post.period_start, post.period_end, post.quiet) == (MONDAY - timedelta(days=7), MONDAY, False)
    assert "&lt;b&gt;map&lt;/b&gt;" in post.html and "<b>map" not in post.html  # escaped for the feed


async def test_the_first_digest_covers_one_period_of_its_schedule(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    """A daily digest's first covers the day before it, not a week; the next covers the day after it."""
    daily: dict[str, Any] = {"digest": {**ROOMS["digest"], "schedule": "0 9 * * *"}}
    bot = await console_bot_factory(PLUGINS, plugins=daily)
    clock.set(utc(2026, 3, 3, 9))
    await bot.services.scheduler.run_due()
    assert bot.new_lines()[0] == "[1] copbot> 📰 Our Community of Practice — 2–3 Mar 2026"
    said = await bot.say("!digest preview")
    assert "📰 Our Community of Practice — 3 Mar 2026" in "\n".join(said)
    clock.set(utc(2026, 3, 4, 9))
    await bot.services.scheduler.run_due()
    async with bot.services.db.session() as session:
        periods = (await session.execute(select(DigestPost.period_start, DigestPost.period_end))).all()
    assert sorted(tuple(row) for row in periods) == [
        (utc(2026, 3, 2, 9), utc(2026, 3, 3, 9)),
        (utc(2026, 3, 3, 9), utc(2026, 3, 4, 9)),
    ]


async def test_a_quiet_period_says_so_in_one_line(console_bot_factory, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, plugins=ROOMS)
    clock.set(MONDAY)
    await bot.services.scheduler.run_due()
    assert bot.new_lines() == [
        "[1] copbot> 📰 Our Community of Practice — 2–9 Mar 2026",
        "    A quiet period in Our Community of Practice: nothing new to report. "
        "Say hello, share something, or plan a meeting!",
    ]


async def test_a_period_is_posted_once_across_restarts_and_catch_up(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    first = await console_bot_factory(PLUGINS, plugins=ROOMS)
    await first.say("ana> hello")
    await first.bot.stop()
    clock.set(MONDAY + timedelta(days=14, hours=2))  # down over two Mondays
    second = await console_bot_factory(PLUGINS, plugins=ROOMS)  # overdue work is done at start
    assert await posts(second) == 1  # one catch-up, not two
    async with second.services.db.session() as session:
        post = (await session.execute(select(DigestPost))).scalar_one()
    assert post.period_end == MONDAY + timedelta(days=14)  # covering both missed weeks
    assert sum("📰" in line for line in second.new_lines()) == 1
    await second.bot.stop()
    third = await console_bot_factory(PLUGINS, plugins=ROOMS)
    assert await posts(third) == 1 and third.new_lines() == []
    said = await third.say("!digest now")
    assert "Posted 📰 Our Community of Practice — 23–30 Mar 2026 to console" in "\n".join(said)
    again = await third.say("!digest now")  # a refusal, not a usage error: no "Usage:" after it
    assert again[1] == "[5] copbot> This period's digest was posted already; the next one comes on schedule."
    clock.set(MONDAY + timedelta(days=21))
    await third.services.scheduler.run_due()
    assert await posts(third) == 2  # the tick finds its period posted
    assert not any("📰" in line for line in third.new_lines())
    assert (await third.say("!digest now"))[1].startswith("[7] copbot> Posted")  # the new period
    assert await posts(third) == 3


async def test_preview_shows_without_posting_and_members_may_not_post(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, plugins=ROOMS)
    await bot.say("ana> hello")
    said = await bot.say("ana> !digest preview")
    assert said[1].startswith("[3] copbot → ana (direct)> 📰 Our Community of Practice — ")  # only to ana
    assert said[-1] == "[4] copbot> I have sent you the digest preview in a direct message."
    assert "Activity" in "\n".join(said)
    assert (await bot.say("ana> !digest now"))[
        1
    ] == "[6] copbot> !digest now is for moderators only; nothing was changed."
    assert await posts(bot) == 0


async def test_now_without_a_digest_room_says_the_feed_has_it(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    said = (await bot.say("!digest now"))[1]
    assert said.startswith("[2] copbot> Posted 📰 Our Community of Practice")
    assert said.endswith(
        "to its feed only: no room is set for it ([plugins.digest] rooms); the scheduled one for this "
        "period is skipped."
    )
    assert await posts(bot) == 1


def test_cards_stay_within_embed_limits_and_break_between_words() -> None:
    long_lines = tuple(f"item {n} " + "word " * 60 for n in range(60))
    giant = ("x" * 1500,)
    digest = Digest(
        "Water CoP",
        utc(2026, 3, 2),
        utc(2026, 3, 9),
        "Europe/Amsterdam",
        (DigestSection("New in the repertoire", long_lines, 30), DigestSection("Odd", giant, 40)),
    )
    cards = as_cards(digest)
    assert len(cards) > 1
    for card in cards:
        assert len(card.title) <= 256 and len(card.fields) <= 25
        assert sum(len(name) + len(value) for name, value in card.fields) + len(card.title) <= CARD_LIMIT
        for name, value in card.fields:
            assert len(value) <= FIELD_LIMIT and len(name) <= 256
            for line in value.split("\n"):
                assert not line.endswith(" wor") and not line.startswith("d ")  # never inside a word
    text = "\n".join(value for card in cards for _, value in card.fields)
    assert all(f"item {n} " in text for n in range(60))  # nothing lost in the split
    assert "(continued)" in " ".join(name for card in cards for name, _ in card.fields)
    assert as_text(digest).count("• item") == 60
    assert "<li>item 0" in as_html(digest)


def test_cards_stay_within_embed_limits_once_discord_escapes_member_text() -> None:
    """Markdown characters double when escaped: the split measures lines as they will be sent."""
    from bot.adapters.discord_render import escape_data

    lines = tuple(f"#{n} [tool] " + "*leak_map* `x|y` ~z~ @everyone " * 6 + "— Bob" for n in range(30))
    digest = Digest("Water CoP", utc(2026, 3, 2), utc(2026, 3, 9), "UTC", (DigestSection("New", lines, 30),))
    shown = []
    for card in as_cards(digest):
        escaped = [(escape_data(name, 10**6), escape_data(value, 10**6)) for name, value in card.fields]
        assert all(len(value) <= FIELD_LIMIT for _, value in escaped)  # never cut by the adapter
        assert len(card.title) + sum(len(name) + len(value) for name, value in escaped) <= 6000
        shown += [line for _, value in card.fields for line in value.split("\n")]
    assert shown == [f"• {line}" for line in lines]  # every line whole, in order


async def test_the_atom_feed_is_valid_ordered_and_stable(console_bot_factory, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, plugins=ROOMS)
    await bot.say("ana> hello")
    clock.set(MONDAY)
    await bot.services.scheduler.run_due()
    await bot.say('ana> !share story "Night <i>flow</i>" we found leaks')
    clock.set(MONDAY + timedelta(days=7))
    await bot.services.scheduler.run_due()
    bot.new_lines()
    url = (await bot.say("!digest subscribe"))[1].rsplit(" ", 1)[1].removeprefix("http://127.0.0.1:8080")

    async def fetch() -> Any:
        async with TestClient(TestServer(create_app(bot.services))) as client:
            assert (await client.get("/c/cop/digest.atom")).status == 403
            response = await client.get(url)
            assert response.status == 200 and response.content_type == "application/atom+xml"
            return feedparser.parse(await response.read())

    feed = await fetch()
    assert not feed.bozo, feed.bozo_exception
    # the feed names itself by the address subscribed to, key included: a reader following it gets in
    assert feed.feed.links[0].href == "http://127.0.0.1:8080" + url
    assert [entry.title for entry in feed.entries] == [
        "📰 Our Community of Practice — 9–16 Mar 2026",
        "📰 Our Community of Practice — 2–9 Mar 2026",
    ]
    assert "Night &lt;i&gt;flow&lt;/i&gt;" in feed.entries[0].content[0].value
    ids = [entry.id for entry in feed.entries]
    await bot.bot.stop()
    again = await console_bot_factory(PLUGINS, plugins=ROOMS)
    bot = again
    assert [entry.id for entry in (await fetch()).entries] == ids  # stable across restarts


async def test_a_control_character_a_member_typed_does_not_break_the_feed(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    """lxml refuses a whole document for one character XML cannot carry: a title with \\x01 in it made
    the feed a 500 for as long as that digest was among the latest fifty. (`share` refuses such a title
    now; one stored before, or by another way in, must still not break the feed.)"""
    from plugins.repertoire.models import Item

    bot = await console_bot_factory(PLUGINS, plugins=ROOMS)
    await bot.say('ana> !share story "Night flow" we found\x0b leaks')
    async with bot.services.db.session() as session:
        item = await session.get(Item, 1)
        assert item is not None
        item.title = "Night\x01flow"
    clock.set(MONDAY)
    await bot.services.scheduler.run_due()
    assert await posts(bot) == 1
    bot.new_lines()
    url = (await bot.say("!digest subscribe"))[1].rsplit(" ", 1)[1].removeprefix("http://127.0.0.1:8080")
    async with TestClient(TestServer(create_app(bot.services))) as client:
        response = await client.get(url)
        assert response.status == 200
        feed = feedparser.parse(await response.read())
    assert not feed.bozo, feed.bozo_exception
    assert "Nightflow" in feed.entries[0].content[0].value


async def test_long_sections_show_their_first_lines_and_count_the_rest(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    """What the large-community queries count in the database: joins and items beyond those shown, and
    only the upvotes given in the period."""
    from plugins.repertoire.models import Item, Upvote

    bot = await console_bot_factory(PLUGINS, plugins=ROOMS)
    start, end = MONDAY - timedelta(days=7), MONDAY
    async with bot.services.db.session() as session:
        members = [
            MemberRow(
                platform="console",
                platform_id=f"n{i}",
                display_name=f"n{i}",
                first_seen=start,
                last_seen=start,
            )
            for i in range(18)
        ]
        session.add_all(members)
        await session.flush()
        for index, member in enumerate(members):  # 17 joined in the period, one the week before
            joined = start + timedelta(hours=index + 1) if index < 17 else start - timedelta(days=1)
            session.add(Membership(community_id=1, member_id=member.id, joined_at=joined))
        items = [
            Item(
                community_id=1,
                kind="tool",
                title=f"Tool {n}",
                author_id=members[0].id,
                added_by_id=members[0].id,
                created_at=start + timedelta(hours=n + 1) if n < 12 else start - timedelta(days=30),
                updated_at=start,
            )
            for n in range(13)
        ]
        session.add_all(items)
        await session.flush()
        old, new = items[12], items[0]
        for member in members[:5]:  # five votes for the old item, all before the period
            session.add(Upvote(item_id=old.id, member_id=member.id, at=start - timedelta(days=2)))
        for member in members[:2]:  # two for a new one, in it
            session.add(Upvote(item_id=new.id, member_id=member.id, at=start + timedelta(days=1)))
        session.add(Upvote(item_id=old.id, member_id=members[6].id, at=start + timedelta(days=2)))
    plugin = bot.services.registry.plugins["digest"]
    async with bot.services.db.session() as session:
        digest = await plugin.build(session, 1, start, end)
    sections = {section.title: section.lines for section in digest.sections}
    assert sections["New members (17)"][:2] == ("n0", "n1") and len(sections["New members (17)"]) == 16
    assert sections["New members (17)"][-1] == "… and 2 more"
    assert sections["New in the repertoire (12)"][0] == "#1 [tool] Tool 0 — n0"
    assert sections["New in the repertoire (12)"][10:] == ("… and 2 more",)
    assert sections["Most upvoted"] == ("#1 Tool 0 · 2▲", "#13 Tool 12 · 1▲")  # the period's votes only


async def test_stats_figures_match_hand_counted_ones(console_bot_factory, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, plugins=ROOMS)
    now = clock.now()
    async with bot.services.db.session() as session:
        members = [
            MemberRow(
                platform="console", platform_id=f"m{i}", display_name=f"m{i}", first_seen=now, last_seen=now
            )
            for i in range(6)
        ]
        session.add_all(members)
        await session.flush()
        levels = ["core", "active", "occasional", "peripheral", "peripheral", "transactional"]
        joined = [100, 100, 60, 45, 40, 200]  # days ago: m2, m3, m4 joined 30–90 days ago; m2 converted
        for member, level, days in zip(members, levels, joined, strict=True):
            session.add(
                Membership(
                    community_id=1, member_id=member.id, joined_at=now - timedelta(days=days), level=level
                )
            )
        rows = [("message", 0, 2), ("message", 1, 5), ("repertoire_item", 1, 3), ("attendance", 2, 10)]
        rows += [("message", 3, 40), ("repertoire_item", 3, 45)]  # the previous period
        await session.execute(
            insert(ActivityEvent.__table__),
            [
                {
                    "member_id": members[m].id,
                    "community_id": 1,
                    "kind": kind,
                    "platform": "console",
                    "room_id": "console",
                    "detail": "",
                    "at": now - timedelta(days=days),
                }
                for kind, m, days in rows
            ],
        )
    shown = [line.split("> ", 1)[-1].strip() for line in (await bot.say("!stats"))[1:]]
    assert shown == [
        "The community (30 days ago in brackets):",
        "core: 1 (= before)",
        "active: 1 (= before)",
        "occasional: 1 (= before)",
        "peripheral: 2 (= before)",
        "transactional: 1 (= before)",
        "Active in the last 30 days: 3 (↑ 200% from 1)",
        "Newcomer conversion: 33% of the 3 who joined 30–90 days ago are occasional or more (was 100%)",
        "Contributions in 30 days: attendance 1 (↑ from 0), repertoire item 1 (= before)",
    ]


async def test_the_last_messages_before_the_period_ends_count_in_it(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    """The journal writes activity every half second; the scheduled digest has it write what it holds
    before counting, or messages of the period's last moments would count in no period at all. (Without
    the roles plugin, whose nightly run, due first, would write them; with profiles, whose new members
    make the period worth a digest: activity alone is a quiet period.)"""
    bot = await console_bot_factory([Profiles, DigestPlugin], plugins=ROOMS)
    await bot.hold_journal()
    await bot.say("ana> hello")  # (say writes the journal: ana is known)
    clock.set(MONDAY - timedelta(seconds=1))
    await bot.chat("ana> one more thing")
    await bot.chat("ana> and another")
    clock.set(MONDAY)
    assert await bot.services.scheduler.run_due() >= 1
    posted = [line.strip() for line in bot.new_lines()]
    assert "• Messages: 3 (↑ from 0)" in posted, "\n".join(posted)


async def test_a_digest_posted_early_compares_its_days_with_as_many_days_before(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    """`digest now` on the Tuesday posts the week so far: a day and a bit of messages, compared with the
    day and a bit before the period, not with the whole week before (which would always read as a fall)."""
    bot = await console_bot_factory([Profiles, DigestPlugin], plugins=ROOMS)
    for day in range(7):  # one message a day in the week before
        clock.set(MONDAY - timedelta(days=7 - day, hours=-1))
        await bot.say(f"ana> day {day}")
    clock.set(MONDAY)
    assert await bot.services.scheduler.run_due() >= 1
    assert "• Messages: 7 (↑ from 0)" in [line.strip() for line in bot.new_lines()]
    clock.set(MONDAY + timedelta(hours=1))
    await bot.say("ana> a new week")
    await bot.say("bo> hello, I am new")  # a new member: the period is worth a digest
    clock.set(MONDAY + timedelta(days=1, hours=1))
    await bot.say("ana> and a second day")
    clock.set(MONDAY + timedelta(days=1, hours=2))
    posted = [line.strip() for line in await bot.say("!digest now")]
    assert "• Messages: 3 (↑ 200% from 1)" in posted, "\n".join(posted)  # 8 Mar 10:00 was the one before
    assert await posts(bot) == 2


async def test_what_happens_after_digest_now_is_in_the_next_digest_not_in_none(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    """`digest now` on a Wednesday takes the period that ends on Monday: it shows the polls open and the
    meetings coming from Wednesday, and the next digest starts where it stopped — a member who joins or a
    poll that closes before Monday is in it (both were in no digest at all)."""
    bot = await console_bot_factory(PLUGINS, plugins=ROOMS)
    clock.set(utc(2026, 3, 4, 12))  # a Wednesday
    await bot.say('!poll create "Venue?" Delft Utrecht --closes 1d')
    await bot.say("ana> !poll vote 1 1")
    await bot.say('!meeting schedule "Friday call" 2026-03-06 15:00')
    bot.new_lines()
    early = "\n".join(await bot.say("!digest now"))
    # the first digest: one period of the schedule (Monday to Monday), not a week back from Wednesday
    assert "Posted 📰 Our Community of Practice — 2–9 Mar 2026 to console" in early
    assert "Open polls" in early and "#1 Venue? (closes Thu 5 Mar 12:00 UTC)" in early
    assert "Coming up this week" in early and "Fri 6 Mar 15:00 UTC — Friday call" in early
    clock.set(utc(2026, 3, 5, 13))
    await bot.services.scheduler.run_due()  # the poll closes
    clock.set(utc(2026, 3, 6, 10))
    await bot.say(":join zed")
    bot.new_lines()
    clock.set(MONDAY)
    await bot.services.scheduler.run_due()
    assert await posts(bot) == 1  # this period's was posted on Wednesday
    clock.set(MONDAY + timedelta(days=7))
    await bot.services.scheduler.run_due()
    posted = "\n".join(bot.new_lines())
    assert "📰 Our Community of Practice — 4–16 Mar 2026" in posted  # from Wednesday's digest on
    assert "New members (1)" in posted and "zed" in posted
    assert "Poll results" in posted and "#1 Venue? — Delft (100%, 1 voter)" in posted


@pytest.mark.parametrize(
    ("start", "end", "shown"),
    [
        (utc(2026, 11, 1), utc(2026, 12, 1), "1–30 Nov 2026"),  # a monthly digest at midnight: November
        (utc(2026, 11, 23, 9), utc(2026, 11, 30, 9), "23–30 Nov 2026"),  # weekly at 9: both ends' days
        (utc(2026, 11, 28), utc(2026, 12, 5), "28 Nov – 4 Dec 2026"),
        (utc(2026, 12, 25), utc(2027, 1, 1), "25–31 Dec 2026"),  # the year's last week, ending at midnight
        (utc(2026, 12, 28), utc(2027, 1, 4), "28 Dec 2026 – 3 Jan 2027"),
        (utc(2026, 3, 3), utc(2026, 3, 3, 15), "3 Mar 2026"),  # a preview on the day the period began
        (utc(2026, 3, 2), utc(2026, 3, 3), "2 Mar 2026"),  # a daily digest at midnight: one day
    ],
)
def test_a_periods_title_ends_with_its_last_day_not_the_exclusive_end(
    start: datetime, end: datetime, shown: str
) -> None:
    assert period(start, end, "UTC") == shown


def test_a_period_ending_at_midnight_across_the_clock_change_ends_the_day_before() -> None:
    """The end read in the community's zone: midnight of 30 March in Amsterdam (after the spring change)."""
    assert period(utc(2026, 3, 22, 23), utc(2026, 3, 29, 22), "Europe/Amsterdam") == "23–29 Mar 2026"


async def test_a_person_with_linked_accounts_counts_once_in_the_figures(
    console_bot_factory, clock: FakeClock, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """ana on two platforms (`profile link`) is one member with one level: `stats`, the dashboard and the
    digest counted each of her accounts. Of a person's accounts in the community one counts: the anchor,
    or (cy's anchor has left) the first of the others."""
    from plugins.dashboard import figures as dashboard_figures

    bot = await console_bot_factory(PLUGINS, plugins=ROOMS, database_url=database_url)
    now = clock.now()
    async with bot.services.db.session() as session:
        names = ["ana", "bo", "cy", "ana.matrix", "cy.matrix", "cy.phone"]
        members = [
            MemberRow(platform="console", platform_id=name, display_name=name, first_seen=now, last_seen=now)
            for name in names
        ]
        session.add_all(members)
        await session.flush()
        ana, bo, cy, ana_matrix, cy_matrix, cy_phone = members
        ana_matrix.person_id, cy_matrix.person_id, cy_phone.person_id = ana.id, cy.id, cy.id
        joined = {"ana": 100, "bo": 50, "cy": 200, "ana.matrix": 40, "cy.matrix": 60, "cy.phone": 45}
        levels = {"ana": "core", "ana.matrix": "core", "bo": "peripheral"}
        for member in members:
            session.add(
                Membership(
                    community_id=1,
                    member_id=member.id,
                    joined_at=now - timedelta(days=joined[member.platform_id]),
                    level=levels.get(member.platform_id, "occasional"),
                    left_at=now - timedelta(days=10) if member is cy else None,
                )
            )
        session.add(  # ana moved up 10 days ago: the history names the account the roles plugin chose
            LevelChange(
                community_id=1,
                member_id=ana_matrix.id,
                old_level="active",
                new_level="core",
                rule="core",
                at=now - timedelta(days=10),
            )
        )
        spoke = [(ana, 2), (ana_matrix, 1), (bo, 3), (cy_matrix, 4), (cy_phone, 5)]
        await session.execute(
            insert(ActivityEvent.__table__),
            [
                {
                    "member_id": member.id,
                    "community_id": 1,
                    "kind": "message",
                    "platform": "console",
                    "room_id": "console",
                    "detail": "",
                    "at": now - timedelta(days=days),
                }
                for member, days in spoke
            ],
        )
    async with bot.services.db.session() as session:
        found, conversion = await dashboard_figures.bulb(session, 1, now)
        glance = await dashboard_figures.glance(session, [1], now)
    assert (found["core"], found["occasional"], found["peripheral"]) == (1, 1, 1)
    assert (conversion.joined, conversion.converted) == (2, 1)
    assert (glance[1].members, glance[1].active_30) == (3, 3)
    shown = [line.split("> ", 1)[-1].strip() for line in (await bot.say("!stats"))[1:]]
    assert shown[1:7] == [
        "core: 1 (↑ from 0)",  # ana, from either account
        "active: 0 (↓ 100% from 1)",
        "occasional: 1 (= before)",  # cy: now from her Matrix account, 30 days ago from her first one
        "peripheral: 1 (= before)",
        "transactional: 0 (= before)",
        "Active in the last 30 days: 3 (↑ from 0)",  # ana, bo, cy
    ]
    assert shown[7].startswith("Newcomer conversion: 50% of the 2 who joined 30–90 days ago")  # bo, cy
