"""The community dashboard on the web: the figures it shows equal hand-computed ones (the bulb's rings, the
weekly bars, newcomer conversion, moves between levels) on SQLite and PostgreSQL; every plugin's panel; the
repertoire browser ranked as in chat; private communities behind a signed, expiring link; the public list;
member-written text escaped everywhere, names only of members who show theirs; the security headers; and
the ``dashboard`` command's direct message."""

from __future__ import annotations

import html
import re
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert, text

from bot import store
from bot.clock import FakeClock
from bot.plugin import Plugin, route
from bot.tables import ActivityEvent, MemberRow, Membership
from bot.web.app import create_app
from bot.web.links import NO_WEB, sign, signing_key
from bot.web.pages import SECURITY_HEADERS
from plugins.dashboard import drawing, figures
from plugins.dashboard.plugin import Dashboard
from plugins.digest.models import DigestPost
from plugins.digest.plugin import DigestPlugin
from plugins.meetings.models import Meeting, Rsvp
from plugins.meetings.plugin import Meetings
from plugins.polls.models import Poll, PollVote
from plugins.polls.plugin import Polls
from plugins.repertoire.models import Item, Upvote
from plugins.repertoire.plugin import Repertoire
from plugins.repertoire.search import index_item, search_items
from plugins.roles.models import LevelChange

PLUGINS = [Meetings, Polls, Repertoire, DigestPlugin, Dashboard]
COMMUNITIES: list[dict[str, Any]] = [
    {"slug": "cop", "name": "Water Utilities CoP", "domain": "leakage", "timezone": "Europe/Amsterdam"},
    {"slug": "open", "name": "Open Wastewater CoP", "domain": "sludge", "public": True},
]
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the fixtures' clock
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"onmouseover=alert(2) x'
TEMPLATE = "{{7*7}}"
HIDDEN = "Hidden Olga"  # a member who does not show their name

# members of "cop": name, level, days since they joined, shows their name on the web
MEMBERS: list[tuple[str, str, float, bool]] = [
    ("Cora", "core", 400, True),
    ("Carl", "core", 300, False),
    ("Ada", "active", 200, False),
    ("Abe", "active", 150, False),
    (ATTRIBUTE, "active", 80, True),  # joined 30–90 days ago, converted
    (SCRIPT, "occasional", 40, True),  # joined 30–90 days ago, converted
    (HIDDEN, "occasional", 300, False),
    ("Otto", "occasional", 120, False),
    ("Oona", "occasional", 100, False),
    (f"{TEMPLATE} Pia", "peripheral", 60, True),  # joined 30–90 days ago, not converted
    ("Pablo", "peripheral", 10, False),  # joined too recently for the cohort
    ("Petra", "peripheral", 95, False),  # joined too long ago for the cohort
    ("Piet", "peripheral", 300, False),
    ("Paz", "peripheral", 250, False),
    ("Tom", "transactional", 500, False),
    ("Tess", "transactional", 365, False),
]
LEFT = ("Lea", "occasional", 50, True)  # joined 30–90 days ago but left: counted nowhere
RINGS = {"core": 2, "active": 3, "occasional": 4, "peripheral": 5, "transactional": 2}
CONVERSION = (2, 3, "67%")  # converted, joined 30–90 days ago, shown
WEEKLY = [3, 0, 5, 1, 2, 8, 0, 4, 6, 7, 2, 9]  # seeded in the middle of each week, oldest first
# plus a row at the very start of the oldest week and of week 5, one at this instant (all counted),
# one a second before the twelve weeks, and rows of the other community (not counted)
BARS = [4, 0, 5, 1, 2, 9, 0, 4, 6, 7, 2, 10]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@dataclass
class Seeded:
    ids: dict[str, int] = field(default_factory=dict)
    community: int = 0
    other: int = 0
    items: dict[str, int] = field(default_factory=dict)


async def seed(bot) -> Seeded:  # type: ignore[no-untyped-def]
    """The community's members at every level, twelve weeks of activity, level changes, a meeting with
    answers, polls, a posted digest and repertoire items — member-written text hostile throughout."""
    registry = bot.services.registry
    seeded = Seeded(community=registry.community_ids["cop"], other=registry.community_ids["open"])
    async with bot.services.db.session() as session:
        for index, (name, level, days, public) in enumerate([*MEMBERS, LEFT, ("Olaf", "", 0, False)]):
            row = MemberRow(
                platform="console",
                platform_id=f"m{index}",
                display_name=name,
                public=public,
                first_seen=NOW - timedelta(days=days),
                last_seen=NOW,
            )
            session.add(row)
            await session.flush()
            assert row.id is not None
            seeded.ids[name] = row.id
            if level:
                session.add(
                    Membership(
                        community_id=seeded.community,
                        member_id=row.id,
                        joined_at=NOW - timedelta(days=days),
                        left_at=NOW - timedelta(days=3) if (name, level, days, public) == LEFT else None,
                        level=level,
                    )
                )
        olaf = seeded.ids["Olaf"]  # a member of the public community only
        session.add(Membership(community_id=seeded.other, member_id=olaf, joined_at=NOW - timedelta(days=9)))
        session.add(
            Membership(
                community_id=seeded.other, member_id=seeded.ids["Tom"], joined_at=NOW - timedelta(days=9)
            )
        )
        # activity: twelve 7-day weeks ending now
        starts = [NOW - timedelta(days=7 * (12 - week)) for week in range(12)]
        who = [seeded.ids[name] for name, *_ in MEMBERS]
        rows: list[dict[str, Any]] = []

        def act(member: int, at: datetime, community: int | None = None) -> None:
            rows.append(
                {
                    "community_id": community or seeded.community,
                    "member_id": member,
                    "kind": "message",
                    "platform": "console",
                    "room_id": "console",
                    "detail": "",
                    "at": at,
                }
            )

        for week, count in enumerate(WEEKLY):
            for n in range(count):
                act(who[n % len(who)], starts[week] + timedelta(days=3, hours=n))
        act(who[0], starts[0])
        act(who[1], starts[5])
        act(who[2], NOW)
        act(who[3], starts[0] - timedelta(seconds=1))
        act(olaf, NOW - timedelta(days=2), seeded.other)
        act(olaf, NOW - timedelta(days=3), seeded.other)
        act(seeded.ids["Tom"], NOW - timedelta(days=4), seeded.other)
        act(olaf, NOW - timedelta(days=40), seeded.other)  # before the 30 days of the glance
        await session.execute(insert(ActivityEvent.__table__), rows)
        # level changes: three kinds of move in the last 30 days, one older
        moves = [
            (SCRIPT, "peripheral", "occasional", 5),
            (HIDDEN, "peripheral", "occasional", 12),
            (ATTRIBUTE, "occasional", "active", 20),
            ("Abe", "active", "occasional", 25),
            (ATTRIBUTE, "peripheral", "occasional", 29),
            ("Otto", "peripheral", "occasional", 40),  # before the 30 days
        ]
        for name, old, new, days in moves:
            session.add(
                LevelChange(
                    community_id=seeded.community,
                    member_id=seeded.ids[name],
                    old_level=old,
                    new_level=new,
                    rule="test",
                    at=NOW - timedelta(days=days),
                )
            )
        # a meeting next week with answers, a cancelled one, one beyond 30 days
        creator = seeded.ids["Cora"]
        for title, start, cancelled in (
            (f"{SCRIPT} call", utc(2026, 3, 10, 14), None),
            ("Cancelled call", utc(2026, 3, 11, 14), NOW),
            ("Far away", utc(2026, 5, 1, 14), None),
        ):
            meeting = Meeting(
                community_id=seeded.community,
                platform="console",
                room_id="console",
                title=title,
                place=ATTRIBUTE,
                tz="Europe/Amsterdam",
                starts_at=start,
                creator_id=creator,
                created_at=NOW,
                updated_at=NOW,
                cancelled_at=cancelled,
            )
            session.add(meeting)
            await session.flush()
            if title.endswith("call") and cancelled is None:
                for name, answer in (("Ada", "yes"), ("Abe", "yes"), ("Otto", "maybe"), ("Tom", "no")):
                    session.add(
                        Rsvp(
                            meeting_id=meeting.id or 0,
                            occurrence="*",
                            member_id=seeded.ids[name],
                            answer=answer,
                            at=NOW,
                        )
                    )
        # polls: one open with two votes, one closed, one whose deadline passed
        open_poll = Poll(
            community_id=seeded.community,
            platform="console",
            room_id="console",
            question=f"{TEMPLATE} or {ATTRIBUTE}?",
            options='["A", "B"]',
            creator_id=creator,
            created_at=NOW,
            closes_at=utc(2026, 3, 5, 17),
        )
        session.add(open_poll)
        session.add_all(
            [
                Poll(
                    community_id=seeded.community,
                    platform="console",
                    room_id="console",
                    question="Closed already?",
                    options='["A", "B"]',
                    creator_id=creator,
                    created_at=NOW - timedelta(days=9),
                    closed_at=NOW - timedelta(days=1),
                ),
                Poll(
                    community_id=seeded.community,
                    platform="console",
                    room_id="console",
                    question="Deadline passed?",
                    options='["A", "B"]',
                    creator_id=creator,
                    created_at=NOW - timedelta(days=9),
                    closes_at=NOW - timedelta(hours=1),
                ),
            ]
        )
        await session.flush()
        for name in ("Ada", "Abe"):
            session.add(PollVote(poll_id=open_poll.id or 0, member_id=seeded.ids[name], choices="0", at=NOW))
        for end, title in ((NOW - timedelta(days=7), "📰 Older digest"), (NOW, f"📰 {SCRIPT} digest")):
            session.add(
                DigestPost(
                    community_id=seeded.community,
                    period_start=end - timedelta(days=7),
                    period_end=end,
                    posted_at=end,
                    title=title,
                    text=f"{title}\n\nNew members (1)\n• {SCRIPT} (Research)\n\nActivity\n• Messages: 3",
                    html="<p>escaped</p>",
                )
            )
        # the repertoire: oldest first
        for key, kind, title, body, tags, author, days in (
            (
                "leak",
                "tool",
                f"{SCRIPT} Leak map",
                "A map of every leak we found.",
                f"gis,{TEMPLATE}",
                "Cora",
                9,
            ),
            ("story", "story", "Night flow story", "How night flow showed the leaks.", "leakage", HIDDEN, 5),
            (
                "meter",
                "practice",
                "Smart meter rollout",
                "Meters in every home, read hourly.",
                "metering",
                "Ada",
                3,
            ),
            ("bleak", "story", "A bleak winter", f"{ATTRIBUTE} pipes froze.", "winter", "Cora", 1),
        ):
            item = Item(
                community_id=seeded.community,
                kind=kind,
                title=title,
                body=body,
                url="javascript:alert(3)" if key == "bleak" else "https://example.org/map",
                tags=tags,
                author_id=seeded.ids[author],
                added_by_id=seeded.ids[author],
                created_at=NOW - timedelta(days=days),
                updated_at=NOW - timedelta(days=days),
            )
            session.add(item)
            await session.flush()
            await index_item(session, item)
            seeded.items[key] = item.id or 0
        for name in ("Ada", "Abe", "Otto"):
            session.add(Upvote(item_id=seeded.items["leak"], member_id=seeded.ids[name], at=NOW))
        session.add(Upvote(item_id=seeded.items["story"], member_id=seeded.ids["Ada"], at=NOW))
    return seeded


async def dashboard_link(bot, *, hours: int = 72, purpose: str = "dashboard:cop") -> str:  # type: ignore[no-untyped-def]
    key = await signing_key(bot.services.db, bot.services.settings.web.secret, NOW)
    return sign(key, purpose, NOW + timedelta(hours=hours))


def texts(page: str, pattern: str) -> list[str]:
    return [html.unescape(found) for found in re.findall(pattern, page)]


def assert_escaped(page: str) -> None:
    """Nothing members wrote became markup or ran as a template."""
    assert "<script" not in page.lower()
    assert ATTRIBUTE not in page and "onmouseover=alert" not in page.replace("&#34;onmouseover", "")
    assert " 49 Pia" not in page


def assert_secure(response) -> None:  # type: ignore[no-untyped-def]
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name


@pytest.fixture
async def bot(console_bot_factory, database_url):  # type: ignore[no-untyped-def]
    return await console_bot_factory(PLUGINS, communities=COMMUNITIES, database_url=database_url)


async def test_the_figures_shown_are_the_hand_computed_ones(bot) -> None:  # type: ignore[no-untyped-def]
    seeded = await seed(bot)
    key = await dashboard_link(bot)
    async with TestClient(TestServer(create_app(bot.services))) as client:
        response = await client.get(f"/c/cop?key={key}")
        page = await response.text()
    assert response.status == 200, page
    assert_secure(response)
    # the bulb: each ring's count as text in the SVG, in the table beside it, in the rings' titles
    assert texts(page, r'<tspan class="ring-count">([^<]*)</tspan>') == [str(n) for n in RINGS.values()]
    assert re.findall(
        r'<tr data-level="(\w+)"><th scope="row">\w+</th><td class="count">(\d+)</td>', page
    ) == [(level, str(count)) for level, count in RINGS.items()]
    assert f'<span id="members-total">{sum(RINGS.values())}</span>' in page
    assert "<title>core: 2 members</title>" in page and "<title>transactional: 2 members</title>" in page
    radii = [
        float(r)
        for r in re.findall(
            r'<circle class="ring" data-level="\w+" cx="[\d.]+" cy="[\d.]+" r="([\d.]+)"', page
        )
    ]
    assert radii == sorted(radii, reverse=True) and radii[0] == drawing.RADIUS  # outermost drawn first
    # the weekly bars: counts as text and as titles, oldest first
    assert texts(page, r'<text class="bar-count"[^>]*>([^<]*)</text>') == [str(n) for n in BARS]
    titles = texts(page, r"<g class=\"bar\">\s*<title>([^<]*)</title>")
    assert (
        len(titles) == 12 and titles[0] == "8 Dec – 15 Dec: 4 actions" and titles[1].endswith(": 0 actions")
    )
    assert titles[-1] == "23 Feb – 2 Mar: 10 actions"
    assert f'<span id="activity-total">{sum(BARS)}</span>' in page
    # newcomer conversion
    converted, joined, shown = CONVERSION
    assert f'<p class="figure" id="conversion">{shown}</p>' in page
    assert f'<span id="converted">{converted}</span>' in page and f'<span id="joined">{joined}</span>' in page
    # moves in the last 30 days: counts by from → to, names only of members who show theirs
    rows = re.findall(r'<tr data-move="([\w-]+)">(.*?)</tr>', page, re.S)
    moves = {
        move: (texts(row, r'class="count">(\d+)<')[0], texts(row, r'class="name">([^<]*)<'))
        for move, row in rows
    }
    assert list(moves) == ["occasional-active", "peripheral-occasional", "active-occasional"]  # inward first
    assert moves["peripheral-occasional"] == ("3", [ATTRIBUTE, SCRIPT])  # in the order they moved
    assert moves["occasional-active"] == ("1", [ATTRIBUTE])
    assert moves["active-occasional"] == ("1", [])
    hidden = {move: "1 not named" in row for move, row in rows}
    assert hidden == {"occasional-active": False, "peripheral-occasional": True, "active-occasional": True}
    readable = re.sub(r"key=[^\"&\s]+", "key=…", page)  # a signed key is random letters: "Paz" can be in one
    for name, _, _, public in MEMBERS:
        if not public:
            assert name not in readable, name  # hidden names appear nowhere
    assert_escaped(page)
    assert html.escape(SCRIPT, quote=True) in page and "&#34;onmouseover=alert(2) x" in page
    # the same figures straight from the queries
    async with bot.services.db.session() as session:
        assert await figures.levels(session, seeded.community) == RINGS
        weeks = await figures.weekly(session, seeded.community, NOW)
        assert [week.count for week in weeks] == BARS
        assert (weeks[0].start, weeks[-1].end) == (NOW - timedelta(days=84), NOW)
        conversion = await figures.conversion(session, seeded.community, NOW)
        assert (conversion.converted, conversion.joined, conversion.percent) == CONVERSION


async def test_every_plugin_has_its_panel_and_feeds_bring_their_own_keys(bot) -> None:  # type: ignore[no-untyped-def]
    await seed(bot)
    key = await dashboard_link(bot)
    async with TestClient(TestServer(create_app(bot.services))) as client:
        page = await (await client.get(f"/c/cop?key={key}")).text()
        panels = dict(
            (html.unescape(title), body)
            for title, body in re.findall(
                r'<section class="card panel"[^>]*>\s*<h2[^>]*>([^<]*)</h2>(.*?)</section>', page, re.S
            )
        )
        assert list(panels) == ["Meetings, the next 30 days", "Open polls", "The latest digest"]
        meetings = texts(panels["Meetings, the next 30 days"], r"<li>([^<]*)</li>")
        assert meetings == [
            f"Tue 10 Mar 15:00 CET — {SCRIPT} call ({ATTRIBUTE}) · 2 coming, 1 maybe, 1 not coming"
        ]
        polls = texts(panels["Open polls"], r"<li>([^<]*)</li>")
        assert polls == [f"#1 {TEMPLATE} or {ATTRIBUTE}? — 2 options, 2 voters, closes Thu 5 Mar 18:00 CET"]
        digest = texts(panels["The latest digest"], r"<li>([^<]*)</li>")
        assert digest[0] == f"📰 {SCRIPT} digest (posted Mon 2 Mar 10:00 CET)"
        assert digest[1:] == ["New members (1)", f"• {SCRIPT} (Research)", "Activity", "• Messages: 3"]
        assert_escaped(page)
        # the feeds are linked with their own keys, and those work; the dashboard's key would not
        ics = re.search(r'href="(/c/cop/meetings\.ics\?key=[^"]+)"', page)
        atom = re.search(r'href="(/c/cop/digest\.atom\?key=[^"]+)"', page)
        assert ics is not None and atom is not None
        assert key not in ics[1] and key not in atom[1]
        assert (await client.get(html.unescape(ics[1]))).status == 200
        assert (await client.get(html.unescape(atom[1]))).status == 200
        assert (await client.get(f"/c/cop/meetings.ics?key={key}")).status == 403
        # every other link on the page carries the dashboard's key
        internal = [html.unescape(h) for h in re.findall(r'href="(/c/[^"]*)"', page)]
        for address in internal:
            if ".ics" not in address and ".atom" not in address:
                assert address.startswith("/c/cop") and f"key={key}" in address, address
        for address in internal:
            assert (await client.get(address)).status == 200, address


async def test_private_pages_need_a_valid_link_that_expires(bot, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    await seed(bot)
    key = await dashboard_link(bot)
    wrong_purpose = await dashboard_link(bot, purpose="ics:cop")
    async with TestClient(TestServer(create_app(bot.services))) as client:
        for address in ("/c/cop", "/c/cop/repertoire", "/c/cop?key=0.forged", f"/c/cop?key={wrong_purpose}",
                        f"/c/cop/repertoire?key={key[:-2]}xx"):  # fmt: skip
            response = await client.get(address)
            body = await response.text()
            assert response.status == 403, address
            assert_secure(response)
            assert "Water Utilities CoP" not in body and "leakage" not in body and "Cora" not in body
        assert (await client.get(f"/c/cop?key={key}")).status == 200
        assert (await client.get(f"/c/cop/repertoire?key={key}")).status == 200
        assert (await client.get(f"/c/nowhere?key={key}")).status == 404
        clock.advance(timedelta(hours=71, minutes=59))
        page = await (await client.get(f"/c/cop?key={key}")).text()
        assert "this link works until Thu 5 Mar 10:00 CET" in page
        clock.advance(timedelta(minutes=1))  # 72 hours: expired
        response = await client.get(f"/c/cop?key={key}")
        refused = await response.text()
        assert response.status == 403 and "Water Utilities CoP" not in refused
        assert refused.endswith("a moderator of the community gets a new one with !dashboard.")
        assert (await client.get(f"/c/cop/repertoire?key={key}")).status == 403
        assert (await client.get("/c/open")).status == 200  # a public community needs no link


async def test_a_key_with_letters_beyond_ascii_is_refused_not_a_server_error(bot) -> None:  # type: ignore[no-untyped-def]
    """`?key=0.é` reached hmac.compare_digest, which raises TypeError for non-ASCII strings: a 500 on every
    private page, feed and export."""
    async with TestClient(TestServer(create_app(bot.services))) as client:
        for page in ("", "/repertoire", "/meetings.ics", "/digest.atom", "/repertoire.md"):
            for key in ("0.%C3%A9", "4102444800.%C3%A9t%C3%A9", "%C2%B2.x"):
                response = await client.get(f"/c/cop{page}?key={key}")
                assert response.status == 403, (page, key)
                assert_secure(response)


class Failing(Plugin):
    """A plugin whose page fails."""

    name = "failing"

    @route("/c/{slug}/failing")
    async def page(self, request):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")


async def test_a_page_that_fails_is_a_500_with_the_security_headers(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Failing, *PLUGINS], communities=COMMUNITIES)
    async with TestClient(TestServer(create_app(bot.services))) as client:
        response = await client.get("/c/open/failing")
        body = await response.text()
    assert response.status == 500
    assert_secure(response)
    assert "a bug" not in body and "Traceback" not in body


async def test_the_list_shows_public_communities_only(bot) -> None:  # type: ignore[no-untyped-def]
    await seed(bot)
    async with TestClient(TestServer(create_app(bot.services))) as client:
        response = await client.get("/")
        page = await response.text()
        public = await client.get("/c/open")
        public_page = await public.text()
    assert response.status == 200
    assert_secure(response)
    assert "Open Wastewater CoP" in page and 'href="/c/open"' in page
    assert "Water Utilities CoP" not in page and "/c/cop" not in page
    card = re.search(r'<section class="card community".*?</section>', page, re.S)
    assert card is not None
    assert re.findall(r'<td class="(\w+)">(\d+)</td>', card[0]) == [
        ("members", "2"),
        ("active", "2"),
        ("actions", "3"),
    ]
    assert public.status == 200 and "key=" not in public_page  # nothing to carry
    assert 'href="/c/open/meetings.ics"' in public_page and 'href="/c/open/digest.atom"' in public_page


async def test_the_repertoire_page_searches_as_chat_does(bot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seeded = await seed(bot)
    key = await dashboard_link(bot)
    items = seeded.items

    def shown(page: str) -> list[int]:
        return [int(found) for found in re.findall(r'<li class="item" data-id="(\d+)"', page)]

    async with TestClient(TestServer(create_app(bot.services))) as client:

        async def get(query: str) -> str:
            response = await client.get(f"/c/cop/repertoire?{query}&key={key}")
            assert response.status == 200
            assert_secure(response)
            return await response.text()

        newest = await get("")
        assert shown(newest) == [items["bleak"], items["meter"], items["story"], items["leak"]]
        assert "4 items, newest first" in newest
        async with bot.services.db.session() as session:
            hits = await search_items(session, "leaks", community_ids=[seeded.community], limit=50)
        ranked = await get("q=leaks")
        assert shown(ranked) == [hit.item_id for hit in hits] and len(hits) == 2  # not "bleak"
        assert "<mark>leak</mark>" in ranked or "<mark>leaks</mark>" in ranked
        assert shown(await get("q=leaks&kind=story")) == [items["story"]]
        assert shown(await get("kind=practice")) == [items["meter"]]
        assert shown(await get("tag=GIS")) == [items["leak"]]
        assert shown(await get(f"tag=%23{TEMPLATE}")) == [items["leak"]]
        assert shown(await get("q=leaks&tag=leakage")) == [items["story"]]
        nothing = await get("q=desalination")
        assert shown(nothing) == [] and "Nothing found." in nothing
        mistyped = await get("q=leaks&tag=leakag")  # the tag found nothing: tags close to it, as in chat
        assert "Tags close to that tag:" in mistyped and ">#leakage</a>" in mistyped
        with monkeypatch.context() as patched:  # a page full: not "50 items match" when more may
            patched.setattr("plugins.repertoire.publishing.PAGE_ITEMS", 1)
            assert "The best 1 of the items that match “leaks”" in await get("q=leaks")
        for common in ("the", "don%27t", "what%20is"):  # as in chat: said, not "nothing matches"
            page = await get(f"q={common}")
            assert "has only words too common to search for" in page, common
            assert "Nothing found." not in page and 'id="summary"' not in page
        # upvotes, kinds, tags; authors named only if they show their name; hostile text escaped
        entry = re.search(rf'<li class="item" data-id="{items["leak"]}".*?</li>', newest, re.S)
        assert entry is not None
        assert '<span class="upvotes">3▲</span>' in entry[0] and '<span class="kind">tool</span>' in entry[0]
        assert texts(entry[0], r'<a class="tag" href="[^"]*">([^<]*)</a>') == ["#gis", f"#{TEMPLATE}"]
        assert '<span class="author">Cora</span>' in entry[0]
        story = re.search(rf'<li class="item" data-id="{items["story"]}".*?</li>', newest, re.S)
        assert story is not None and '<span class="author">a member</span>' in story[0]
        assert HIDDEN not in newest and "Ada" not in newest
        assert "javascript:" not in newest  # only http(s) links become links
        assert_escaped(newest)
        assert html.escape(SCRIPT, quote=True) in newest
        # every link and the search form carry the key
        assert f'<input type="hidden" name="key" value="{key}">' in newest
        for address in re.findall(r'href="(/c/[^"]*)"', newest):
            assert f"key={key}" in html.unescape(address)


async def test_the_dashboard_command_sends_a_link_by_direct_message(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(
        PLUGINS, communities=COMMUNITIES, plugins={"dashboard": {"link_hours": 48}}
    )
    said = await bot.say("!dashboard")
    assert said[1].startswith("[2] copbot → you (direct)> The dashboard of Water Utilities CoP: ")
    link = said[1].split(": ", 1)[1]
    assert link.startswith("http://127.0.0.1:8080/c/cop?key=")
    assert said[2] == (
        "    The link works until Wed 4 Mar 10:00 CET. Whoever has it can see the dashboard (names only of "
        "members who chose to show theirs); ask again with !dashboard for a new one."
    )
    assert (
        said[3]
        == "[3] copbot> I sent you the link to the dashboard in a direct message (it works for 2 days)."
    )
    assert "key=" not in said[3]
    refused = await bot.say("ana> !dashboard")
    assert refused[1] == "[5] copbot> !dashboard is for moderators only; nothing was changed."
    assert len(refused) == 2  # and no direct message
    async with TestClient(TestServer(create_app(bot.services))) as client:
        path = link.removeprefix("http://127.0.0.1:8080")
        assert (await client.get(path)).status == 200
        clock.advance(timedelta(hours=48))
        assert (await client.get(path)).status == 403


async def test_no_link_is_shown_when_the_direct_message_cannot_go(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, communities=COMMUNITIES)

    async def closed(member, content):  # type: ignore[no-untyped-def]
        raise RuntimeError("Cannot send messages to this user")

    bot.adapter.send_direct = closed
    said = await bot.say("!dashboard")
    assert len(said) == 2 and "key=" not in said[1]
    assert said[1].startswith("[2] copbot> I could not send you a direct message, so there is no link")


async def test_with_no_web_part_anywhere_no_dead_link_is_handed_out(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """[web] enabled = false and no public_url naming another process's: every link would lead nowhere."""
    bot = await console_bot_factory(PLUGINS, communities=COMMUNITIES, web={"enabled": False})
    for command in ("!dashboard", "!meeting ics", "!digest subscribe", "!repertoire export"):
        said = await bot.say(command)
        assert len(said) == 2 and said[1].split(" copbot> ", 1)[1] == NO_WEB, (command, said)
    async with bot.services.db.session() as session:  # nor a signing secret made for a link not given
        assert await store.get_state(session, "web", "secret") is None


@pytest.mark.parametrize(("host", "address"), [("0.0.0.0", "http://127.0.0.1"), ("::", "http://[::1]")])
async def test_listening_on_every_interface_gives_links_that_open(console_bot_factory, host, address) -> None:  # type: ignore[no-untyped-def]
    """The image listens on 0.0.0.0 (COPBOT_WEB__HOST): with no public_url, a link to 0.0.0.0 or :: opens
    nothing (browsers refuse it); the address of this machine does, and check-config warns to set one."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]  # free now: the bot's own server listens there
    except OSError as error:  # a machine without IPv6
        pytest.skip(f"cannot listen on {host!r}: {error}")
    web = {"host": host, "port": port}
    bot = await console_bot_factory(PLUGINS, communities=list(reversed(COMMUNITIES)), web=web)
    said = await bot.say("!dashboard")
    assert said[1:] == [
        f"[2] copbot> The dashboard of Open Wastewater CoP is public: {address}:{port}/c/open"
    ]
    said = await bot.say("!meeting ics")
    assert said[1:] == [
        "[4] copbot> Add this calendar to your calendar app (it follows every change): "
        f"{address}:{port}/c/open/meetings.ics"
    ]
    async with aiohttp.ClientSession() as client:  # and the link opens, on this machine
        async with client.get(f"{address}:{port}/c/open") as response:
            assert response.status == 200


def test_the_bulb_is_drawn_by_area_with_every_ring_seen() -> None:
    rings = drawing.bulb(figures.LEVELS, {"core": 0, "active": 10, "occasional": 30, "peripheral": 60})
    assert [ring.level for ring in rings] == list(figures.LEVELS)
    assert rings[-1].outer == drawing.RADIUS and rings[0].inner == 0
    assert all(ring.thickness >= drawing.MIN_RING - 1e-9 for ring in rings)  # empty levels still seen
    assert rings[0].thickness == pytest.approx(drawing.MIN_RING)  # nobody at the core
    free = drawing.RADIUS - drawing.MIN_RING * 5
    for ring, share in zip(rings, (0, 0.1, 0.4, 1.0, 1.0), strict=True):  # area ∝ members inward
        assert ring.outer - drawing.MIN_RING * (figures.LEVELS.index(ring.level) + 1) == pytest.approx(
            free * share**0.5
        )
    empty = drawing.bulb(figures.LEVELS, {})
    assert [round(ring.thickness, 6) for ring in empty] == [40.0] * 5  # nobody at all: even rings
    bars = drawing.bars([(NOW - timedelta(days=7), NOW, 0), (NOW, NOW + timedelta(days=7), 5)], "UTC")
    assert bars[0].height == 1.0 and bars[1].y == drawing.BAR_TOP  # the tallest reaches the top


async def test_a_public_community_s_dashboard_needs_no_key(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, communities=list(reversed(COMMUNITIES)))  # the console's: open
    said = await bot.say("!dashboard")
    assert said[1:] == [
        "[2] copbot> The dashboard of Open Wastewater CoP is public: http://127.0.0.1:8080/c/open"
    ]


class Broken(Plugin):
    """A plugin whose panels fail in the database."""

    name = "broken"

    async def panels(self, session, community_id, now, tz):  # type: ignore[no-untyped-def]
        await session.execute(text("SELECT * FROM no_such_table"))
        return ()


async def test_a_failing_panel_leaves_the_others(console_bot_factory, database_url: str) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Broken, *PLUGINS], communities=COMMUNITIES, database_url=database_url)
    await seed(bot)
    async with TestClient(TestServer(create_app(bot.services))) as client:
        response = await client.get("/c/open")
        page = await response.text()
    assert response.status == 200
    assert re.findall(r'<section class="card panel"[^>]*>\s*<h2[^>]*>([^<]*)</h2>', page) == [
        "Meetings, the next 30 days",
        "Open polls",
        "The digest",
    ]


async def test_the_repertoire_page_dates_items_by_the_communitys_day(bot) -> None:  # type: ignore[no-untyped-def]
    """Shared at 00:30 in Amsterdam, while it was still the day before in UTC: the page read the UTC day,
    where chat (`repertoire show`) gives the reader's."""
    seeded = await seed(bot)
    key = await dashboard_link(bot)
    async with bot.services.db.session() as session:
        late = Item(
            community_id=seeded.community,
            kind="tool",
            title="Night shift log",
            body="Who was on call",
            author_id=seeded.ids["Cora"],
            added_by_id=seeded.ids["Cora"],
            created_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC),
            updated_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC),
        )
        session.add(late)
        await session.flush()
        await index_item(session, late)
    async with TestClient(TestServer(create_app(bot.services))) as client:
        page = await (await client.get(f"/c/cop/repertoire?q=night&key={key}")).text()
    entry = re.search(rf'<li class="item" data-id="{late.id}".*?</li>', page, re.S)
    assert entry is not None and "· 2026-03-02</span>" in entry[0], page
