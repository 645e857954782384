"""The repertoire through the console: share, 📌 to save, search, curate, export, pass to a sister
community, and experts who learn from it — each rule, and every bad input writing nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.clock import FakeClock
from bot.model import MessageDeleted
from bot.tables import ActivityEvent, MemberRow
from bot.web.app import create_app
from plugins.meetings.plugin import Meetings
from plugins.profiles.plugin import Profiles
from plugins.repertoire.export import Exported, as_markdown, from_json
from plugins.repertoire.models import Item, Upvote, Use
from plugins.repertoire.plugin import Repertoire
from plugins.repertoire.search import index_item
from plugins.roles.plugin import Roles

PLUGINS = [Repertoire, Profiles]
COMMUNITIES: list[dict[str, Any]] = [
    {"slug": "water", "name": "Water CoP", "share_with": ["wastewater"]},
    {"slug": "wastewater", "name": "Wastewater CoP"},
]


async def count(bot, model, *where) -> int:  # type: ignore[no-untyped-def]
    async with bot.services.db.session() as session:
        query = select(func.count()).select_from(model)
        for condition in where:
            query = query.where(condition)
        return int(await session.scalar(query) or 0)


async def stored(bot, *item_ids: int) -> list[Item]:  # type: ignore[no-untyped-def]
    async with bot.services.db.session() as session:
        found = [await session.get(Item, item_id) for item_id in item_ids]
    assert all(item is not None for item in found)
    return found  # type: ignore[return-value]


def reply(lines: list[str]) -> str:
    return lines[1].split("> ", 1)[1]


async def activity_of(bot, kind: str) -> list[str]:  # type: ignore[no-untyped-def]
    async with bot.services.db.session() as session:
        rows = await session.execute(
            select(MemberRow.platform_id)
            .join(ActivityEvent, ActivityEvent.member_id == MemberRow.id)
            .where(ActivityEvent.kind == kind)
        )
        return sorted(rows.scalars())


async def test_share_find_and_read(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    shared = await bot.say(
        'ana> !share tool "Leak map of Delft" https://example.org/leakmap every leak we found #GIS #leakage'
    )
    assert reply(shared) == (
        "Added to the repertoire as #1 (tool): Leak map of Delft #gis #leakage. "
        "Find it with !repertoire show 1 or !repertoire search."
    )
    await bot.say(
        'bo> !share story "Night flow" We logged pressure at night and found the leaks early #leakage'
    )
    await bot.say('cy> !share practice "Tariff reform" How the regulator phased tariffs in, bleak at first')
    found = await bot.say("dee> !repertoire search leaks")
    assert found[1] == "[8] copbot> Repertoire results for 'leaks':"
    assert found[2].startswith("    #1 [tool] Leak map of Delft — ana") or found[2].startswith(
        "    #2 [story] Night flow"
    )
    text = "\n".join(found)
    assert "#3" not in text  # "bleak" is not "leak"
    assert "«" in text  # a snippet marks the match
    only_tools = "\n".join(await bot.say("dee> !repertoire search leaks --kind tool"))
    assert "#1 [tool]" in only_tools and "#2" not in only_tools
    tagged = "\n".join(await bot.say("dee> !repertoire search leaks --tag #GIS"))
    assert "#1 [tool]" in tagged and "#2" not in tagged
    nothing = reply(await bot.say("dee> !repertoire search leakge"))
    assert nothing.startswith("Nothing in the repertoire matches 'leakge'. Tags close to it: #leakage.")
    untagged = reply(await bot.say("dee> !repertoire search leaks --kind tool --tag #leakge"))
    assert untagged.startswith(
        "Nothing in the repertoire matches 'leaks' with --kind tool and --tag #leakge. "
        "Tags close to that tag: #leakage."
    )
    common = await bot.say("dee> !repertoire search don't")  # no word left to look for: said so
    assert common[1].startswith(
        "[18] copbot> 'don't' has only words too common to search for; say what the item is about."
    )
    assert "Usage: !repertoire search" in common[1] and len(common) == 2
    shown = "\n".join(await bot.say("dee> !repertoire show 1"))
    assert (
        "#1 Leak map of Delft" in shown
        and "Shared by: ana" in shown
        and "Link: https://example.org/leakmap" in shown
    )
    assert await activity_of(bot, "repertoire_item") == ["ana", "bo", "cy"]


async def test_saving_a_message_with_a_pin_credits_its_author_once(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    await bot.say(
        "ana> Tip: step-testing at night finds leaks in a day, see https://example.org/step #leakage"
    )
    saved = await bot.say(":react bo 1 📌")
    assert saved[1] == (
        "[3] copbot> 📌 Saved to the repertoire as #1 — thanks @ana for sharing it and @bo for saving it. "
        "See it with !repertoire show 1."
    )
    assert await bot.say(":react cy 1 📌") == ["[4] * cy reacted 📌 to [1]"]  # saved once
    async with bot.services.db.session() as session:
        item = await session.get(Item, 1)
        author = await session.get(MemberRow, item.author_id) if item else None
    assert item is not None and author is not None and author.platform_id == "ana"  # not the reactor
    assert item.title == "Tip: step-testing at night finds leaks in a day, see example.org"
    assert item.url == "https://example.org/step" and item.tags == "leakage"
    assert await count(bot, Item) == 1
    assert await activity_of(bot, "message_saved") == ["ana"]
    found = "\n".join(await bot.say("!repertoire search step testing"))
    assert "#1 [experience]" in found


async def test_upvotes_uses_edits_and_removal_follow_their_rules(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    await bot.say('ana> !share practice "Pressure management" Lower night pressure, fewer bursts #pressure')
    assert reply(await bot.say("ana> !repertoire upvote 1")) == (
        "You cannot upvote what you shared yourself; nothing was changed."
    )
    assert reply(await bot.say("bo> !repertoire upvote 1")) == "Upvoted #1: Pressure management."
    assert reply(await bot.say("bo> !repertoire upvote 1")) == "You have already upvoted #1."
    await bot.say("cy> !repertoire upvote 1")
    assert await count(bot, Upvote) == 2 and await activity_of(bot, "upvote_received") == ["ana", "ana"]
    assert reply(await bot.say("bo> !repertoire used 1")).startswith("Noted: you applied #1")
    assert reply(await bot.say("bo> !repertoire used 1")) == "You have already said you applied #1."
    assert await count(bot, Use) == 1
    assert "Useful: 2 upvotes · applied by 1" in "\n".join(await bot.say("!repertoire show 1"))
    assert reply(await bot.say("bo> !repertoire edit 1 Mine now")) == (
        "Only who shared #1 can edit it; nothing was changed."
    )
    assert reply(await bot.say("ana> !repertoire edit 1 Lower night pressure by 10 m #pressure #bursts")) == (
        "#1 is updated."
    )
    assert reply(await bot.say("bo> !repertoire tag 1 #Asset-Management")) == (
        "#1 is tagged #pressure #bursts #asset-management."
    )
    top = await bot.say("!repertoire top")
    assert top[2].strip() == "1. #1 [practice] Pressure management — ana · 2▲"
    assert reply(await bot.say("bo> !repertoire remove 1")) == (
        "Only who shared #1 or a moderator can remove it; nothing was changed."
    )
    assert reply(await bot.say("ana> !repertoire remove 1")) == "#1 is removed from the repertoire."
    assert reply(await bot.say("bo> !repertoire search pressure")).startswith(
        "Nothing in the repertoire matches"
    )
    assert (
        reply(await bot.say("ana> !repertoire restore 1"))
        == "!repertoire restore is for moderators only; nothing was changed."
    )
    assert reply(await bot.say("ana> !repertoire remove 1")).startswith("There is no item #1 here")
    assert reply(await bot.say("!repertoire remove 1")) == (
        "#1 is removed already; !repertoire restore 1 brings it back."
    )
    assert reply(await bot.say("!repertoire restore 1")) == "#1 is back in the repertoire."
    assert "#1 [practice]" in "\n".join(await bot.say("bo> !repertoire search pressure"))


async def test_top_ranks_by_upvotes_then_newest_and_leaves_out_removed_and_other_kinds(
    console_bot_factory,
) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    await bot.say('ana> !share practice "Older" Lower night pressure #pressure')
    await bot.say('ana> !share practice "Newer" Log night flows #leakage')
    await bot.say('bo> !share tool "Liked" https://example.org/map #gis')
    await bot.say('bo> !share practice "Gone" Replaced by newer advice')
    for line in ("cy> !repertoire upvote 3", "ana> !repertoire upvote 3", "cy> !repertoire upvote 4"):
        await bot.say(line)
    await bot.say("bo> !repertoire remove 4")
    top = [line.strip() for line in (await bot.say("!repertoire top"))[2:]]
    assert top == [
        "1. #3 [tool] Liked — bo · 2▲",
        "2. #2 [practice] Newer — ana · 0▲",
        "3. #1 [practice] Older — ana · 0▲",
    ]
    practices = [line.strip() for line in (await bot.say("!repertoire top --kind practice"))[2:]]
    assert practices == ["1. #2 [practice] Newer — ana · 0▲", "2. #1 [practice] Older — ana · 0▲"]


async def test_an_item_passes_to_a_sister_community_with_its_origin_credited(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, communities=COMMUNITIES)
    await bot.say('ana> !share tool "Sludge calculator" https://example.org/sludge #sludge')
    assert reply(await bot.say("bo> !repertoire share 1 wastewater")).startswith("Only who shared #1")
    assert reply(await bot.say("ana> !repertoire share 1 drinking")).startswith(
        "'drinking' is not a sister community of Water CoP (sisters: wastewater)."
    )
    assert reply(await bot.say("ana> !repertoire share 1 wastewater")) == (
        "#1 is shared with Wastewater CoP as #2, credited to Water CoP and its author."
    )
    assert reply(await bot.say("ana> !repertoire share 1 wastewater")).startswith("#1 was already shared")
    async with bot.services.db.session() as session:
        copy = await session.get(Item, 2)
        original = await session.get(Item, 1)
    assert copy is not None and original is not None
    assert (copy.community_id, copy.copied_from_id, copy.author_id) == (2, 1, original.author_id)
    across = await bot.say("!repertoire search sludge --all")  # the item and its copy: one result, ours
    assert [line.split("> ", 1)[-1].strip() for line in across[1:3]] == [
        "Repertoire results for 'sludge':",
        "#1 [tool] Sludge calculator — ana",
    ]
    assert "#2" not in "\n".join(across)


async def test_an_item_found_in_a_sister_community_can_be_read_not_changed(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """`search --all` listed a sister community's item that `repertoire show` then said did not exist."""
    bot = await console_bot_factory(PLUGINS, communities=COMMUNITIES)
    await bot.say('ana> !share tool "Sludge calculator" https://example.org/sludge #sludge')
    await bot.say("ana> !repertoire share 1 wastewater")
    async with bot.services.db.session() as session:  # an item of the sister community's own
        theirs = Item(
            community_id=2,
            kind="story",
            title="Sludge drying beds",
            body="Reed beds halved our sludge volume",
            tags="sludge",
            author_id=1,
            added_by_id=1,
            created_at=datetime(2026, 3, 1, tzinfo=UTC),
            updated_at=datetime(2026, 3, 1, tzinfo=UTC),
        )
        session.add(theirs)
        await session.flush()
        await index_item(session, theirs)
    found = "\n".join(await bot.say("bo> !repertoire search sludge drying --all"))
    assert "#3 [story] Sludge drying beds — ana (wastewater)" in found
    card = "\n".join(await bot.say("bo> !repertoire show 3"))
    assert "Community: Wastewater CoP (a sister community: read only here)" in card
    assert "Reed beds halved our sludge volume" in card
    copy = "\n".join(await bot.say("bo> !repertoire show 2"))
    assert "Shared from: item #1 of Water CoP" in copy
    assert reply(await bot.say("bo> !repertoire upvote 3")).startswith("There is no item #3 here")
    assert await count(bot, Upvote) == 0
    assert reply(await bot.say("ana> !repertoire share 1 wastewater")) == (
        "#1 was already shared with Wastewater CoP (there it is #2)."
    )


async def test_experts_rank_the_authors_of_matching_items(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    await bot.say("ana> !profile set expertise membranes")
    for title in ("Membrane fouling", "Cleaning membranes", "Membrane lifetime"):
        await bot.say(f'bo> !share experience "{title}" What we learned about membranes #membranes')
    found = await bot.say("cy> !experts membranes")
    lines = "\n".join(found)
    assert "@bo — shared 3 items tagged #membranes" in lines
    assert "@ana — expertise: membranes" in lines


async def test_experts_say_the_evidence_that_matched_the_topic(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """`experts leak` said "shared 1 item tagged #gis" for an item titled "Leak map", as if #gis were why it
    matched; the reason now names what matched: the tag when a tag did, else the title, else the text."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say('ana> !share tool "Leak map" https://example.org/map #gis')
    await bot.say('bo> !share experience "Night-flow survey" We found leaks at night #leak-detection #gis')
    await bot.say('cy> !share experience "Pump data" Our leaks showed up in the pump logs #pumps')
    lines = [line.strip() for line in await bot.say("dan> !experts leak")]
    assert '@ana — shared 1 item titled "Leak map"' in "\n".join(lines)
    assert "@bo — shared 1 item tagged #leak-detection" in "\n".join(lines)
    assert "@cy — shared 1 item mentioning leak" in "\n".join(lines)
    assert not any("#gis" in line or "#pumps" in line for line in lines)


async def test_the_export_holds_every_item_in_both_formats(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    await bot.say("ana> !profile set public on")  # named on the web export; cy is not
    await bot.say('ana> !share tool "Leak [map](http://evil) #1" https://example.org/map #gis')
    await bot.say('bo> !share story "Night flow" Night logging found 30% more leaks #leakage')
    await bot.say('cy> !share practice "Pressure" Lower it at night')
    await bot.say("bo> !repertoire remove 2")
    answer = reply(await bot.say("!repertoire export json"))  # the console takes no files: a link
    url = answer.rsplit(" ", 1)[1].removeprefix("http://127.0.0.1:8080")
    assert url.startswith("/c/cop/repertoire.json?key=")
    async with TestClient(TestServer(create_app(bot.services))) as client:
        assert (await client.get("/c/cop/repertoire.json")).status == 403
        assert (await client.get("/c/cop/repertoire.json?key=0.forged")).status == 403
        as_json = await client.get(url)
        as_markdown = await client.get(url.replace(".json?", ".md?"))
        assert as_json.status == as_markdown.status == 200
        items = from_json(await as_json.read())
        markdown = (await as_markdown.read()).decode()
    assert [(item.id, item.title, item.author, item.tags) for item in items] == [
        (1, "Leak [map](http://evil) #1", "ana", ["gis"]),
        (3, "Pressure", "a member", []),
    ]  # the removed item is not exported; JSON round-trips the text exactly
    assert "## Tools" in markdown and "## Practices" in markdown and "Night flow" not in markdown
    assert "### #1 Leak \\[map\\]\\(http://evil\\) \\#1" in markdown  # member text is text, not markup
    assert "Link: <https://example.org/map>" in markdown and "by ana" in markdown


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '!share poem "T" text',
            "<kind> must be one of story, tool, experience, practice, resource; not 'poem'",
        ),
        ('!share tool "' + "T" * 201 + '" text', "the title has 201 characters; at most 200"),
        (
            '!share tool "T" text ' + " ".join(f"#t{n}" for n in range(11)),
            "an item has at most 10 tags; this would make 11",
        ),
        ('!share tool "T" #only #tags', "the item has no text and no link"),
        ('!share tool "\u200b\u2060" text', "the title is empty"),  # invisible: no title to read
        (  # it would turn the rest of every line listing it around, its author's name included
            '!share tool "Leak map\u202e" text',
            "the title has a control or direction character; write it as plain text",
        ),
        ('!share tool "T" ' + "x" * 4001, "the text has 4001 characters; at most 4000"),
        ("!repertoire show 99", "There is no item #99 here"),
        ("!repertoire upvote 0", "<item-id> must be 1 or more, not 0"),
        ("!repertoire search --kind tool", "<query> is missing"),
    ],
)
async def test_bad_input_is_one_line_and_writes_nothing(console_bot_factory, line: str, message: str) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    answer = reply(await bot.say(line))
    assert answer.startswith(message), answer
    assert await count(bot, Item) == 0


async def test_someone_elses_item_cannot_be_changed(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS)
    await bot.say('ana> !share tool "Map" https://example.org')
    await bot.say("bo> !repertoire edit 1 hijacked")
    await bot.say("bo> !repertoire remove 1")
    async with bot.services.db.session() as session:
        item = await session.get(Item, 1)
    assert item is not None and item.body == "" and item.removed_at is None


async def test_a_title_typed_without_quotes_is_the_texts_first_words(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Repertoire])
    said = reply(await bot.say("ana> !share story We fixed the main overnight. It took four hours #pipes"))
    assert said.startswith("Added to the repertoire as #1 (story): We fixed the main overnight #pipes.")
    shown = "\n".join(await bot.say("ana> !repertoire show 1"))
    assert "#1 We fixed the main overnight\n" in shown
    assert shown.endswith("We fixed the main overnight. It took four hours")


async def test_a_bare_link_is_shared_under_where_it_points(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Repertoire])
    said = reply(await bot.say("ana> !share tool https://www.example.org/leakcalc/ #leaks"))
    assert said.startswith("Added to the repertoire as #1 (tool): example.org/leakcalc #leaks.")
    said = reply(await bot.say("ana> !share resource https://example.org/guide.pdf the national guide"))
    assert said.startswith("Added to the repertoire as #2 (resource): example.org/guide.pdf.")
    first, second = await stored(bot, 1, 2)
    assert (first.url, first.body, first.tags) == ("https://www.example.org/leakcalc/", "", "leaks")
    assert second.url == "https://example.org/guide.pdf"
    assert second.body == "https://example.org/guide.pdf the national guide"


async def test_an_edit_of_only_tags_keeps_the_text_and_link(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Repertoire])
    await bot.say('ana> !share tool "Leak map" https://example.org/map #gis')
    await bot.say('ana> !share story "Night flow" We logged pressure at night #pressure')
    assert reply(await bot.say("ana> !repertoire edit 1 #gis #leakage")) == "#1 is updated."
    assert reply(await bot.say("ana> !repertoire edit 2 #night")) == "#2 is updated."
    link, story = await stored(bot, 1, 2)
    assert (link.url, link.body, link.tags) == ("https://example.org/map", "", "gis,leakage")
    assert (story.body, story.tags) == ("We logged pressure at night", "night")
    refused = reply(await bot.say("ana> !repertoire tag 2 ##"))
    assert refused.startswith("'##' is an empty tag; write tags like #leakage")
    assert (await stored(bot, 2))[0].tags == "night"  # nothing written


async def test_an_edit_may_drop_a_link_that_is_gone(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """A text without a link keeps the item's link: there was no way to drop a dead one."""
    bot = await console_bot_factory([Repertoire])
    await bot.say('ana> !share tool "Leak map" https://example.org/map #gis')
    assert reply(await bot.say("ana> !repertoire edit 1 The map covers Delft")) == "#1 is updated."
    assert (await stored(bot, 1))[0].url == "https://example.org/map"
    assert reply(await bot.say("ana> !repertoire edit 1 See https://example.org/new --no-link")).startswith(
        "the new text has a link and --no-link drops it; leave out one of them. Usage: !repertoire edit"
    )
    assert (
        reply(await bot.say("ana> !repertoire edit 1 The map is offline now --no-link")) == "#1 is updated."
    )
    item = (await stored(bot, 1))[0]
    assert (item.body, item.url, item.tags) == ("The map is offline now", "", "gis")
    await bot.say('ana> !share tool "Flow logger" https://example.org/logger')
    assert reply(await bot.say("ana> !repertoire edit 2 #logging --no-link")).startswith(
        "#2 has no text: without its link it would be empty; add a text"
    )
    assert (await stored(bot, 2))[0].url == "https://example.org/logger"  # nothing written


async def test_meeting_notes_join_the_repertoire_and_replaced_ones_leave_it(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    bot = await console_bot_factory([Repertoire, Meetings])
    await bot.say('!meeting schedule "Kick-off" 2026-03-03 10:00')
    await bot.say("ana> !meeting rsvp 1 yes")
    clock.set(datetime(2026, 3, 3, 12, tzinfo=UTC))
    await bot.say("ana> !meeting notes 1 We agreed on the leak map, wrongly")
    found = "\n".join(await bot.say("bo> !repertoire search leak map"))
    assert "#1 [experience] Notes: Kick-off (2026-03-03) — ana" in found
    assert reply(await bot.say("!meeting notes 1 We agreed to pilot pressure logging --replace")).startswith(
        "Notes replaced for Kick-off"
    )
    assert reply(await bot.say("bo> !repertoire search leak map")).startswith(
        "Nothing in the repertoire matches"
    )
    assert "Notes: Kick-off" in "\n".join(await bot.say("bo> !repertoire search pressure logging"))
    async with bot.services.db.session() as session:
        rows = (await session.execute(select(Item.body, Item.removed_at).order_by(Item.id))).all()
    assert [(body, removed is not None) for body, removed in rows] == [
        ("We agreed on the leak map, wrongly", True),  # withdrawn, as a moderator may bring it back
        ("We agreed to pilot pressure logging", False),
    ]


async def test_replaced_notes_leave_this_communitys_repertoire_not_a_sisters_copy(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """Meeting ids are the whole database's, and a copy passed to a sister community keeps its meeting:
    the notes replaced here must not withdraw what the sister community holds."""
    bot = await console_bot_factory([Repertoire, Meetings], communities=COMMUNITIES)
    await bot.say('!meeting schedule "Kick-off" 2026-03-03 10:00')
    await bot.say("ana> !meeting rsvp 1 yes")
    clock.set(datetime(2026, 3, 3, 12, tzinfo=UTC))
    await bot.say("ana> !meeting notes 1 We agreed on the leak map")
    assert reply(await bot.say("ana> !repertoire share 1 wastewater")).startswith("#1 is shared with")
    await bot.say("!meeting notes 1 We agreed to pilot pressure logging --replace")
    async with bot.services.db.session() as session:
        rows = (await session.execute(select(Item.community_id, Item.removed_at).order_by(Item.id))).all()
    assert [(community, removed is not None) for community, removed in rows] == [
        (1, True),  # the notes replaced, withdrawn here
        (2, False),  # the sister community's copy stays
        (1, False),  # the new notes
    ]


async def test_a_pin_on_a_command_saves_nothing(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """`!profile link 6ABD-E490` pinned would have put a member's link code in the repertoire."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say("ana> !repertoire search leaks")
    assert await bot.say(":react bo 1 📌") == ["[3] * bo reacted 📌 to [1]"]
    assert await count(bot, Item) == 0


async def test_a_pin_saves_a_message_whose_trailing_tags_could_not_all_be_tags(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """What a member wrote is not a command: a `#.` or eleven tags at its end were refused as if typed to
    `share`, and the 📌 saved nothing. The tags that can be tags are kept, the first ten."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say("ana> Step-testing at night finds leaks in a day #leakage #.")
    await bot.say("ana> Log pressure hourly #a,b,c,d,e,f,g,h,i,j,k")
    await bot.say("ana> Ligatures expand #" + "\ufb01" * 40 + " #gis")
    for message in (1, 2, 3):
        saved = await bot.say(f":react bo {message} 📌")
        assert "📌 Saved to the repertoire" in "\n".join(saved), saved
    first, second, third = await stored(bot, 1, 2, 3)
    assert first.tags == "leakage" and first.body == "Step-testing at night finds leaks in a day"
    assert second.tags == "a,b,c,d,e,f,g,h,i,j"
    assert third.tags == "gis"


async def link(bot, first: str, second: str) -> None:  # type: ignore[no-untyped-def]
    """``first`` and ``second`` become one person (``profile link``, as members do it)."""
    asked = await bot.say(f"{first}> !profile link")
    code = asked[1].split("Your link code: ", 1)[1].split(".", 1)[0]
    assert "are one person now" in "\n".join(await bot.say(f"{second}> !profile link {code}"))


async def test_linked_accounts_are_one_person_for_upvotes_uses_and_authorship(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """A person's second account upvoted their own item, and a person upvoted (and applied) an item once
    per account: the upvotes counted towards their level. Their other account may edit what they shared."""
    bot = await console_bot_factory([Repertoire, Roles])
    for line in ("ana> hi", "ana.home> hi", "bo> hi", "bo.home> hi"):
        await bot.say(line)
    await link(bot, "ana", "ana.home")
    await link(bot, "bo", "bo.home")
    await bot.say('ana> !share tool "Leak map" https://example.org/map #gis')
    assert reply(await bot.say("ana.home> !repertoire upvote 1")) == (
        "You cannot upvote what you shared yourself; nothing was changed."
    )
    assert reply(await bot.say("bo> !repertoire upvote 1")) == "Upvoted #1: Leak map."
    assert reply(await bot.say("bo.home> !repertoire upvote 1")) == "You have already upvoted #1."
    assert reply(await bot.say("bo> !repertoire used 1")).startswith("Noted: you applied #1")
    assert reply(await bot.say("bo.home> !repertoire used 1")) == "You have already said you applied #1."
    assert await count(bot, Upvote) == 1 and await count(bot, Use) == 1
    assert await activity_of(bot, "upvote_received") == ["ana"]
    assert reply(await bot.say("ana.home> !repertoire edit 1 The map now covers Delft")) == "#1 is updated."
    assert reply(await bot.say("ana.home> !repertoire remove 1")) == "#1 is removed from the repertoire."


async def test_a_tag_to_search_by_is_read_as_share_reads_it(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """`#gis.` at the end of a share is the tag `gis`, and `café` is kept composed (NFKC): `--tag gis.` and a
    decomposed `--tag cafe\u0301` found nothing, and `--tag #` dropped every item without saying why."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say('ana> !share tool "Leak map" https://example.org/map #gis. #Cafe\u0301')
    assert (await stored(bot, 1))[0].tags == "gis,caf\u00e9"
    for typed in ("gis.", "#GIS", "cafe\u0301", "#CAF\u00c9"):
        assert "#1 [tool] Leak map" in "\n".join(await bot.say(f"bo> !repertoire search map --tag {typed}"))
    empty = reply(await bot.say('bo> !repertoire search map --tag "#"'))
    assert empty.startswith("'#' is an empty tag; write tags like #leakage. Usage: !repertoire search")
    several = reply(await bot.say("bo> !repertoire search map --tag gis,#cafe"))  # found nothing, silently
    assert several.startswith("'gis,#cafe' is several tags; --tag takes one, like --tag gis. Usage:")


def test_a_line_of_equals_signs_in_a_text_does_not_make_the_line_above_a_heading() -> None:
    """Markdown reads a line of `=` under a line of text as that line's heading (setext): a member's text
    turned into markup in the export, as `#` or `---` would have without their escapes."""
    item = Exported(
        id=1,
        kind="story",
        title="Night flow",
        body="Read this first\n===\nthen the rest",
        url="",
        tags=[],
        author="ana",
        created_at="2026-03-02T09:00:00+00:00",
        updated_at="2026-03-02T09:00:00+00:00",
        source_link="",
        upvotes=0,
        used=0,
    )
    markdown = as_markdown("CoP", [item], datetime(2026, 3, 2, tzinfo=UTC)).decode()
    assert "Read this first\n\\=\\=\\=\nthen the rest" in markdown


async def test_an_items_dates_are_the_readers_days(console_bot_factory, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    """`repertoire show` gave the UTC day: shared at 09:00 on 3 March in Auckland, an item read
    "Date: 2026-03-02" there (and "Removed: …" the day before too)."""
    bot = await console_bot_factory(PLUGINS)
    clock.set(datetime(2026, 3, 2, 20, tzinfo=UTC))  # Tue 3 Mar 09:00 in Auckland
    await bot.say("!profile set timezone Pacific/Auckland")
    await bot.say('ana> !share tool "Leak map" https://example.org/map')
    assert "Date: 2026-03-02" in "\n".join(await bot.say("ana> !repertoire show 1"))  # ana: UTC
    await bot.say("!repertoire remove 1")
    shown = "\n".join(await bot.say("!repertoire show 1"))
    assert "Date: 2026-03-03" in shown and "Removed: 2026-03-03 (moderators can restore it)" in shown


async def test_the_exported_file_dates_items_by_the_communitys_day(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    """The Markdown export gave the UTC day: an item shared at 09:00 on 3 March in Auckland read
    "2026-03-02" in the file while the repertoire's page (and chat) said 3 March; and the file was stamped
    in UTC. Both are the community's now, the zone named."""
    auckland = {"slug": "water", "name": "Water", "timezone": "Pacific/Auckland"}
    bot = await console_bot_factory(PLUGINS, communities=[auckland])
    clock.set(datetime(2026, 3, 2, 20, tzinfo=UTC))  # Tue 3 Mar 09:00 in Auckland
    await bot.say('ana> !share tool "Leak map" https://example.org/map')
    url = (
        reply(await bot.say("!repertoire export md")).rsplit(" ", 1)[1].removeprefix("http://127.0.0.1:8080")
    )
    async with TestClient(TestServer(create_app(bot.services))) as client:
        markdown = (await (await client.get(url)).read()).decode()
    assert "Exported 2026-03-03 09:00 NZDT; 1 item." in markdown
    assert "*by a member · 2026-03-03*" in markdown


async def test_a_search_quotes_what_was_typed_cut_short_and_on_one_line(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """A pasted paragraph was echoed whole in the answer's first line (a 2,000-character query made a
    2,000-character heading, over a Discord message), and a direction override turned the rest of the line
    around; the common-words refusal already quoted it as every error does."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say('ana> !share story "Night flow" We logged pressure at night and found the leaks early')
    pasted = "leaks " * 300
    found = await bot.say(f"bo> !repertoire search {pasted}")
    assert found[1] == "[4] copbot> Repertoire results for 'leaks leaks leaks leaks leaks leaks lea…':"
    nothing = reply(await bot.say("bo> !repertoire search zinc\u202e " + "corrosion " * 300))
    assert nothing.startswith(
        "Nothing in the repertoire matches 'zinc\ufffd corrosion corrosion corrosion cor…'. Add what"
    )


async def test_meeting_notes_are_titled_with_the_meetings_day_in_the_communitys_zone(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """A morning meeting in Auckland is the evening before in UTC: its notes were titled with the UTC day,
    "Notes: Kick-off (2026-03-02)" for the meeting of 3 March. Notes titled so before still leave the
    repertoire when they are replaced."""
    auckland = {"slug": "water", "name": "Water", "timezone": "Pacific/Auckland"}
    bot = await console_bot_factory([Repertoire, Meetings], communities=[auckland])
    await bot.say('!meeting schedule "Kick-off" 2026-03-03 09:00')  # 2026-03-02 20:00 UTC
    await bot.say("ana> !meeting rsvp 1 yes")
    clock.set(datetime(2026, 3, 2, 22, tzinfo=UTC))
    await bot.say("ana> !meeting notes 1 We agreed on the leak map")
    found = "\n".join(await bot.say("bo> !repertoire search leak map"))
    assert "#1 [experience] Notes: Kick-off (2026-03-03) — ana" in found
    async with bot.services.db.session() as session:  # as the notes of an earlier release were titled
        item = await session.get(Item, 1)
        assert item is not None
        item.title = "Notes: Kick-off (2026-03-02)"
        await session.commit()
    await bot.say("!meeting notes 1 We agreed to pilot pressure logging --replace")
    async with bot.services.db.session() as session:
        rows = (await session.execute(select(Item.title, Item.removed_at).order_by(Item.id))).all()
    assert [(title, removed is not None) for title, removed in rows] == [
        ("Notes: Kick-off (2026-03-02)", True),
        ("Notes: Kick-off (2026-03-03)", False),
    ]


async def test_a_saved_messages_title_leaves_out_direction_characters_and_its_author_can_edit_it(
    console_bot_factory,
) -> None:  # type: ignore[no-untyped-def]
    """A title typed to `share` may not turn a line around; one made from a pinned message may not either,
    and an edit changes the text, never asking the title (made by copbot) to be what `share` accepts."""
    bot = await console_bot_factory(PLUGINS)
    await bot.say("ana> Leak map\u202e of Delft, see https://example.org/map")
    await bot.say(":react bo 1 📌")
    assert (await stored(bot, 1))[0].title == "Leak map of Delft, see example.org"
    await bot.say("cy> Night\x01flow\tfigures for March")  # control characters: a tab is a space
    await bot.say(":react bo 4 📌")
    assert (await stored(bot, 2))[0].title == "Night flow figures for March"
    assert reply(await bot.say("ana> !repertoire edit 1 The map now covers Rotterdam")) == "#1 is updated."
    async with bot.services.db.session() as session:  # saved by an earlier release, its title as written
        item = await session.get(Item, 1)
        assert item is not None
        item.title = "Leak map\u202e of Delft"
        await session.commit()
    assert reply(await bot.say("ana> !repertoire edit 1 It covers Delft again")) == "#1 is updated."


async def test_a_saved_message_deleted_takes_its_copies_in_sister_communities_with_it(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """ana's message, saved with 📌 and passed on to the sister community, is deleted on its platform: both
    copies go (the console cannot delete a message: the adapters' event is handed to the pipeline)."""
    bot = await console_bot_factory(PLUGINS, communities=COMMUNITIES)
    await bot.say("ana> The sludge calculator https://example.org/sludge sizes digesters #sludge")
    await bot.say(":react bo 1 📌")
    await bot.say('ana> !share tool "Step test" Close valves one by one at night')
    assert reply(await bot.say("ana> !repertoire share 1 wastewater")).startswith("#1 is shared with")
    await bot.say("bo> !repertoire upvote 1")
    [saved] = await stored(bot, 1)
    assert await count(bot, Item) == 3 and await count(bot, Upvote) == 1
    deleted = MessageDeleted(
        event_id="delete:1", room=bot.adapter.room, at=clock.now(), message_id=str(saved.origin_message_id)
    )
    await bot.bot.pipeline.handle(bot.adapter, deleted)
    async with bot.bot.services.db.session() as session:
        left = (await session.execute(select(Item.title))).scalars().all()
    assert left == ["Step test"]  # what was shared by command stays
    assert await count(bot, Upvote) == 0
    found = "\n".join(await bot.say("!repertoire search sludge --all"))
    assert "Nothing in the repertoire matches 'sludge'" in found


async def test_a_removed_item_takes_its_copies_in_sister_communities_with_it(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """A copy passed to a sister community stayed there after its original was removed (by its author or a
    moderator): what its author withdrew was still read, searched and upvoted next door. The copies go with
    it, and come back with it when a moderator restores it."""
    bot = await console_bot_factory(PLUGINS, communities=COMMUNITIES)
    await bot.say('ana> !share tool "Sludge calculator" https://example.org/sludge #sludge')
    await bot.say('ana> !share tool "Grit sheet" https://example.org/grit #grit')
    await bot.say("ana> !repertoire share 1 wastewater")  # #3, in the sister community
    await bot.say("ana> !repertoire share 2 wastewater")  # #4
    assert reply(await bot.say("ana> !repertoire remove 1")) == (
        "#1 is removed from the repertoire, with its copy in Wastewater CoP (#3)."
    )
    assert reply(await bot.say("bo> !repertoire show 3")).startswith("There is no item #3 here")
    assert "Sludge" not in "\n".join(await bot.say("bo> !repertoire search sludge --all"))
    assert reply(await bot.say("!repertoire remove 2")) == (  # a moderator's removal too
        "#2 is removed from the repertoire, with its copy in Wastewater CoP (#4)."
    )
    removed = [(item.id, item.removed_at is not None) for item in await stored(bot, 1, 2, 3, 4)]
    assert removed == [(1, True), (2, True), (3, True), (4, True)]
    assert reply(await bot.say("!repertoire restore 1")) == (
        "#1 is back in the repertoire, with its copy in Wastewater CoP (#3)."
    )
    removed = [(item.id, item.removed_at is not None) for item in await stored(bot, 1, 2, 3, 4)]
    assert removed == [(1, False), (2, True), (3, False), (4, True)]
    assert "Shared from: item #1 of Water CoP" in "\n".join(await bot.say("bo> !repertoire show 3"))
    await bot.say("ana> !profile forget")
    await bot.say("ana> !profile forget --confirm --remove-items")  # and with a forget that deletes hers
    assert await count(bot, Item) == 0


async def test_an_item_removed_or_deleted_with_its_message_leaves_the_digest_s_copies(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """The digest's web copies (the dashboard's latest digest, the Atom feed) kept the title of an item its
    author had removed, or whose 📌-saved message had been deleted on its platform: what was taken back was
    still read by outsiders. Now its lines there say "an item since removed"; other items' lines stay."""
    from plugins.digest.models import DigestEntryRow, DigestPost
    from plugins.digest.plugin import DigestPlugin

    bot = await console_bot_factory(
        [*PLUGINS, DigestPlugin],
        communities=COMMUNITIES,
        plugins={"digest": {"rooms": {"water": {"console": "console"}}}},
    )
    await bot.say('ana> !share tool "Sludge calculator" https://example.org/sludge #sludge')  # 1
    await bot.say('bo> !share tool "Grit sheet" https://example.org/grit #grit')  # 2
    await bot.say("cy> Step-testing at night finds leaks in a day #leakage")
    await bot.say(":react bo 5 📌")  # 3, cy's message saved
    await bot.say("bo> !repertoire upvote 1")  # "Most upvoted" shows #1 too
    await bot.say("ana> !repertoire upvote 3")
    await bot.say("!digest now")

    async def kept() -> DigestPost:
        async with bot.services.db.session() as session:
            return (await session.execute(select(DigestPost))).scalars().one()

    before = await kept()
    for title in ("Sludge calculator", "Grit sheet", "Step-testing at night"):
        assert title in before.text and title in before.html, before.text
    assert reply(await bot.say("ana> !repertoire remove 1")) == "#1 is removed from the repertoire."
    after = await kept()
    for copy in (after.text, after.html):
        assert "Sludge" not in copy and "Grit sheet — a member" in copy and "Step-testing" in copy, copy
    assert after.text.count("• an item since removed") == 2  # new, and most upvoted
    assert after.html.count("<li>an item since removed</li>") == 2
    [saved] = await stored(bot, 3)
    deleted = MessageDeleted(
        event_id="delete:5", room=bot.adapter.room, at=clock.now(), message_id=str(saved.origin_message_id)
    )
    await bot.bot.pipeline.handle(bot.adapter, deleted)
    after = await kept()
    for copy in (after.text, after.html):
        assert "Step-testing" not in copy and "Grit sheet — a member" in copy, copy
    assert after.text.count("• an item since removed") == 4
    async with bot.services.db.session() as session:  # nothing left to change: the entries name no item
        shown = (await session.execute(select(DigestEntryRow.item_id))).scalars().all()
    assert sorted(item_id for item_id in shown if item_id is not None) == [2]
