"""A member's own data through the console: ``profile export`` gives everything every plugin stores about
all their accounts (an anonymous poll's choice excepted: it is stored nowhere), by direct message; ``profile
forget`` changes nothing until confirmed, and then leaves no row that names the member or their platform
ids, keeps the community's figures (poll results, activity counts) as they were, credits their items to "a
former member" (or deletes them with ``--remove-items``), and says what was kept."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import MetaData, String, Text, func, select, text

from bot.clock import FakeClock
from bot.model import Content, Member
from bot.registry import discover_plugins
from bot.tables import ActivityEvent, MemberRow
from bot.web.app import create_app
from bot.web.links import sign, signing_key
from plugins.digest.models import DigestPost
from plugins.repertoire.models import Item
from plugins.value.models import Story

PLUGINS = [cls for name, cls in discover_plugins().items() if name != "core"]
SETTINGS: dict[str, Any] = {
    "communities": [{"slug": "cop", "name": "Water CoP", "domain": "leakage"}],
    "plugins": {"digest": {"rooms": {"cop": {"console": "console"}}}},
}
ZOFIA, PHONE = "zofia.quist", "zofia.phone"  # one person, two accounts
NAMES = ("zofia",)  # in any row, any text column, after forgetting: none


def reply(lines: list[str]) -> str:
    return lines[1].split("> ", 1)[1]


def in_room(lines: list[str]) -> list[str]:
    """What copbot said in the room (not by direct message)."""
    return [line.split("> ", 1)[1] for line in lines if line.startswith("[") and "] copbot> " in line]


class Inbox:
    """What copbot sends by direct message, as sent (the console prints it; here it is kept whole)."""

    def __init__(self, bot) -> None:  # type: ignore[no-untyped-def]
        self.sent: list[tuple[Member, Content]] = []
        original = bot.adapter.send_direct

        async def send_direct(member: Member, content: Content) -> str:
            self.sent.append((member, content))
            return await original(member, content)

        sent_to_room = bot.adapter.send

        async def send(room, content: Content, **options: Any) -> str:  # type: ignore[no-untyped-def]
            if room.is_direct:  # an answer in a direct chat
                self.sent.append((bot.adapter.member(room.id.removeprefix("direct:")), content))
            return await sent_to_room(room, content, **options)

        bot.adapter.send_direct = send_direct
        bot.adapter.send = send

    def last(self, name: str) -> Content:
        return next(content for member, content in reversed(self.sent) if member.id == name)


async def everything(bot) -> None:  # type: ignore[no-untyped-def]
    """A person with data in every plugin: profile, votes (one anonymous), RSVPs, attendance, notes,
    items (one saved with 📌), upvotes, a value story, level history, a linked second account, a digest."""
    await bot.say(f":join {ZOFIA}")
    await bot.say(f"{ZOFIA}>> stop")  # the onboarding, ended at once
    await bot.say(f"{ZOFIA}> !profile set org Vitens")
    await bot.say(f"{ZOFIA}> !profile set expertise leak detection, acoustic loggers")
    await bot.say(f"{ZOFIA}> !profile set timezone Europe/Amsterdam")
    await bot.say(f"{ZOFIA}> !profile set public on")  # her name on the dashboard, until forgotten
    await bot.say("ana> hello all")
    await bot.say("bo> hi")
    await bot.say("ana> !profile set interests leak detection")
    assert "Meet @zofia.quist" in "\n".join(await bot.say("ana> !match"))  # an introduction
    await bot.say(f'{ZOFIA}> !poll create "Lunch?" Soup Salad')  # poll 1, open
    await bot.say(f"{ZOFIA}> !poll vote 1 2")
    await bot.say("ana> !poll vote 1 1")
    await bot.say('ana> !poll create "Secret?" Red Blue --anonymous')  # poll 2
    await bot.say(f"{ZOFIA}> !poll vote 2 2")
    await bot.say("bo> !poll vote 2 1")
    await bot.say('ana> !meeting schedule "Kick-off" 2026-03-03 10:00')  # meeting 1, tomorrow
    await bot.say('ana> !meeting schedule "Site visit" 2026-03-20 10:00')  # meeting 2, later
    await bot.say(f"{ZOFIA}> !meeting rsvp 1 yes")
    await bot.say(f"{ZOFIA}> !meeting rsvp 2 yes")
    await bot.say(f'{ZOFIA}> !share tool "Leak map" https://example.org/map #leaks')  # item 1
    await bot.say('ana> !share story "Pipe burst" we fixed it overnight #pipes')  # item 2
    said = await bot.say(f"{ZOFIA}> acoustic loggers found our leak in a day")
    number = said[0].split("]", 1)[0].lstrip("[")
    await bot.say(f":react ana {number} 📌")  # item 3, credited to zofia, linked to her message
    await bot.say(f"{ZOFIA}> !repertoire upvote 2")
    await bot.say("ana> !repertoire upvote 1")
    await bot.say(f"{ZOFIA}> !value story The community saved us a week of searching --cycle realized")
    await bot.say(f"!role set @{ZOFIA} active leads the leak group, thanks {ZOFIA}")
    private = await bot.say(f"{ZOFIA}> !profile link")
    code = private[1].split("Your link code: ", 1)[1].split(".", 1)[0]
    await bot.say(f"{PHONE}> hello from my phone")
    await bot.say(f"{PHONE}> !profile link {code}")
    bot.services.clock.set(datetime(2026, 3, 4, 9, 0, tzinfo=UTC))  # the kick-off took place
    await bot.say(f"!meeting attended 1 @{ZOFIA}")
    await bot.say(f"{ZOFIA}> !meeting notes 1 Agreed: map the leaks of Delft")
    await bot.say("!digest now")  # names zofia: a new member, moving inward


async def snapshot(bot) -> dict[str, list[Any]]:  # type: ignore[no-untyped-def]
    """Every row of every table, but the bookkeeping every command leaves: which events were handled,
    that a command was used (an activity row) and when the member was last seen."""
    await bot.bot.pipeline.journal.flush()
    metadata = MetaData()
    async with bot.services.db.engine.connect() as connection:
        await connection.run_sync(metadata.reflect)
        found = {}
        for name, table in sorted(metadata.tables.items()):
            if name == "handled_events" or name.startswith(("profiles_fts_", "repertoire_fts_")):
                continue
            query = select(*(c for c in table.columns if (name, c.name) != ("members", "last_seen")))
            if name == "activity_events":
                query = query.where(table.c.kind != "command")
            rows = (await connection.execute(query)).all()
            found[name] = sorted((tuple(row) for row in rows), key=repr)
    return found


async def naming(bot, words: tuple[str, ...]) -> list[str]:  # type: ignore[no-untyped-def]
    """Every text value, in every row of every table, that contains one of ``words`` (any case)."""
    metadata = MetaData()
    found: list[str] = []
    async with bot.services.db.engine.connect() as connection:
        await connection.run_sync(metadata.reflect)
        for name, table in sorted(metadata.tables.items()):
            if name.startswith(("profiles_fts_", "repertoire_fts_")):
                continue  # the index's own shadow tables: what they index is checked in the table itself
            columns = [c for c in table.columns if isinstance(c.type, String | Text) or str(c.type) == "TEXT"]
            if not columns:
                continue
            for row in (await connection.execute(select(*columns))).all():
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, str) and any(word in value.lower() for word in words):
                        found.append(f"{name}.{column.name}: {value[:120]!r}")
    return found


async def activity_counts(bot) -> list[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    await bot.bot.pipeline.journal.flush()
    async with bot.services.db.session() as session:
        rows = await session.execute(
            select(ActivityEvent.community_id, ActivityEvent.kind, func.count())
            .group_by(ActivityEvent.community_id, ActivityEvent.kind)
            .order_by(ActivityEvent.community_id, ActivityEvent.kind)
        )
        return [tuple(row) for row in rows.all()]


async def test_export_has_every_plugin_s_data_but_no_anonymous_choice(  # type: ignore[no-untyped-def]
    console_bot_factory, database_url: str
) -> None:
    bot = await console_bot_factory(PLUGINS, database_url=database_url, **SETTINGS)
    inbox = Inbox(bot)
    await everything(bot)
    said = await bot.say(f"{PHONE}> !profile export")  # from either account: the whole person
    assert in_room(said) == ["I sent you everything I store about you, by direct message."]
    sent = inbox.last(PHONE)
    assert sent.text.startswith("Everything copbot stores about you, as JSON:\n")
    data = json.loads(sent.text.split("\n", 1)[1])
    assert [a["platform_id"] for a in data["accounts"]] == [PHONE, ZOFIA]
    zofia = data["accounts"][1]
    assert zofia["time_zone"] == "Europe/Amsterdam" and zofia["linked_with"] == [f"console:{PHONE}"]
    assert zofia["choices"] == {"public": True, "prompts": True, "tracking": True}
    levels = {m["account"]: (m["community"], m["level"]) for m in data["memberships"]}
    assert levels[f"console:{ZOFIA}"] == ("cop", "active") and f"console:{PHONE}" in levels
    activity = data["activity"]
    assert activity["tracking"] == "on" and activity["total"] > 10
    assert set(activity["by_month"]) == {"2026-03"}
    # two in the room; "stop", answering the onboarding in a direct chat, is no message in the community
    assert activity["by_month"]["2026-03"]["message"] == 2
    plugins = data["plugins"]
    assert plugins["profiles"]["profiles"][0]["organisation"] == "Vitens"
    assert plugins["profiles"]["profiles"][0]["expertise"] == "leak detection, acoustic loggers"
    assert [(i["with"], i["how"]) for i in plugins["profiles"]["introductions"]] == [("ana", "match")]
    polls = plugins["polls"]
    assert [p["question"] for p in polls["polls_created"]] == ["Lunch?"]
    assert polls["votes"] == [
        {"poll": 1, "question": "Lunch?", "your_choice": ["Salad"], "at": "2026-03-02T09:00:00+00:00"}
    ]
    assert polls["anonymous_polls_voted_in"] == [
        {"poll": 2, "question": "Secret?", "your_choice": "not stored: the poll is anonymous"}
    ]
    assert "Blue" not in sent.text  # her anonymous choice is nowhere, not even in her own export
    meetings = plugins["meetings"]
    assert [(a["meeting"], a["answer"]) for a in meetings["answers"]] == [(1, "yes"), (2, "yes")]
    assert [a["meeting"] for a in meetings["attended"]] == [1]
    assert meetings["notes_written"][0]["text"] == "Agreed: map the leaks of Delft"
    repertoire = plugins["repertoire"]
    assert [i["title"] for i in repertoire["items_credited_to_you"]] == [
        "Leak map",
        "acoustic loggers found our leak in a day",
        "Notes: Kick-off (2026-03-03)",  # her meeting notes joined the repertoire
    ]
    assert [u["item"] for u in repertoire["upvotes_given"]] == [2]
    story = plugins["value"]["stories"][0]
    assert (story["story"], story["cycle"]) == ("The community saved us a week of searching", "realized")
    history = plugins["roles"]["level_history"]
    assert [(h["from"], h["to"], h["by"]) for h in history] == [("peripheral", "active", "a moderator")]
    assert plugins["digest"] == {"posted_digests_that_name_you": 1}


async def test_forget_needs_confirming_and_changes_nothing_before(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, **SETTINGS)
    await everything(bot)
    before = await snapshot(bot)
    early = await bot.say(f"{ZOFIA}> !profile forget --confirm")
    assert reply(early).startswith("first type !profile forget to see what it does")
    asked = await bot.say(f"{ZOFIA}> !profile forget")
    assert "cannot be undone" in reply(asked) and "!profile forget --confirm" in reply(asked)
    assert await snapshot(bot) == before
    clock.advance(minutes=11)
    late = await bot.say(f"{ZOFIA}> !profile forget --confirm")
    assert reply(late).startswith("first type !profile forget")  # the ten minutes have passed
    assert await snapshot(bot) == before
    assert await naming(bot, NAMES)  # all still there


async def web_pages(bot) -> list[str]:  # type: ignore[no-untyped-def]
    """The dashboard, the digest's feed and the repertoire page, as a reader with the links sees them."""
    key = await signing_key(bot.services.db, bot.services.settings.web.secret, bot.services.clock.now())
    until = bot.services.clock.now() + timedelta(hours=1)
    async with TestClient(TestServer(create_app(bot.services))) as client:
        return [
            await (await client.get(f"/c/cop?key={sign(key, 'dashboard:cop', until)}")).text(),
            await (await client.get(f"/c/cop/digest.atom?key={sign(key, 'digest:cop')}")).text(),
            await (await client.get(f"/c/cop/repertoire?key={sign(key, 'dashboard:cop', until)}")).text(),
        ]


async def poll_results(bot) -> list[str]:  # type: ignore[no-untyped-def]
    """Both polls' tallies as shown, without the message numbers."""
    shown = []
    for poll in (1, 2):
        lines = (await bot.say(f"ana> !poll results {poll}"))[1:]
        shown += [lines[0].split("> ", 1)[1], *(line.strip() for line in lines[1:])]
    return shown


async def test_forget_leaves_nothing_that_names_the_member_and_keeps_the_figures(  # type: ignore[no-untyped-def]
    console_bot_factory, database_url: str
) -> None:
    bot = await console_bot_factory(PLUGINS, database_url=database_url, **SETTINGS)
    inbox = Inbox(bot)
    await everything(bot)
    results = await poll_results(bot)
    assert "2 voters" in results[0] and "2 voters" in results[3]
    before = await web_pages(bot)
    assert ZOFIA in html.unescape(before[0]) and ZOFIA in html.unescape(before[1])  # public, and a newcomer
    await bot.say(f"{ZOFIA}> !profile forget")
    counts = await activity_counts(bot)
    done = await bot.say(f"{ZOFIA}> !profile forget --confirm")
    assert in_room(done) == ["Done: copbot has forgotten you; I sent you what was kept by direct message."]
    told = inbox.last(ZOFIA).text
    assert told.startswith("Done: copbot has forgotten you. What it did:")
    for expected in (
        "Your profile (organisation, country, expertise, interests, introductions) deleted",
        "1 introduction copbot made kept for the community's figures",
        "Your vote in 1 poll still open withdrawn",  # so that, back, she does not count twice
        "Your vote in 1 anonymous poll kept as counted",
        "1 poll you created kept, created by 'a former member'",
        "1 answer you gave for meetings still to come (or whole series) deleted",
        "1 answer for past meetings and 1 confirmed attendance kept",
        "3 repertoire items kept, credited to 'a former member'",
        "1 upvote you gave withdrawn",
        "1 value story kept for the value report",
        "Your level history (1 change) kept",
        "posted digest that named you now says 'a former member'",
        "Your activity (",
        "no longer known to copbot",
    ):
        assert expected in told, expected
    assert await naming(bot, NAMES) == []
    assert await activity_counts(bot) == counts  # the figures count the same
    after = await poll_results(bot)
    assert after[3:] == results[3:]  # the anonymous poll's vote stays counted
    assert "1 voter" in after[0] and "2 voters" in results[0]  # her vote in the open poll withdrawn
    shown = "\n".join(await bot.say("ana> !repertoire show 1"))
    assert "a former member" in shown and "Leak map" in shown
    saved = "\n".join(await bot.say("ana> !repertoire show 3"))
    assert "Original" not in saved  # no link back to her message (which shows who wrote it)
    # nothing copbot shows names her: the digest, its feed, the dashboard, the level history, a meeting
    shown = "\n".join(await bot.say("!digest preview"))
    shown += "\n".join(await bot.say("!role history"))
    shown += "\n".join(await bot.say("!meeting show 1"))
    shown += "\n".join(await bot.say("ana> !experts leak detection"))
    assert "a former member" in shown and not any(name in shown.lower() for name in NAMES), shown
    pages = await web_pages(bot)
    assert "Water CoP" in pages[0] and "Leak map" in pages[2] and "New members" in html.unescape(pages[1])
    assert not any(name in html.unescape(page).lower() for page in pages for name in NAMES)
    # the platform accounts are strangers now: writing again, each is a new member
    await bot.say(f"{ZOFIA}> hello again")
    await bot.say(f"{PHONE}> me too")
    again = "\n".join(await bot.say(f"{ZOFIA}> !profile"))
    assert "You have no profile yet" in again
    async with bot.services.db.session() as session:
        rows = (await session.execute(select(MemberRow).order_by(MemberRow.id))).scalars().all()
    strangers = [row for row in rows if row.platform_id in (ZOFIA, PHONE)]
    assert [(r.display_name, r.person_id) for r in strangers] == [(ZOFIA, None), (PHONE, None)]
    formers = [row for row in rows if row.display_name == "a former member"]
    assert len(formers) == 3 and all(row.platform_id.startswith("forgotten:") for row in formers)
    assert not any(row.tracking or row.prompts or row.public or row.timezone for row in formers)


async def test_forget_with_remove_items_deletes_them(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, **SETTINGS)
    inbox = Inbox(bot)
    await everything(bot)
    await bot.say(f"{PHONE}> !profile forget")  # from the other account: the whole person
    await bot.say(f"{PHONE}> !profile forget --confirm --remove-items")
    told = inbox.last(PHONE).text
    assert "3 repertoire items credited to you deleted, with their upvotes." in told
    assert "1 value story you told deleted." in told
    assert await naming(bot, NAMES) == []
    async with bot.services.db.session() as session:
        titles = (await session.execute(select(Item.title).order_by(Item.id))).scalars().all()
        stories = (await session.execute(select(func.count()).select_from(Story))).scalar_one()
    assert titles == ["Pipe burst"] and stories == 0  # ana's item stays
    found = "\n".join(await bot.say("ana> !repertoire search leak map"))
    assert "Leak map" not in found  # gone from the search index too
    assert "Useful: 0 upvotes · " in "\n".join(await bot.say("ana> !repertoire show 2"))  # hers withdrawn


async def test_the_export_has_what_was_said_just_before_it(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """Activity waits in the journal for up to half a second; the export has it written first."""
    bot = await console_bot_factory(PLUGINS, **SETTINGS)
    inbox = Inbox(bot)
    await bot.hold_journal()
    await bot.say(f"{ZOFIA}> hello")  # (say writes the journal: one message)
    await bot.chat(f"{ZOFIA}> and one more")  # waits in the journal
    await bot.say(f"{ZOFIA}>> !profile export")
    data = json.loads(inbox.last(ZOFIA).text.split("\n", 1)[1])
    assert data["activity"]["total"] == 2


async def test_export_and_forget_with_tracking_off(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, **SETTINGS)
    inbox = Inbox(bot)
    await bot.say(f"{ZOFIA}> hello")
    await bot.say(f"{ZOFIA}> !profile set tracking off")
    await bot.say(f"{ZOFIA}> nobody counts this")
    await bot.say(f"{ZOFIA}>> !profile export")  # in a direct chat: the answer is the file itself
    data = json.loads(inbox.last(ZOFIA).text.split("\n", 1)[1])
    assert data["accounts"][0]["choices"]["tracking"] is False
    assert data["activity"]["tracking"].startswith("off") and data["activity"]["total"] == 1
    await bot.say(f"{ZOFIA}>> !profile forget")
    await bot.say(f"{ZOFIA}>> !profile forget --confirm")
    assert "Your activity (1 record) kept only as anonymous counts" in inbox.last(ZOFIA).text
    assert await naming(bot, NAMES) == []


async def test_plugins_turned_off_still_export_and_forget_what_they_stored(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    """An operator turns plugins off after members used them: their rows stay in the database, so
    ``profile export`` still gives them and ``profile forget`` still reaches them, though the plugins take
    no command, event or job. (The two commands are the core's: every plugin can be off.)"""
    first = await console_bot_factory(PLUGINS, **SETTINGS)
    await everything(first)
    await first.bot.stop()
    turned_off = ("polls", "meetings", "repertoire", "value", "roles", "digest", "welcome", "profiles")
    tables = {name: {"enabled": False} for name in turned_off}
    tables["digest"] |= SETTINGS["plugins"]["digest"]
    bot = await console_bot_factory(PLUGINS, **{**SETTINGS, "plugins": tables})
    assert sorted(bot.bot.registry.disabled) == sorted(turned_off)
    assert reply(await bot.say("ana> !poll results 1")) == (
        "!poll results is turned off here (copbot's polls plugin). Type !help for the list."
    )
    assert reply(await bot.say("ana> !poll")) == (
        "!poll is turned off here (copbot's polls plugin). Type !help for the list."
    )
    assert reply(await bot.say("ana> !profile link")) == (  # roles' command in a group the core shares
        "!profile link is turned off here (copbot's roles plugin). Type !help for the list."
    )
    assert reply(await bot.say("ana> !profile")) == (
        "!profile is turned off here (copbot's profiles plugin). Type !help for the list."
    )
    assert reply(await bot.say("ana> !help poll")) == "!poll is turned off here (copbot's polls plugin)."
    assert reply(await bot.say("ana> !profile lnk")).startswith("!profile lnk is not a command")
    inbox = Inbox(bot)
    await bot.say(f"{ZOFIA}> !profile export")
    plugins = json.loads(inbox.last(ZOFIA).text.split("\n", 1)[1])["plugins"]
    assert [v["question"] for v in plugins["polls"]["votes"]] == ["Lunch?"]
    assert [a["meeting"] for a in plugins["meetings"]["attended"]] == [1]
    assert len(plugins["repertoire"]["items_credited_to_you"]) == 3
    assert plugins["value"]["stories"] and plugins["roles"]["level_history"]
    assert plugins["digest"] == {"posted_digests_that_name_you": 1}
    assert await naming(bot, NAMES)
    await bot.say(f"{ZOFIA}> !profile forget")
    await bot.say(f"{ZOFIA}> !profile forget --confirm")
    told = inbox.last(ZOFIA).text
    for expected in (
        "Your profile (organisation, country, expertise, interests, introductions) deleted",
        "Your vote in 1 poll still open withdrawn",
        "3 repertoire items kept, credited to 'a former member'",
        "posted digest that named you now says 'a former member'",
    ):
        assert expected in told, expected
    assert await naming(bot, NAMES) == []


async def test_the_web_copies_of_the_digest_name_only_public_members(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    """Members see each other's names in the posted digest, but the dashboard's latest digest and the Atom
    feed (which outsiders read) name a member only if they chose ``profile set public on``, like every
    other web page: a newcomer, a move inward and a shared item by a member who did not are 'a member'."""
    bot = await console_bot_factory(PLUGINS, **SETTINGS)
    await bot.say(":join xavier.quiet")
    await bot.say("xavier.quiet>> stop")
    await bot.say('xavier.quiet> !share tool "Valve sheet" https://example.org/valves')
    await bot.say("!role set @xavier.quiet active runs the valve group")
    await bot.say(":join yara.shown")
    await bot.say("yara.shown>> stop")
    await bot.say("yara.shown> !profile set public on")
    posted = "\n".join(await bot.say("!digest now"))
    assert "• xavier.quiet → active" in posted and "Valve sheet — xavier.quiet" in posted  # in chat
    dashboard, feed, _ = (html.unescape(page) for page in await web_pages(bot))
    for page in (dashboard, feed):
        assert "xavier" not in page and "yara.shown" in page
    assert "a member → active" in dashboard and "Valve sheet — a member" in feed
    # yara changes her mind: the copies already kept for the web no longer name her either
    turned_off = await bot.say("yara.shown> !profile set public off")
    assert "Saved public: off — the community's web pages never show your name" in turned_off[1]
    dashboard, feed, _ = (html.unescape(page) for page in await web_pages(bot))
    for page in (dashboard, feed):
        assert "yara" not in page and "xavier" not in page
    async with bot.services.db.session() as session:
        kept = (await session.execute(select(DigestPost))).scalars().one()
    assert "yara" not in kept.text + kept.html + kept.title and "a member" in kept.text


async def test_the_repertoire_s_web_export_names_only_public_members(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    """``repertoire export`` where files cannot go (the console) is a link to the web, which anyone with
    it reads: like the repertoire's page beside it, the Markdown and the JSON there name an author only if
    they chose ``profile set public on`` — the others are 'a member'."""
    bot = await console_bot_factory(PLUGINS, **SETTINGS)
    await bot.say('xavier.quiet> !share tool "Valve sheet" https://example.org/valves')
    await bot.say("yara.shown> !profile set public on")
    await bot.say('yara.shown> !share story "Night flow" Night logging found more leaks')
    link = reply(await bot.say("!repertoire export json")).rsplit(" ", 1)[1]
    address = link.removeprefix("http://127.0.0.1:8080")
    async with TestClient(TestServer(create_app(bot.services))) as client:
        as_json = await (await client.get(address)).text()
        as_markdown = await (await client.get(address.replace(".json?", ".md?"))).text()
    page = (await web_pages(bot))[2]  # the repertoire's page, beside them
    assert "xavier" not in page and "yara.shown" in page and "Valve sheet" in page
    authors = [(item["title"], item["author"]) for item in json.loads(as_json)["items"]]
    assert authors == [("Valve sheet", "a member"), ("Night flow", "yara.shown")]
    assert "xavier" not in as_markdown and "*by a member · " in as_markdown
    assert "*by yara\\.shown · " in as_markdown  # Markdown's "." escaped


async def test_public_off_reaches_the_digest_s_copies_while_the_digest_is_turned_off(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    """``profile set public off`` takes the name out of the digests kept for the web even while the
    operator has the digest turned off: its copies stay in the database, and the dashboard and the Atom
    feed show them again once it is back on (as export and forget reach a plugin turned off)."""
    first = await console_bot_factory(PLUGINS, **SETTINGS)
    await first.say(":join yara.shown")
    await first.say("yara.shown>> stop")
    await first.say("yara.shown> !profile set public on")
    await first.say("!digest now")
    await first.bot.stop()
    off = await console_bot_factory(PLUGINS, **{**SETTINGS, "plugins": {"digest": {"enabled": False}}})
    said = await off.say("yara.shown> !profile set public off")
    assert "Saved public: off" in said[1]
    await off.bot.stop()
    bot = await console_bot_factory(PLUGINS, **SETTINGS)
    dashboard, feed, _ = (html.unescape(page) for page in await web_pages(bot))
    assert "New members" in feed
    for page in (dashboard, feed):
        assert "yara" not in page


async def test_forget_says_beforehand_everything_it_keeps(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """What ``profile forget`` asks the member to confirm names all it keeps of theirs: the polls and
    meetings they created, the meeting notes they wrote (their own words, kept with --remove-items too)
    and the introductions — not only what it deletes — so that nobody confirms expecting those gone."""
    bot = await console_bot_factory(PLUGINS, **SETTINGS)
    inbox = Inbox(bot)
    await everything(bot)
    asked = reply(await bot.say(f"{ZOFIA}> !profile forget"))
    await bot.say(f"{ZOFIA}> !profile forget --confirm --remove-items")
    told = inbox.last(ZOFIA).text
    for kept in ("poll you created kept", "meeting note you wrote kept", "introduction copbot made kept"):
        assert kept in told, kept  # what it did: kept, with --remove-items too
    for said in ("the polls and meetings you created", "the meeting notes you wrote", "introductions"):
        assert said in asked, said  # and said so before


async def test_a_moderator_s_export_has_what_they_did_to_others_records(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    """Every row that holds the member's id is in their export: a moderator's confirmations of others'
    attendance and the items of others they removed too, beside the level changes they made."""
    bot = await console_bot_factory(PLUGINS, **SETTINGS)
    inbox = Inbox(bot)
    await everything(bot)  # "you" moved zofia and confirmed her attendance
    await bot.say("!repertoire remove 2")  # ana's item
    await bot.say("you>> !profile export")
    plugins = json.loads(inbox.last("you").text.split("\n", 1)[1])["plugins"]
    assert plugins["roles"]["level_changes_you_made_as_moderator"] == 1
    assert plugins["meetings"]["attendance_you_confirmed_as_moderator"] == 1
    removed = plugins["repertoire"]["items_you_removed"]
    assert [(each["item"], each["title"]) for each in removed] == [(2, "Pipe burst")]


async def test_the_export_has_the_direct_messages_copbot_keeps_copies_of(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    """What copbot sends as part of its scheduled work (a reminder by direct message) it keeps in its
    outbox, with the member's account: the export has those copies too — forget deletes them."""
    bot = await console_bot_factory(PLUGINS, **SETTINGS)
    inbox = Inbox(bot)
    await bot.say('!meeting schedule "Workshop" 2026-03-03 10:00')
    await bot.say(f"{ZOFIA}> !profile set reminders dm")
    await bot.say(f"{ZOFIA}> !meeting rsvp 1 yes")
    await bot.say("ana> !profile set reminders dm")
    await bot.say("ana> !meeting rsvp 1 yes")
    bot.services.clock.set(datetime(2026, 3, 3, 9, 45, tzinfo=UTC))
    while await bot.services.scheduler.run_due():
        pass
    reminded = "⏰ Workshop starts in 15 minutes: Tue 3 Mar 10:00 UTC."
    assert inbox.last(ZOFIA).text == reminded
    await bot.say(f"{ZOFIA}>> !profile export")
    data = json.loads(inbox.last(ZOFIA).text.split("\n", 1)[1])
    assert [m["text"] for m in data["messages_to_you"]] == [reminded]  # hers, not ana's
    assert data["messages_to_you"][0]["account"] == f"console:{ZOFIA}"


async def test_forget_rewrites_the_kept_messages_that_name_someone_with_a_quote_in_their_name(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    """copbot keeps its copies of what it sent as JSON, where a name's `"` is written `\\"`: looked for as
    typed, a reminder naming `Ann "Pipe" Lee` (a Discord or Matrix name may hold quotes) was never found,
    and kept her name after she was forgotten."""
    from bot import outbox
    from bot.tables import OutboxRow

    bot = await console_bot_factory(PLUGINS, **SETTINGS)
    await bot.say("ana> hello")
    name = 'Ann "Pipe" Lee'
    async with bot.services.db.session() as session:
        row = (await session.execute(select(MemberRow).where(MemberRow.platform_id == "ana"))).scalar_one()
        row.display_name = name  # as her platform calls her
        session.add(
            OutboxRow(
                key="meeting:1:reminder#0",
                platform="console",
                target=json.dumps({"room": "console"}),
                content=outbox.encode_content(Content(f"⏰ Workshop starts in 15 minutes: {name}, bo")),
                created_at=bot.services.clock.now(),
            )
        )
        await session.commit()
    await bot.say("ana> !profile forget")
    said = "\n".join(await bot.say("ana> !profile forget --confirm"))
    assert "1 that named you now say 'a former member'" in said, said
    async with bot.services.db.session() as session:
        [kept] = (await session.execute(select(OutboxRow))).scalars().all()
    assert outbox.decode_content(kept.content).text == (
        "⏰ Workshop starts in 15 minutes: a former member, bo"
    )


async def test_a_forgotten_member_who_comes_back_votes_and_upvotes_once(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """Forgotten, a member's vote in a poll still open was kept as an unnamed vote that nothing linked to
    them any more: back in the community (a new member to copbot), they voted again and the poll counted
    them twice; an item they had upvoted took a second upvote from them. Now their votes in open polls and
    their upvotes are withdrawn (they may give them again); a closed poll keeps its unnamed vote; and in an
    anonymous poll still open, where what they chose was never stored and cannot be withdrawn, the vote
    stays counted and a one-way keyed mark of each account (no name, no id) refuses a second vote until the
    poll closes, when the marks are deleted."""
    marks = text("SELECT count(*) FROM polls_forgotten_voters")
    bot = await console_bot_factory(PLUGINS, **SETTINGS)
    inbox = Inbox(bot)
    await bot.say('ana> !poll create "Lunch?" Soup Salad')  # 1, open
    await bot.say(f"{ZOFIA}> !poll vote 1 2")
    await bot.say("ana> !poll vote 1 1")
    await bot.say('ana> !poll create "Secret?" Red Blue --anonymous')  # 2, open and anonymous
    await bot.say(f"{ZOFIA}> !poll vote 2 2")
    await bot.say("bo> !poll vote 2 1")
    await bot.say('ana> !poll create "Venue?" Delft Gouda')  # 3, closed before she goes
    await bot.say(f"{ZOFIA}> !poll vote 3 2")
    await bot.say("ana> !poll close 3")
    await bot.say('ana> !share tool "Leak map" https://example.org/map #leaks')
    await bot.say(f"{ZOFIA}> !repertoire upvote 1")
    await bot.say(f"{ZOFIA}> !profile forget")
    await bot.say(f"{ZOFIA}> !profile forget --confirm")
    told = inbox.last(ZOFIA).text
    for expected in (
        "Your vote in 1 poll still open withdrawn: it no longer counts.",
        "Your vote in 1 closed poll kept in the results as an unnamed vote",
        "Your vote in 1 anonymous poll kept as counted: what you chose was never stored. While it is open",
        "1 upvote you gave withdrawn.",
    ):
        assert expected in told, told
    assert await naming(bot, NAMES) == []  # the marks name nobody
    results = "\n".join(await bot.say("ana> !poll results 1"))
    assert "1 voter" in results and "Salad" in results
    assert "— 1 voter" in reply(await bot.say("ana> !poll results 3"))  # closed: the vote stays
    assert "— 2 voters" in reply(await bot.say("ana> !poll results 2"))
    assert "Useful: 0 upvotes" in "\n".join(await bot.say("ana> !repertoire show 1"))
    # back, a stranger to copbot: her vote and upvote count once
    assert reply(await bot.say(f"{ZOFIA}> !poll vote 1 2")) == "Your vote in poll #1: Salad"
    assert "— 2 voters" in reply(await bot.say("ana> !poll results 1"))
    again = await bot.say(f"{ZOFIA}> !poll vote 2 1")
    assert "You have already voted in poll #2; anonymous votes cannot be changed." in "\n".join(again)
    assert "— 2 voters" in reply(await bot.say("ana> !poll results 2"))
    assert reply(await bot.say(f"{ZOFIA}> !repertoire upvote 1")) == "Upvoted #1: Leak map."
    assert "Useful: 1 upvote" in "\n".join(await bot.say("ana> !repertoire show 1"))
    async with bot.services.db.session() as session:
        assert await session.scalar(marks) == 1
    await bot.say("ana> !poll close 2")  # closed: the marks go
    async with bot.services.db.session() as session:
        assert await session.scalar(marks) == 0


async def test_forget_takes_the_member_s_earlier_names_and_deleted_items_out_of_the_digest_s_copies(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    """The digests copbot keeps for the web were scrubbed by the member's current name and id, as whole
    words anywhere: a name they had when the digest was posted (before a rename) stayed, the titles of the
    items ``--remove-items`` deleted stayed, and a member named like a common word ("Water") rewrote the
    community's name and others' titles. Now the entries the digest wrote for the member, and for their
    items, are changed where they were written, and nothing else."""
    bot = await console_bot_factory(PLUGINS, **SETTINGS)  # the community is "Water CoP"
    inbox = Inbox(bot)
    await bot.say(":join Water")
    await bot.say("Water>> stop")
    await bot.say("Water> !profile set public on")  # her name on the web
    await bot.say('Water> !share tool "Leak map" https://example.org/map #leaks')  # 1, hers
    await bot.say("yara.shown> !profile set public on")
    await bot.say('yara.shown> !share story "Water pumps" Night pumping saves energy')  # 2, yara's
    await bot.say("ana> !repertoire upvote 1")

    async def call_her(name: str) -> None:  # as her platform names her at the time
        async with bot.services.db.session() as session:
            row = (
                await session.execute(select(MemberRow).where(MemberRow.platform_id == "Water"))
            ).scalar_one()
            row.display_name = name
            await session.commit()

    await call_her("Zee Quist")
    await bot.say("!digest now")
    async with bot.services.db.session() as session:
        kept = (await session.execute(select(DigestPost))).scalars().one()
    assert "• Zee Quist" in kept.text and "#1 [tool] Leak map — Zee Quist" in kept.text
    await call_her("Zofia Q")  # renamed since
    await bot.say("Water> !profile forget")
    await bot.say("Water> !profile forget --confirm --remove-items")
    told = inbox.last("Water").text
    assert "1 posted digest that named you now says 'a former member'" in told, told
    assert "and no longer shows the repertoire items deleted" in told, told
    async with bot.services.db.session() as session:
        kept = (await session.execute(select(DigestPost))).scalars().one()
    for copy in (kept.text, html.unescape(kept.html)):
        assert "Zee" not in copy and "Leak map" not in copy, copy
        assert "#2 [story] Water pumps — yara.shown" in copy, copy  # another's title with her name's word
    assert kept.title.startswith("📰 Water CoP — ")  # the community's name too
    assert "• a former member\n" in kept.text and "• an item since removed" in kept.text
    assert "<li>a former member</li>" in kept.html and "<li>an item since removed</li>" in kept.html
    feed = html.unescape((await web_pages(bot))[1])
    assert "Leak map" not in feed and "Zee" not in feed and "Water pumps — yara.shown" in feed
    # yara hides her name: her entry only, as written
    await bot.say("yara.shown> !profile set public off")
    async with bot.services.db.session() as session:
        kept = (await session.execute(select(DigestPost))).scalars().one()
    assert "#2 [story] Water pumps — a member" in kept.text and "yara" not in kept.text + kept.html


async def test_a_forgotten_member_who_comes_back_applies_an_item_once(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """Forgotten, a member's "used" mark stayed on the item under the anonymised row: back in the community
    (a new member to copbot), she said "I applied this" again and the item read "applied by 2" for one
    person. Now the mark no longer stands on the item (it counts once if she comes back), while the value
    report keeps it as the "I applied this" that happened in its period."""
    bot = await console_bot_factory(PLUGINS, **SETTINGS)
    inbox = Inbox(bot)
    await bot.say('ana> !share tool "Leak map" https://example.org/map #leaks')
    await bot.say(f"{ZOFIA}> !repertoire used 1")
    assert "applied by 1" in "\n".join(await bot.say("ana> !repertoire show 1"))
    await bot.say(f"{ZOFIA}> !profile forget")
    await bot.say(f"{ZOFIA}> !profile forget --confirm")
    told = inbox.last(ZOFIA).text
    assert (
        "1 'used' mark you gave withdrawn from its item: if you come back, you may mark it again. The value "
        "report still counts it in its period, by no one." in told
    ), told
    assert await naming(bot, NAMES) == []
    assert "applied by 0" in "\n".join(await bot.say("ana> !repertoire show 1"))
    assert "• Repertoire items applied: 1 " in "\n".join(await bot.say("!value report"))
    # back, a stranger to copbot: her "I applied this" counts once on the item
    assert reply(await bot.say(f"{ZOFIA}> !repertoire used 1")).startswith("Noted: you applied #1")
    assert "applied by 1" in "\n".join(await bot.say("ana> !repertoire show 1"))
