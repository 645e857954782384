"""Injection through every field a member can write (issue 15, item 4).

``@everyone``, ``@here``, ``@room``, role and user mentions, Matrix pills, HTML (``<script>``,
``<img onerror>``), Markdown links to ``javascript:`` and code fences, written into profile fields (org,
expertise, interests), a poll's question and options, a meeting's title and place, a shared item's title,
text and tags, a value story and (by a moderator) the welcome text — then every output that shows them:

* Discord (discord.py against the tests' Discord server): every message copbot sends, answers to
  interactions and edits included, lets nobody be pinged but the members it means (``parse`` empty, no
  roles, users only real members), and neither a card nor the message's text leaves an ``@everyone``, a
  role mention, a masked link or a code fence as such (a card escapes all Markdown, a message's text what
  could hide a link or swallow its mentions);
* Matrix (matrix-nio against the tests' Synapse, copbot's real adapter): no HTML of a member's in any
  ``formatted_body``, pills only of the members copbot means, ``m.mentions`` on every message (polls
  included) and never ``room`` — checked where it counts too: with copbot allowed to notify the room, a
  member's highlighted notifications are only those that mention them by intent;
* the web (aiohttp's test client): the dashboard, the repertoire's browse page and export, the value page,
  the calendar feed and the digest's Atom feed show the text as text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import json
import re
import subprocess
import sys
import time
import unicodedata
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import aiohttp
import icalendar
from aiohttp.test_utils import TestClient, TestServer
from nio import AsyncClient, Event, MessageDirection, ProfileSetDisplayNameResponse, RoomMessagesResponse
from sqlalchemy import select

from bot.adapters.matrix_render import edit_content, message_content, poll_end_content, poll_start_content
from bot.model import Card, Content, Member, PollSpec
from bot.registry import discover_plugins
from bot.tables import MemberRow
from bot.web.app import create_app
from plugins.repertoire.models import Item
from tests.core.test_startup import copbot, environment
from tests.e2e.matrix_support import STEP as MATRIX_STEP
from tests.e2e.matrix_support import (
    Bots,
    adapter_of,
    content_of,
    in_reply_to,
    room_with_bot,
    send,
    send_event,
)
from tests.e2e.test_discord import BotFactory
from tests.harness.discord_server import FakeDiscord, Request
from tests.harness.synapse import Synapse, wait_for_event

PLUGINS = tuple(cls for name, cls in discover_plugins().items() if name != "core")
STEP = 15.0

ROLE = "<@&123>"
USER = "<@123>"
PILL = '<a href="https://matrix.to/#/@x:y">x</a>'
SCRIPT = "<script>alert(1)</script>"
IMAGE = "<img src=x onerror=alert(1)>"
LINK = "[x](javascript:alert(1))"
FENCE = "```code```"
PAYLOAD = f"@everyone @here @room {ROLE} {USER} {PILL} {SCRIPT} {IMAGE} {LINK} {FENCE}"
# a poll's options have at most 100 characters: the payload in two halves
SHORT_A = f"@everyone @room {ROLE} {USER} {SCRIPT} {LINK}"
SHORT_B = f"@here {PILL} {IMAGE} ```c```"


def quoted(text: str) -> str:
    """One word however many it has: in double quotes, its own escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def member_lines(payload: str) -> list[str]:
    """What a member types: every field they can write, then the commands that show them."""
    return [
        f"!profile set org {payload}",
        f"!profile set expertise {payload}",
        f"!profile set interests {payload}",
        "!profile",
        "!experts alert",
        f"!poll create {quoted(SHORT_A)} {quoted(SHORT_A)} {quoted(SHORT_B)}",
        "!poll results 1",
        f"!meeting schedule {quoted(payload)} 3d --where {quoted(payload)}",
        "!meeting show 1",
        "!meeting list",
        f"!share tool {quoted(payload)} {payload} #tag",
        "!repertoire show 1",
        "!repertoire search alert",
        f"!value story {payload} --public",
    ]


def moderator_lines(payload: str) -> list[str]:
    return [f"!welcome set Hi {{member}}! {payload}", "!welcome preview", "!digest preview"]


# --- Discord ----------------------------------------------------------------------------------------------

_UNESCAPED_MARKDOWN = [
    (re.compile(r"@(everyone|here)"), "a mass mention"),
    (re.compile(r"<@&\d+>"), "a role mention"),
    (re.compile(r"(?<!\\)\[x(\\?)\]\(javascript"), "a masked link"),
    (re.compile(r"(?<!\\)`"), "a code mark"),
]


def check_discord_card(embed: dict[str, Any]) -> None:
    """A card's text is member data: nothing in it may act as markup or look like a ping."""
    texts = [embed.get("title") or "", embed.get("description") or ""]
    for item in embed.get("fields") or []:
        texts += [item.get("name") or "", item.get("value") or ""]
    for text in texts:
        for pattern, what in _UNESCAPED_MARKDOWN:
            assert not pattern.search(text), f"{what} left in a card: {text!r}"


def discord_payloads(requests: list[Request]) -> list[dict[str, Any]]:
    """Every message copbot sent or edited, as the JSON that carries it (an interaction's in ``data``)."""
    found = []
    for request in requests:
        if request.method not in ("POST", "PATCH") or not isinstance(request.json, dict):
            continue
        body = request.json.get("data") if "/interactions/" in request.path else request.json
        if isinstance(body, dict) and any(key in body for key in ("content", "embeds", "poll")):
            found.append(body)
    return found


def check_discord_message(body: dict[str, Any], members: set[str]) -> None:
    """Nobody but real members copbot means can be pinged; never everyone, here or a role; and no member's
    text becomes a masked link, a code block or a mass mention's styling in the message."""
    content = body.get("content") or ""
    for pattern, what in _UNESCAPED_MARKDOWN:
        assert not pattern.search(content), f"{what} left in a message: {content!r}"
    mentions = body.get("allowed_mentions")
    assert isinstance(mentions, dict), f"no allowed_mentions: Discord would ping what the text says: {body}"
    assert mentions.get("parse", []) == [], mentions
    assert mentions.get("roles", []) == [], mentions
    users = {str(user) for user in mentions.get("users", [])}
    assert users <= members and "123" not in users, mentions
    assert not mentions.get("replied_user"), mentions
    for embed in body.get("embeds") or []:
        check_discord_card(embed)


def replies_to(request: Request, message: dict[str, Any]) -> bool:
    reference = (request.json or {}).get("message_reference") or {}
    return str(reference.get("message_id")) == message["id"]


async def test_discord_member_text_pings_nobody_and_cards_are_escaped(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    general = discord_server.channel_id("general")
    await discord_bot(plugins=PLUGINS)
    mark = len(discord_server.requests)
    typed = [("bob", line) for line in member_lines(PAYLOAD)] + [
        ("alice", line) for line in moderator_lines(PAYLOAD)
    ]
    for user, line in typed:
        since = len(discord_server.requests)
        message = await discord_server.message_create("general", user, line)
        await discord_server.wait_for_request(
            "POST",
            rf"/channels/{general}/messages$",
            start=since,
            timeout=STEP,
            predicate=lambda request, message=message: (
                replies_to(request, message) or "poll" in (request.json or {})
            ),
        )
    since = len(discord_server.requests)
    discord_server.add_user("dana")
    await discord_server.member_add(None, "dana")
    welcome = await discord_server.wait_for_request(
        "POST",
        rf"/channels/{general}/messages$",
        start=since,
        timeout=STEP,
        predicate=lambda request: "Hi " in ((request.json or {}).get("content") or ""),
    )
    dana = discord_server.user_id("dana")
    assert [str(user) for user in welcome.json["allowed_mentions"]["users"]] == [dana]  # the newcomer only
    await discord_server.wait_for_request(  # onboarding's first question, by direct message
        "POST",
        r"/channels/\d+/messages$",
        start=since,
        timeout=STEP,
        predicate=lambda request: "(1/6)" in json.dumps(request.json or {}),
    )

    members = {discord_server.user_id(name) for name in ("alice", "bob", "carol", "dana")}
    sent = discord_payloads(discord_server.requests[mark:])
    assert len(sent) >= len(typed) + 1, discord_server.describe_requests()
    for body in sent:
        check_discord_message(body, members)
    cards = [embed for body in sent for embed in body.get("embeds") or []]
    shown = " ".join(json.dumps(card, ensure_ascii=False) for card in cards)
    assert "@\u200beveryone" in shown and "<@\u200b&123>" in shown  # the payload is in cards, broken
    said = " ".join(body.get("content") or "" for body in sent)
    assert "\\[x](javascript" in said and "\\`\\`\\`code" in said  # and in messages, shown as text


async def test_discord_slash_command_answers_ping_nobody(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    await discord_bot(plugins=PLUGINS)
    mark = len(discord_server.requests)
    for name, options, subcommand in [
        ("share", {"kind": "story", "title": SHORT_A, "text": PAYLOAD}, ""),
        ("repertoire", {"item_id": 1}, "show"),
        ("profile", {"field": "org", "value": PAYLOAD}, "set"),
        ("poll", {"question": SHORT_A, "options": f"{quoted(SHORT_A)} {quoted(SHORT_B)}"}, "create"),
    ]:
        more = {"subcommand": subcommand} if subcommand else {}
        record = await discord_server.interaction_slash(name, options, user="bob", **more)
        await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback", timeout=STEP)
    members = {discord_server.user_id(name) for name in ("alice", "bob", "carol")}
    sent = discord_payloads(discord_server.requests[mark:])
    assert len(sent) >= 4, discord_server.describe_requests()
    for body in sent:
        check_discord_message(body, members)


# --- Matrix -----------------------------------------------------------------------------------------------

ALLOWED_TAGS = {"a", "b", "i", "em", "strong", "br", "ul", "ol", "li", "code", "pre", "p", "blockquote", "h3"}


class Tags(HTMLParser):
    """The tags and attributes of a formatted_body."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def check_matrix_content(content: dict[str, Any], members: set[str]) -> None:
    """No HTML of a member's, pills only of members copbot means to mention, and never the room."""
    if "m.new_content" in content:
        check_matrix_content(content["m.new_content"], members)
    if "body" not in content:
        return
    mentions = content.get("m.mentions")
    assert isinstance(mentions, dict), f"no m.mentions, so clients read @room in the body: {content}"
    assert "room" not in mentions, mentions
    intended = set(mentions.get("user_ids", []))
    assert intended <= members, mentions
    formatted = content.get("formatted_body")
    if formatted is None:
        return
    parser = Tags()
    parser.feed(formatted)
    for tag, attrs in parser.found:
        assert tag in ALLOWED_TAGS, f"<{tag}> in {formatted!r}"
        if tag == "a":
            target = (attrs.get("href") or "").removeprefix("https://matrix.to/#/")
            assert target in intended, (
                f"a pill to {target!r}, not a member mentioned on purpose: {formatted!r}"
            )
        else:
            assert not attrs, f"<{tag} {attrs}> in {formatted!r}"


async def room_history(client: AsyncClient, room_id: str) -> list[Event]:
    """Every timeline event of the room, oldest first."""
    response = await client.sync(timeout=0)
    token = response.next_batch  # type: ignore[union-attr]
    events: list[Event] = []
    while True:
        page = await client.room_messages(room_id, start=token, direction=MessageDirection.back, limit=100)
        assert isinstance(page, RoomMessagesResponse), page
        events += page.chunk
        if not page.chunk or not page.end:
            return list(reversed(events))
        token = page.end


async def highlights(synapse: Synapse, client: AsyncClient) -> list[dict[str, Any]]:
    """The member's notifications that would highlight (a mention, an @room)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{synapse.base_url}/_matrix/client/v3/notifications",
            params={"only": "highlight", "limit": "200"},
            headers={"Authorization": f"Bearer {client.access_token}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        return list((await response.json())["notifications"])


async def test_matrix_member_text_injects_no_html_and_notifies_nobody(  # type: ignore[no-untyped-def]
    bots: Bots, members, synapse: Synapse
) -> None:
    owner = await members("owner")  # the room's creator: a moderator
    ana = await members("ana")
    zed = await members("zed")  # in the room, mentioned by nobody on purpose
    account = await asyncio.to_thread(bots.account, owner.user_id)
    bot = await bots.start(account, plugins=PLUGINS)
    copbot = adapter_of(bot).user_id
    room_id = await room_with_bot(
        owner,
        copbot,
        ana,
        zed,
        # copbot may notify the whole room here: an @room it passed on unguarded would reach everyone
        power_level_override={"users": {copbot: 100}, "notifications": {"room": 50}},
    )
    zed_pill = f'<a href="https://matrix.to/#/{zed.user_id}">zed</a> {zed.user_id}'
    payload = f"{PAYLOAD} {zed_pill}"
    typed = [(ana, line) for line in member_lines(payload)] + [
        (owner, line) for line in moderator_lines(payload)
    ]
    for client, line in typed:
        started = time.time() * 1000 - 1
        command = await send(client, room_id, line)
        await wait_for_event(
            client,
            lambda event, command=command, started=started: (
                event.sender == copbot
                and (
                    in_reply_to(event) == command
                    or (event.source.get("type") == "m.poll.start" and event.server_timestamp >= started)
                )
            ),
            timeout=MATRIX_STEP,
        )
    newcomer = await members("newcomer")
    await owner.room_invite(room_id, newcomer.user_id)
    await newcomer.join(room_id)
    await wait_for_event(
        newcomer,
        lambda event: event.sender == copbot and "Hi " in content_of(event).get("body", ""),
        timeout=MATRIX_STEP,
    )

    people = {owner.user_id, ana.user_id, zed.user_id, newcomer.user_id}
    history = [event for event in await room_history(owner, room_id) if event.sender == copbot]
    said = [content_of(event) for event in history if "body" in content_of(event)]
    assert len(said) >= len(typed) + 1, said
    for content in said:
        check_matrix_content(content, people)
    assert any(content_of(event).get("m.poll") for event in history), "no poll was posted"
    assert any(html.escape(SCRIPT) in content.get("formatted_body", "") for content in said)

    for notification in await highlights(synapse, zed):
        event = notification["event"]
        meant = (event.get("content") or {}).get("m.mentions", {}).get("user_ids", [])
        assert event["sender"] != copbot or zed.user_id in meant, f"zed was notified by {event}"


async def test_matrix_a_nul_in_a_display_name_or_a_saved_message_breaks_nothing_on_postgresql(  # type: ignore[no-untyped-def]
    bots: Bots, members, fresh_postgres_url: str
) -> None:
    """Matrix carries a NUL in a display name or a message's body (Synapse takes both), PostgreSQL refuses
    one in text. Command arguments were cleaned already; what came from the events themselves was not: a
    member who put a NUL in their display name got the apology for every command, their name never stored,
    and a message with one in it could not be saved with 📌."""
    owner, ana, bo = [await members(name) for name in ("owner", "ana", "bo")]
    account = await asyncio.to_thread(bots.account, owner.user_id)
    bot = await bots.start(dataclasses.replace(account, database_url=fresh_postgres_url), plugins=PLUGINS)
    copbot = adapter_of(bot).user_id
    room_id = await room_with_bot(owner, copbot, ana, bo)
    assert isinstance(await bo.set_displayname("Bo\x00 Smith"), ProfileSetDisplayNameResponse)
    said = await send(ana, room_id, "Step-testing at night\x00 finds leaks")
    await send_event(
        bo,
        room_id,
        "m.reaction",
        {"m.relates_to": {"rel_type": "m.annotation", "event_id": said, "key": "📌"}},
    )
    _, thanks = await wait_for_event(
        owner, lambda event: event.sender == copbot and in_reply_to(event) == said, timeout=MATRIX_STEP
    )
    assert content_of(thanks)["body"].startswith("📌 Saved to the repertoire as #1"), content_of(thanks)
    asked = await send(bo, room_id, "!repertoire show 1")
    _, shown = await wait_for_event(
        owner, lambda event: event.sender == copbot and in_reply_to(event) == asked, timeout=MATRIX_STEP
    )
    body = content_of(shown)["body"]
    assert "Step-testing at night finds leaks" in body and "Sorry" not in body, body
    async with bot.db.session() as session:
        item = (await session.execute(select(Item))).scalars().one()
    assert (item.title, item.body) == ("Step-testing at night finds leaks",) * 2
    assert await stored_name(bot, bo.user_id, "Bo Smith") == "Bo Smith"


async def stored_name(bot: Any, user_id: str, expected: str) -> str | None:
    """The member's stored display name once it is ``expected``, or as it is after ``MATRIX_STEP``:
    Synapse tells the rooms of a new name in the background, so the rename may come after a command."""
    deadline = time.monotonic() + MATRIX_STEP
    while True:
        async with bot.db.session() as session:
            name: str | None = await session.scalar(
                select(MemberRow.display_name).where(MemberRow.platform_id == user_id)
            )
        if name == expected or time.monotonic() > deadline:
            return name
        await asyncio.sleep(0.05)


async def test_matrix_a_display_name_longer_than_a_member_row_keeps_breaks_nothing_on_postgresql(  # type: ignore[no-untyped-def]
    bots: Bots, members, fresh_postgres_url: str
) -> None:
    """Synapse takes display names of up to 256 characters; a member's row keeps 255 and PostgreSQL refuses
    more, so the longest name Matrix allows was never stored: each rename failed, an error in the log, and
    copbot went on showing the member's old name. It is now kept cut to 255 characters."""
    owner, ana = [await members(name) for name in ("owner", "ana")]
    account = await asyncio.to_thread(bots.account, owner.user_id)
    bot = await bots.start(dataclasses.replace(account, database_url=fresh_postgres_url), plugins=PLUGINS)
    copbot = adapter_of(bot).user_id
    room_id = await room_with_bot(owner, copbot, ana)
    long_name = "Ana " + "x" * 251 + "é"  # 256 characters
    assert isinstance(await ana.set_displayname(long_name), ProfileSetDisplayNameResponse)
    asked = await send(ana, room_id, "!profile set org Vitens")
    _, answer = await wait_for_event(
        owner, lambda event: event.sender == copbot and in_reply_to(event) == asked, timeout=MATRIX_STEP
    )
    assert content_of(answer)["body"] == "Saved org: Vitens", content_of(answer)
    assert await stored_name(bot, ana.user_id, long_name[:255]) == long_name[:255]


async def test_matrix_a_display_name_that_is_another_members_id_stays_the_text_of_its_own_pill(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    """Pills replaced each mentioned id in turn, over the HTML made so far: a member named after another's
    Matrix id had that member's pill put inside their own, so copbot's thanks showed two pills of the other
    member (the first one empty, the tags nested) and none of theirs."""
    owner, ana, bo = [await members(name) for name in ("owner", "ana", "bo")]
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id), plugins=PLUGINS)
    copbot = adapter_of(bot).user_id
    room_id = await room_with_bot(owner, copbot, ana, bo)
    assert isinstance(await ana.set_displayname(f"{bo.user_id} <b>"), ProfileSetDisplayNameResponse)
    said = await send(ana, room_id, "Step-testing at night finds leaks")
    await send_event(
        bo,
        room_id,
        "m.reaction",
        {"m.relates_to": {"rel_type": "m.annotation", "event_id": said, "key": "📌"}},
    )
    _, thanks = await wait_for_event(
        owner, lambda event: event.sender == copbot and in_reply_to(event) == said, timeout=MATRIX_STEP
    )
    content = content_of(thanks)
    check_matrix_content(content, {ana.user_id, bo.user_id})
    formatted = content["formatted_body"]
    ana_pill = f'<a href="https://matrix.to/#/{ana.user_id}">{html.escape(bo.user_id)} &lt;b&gt;</a>'
    assert ana_pill in formatted, formatted
    assert formatted.count("<a ") == 2 and formatted.count(f"#/{bo.user_id}") == 1, formatted


def test_matrix_render_keeps_member_text_as_text_everywhere() -> None:
    """The adapter's own rendering, for every shape a message takes: text, card, poll, its end, an edit."""
    ana = Member("matrix", "@ana:example.org", "Ana <b>")
    members = {ana.id}
    card = Card(PAYLOAD, ((PAYLOAD, PAYLOAD),), footer=PAYLOAD)
    shapes = [
        message_content(Content(f"{ana.id} said: {PAYLOAD}", mentions=(ana,))),
        message_content(Content(PAYLOAD, card=card)),
        edit_content("$original", Content(PAYLOAD, card=card, mentions=(ana,))),
        poll_start_content(PollSpec(SHORT_A, (SHORT_A, SHORT_B)), intro=PAYLOAD),
        poll_end_content("$poll", f"Results of {SHORT_A}: {SHORT_B}"),
    ]
    for content in shapes:
        check_matrix_content(content, members)
    assert shapes[0]["m.mentions"] == {"user_ids": [ana.id]}
    assert 'href="https://matrix.to/#/@ana:example.org">Ana &lt;b&gt;</a>' in shapes[0]["formatted_body"]


# --- the web ----------------------------------------------------------------------------------------------

PAGES = ["/", "/c/cop", "/c/cop/repertoire", "/c/cop/repertoire?q=alert", "/c/cop/value"]
RAW = [SCRIPT, IMAGE, PILL, "<@&123>", 'href="javascript']  # (a shared item's own https link is a link)


async def test_web_pages_and_feeds_show_member_text_as_text(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(
        list(PLUGINS),
        communities=[{"slug": "cop", "name": "Water CoP", "public": True}],
        plugins={"digest": {"rooms": {"cop": {"console": "console"}}}},
    )
    for line in member_lines(PAYLOAD):
        await bot.say(f"ana> {line}")
    await bot.say("ana> !profile set public on")
    await bot.say("ana>> 4")  # the value story's cycle: realized, and public as asked
    for line in moderator_lines(PAYLOAD):
        await bot.say(line)
    posted = " ".join(await bot.say("!digest now"))
    assert "Posted" in posted, posted

    async with TestClient(TestServer(create_app(bot.services))) as client:
        for path in PAGES:
            response = await client.get(path)
            assert response.status == 200, path
            page = await response.text()
            for raw in RAW:
                assert raw not in page, f"{raw} unescaped in {path}"
            if path != "/":
                assert html.escape(SCRIPT) in page or html.escape(SCRIPT, quote=False) in page, path

        response = await client.get("/c/cop/meetings.ics")
        assert response.status == 200
        calendar = icalendar.Calendar.from_ical(await response.text())
        events = [part for part in calendar.walk("VEVENT")]
        assert [str(event["SUMMARY"]) for event in events] == [PAYLOAD]  # one property, the text as typed
        assert [str(event["LOCATION"]) for event in events] == [PAYLOAD]

        response = await client.get("/c/cop/digest.atom")
        assert response.status == 200
        feed = ElementTree.fromstring(await response.read())
        namespace = {"atom": "http://www.w3.org/2005/Atom"}
        contents = [
            entry.findtext("atom:content", "", namespace) for entry in feed.iterfind("atom:entry", namespace)
        ]
        assert contents, "the digest's feed has no entry"
        for content in contents:  # the entry's HTML, as a feed reader renders it
            parser = Tags()
            parser.feed(content)
            assert {tag for tag, _ in parser.found} <= ALLOWED_TAGS, content
            assert html.escape(SCRIPT) in content or html.escape(SCRIPT, quote=False) in content

        response = await client.get("/c/cop/repertoire.md")
        assert response.status == 200
        markdown = await response.text()
        assert "[x](javascript" not in markdown and "<script>" not in markdown


async def test_a_nul_in_the_repertoire_pages_search_is_no_500(console_bot_factory, database_url: str) -> None:  # type: ignore[no-untyped-def]
    """A tag or words in the repertoire page's address reach the database's query; PostgreSQL refuses a NUL
    in text, so ``?tag=%00`` answered 500 (on SQLite, ``?tag=gis%00`` found nothing). The page now searches
    for the rest, as a command does."""
    bot = await console_bot_factory(
        list(PLUGINS),
        database_url=database_url,
        communities=[{"slug": "cop", "name": "Water CoP", "public": True}],
    )
    await bot.say('!share tool "Leak map" https://example.org/map of the night\'s leaks #gis')
    async with TestClient(TestServer(create_app(bot.services))) as client:
        for query in ("tag=gis%00", "tag=%00", "q=map&tag=%00gis", "q=leak%00s%00"):
            response = await client.get(f"/c/cop/repertoire?{query}")
            page = await response.text()
            assert response.status == 200, (query, page)
            assert "Leak map" in page, query


TERMINAL = "\x1b]0;pwned\x07\x1b[2J\x9b31m\x08"  # a window title, clear screen, an 8-bit CSI, a backspace


def test_the_repertoire_exported_to_a_terminal_carries_no_control_characters(tmp_path: Path) -> None:
    """``copbot export repertoire`` writes the Markdown to standard output, which is the operator's terminal,
    and an item's text keeps what a member typed: escape sequences in it (over Matrix, any character) retitled
    the window, cleared the screen or wrote over the export, and a Markdown file holds no such thing. They
    are left out of the Markdown now, with the text around them kept."""
    typed = f'!share story "Night leaks" We found {TERMINAL}two leaks https://example.org/a{TERMINAL}b\n'
    assert copbot(tmp_path, "run", stdin=typed).returncode == 0
    result = subprocess.run(
        [sys.executable, "-m", "bot", "export", "repertoire", "--community", "cop"],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
        env=environment(),
    )
    assert result.returncode == 0, result.stderr
    exported = result.stdout.decode("utf-8")
    assert "We found \\]0;pwned\\[2J31m" in exported, exported  # the text, its Markdown escaped
    shown = {char for char in exported if unicodedata.category(char) == "Cc"}
    assert shown <= {"\n"}, shown
