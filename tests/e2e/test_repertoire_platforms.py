"""The repertoire through the real platform paths: Discord (discord.py against the tests' Discord server) and
Matrix (matrix-nio against a real Synapse).

Each test asserts what members see — the requests copbot makes, the events members' clients receive — and
what is stored: the rows of repertoire_items, with who is credited, who saved it and where it came from.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

from nio import AsyncClient, Event, RedactedEvent, RedactionEvent, RoomGetEventResponse, RoomRedactResponse
from sqlalchemy import func, select

from bot.app import CopBot
from bot.tables import ActivityEvent, MemberRow
from plugins.repertoire.models import Item, Upvote
from plugins.repertoire.plugin import Repertoire
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
from tests.e2e.test_discord import EPHEMERAL, BotFactory
from tests.e2e.test_matrix import download
from tests.e2e.test_meetings_platforms import settled
from tests.harness.discord_server import FakeDiscord, Request
from tests.harness.synapse import Synapse, wait_for_event

PLUGINS = (Repertoire,)
TIP = "Step-testing at night finds leaks in a day, see https://example.org/step #Leakage #night-flow"
TIP_TITLE = "Step-testing at night finds leaks in a day, see example.org"
TIP_BODY = "Step-testing at night finds leaks in a day, see https://example.org/step"


# --- helpers ----------------------------------------------------------------------------------------------


async def stored_items(bot: CopBot) -> list[Item]:
    async with bot.db.session() as session:
        return list((await session.execute(select(Item).order_by(Item.id))).scalars())  # type: ignore[arg-type]


async def items_once(bot: CopBot, count: int) -> list[Item]:
    """The stored items once there are ``count`` of them (the unit of work commits before the thanks)."""

    async def check() -> list[Item] | None:
        items = await stored_items(bot)
        return items if len(items) == count else None

    return await settled(check, f"{count} stored item(s)")


async def platform_id(bot: CopBot, member_id: int) -> str:
    """The platform's id of a member row (a Discord user id, a Matrix user id)."""
    async with bot.db.session() as session:
        row = await session.get(MemberRow, member_id)
    assert row is not None
    return row.platform_id


async def reactions_of(bot: CopBot, user: str) -> int:
    """How many reactions of ``user`` (a platform id) reached copbot: each is recorded as activity."""
    await bot.pipeline.journal.flush()
    async with bot.db.session() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(ActivityEvent)
            .join(MemberRow, MemberRow.id == ActivityEvent.member_id)
            .where(ActivityEvent.kind == "reaction", MemberRow.platform_id == user)
        )
    return int(count or 0)


# --- Discord ------------------------------------------------------------------------------------------------


async def slash(
    discord_server: FakeDiscord, command: str, options: dict[str, Any], user: str, *, subcommand: str = ""
) -> Request:
    """``user`` runs a slash command; copbot's response to the interaction (its callback)."""
    more = {"subcommand": subcommand} if subcommand else {}
    record = await discord_server.interaction_slash(command, options, user=user, **more)
    response = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert response.json["type"] == 4, response.json  # answered at once, not deferred
    return response


def posted(discord_server: FakeDiscord, channel: str, since: int) -> list[Request]:
    """The messages copbot posted in ``channel`` since the ``since``-th request."""
    path = f"/channels/{channel}/messages"
    return [r for r in discord_server.requests[since:] if r.method == "POST" and r.path == path]


def replies_to(request: Request, message: dict[str, Any]) -> bool:
    reference = (request.json or {}).get("message_reference") or {}
    return str(reference.get("message_id")) == message["id"]


async def answer_to(discord_server: FakeDiscord, message: dict[str, Any], since: int) -> Request:
    """copbot's reply to ``message`` (a command typed in the channel)."""
    return await discord_server.wait_for_request(
        "POST",
        rf"/channels/{message['channel_id']}/messages$",
        start=since,
        predicate=lambda request: replies_to(request, message),
    )


async def test_discord_a_pin_saves_the_message_crediting_its_author_once_and_thanks_both(
    discord_server: FakeDiscord,
    discord_bot: BotFactory,
) -> None:
    bot = await discord_bot(plugins=PLUGINS)
    general = discord_server.channel_id("general")
    carol, bob = discord_server.user_id("carol"), discord_server.user_id("bob")
    said = await discord_server.message_create("general", "carol", TIP)

    mark = len(discord_server.requests)
    await discord_server.reaction_add(said["id"], "bob", "📌")
    thanks = await discord_server.wait_for_request("POST", rf"/channels/{general}/messages$", start=mark)
    assert thanks.json["content"] == (
        f"📌 Saved to the repertoire as #1 — thanks <@{carol}> for sharing it and <@{bob}> for saving it. "
        "See it with /repertoire show 1."  # slash commands work on Discord whatever the intents
    )
    assert int(thanks.json["message_reference"]["message_id"]) == int(said["id"])  # a reply to the original
    mentions = thanks.json["allowed_mentions"]
    assert sorted(str(user) for user in mentions["users"]) == sorted([carol, bob])  # exactly those two
    assert mentions["parse"] == [] and mentions.get("roles", []) == []
    shown = discord_server.bot_messages("general")[-1]  # as it stands in the channel
    assert shown["message_reference"]["message_id"] == said["id"]
    assert sorted(user["id"] for user in shown["mentions"]) == sorted([carol, bob])
    assert discord_server.find("GET", rf"/channels/{general}/messages/{said['id']}$")  # read back as typed

    [item] = await items_once(bot, 1)
    assert await platform_id(bot, item.author_id) == carol  # who wrote it, not who reacted
    assert await platform_id(bot, item.added_by_id) == bob
    guild = discord_server.guild_id
    assert item.source_link == f"https://discord.com/channels/{guild}/{general}/{said['id']}"
    assert (item.origin_platform, item.origin_room) == ("discord", general)
    assert item.origin_message_id == said["id"]
    assert (item.kind, item.title, item.body) == ("experience", TIP_TITLE, TIP_BODY)
    assert (item.url, item.tags) == ("https://example.org/step", "leakage,night-flow")

    mark = len(discord_server.requests)
    await discord_server.reaction_add(said["id"], "alice", "📌")  # saved already: once is enough
    # alice's events are handled one at a time, in order: her command is answered after her 📌 was handled.
    asked = await discord_server.message_create("general", "alice", "!repertoire search step testing")
    answer = await answer_to(discord_server, asked, mark)
    # "\[" shows as "[" on Discord: a bracket in copbot's text can never open a masked link
    assert answer.json["content"].splitlines()[1] == f"#1 \\[experience] {TIP_TITLE} — Carol"
    assert await reactions_of(bot, discord_server.user_id("alice")) == 1  # her 📌 did reach copbot
    assert posted(discord_server, general, mark) == [answer]  # and was not thanked
    assert len(await stored_items(bot)) == 1

    card = await slash(discord_server, "repertoire", {"item_id": 1}, "bob", subcommand="show")
    [embed] = card.json["data"]["embeds"]
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert (fields["Shared by"], fields["Original"]) == ("Carol", item.source_link)  # credited, linked
    assert fields["Tags"] == "\\#leakage #night-flow"


async def test_discord_two_members_pinning_at_once_save_the_message_once_and_thank_once(
    discord_server: FakeDiscord,
    discord_bot: BotFactory,
) -> None:
    """Discord members' events are handled concurrently: both 📌s find the message unsaved."""
    bot = await discord_bot(plugins=PLUGINS)
    general = discord_server.channel_id("general")
    carol = discord_server.user_id("carol")
    said = await discord_server.message_create("general", "carol", TIP)
    mark = len(discord_server.requests)
    await discord_server.reaction_add(said["id"], "bob", "📌")
    await discord_server.reaction_add(said["id"], "alice", "📌")
    asked = [
        await discord_server.message_create("general", user, "!repertoire search step testing")
        for user in ("bob", "alice")
    ]
    answers = [await answer_to(discord_server, message, mark) for message in asked]  # both 📌s handled

    [item] = await stored_items(bot)
    saver = await platform_id(bot, item.added_by_id)
    assert await platform_id(bot, item.author_id) == carol
    assert saver in (discord_server.user_id("bob"), discord_server.user_id("alice"))  # whoever came first
    sent = posted(discord_server, general, mark)
    [thanks] = [request for request in sent if replies_to(request, said)]
    assert len(sent) == 1 + len(answers)  # one thanks, and the two answers
    assert sorted(str(user) for user in thanks.json["allowed_mentions"]["users"]) == sorted([carol, saver])
    # …and no error: the copbot_errors fixture fails the test on any logged handler error


async def test_discord_a_saved_message_deleted_on_discord_leaves_the_repertoire_with_its_upvotes(
    discord_server: FakeDiscord,
    discord_bot: BotFactory,
) -> None:
    """carol deleted her message after bob had saved it with 📌: copbot kept it, searchable, credited to her
    and linked to a message that no longer exists. Now her copy goes with it — and two messages deleted at
    once by a moderator (MESSAGE_DELETE_BULK) take theirs too; a deletion of what was never saved changes
    nothing."""
    bot = await discord_bot(plugins=PLUGINS)
    general = discord_server.channel_id("general")
    said = await discord_server.message_create("general", "carol", TIP)
    kept = await discord_server.message_create("general", "bob", "Pressure logging at night finds leaks")
    others = [
        await discord_server.message_create("general", "carol", f"Night flow tip {n}: log pressure at 3 am")
        for n in (1, 2)
    ]
    for message in (said, kept, *others):
        await discord_server.reaction_add(message["id"], "alice", "📌")
    await items_once(bot, 4)
    mark = len(discord_server.requests)
    upvoted = await discord_server.message_create("general", "bob", "!repertoire upvote 1")
    await answer_to(discord_server, upvoted, mark)

    async def upvotes() -> list[Any]:
        async with bot.db.session() as session:
            return list((await session.execute(select(Upvote))).all())

    await settled(upvotes, "bob's upvote stored")

    deleting = len(discord_server.requests)
    await discord_server.message_delete(said["id"])
    await discord_server.message_delete_bulk([message["id"] for message in others])
    await discord_server.message_delete(upvoted["id"])  # never saved: nothing to do

    async def only_kept() -> list[Item] | None:
        items = await stored_items(bot)
        return items if [item.origin_message_id for item in items] == [kept["id"]] else None

    await settled(only_kept, "the deleted messages' items gone")
    assert await upvotes() == []
    mark = len(discord_server.requests)
    asked = await discord_server.message_create("general", "bob", "!repertoire search step testing")
    answer = await answer_to(discord_server, asked, mark)
    assert answer.json["content"].startswith("Nothing in the repertoire matches 'step testing'")
    asked = await discord_server.message_create("general", "bob", "!repertoire show 1")
    answer = await answer_to(discord_server, asked, mark)
    assert answer.json["content"].startswith("There is no item #1 here")
    asked = await discord_server.message_create("general", "bob", "!repertoire search night flow")
    answer = await answer_to(discord_server, asked, mark)
    assert "Night flow tip" not in answer.json["content"]
    assert len(posted(discord_server, general, deleting)) == 3  # the answers: nothing said of the deletions


async def test_discord_a_saved_message_deleted_on_discord_leaves_the_digest_s_web_copy(
    discord_server: FakeDiscord,
    discord_bot: BotFactory,
) -> None:
    """carol deleted her message after alice had saved it with 📌 and the digest had shown it: the item
    left the repertoire, but its title stayed in the digest's web copy (the dashboard's latest digest, the
    Atom feed). Now its line there says "an item since removed"; bob's item stays."""
    from plugins.digest.models import DigestPost
    from plugins.digest.plugin import DigestPlugin

    general = discord_server.channel_id("general")
    bot = await discord_bot(
        plugins=(*PLUGINS, DigestPlugin), plugin_config={"digest": {"rooms": {"water": {"discord": general}}}}
    )
    said = await discord_server.message_create("general", "carol", TIP)
    kept = await discord_server.message_create("general", "bob", "Pressure logging at night finds leaks")
    for message in (said, kept):
        await discord_server.reaction_add(message["id"], "alice", "📌")
    await items_once(bot, 2)

    async def copy() -> DigestPost | None:
        async with bot.db.session() as session:
            return (await session.execute(select(DigestPost))).scalars().one_or_none()

    await discord_server.message_create("general", "alice", "!digest now")
    posted_copy = await settled(copy, "the digest posted")
    assert "Step-testing at night" in posted_copy.text and "Pressure logging" in posted_copy.text

    await discord_server.message_delete(said["id"])

    async def without_it() -> DigestPost | None:
        now = await copy()
        return now if now is not None and "Step-testing" not in now.text + now.html else None

    after = await settled(without_it, "the deleted item's line gone from the digest's copy")
    assert "• an item since removed" in after.text and "<li>an item since removed</li>" in after.html
    assert "#2 [experience] Pressure logging at night finds leaks — a member" in after.text, after.text


async def thanks_kept(bot: CopBot, count: int) -> list[Item] | None:
    """The stored items once each has the id of copbot's "📌 Saved …" thanks (kept after it is sent)."""
    items = await stored_items(bot)
    return items if len(items) == count and all(item.thanks_message_id for item in items) else None


async def test_discord_a_saved_message_deleted_takes_copbot_s_thanks_for_it_along(
    discord_server: FakeDiscord,
    discord_bot: BotFactory,
) -> None:
    """carol deleted her message after alice had saved it with 📌: the item left the repertoire, but
    copbot's "📌 Saved to the repertoire as #1 …" stayed in the channel, pointing at an item that is gone.
    Now copbot deletes its own thanks with it (DELETE of its message); the thanks for bob's saved message
    stays."""
    bot = await discord_bot(plugins=PLUGINS)
    general = discord_server.channel_id("general")
    said = await discord_server.message_create("general", "carol", TIP)
    kept = await discord_server.message_create("general", "bob", "Pressure logging at night finds leaks")
    for message in (said, kept):
        await discord_server.reaction_add(message["id"], "alice", "📌")
    items = await settled(lambda: thanks_kept(bot, 2), "both thanks' ids stored")

    def thanks_for(message: dict[str, Any]) -> dict[str, Any]:
        return next(
            shown
            for shown in discord_server.bot_messages("general")
            if (shown.get("message_reference") or {}).get("message_id") == message["id"]
        )

    thanked, other = thanks_for(said), thanks_for(kept)
    assert [item.thanks_message_id for item in items] == [thanked["id"], other["id"]]
    assert thanked["content"].startswith("📌 Saved to the repertoire as #1")
    deleting = len(discord_server.requests)
    await discord_server.message_delete(said["id"])
    await discord_server.wait_for_request(
        "DELETE", rf"/channels/{general}/messages/{thanked['id']}$", start=deleting
    )
    left = await settled(lambda: thanks_kept(bot, 1), "the deleted message's item gone")
    assert [item.origin_message_id for item in left] == [kept["id"]]
    assert [shown["id"] for shown in discord_server.bot_messages("general")] == [other["id"]]
    deletes = [r for r in discord_server.requests[deleting:] if r.method == "DELETE"]
    assert [r.path for r in deletes] == [f"/channels/{general}/messages/{thanked['id']}"]
    assert posted(discord_server, general, deleting) == []  # and nothing said about it


async def test_discord_share_then_search_and_show_by_slash_commands(
    discord_server: FakeDiscord,
    discord_bot: BotFactory,
) -> None:
    bot = await discord_bot(plugins=PLUGINS)
    bob = discord_server.user_id("bob")
    shared = await slash(
        discord_server,
        "share",
        {
            "kind": "tool",
            "title": "Leak map of Delft",
            "text": "https://example.org/leakmap marks every leak we found, street by street #GIS #leakage",
        },
        "bob",
    )
    data = shared.json["data"]
    assert data["content"] == (
        "Added to the repertoire as #1 (tool): Leak map of Delft #gis #leakage. "
        "Find it with /repertoire show 1 or /repertoire search."
    )
    assert not (data.get("flags") or 0) & EPHEMERAL
    [item] = await items_once(bot, 1)
    assert (item.kind, item.title, item.url, item.tags) == (
        "tool",
        "Leak map of Delft",
        "https://example.org/leakmap",
        "gis,leakage",
    )
    assert item.body == "https://example.org/leakmap marks every leak we found, street by street"
    assert await platform_id(bot, item.author_id) == await platform_id(bot, item.added_by_id) == bob
    assert (item.origin_platform, item.origin_message_id, item.source_link) == (None, None, "")

    found = await slash(discord_server, "repertoire", {"query": "leaks"}, "alice", subcommand="search")
    lines = found.json["data"]["content"].splitlines()
    assert lines[0] == "Repertoire results for 'leaks':"
    assert lines[1] == "#1 \\[tool] Leak map of Delft — Bob"  # shown as "[tool]"
    snippet = lines[2]
    assert snippet.startswith("   ") and "«leak»" in snippet and "street by street" in snippet

    await slash(
        discord_server,
        "share",
        {"kind": "story", "title": "Night flow **bold** @everyone", "text": "We logged pressure at night"},
        "carol",
    )
    await items_once(bot, 2)  # carol's answer goes out before her unit of work commits; alice is quicker
    card = await slash(discord_server, "repertoire", {"item_id": 2}, "alice", subcommand="show")
    data = card.json["data"]
    [embed] = data["embeds"]
    assert embed["title"] == "\\#2 Night flow \\*\\*bold\\*\\* @\u200beveryone"  # no bold, no @everyone
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert (fields["Kind"], fields["Shared by"]) == ("story", "Carol")
    assert embed["footer"]["text"] == "We logged pressure at night"
    mentions = data["allowed_mentions"]
    assert mentions["parse"] == [] and mentions.get("users", []) == [] and mentions.get("roles", []) == []


async def test_discord_export_answers_with_the_json_file_attached(
    discord_server: FakeDiscord,
    discord_bot: BotFactory,
) -> None:
    await discord_bot(plugins=PLUGINS)
    await slash(
        discord_server,
        "share",
        {"kind": "tool", "title": "Leak map of Delft", "text": "https://example.org/leakmap #gis"},
        "bob",
    )
    await slash(
        discord_server,
        "share",
        {"kind": "practice", "title": "Pressure management", "text": "Lower night pressure, fewer bursts"},
        "carol",
    )
    exported = await slash(discord_server, "repertoire", {"format": "json"}, "alice", subcommand="export")
    assert exported.headers["Content-Type"].startswith("multipart/form-data")
    assert exported.json["data"]["content"] == "The repertoire of Water CoP, as json."
    [file] = exported.files
    assert file.filename == "water-repertoire.json"
    document = json.loads(file.data)
    assert (document["format"], document["community"]) == ("copbot-repertoire", "Water CoP")
    assert [(i["id"], i["kind"], i["title"], i["author"], i["tags"]) for i in document["items"]] == [
        (1, "tool", "Leak map of Delft", "Bob", ["gis"]),
        (2, "practice", "Pressure management", "Carol", []),
    ]


# --- Matrix -------------------------------------------------------------------------------------------------


def pin(event_id: str) -> dict[str, Any]:
    return {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": "📌"}}


def pill_of(client: AsyncClient) -> str:
    return f'<a href="https://matrix.to/#/{client.user_id}">'


async def test_matrix_a_pin_saves_the_message_crediting_its_sender_once_and_thanks_both(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    owner, ana, bo, cy = [await members(name) for name in ("owner", "ana", "bo", "cy")]
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id), plugins=PLUGINS)
    bot_id = adapter_of(bot).user_id
    room_id = await room_with_bot(owner, bot_id, ana, bo, cy)

    said = await send(ana, room_id, TIP)
    await send_event(bo, room_id, "m.reaction", pin(said))
    _, thanks = await wait_for_event(
        owner, lambda e: e.sender == bot_id and in_reply_to(e) == said, timeout=MATRIX_STEP
    )
    content = content_of(thanks)
    assert content["body"] == (
        f"📌 Saved to the repertoire as #1 — thanks {ana.user_id} for sharing it and {bo.user_id} "
        "for saving it. See it with !repertoire show 1."
    )
    assert content["m.mentions"] == {"user_ids": sorted([ana.user_id, bo.user_id])}
    assert pill_of(ana) in content["formatted_body"] and pill_of(bo) in content["formatted_body"]
    assert cy.user_id not in content["formatted_body"]

    [item] = await items_once(bot, 1)
    assert await platform_id(bot, item.author_id) == ana.user_id  # who wrote it, not who reacted
    assert await platform_id(bot, item.added_by_id) == bo.user_id
    via = bot_id.split(":", 1)[1]
    assert item.source_link == (
        f"https://matrix.to/#/{quote(room_id, safe='')}/{quote(said, safe='')}?via={via}"
    )
    assert (item.origin_platform, item.origin_room, item.origin_message_id) == ("matrix", room_id, said)
    assert (item.title, item.body, item.url, item.tags) == (
        TIP_TITLE,
        TIP_BODY,
        "https://example.org/step",
        "leakage,night-flow",
    )

    await send_event(cy, room_id, "m.reaction", pin(said))  # saved already: once is enough
    asked = await send(cy, room_id, "!repertoire search step testing")

    def thanks_or_answer(event: Event) -> bool:
        body = content_of(event).get("body", "")
        return event.sender == bot_id and (body.startswith("📌") or in_reply_to(event) == asked)

    # The adapter handles a room's events in order: a second thanks would come before the answer.
    _, first = await wait_for_event(owner, thanks_or_answer, timeout=MATRIX_STEP)
    assert in_reply_to(first) == asked, content_of(first)
    assert f"#1 [experience] {TIP_TITLE}" in content_of(first)["body"]
    assert await reactions_of(bot, cy.user_id) == 1  # cy's 📌 did reach copbot
    assert len(await stored_items(bot)) == 1


async def test_matrix_a_pin_after_a_restart_keeps_the_name_of_a_sender_silent_since(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    """A message is read back when pinned. After a restart copbot knows the names of those who spoke since
    (their member events come with their messages); ana had not: her name was read as her id's localpart,
    and stored over "Ana Lima"."""
    owner, ana, bo = [await members(name) for name in ("owner", "ana", "bo")]
    async with asyncio.timeout(MATRIX_STEP):
        await ana.set_displayname("Ana Lima")
    account = await asyncio.to_thread(bots.account, owner.user_id)
    bot = await bots.start(account, plugins=PLUGINS)
    bot_id = adapter_of(bot).user_id
    room_id = await room_with_bot(owner, bot_id, ana, bo)
    said = await send(ana, room_id, TIP)
    await send(bo, room_id, "hello")

    async def named() -> bool:
        await bot.pipeline.journal.flush()
        return await stored_name(bot, ana.user_id) == "Ana Lima"

    await settled(named, "ana's name stored")
    await bots.stop(bot)

    bot = await bots.start(account, plugins=PLUGINS)
    await send_event(bo, room_id, "m.reaction", pin(said))
    _, thanks = await wait_for_event(
        owner, lambda e: e.sender == bot_id and in_reply_to(e) == said, timeout=MATRIX_STEP
    )
    assert ">Ana Lima</a> for sharing it" in content_of(thanks)["formatted_body"], content_of(thanks)
    assert await stored_name(bot, ana.user_id) == "Ana Lima"


async def stored_name(bot: CopBot, user_id: str) -> str | None:
    async with bot.db.session() as session:
        return await session.scalar(select(MemberRow.display_name).where(MemberRow.platform_id == user_id))


async def test_matrix_export_arrives_as_a_markdown_file(  # type: ignore[no-untyped-def]
    bots: Bots, members, synapse: Synapse
) -> None:
    owner, ana = await members("owner"), await members("ana")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id), plugins=PLUGINS)
    bot_id = adapter_of(bot).user_id
    room_id = await room_with_bot(owner, bot_id, ana)
    shared = await send(ana, room_id, '!share story "Night flow" We logged pressure at night #leakage')
    _, added = await wait_for_event(
        ana, lambda e: e.sender == bot_id and in_reply_to(e) == shared, timeout=MATRIX_STEP
    )
    assert content_of(added)["body"].startswith("Added to the repertoire as #1 (story): Night flow #leakage.")
    await items_once(bot, 1)

    asked = await send(ana, room_id, "!repertoire export")
    _, text = await wait_for_event(
        ana, lambda e: e.sender == bot_id and in_reply_to(e) == asked, timeout=MATRIX_STEP
    )
    assert content_of(text)["body"] == "The repertoire of Water CoP, as md."
    _, file = await wait_for_event(
        ana,
        lambda e: e.sender == bot_id and content_of(e).get("msgtype") == "m.file",
        timeout=MATRIX_STEP,
    )
    content = content_of(file)
    assert (content["body"], content["filename"]) == ("water-repertoire.md", "water-repertoire.md")
    assert content["info"]["mimetype"] == "text/markdown"
    assert content["url"].startswith("mxc://")
    data = await asyncio.to_thread(download, synapse, content["url"], ana.access_token)
    assert content["info"]["size"] == len(data)
    markdown = data.decode()
    assert markdown.startswith("# Water CoP: the repertoire")
    assert "## Stories" in markdown and "### #1 Night flow" in markdown
    assert "We logged pressure at night" in markdown


async def test_matrix_a_saved_message_redacted_leaves_the_repertoire(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    """ana redacted her message after bo had saved it with 📌: copbot kept it, searchable, credited to her.
    Now her copy goes with it; the redaction of a message never saved changes nothing."""
    owner, ana, bo, cy = [await members(name) for name in ("owner", "ana", "bo", "cy")]
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id), plugins=PLUGINS)
    bot_id = adapter_of(bot).user_id
    room_id = await room_with_bot(owner, bot_id, ana, bo, cy)
    said = await send(ana, room_id, TIP)
    kept = await send(cy, room_id, "Pressure logging at night finds leaks")
    for message in (said, kept):
        await send_event(bo, room_id, "m.reaction", pin(message))
    await items_once(bot, 2)
    chatter = await send(ana, room_id, "thanks all")

    async with asyncio.timeout(MATRIX_STEP):
        assert isinstance(await ana.room_redact(room_id, said, reason="outdated"), RoomRedactResponse)
        assert isinstance(await ana.room_redact(room_id, chatter), RoomRedactResponse)

    async def only_kept() -> list[Item] | None:
        items = await stored_items(bot)
        return items if [item.origin_message_id for item in items] == [kept] else None

    await settled(only_kept, "the redacted message's item gone")
    asked = await send(cy, room_id, "!repertoire search step testing")
    _, answer = await wait_for_event(
        cy, lambda e: e.sender == bot_id and in_reply_to(e) == asked, timeout=MATRIX_STEP
    )
    assert content_of(answer)["body"].startswith("Nothing in the repertoire matches 'step testing'")


async def test_matrix_a_saved_message_redacted_takes_copbot_s_thanks_for_it_along(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    """ana redacted her message after bo had saved it with 📌: the item left the repertoire, but copbot's
    "📌 Saved to the repertoire as #1 …" stayed in the room, pointing at an item that is gone. Now copbot
    redacts its own thanks with it; the thanks for cy's saved message stays."""
    owner, ana, bo, cy = [await members(name) for name in ("owner", "ana", "bo", "cy")]
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id), plugins=PLUGINS)
    bot_id = adapter_of(bot).user_id
    room_id = await room_with_bot(owner, bot_id, ana, bo, cy)
    said = await send(ana, room_id, TIP)
    kept = await send(cy, room_id, "Pressure logging at night finds leaks")
    thanks: dict[str, str] = {}
    for message in (said, kept):
        await send_event(bo, room_id, "m.reaction", pin(message))
        _, event = await wait_for_event(
            owner, lambda e, m=message: e.sender == bot_id and in_reply_to(e) == m, timeout=MATRIX_STEP
        )
        thanks[message] = event.event_id
    items = await settled(lambda: thanks_kept(bot, 2), "both thanks' ids stored")
    assert [item.thanks_message_id for item in items] == [thanks[said], thanks[kept]]

    async with asyncio.timeout(MATRIX_STEP):
        assert isinstance(await ana.room_redact(room_id, said, reason="outdated"), RoomRedactResponse)
    _, redaction = await wait_for_event(
        owner, lambda e: isinstance(e, RedactionEvent) and e.sender == bot_id, timeout=MATRIX_STEP
    )
    assert redaction.redacts == thanks[said]
    left = await settled(lambda: thanks_kept(bot, 1), "the redacted message's item gone")
    assert [item.origin_message_id for item in left] == [kept]
    async with asyncio.timeout(MATRIX_STEP):
        other = await owner.room_get_event(room_id, thanks[kept])
    assert isinstance(other, RoomGetEventResponse) and not isinstance(other.event, RedactedEvent)
