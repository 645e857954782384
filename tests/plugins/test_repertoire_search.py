"""The repertoire's search behaves the same on SQLite (FTS5, bm25) and PostgreSQL (tsvector, ts_rank)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from bot import migrate
from bot.db import Database
from bot.tables import CommunityRow, MemberRow
from plugins.repertoire import search
from plugins.repertoire.models import Item
from plugins.repertoire.search import (
    CONTEXT_CHARS,
    MAX_ANCHORS,
    SNIPPET_CHARS,
    AuthorMatch,
    authors_for,
    closest_tags,
    index_item,
    search_items,
    snippet,
    unindex_item,
    words,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FILLER = (
    "The utility replaced the old mains along the river road after a long winter of repairs, and the crew "
    "kept a diary of every job they did for the district team. "
)


class Repertoire:
    """A migrated database with two communities and three members; ``add`` saves and indexes an item."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.communities: list[int] = []
        self.members: list[int] = []
        self._added = 0

    async def setup(self) -> None:
        await migrate.upgrade(self.database)
        async with self.database.session() as session:
            communities = [
                CommunityRow(slug=slug, name=slug, created_at=START) for slug in ("water-cop", "sister-cop")
            ]
            members = [
                MemberRow(
                    platform="console", platform_id=name, display_name=name, first_seen=START, last_seen=START
                )
                for name in ("ana", "bo", "cy")
            ]
            session.add_all([*communities, *members])
            await session.flush()
            self.communities = [row.id for row in communities if row.id is not None]
            self.members = [row.id for row in members if row.id is not None]

    async def add(
        self,
        title: str,
        body: str = "",
        *,
        tags: str = "",
        kind: str = "story",
        community: int = 0,
        author: int = 0,
        removed: bool = False,
    ) -> int:
        """Saved a minute after the one before; ``community`` and ``author`` index the lists above."""
        self._added += 1
        at = START + timedelta(minutes=self._added)
        async with self.database.session() as session:
            item = Item(
                community_id=self.communities[community],
                kind=kind,
                title=title,
                body=body,
                tags=tags,
                author_id=self.members[author],
                added_by_id=self.members[author],
                created_at=at,
                updated_at=at,
                removed_at=at if removed else None,
            )
            session.add(item)
            await session.flush()
            await index_item(session, item)
            assert item.id is not None
            return item.id

    async def search(self, query: str, **options: Any) -> list[search.Hit]:
        options.setdefault("community_ids", [self.communities[0]])
        async with self.database.session() as session:
            return await search_items(session, query, **options)

    async def ids(self, query: str, **options: Any) -> list[int]:
        return [hit.item_id for hit in await self.search(query, **options)]


@pytest.fixture
async def repertoire(database_url: str) -> AsyncIterator[Repertoire]:
    database = Database(database_url)
    made = Repertoire(database)
    try:
        await made.setup()
        yield made
    finally:
        await database.close()


async def test_title_outranks_tags_and_body_and_more_words_rank_higher(repertoire: Repertoire) -> None:
    in_body = await repertoire.add("Winter notes", "We found a leak near the pumping station.")
    in_title = await repertoire.add("Leak near the station", "Notes from the night shift.")
    in_tags = await repertoire.add("Night shift notes", "Notes from the night shift.", tags="leak,night-flow")
    both_words = await repertoire.add("Winter notes", "A leak and a pressure drop in the same night.")
    await repertoire.add("Unrelated", "Customer engagement in schools.")

    found = await repertoire.ids("leak")
    assert found[:2] == [in_title, in_tags] and set(found[2:]) == {both_words, in_body}
    hits = await repertoire.search("leak pressure")
    assert hits[0].item_id in (in_title, both_words)  # bm25 and ts_rank weigh these two differently
    order = [hit.item_id for hit in hits]
    assert order.index(both_words) < order.index(in_body)  # the same place, one more word
    assert all(a.rank >= b.rank > 0 for a, b in pairwise(hits))


async def test_stems_match_both_ways_but_not_words_inside_words(repertoire: Repertoire) -> None:
    leak = await repertoire.add("A leak", "One leak at the corner.")
    leaks = await repertoire.add("Leaks everywhere", "Leaks in three streets.")
    meters = await repertoire.add("Our meters", "The meters were read by radio.")
    bleak = await repertoire.add("A bleak winter", "Bleak outlooks and tariffs.")

    assert set(await repertoire.ids("leaks")) == {leak, leaks}
    assert set(await repertoire.ids("leak")) == {leak, leaks}
    assert await repertoire.ids("metering") == [meters]
    assert await repertoire.ids("meter") == [meters]
    assert bleak not in await repertoire.ids("leak")
    assert await repertoire.ids("lea") == []  # no prefix queries
    assert await repertoire.ids("bleak") == [bleak]


async def test_filters_kind_tag_and_community(repertoire: Repertoire) -> None:
    tool = await repertoire.add("Leak map", kind="tool", tags="leakage,gis")
    story = await repertoire.add("Leak story", kind="story", tags="leakage,Leak-Detection")
    detection = await repertoire.add("Leak logger story", kind="story", tags="leak-detection")
    sister = await repertoire.add("Leak notes from the sister", community=1, tags="leakage")

    assert set(await repertoire.ids("leak")) == {tool, story, detection}
    assert await repertoire.ids("leak", kind="tool") == [tool]
    assert set(await repertoire.ids("leak", kind="story")) == {story, detection}
    assert await repertoire.ids("leak", kind="practice") == []
    assert set(await repertoire.ids("leak", tag="leakage")) == {tool, story}
    assert set(await repertoire.ids("leak", tag="#LEAK-detection")) == {story, detection}
    assert await repertoire.ids("leak", tag="leak") == []  # a whole tag, not a part of one
    assert await repertoire.ids("leak", tag="gis", kind="story") == []
    assert await repertoire.ids("leak", community_ids=[repertoire.communities[1]]) == [sister]
    both = await repertoire.ids("leak", community_ids=repertoire.communities, tag="leakage")
    assert set(both) == {tool, story, sister}
    assert await repertoire.ids("leak", community_ids=[]) == []


async def test_removed_items_are_never_found(repertoire: Repertoire) -> None:
    kept = await repertoire.add("Leak survey", tags="leakage", author=0)
    await repertoire.add("Leak survey, removed", tags="leakage,removed-tag", author=1, removed=True)

    assert await repertoire.ids("leak survey") == [kept]
    assert await repertoire.ids("leak", tag="removed-tag") == []
    async with repertoire.database.session() as session:
        authors = await authors_for(session, "leak", community_ids=repertoire.communities)
        near = await closest_tags(session, "removed tags", community_ids=repertoire.communities)
    assert [author.member_id for author in authors] == [repertoire.members[0]]
    assert near == []


async def test_newest_first_among_equals_and_the_limit(repertoire: Repertoire) -> None:
    first = await repertoire.add("Leak", "Same text.")
    second = await repertoire.add("Leak", "Same text.")
    third = await repertoire.add("Leak", "Same text.")

    assert await repertoire.ids("leak") == [third, second, first]
    assert await repertoire.ids("leak", limit=2) == [third, second]
    assert await repertoire.ids("leak", limit=0) == []


async def test_snippet_marks_the_matches_around_the_best_place_on_both_backends(
    repertoire: Repertoire,
) -> None:
    body = (
        FILLER * 3
        + "Then the loggers heard two leaks under the bridge, and the leak team came. "
        + FILLER * 2
    )
    long = await repertoire.add("Winter diary", body)
    title_only = await repertoire.add("Leak detection guide", "How to walk a district at night.")
    tags_only = await repertoire.add("Night walks", "How to walk a district at night.", tags="leakage")

    hits = {hit.item_id: hit.snippet for hit in await repertoire.search("leak logger")}
    assert hits[long] == (
        "…did for the district team. Then the «loggers» heard two «leaks» under the bridge, and the «leak» "
        "team came. The utility replaced the old mains along the river…"
    )
    assert len(hits[long]) <= SNIPPET_CHARS
    assert hits[title_only] == "«Leak» detection guide"

    hits = {hit.item_id: hit.snippet for hit in await repertoire.search("leakage")}
    assert hits[tags_only] == "How to walk a district at night."  # only a tag matched: the text's start


def test_snippet_cuts_at_word_boundaries_within_the_limit() -> None:
    open_, close = search._MARK_OPEN, search._MARK_CLOSE
    words_before = " ".join(f"word{n}" for n in range(60))
    marked = f"{words_before} the {open_}leak{close} was found {words_before}"
    cut = snippet(marked, None)
    assert len(cut) <= SNIPPET_CHARS and cut.startswith("…") and cut.endswith("…")
    assert "«leak»" in cut and " word" in cut and "wor…" not in cut
    assert cut.index("«leak»") > 20  # some context before the match
    assert snippet(None, f"{open_}Leak{close} guide", "", "Leak guide") == "«Leak» guide"
    assert snippet(f"{open_}" + "x" * 500 + f"{close} tail", None).endswith("»…")
    assert len(snippet(f"{open_}" + "x" * 500 + f"{close} tail", None)) <= SNIPPET_CHARS
    assert snippet("", "", "", "") == ""
    spanning = snippet(f"a {open_}café bar{close} b", None)
    assert spanning == "a «café» «bar» b"


def _snippet_by_definition(words: list[str], marked: list[bool], limit: int = SNIPPET_CHARS) -> str:
    """What ``snippet`` promises, the slow way: every candidate tried in turn. The anchor is the first of
    the first MAX_ANCHORS matched words from which the next ``limit - CONTEXT_CHARS`` characters hold the
    most distinct matched words, then the most matches; the run starts up to CONTEXT_CHARS before it (less
    if the run is too long), takes as many words after it as fit, then as many before it as still fit."""
    shown = [f"«{word}»" if mark else word for word, mark in zip(words, marked, strict=True)]
    count = len(shown)
    if not count:
        return ""
    at = [sum(len(word) + 1 for word in shown[:index]) for index in range(count + 1)]

    def fits(start: int, end: int) -> bool:
        return at[end] - at[start] - 1 + (start > 0) + (end < count) <= limit

    def score(anchor: int) -> tuple[int, int]:
        near = [
            words[index].lower()
            for index in range(anchor, count)
            if marked[index] and at[index] - at[anchor] <= limit - CONTEXT_CHARS
        ]
        return len(set(near)), len(near)

    anchor = max([index for index in range(count) if marked[index]][:MAX_ANCHORS], key=score, default=0)
    start = min(index for index in range(anchor + 1) if at[anchor] - at[index] <= CONTEXT_CHARS)
    while start < anchor and not fits(start, anchor + 1):
        start += 1
    if not fits(start, anchor + 1):  # the word alone is longer: cut inside it
        cut = shown[anchor][: limit - 2]
        cut = cut[:-1] + "»" if cut.count("«") > cut.count("»") else cut
        return ("…" if anchor > 0 else "") + cut + "…"
    end = max(end for end in range(anchor + 1, count + 1) if fits(start, end))
    start = min(first for first in range(start + 1) if fits(first, end))
    return ("…" if start > 0 else "") + " ".join(shown[start:end]) + ("…" if end < count else "")


_A_WORD = st.one_of(st.text("abcAB-é", min_size=1, max_size=12), st.text("ab", min_size=100, max_size=200))


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(_A_WORD, st.sampled_from([False, False, False, True])), max_size=150),
    st.lists(st.sampled_from([" ", "  ", "\n", " \t "]), min_size=150, max_size=150),
    st.booleans(),
)
def test_a_snippet_is_the_best_run_of_whole_words_within_the_limit(
    marked_words: list[tuple[str, bool]], spaces: list[str], spaced_first: bool
) -> None:
    """Against the definition above: any text, any marks, long words and runs of spaces included."""
    open_, close = search._MARK_OPEN, search._MARK_CLOSE
    text = " " * spaced_first + "".join(
        (f"{open_}{word}{close}" if mark else word) + space
        for (word, mark), space in zip(marked_words, spaces, strict=False)
    )
    words = [word for word, _ in marked_words]
    expected = _snippet_by_definition(words, [mark for _, mark in marked_words])
    cut = snippet(text, None, text.replace(open_, "").replace(close, ""), "")
    assert cut == expected
    assert len(cut) <= SNIPPET_CHARS


def test_a_snippet_of_text_carrying_the_marks_own_characters_stays_whole_and_within_the_limit() -> None:
    """A member may paste the private-use characters the database marks matches with: they are shown as
    marks, never a crash or a snippet over the limit."""
    open_, close = search._MARK_OPEN, search._MARK_CLOSE
    for pasted in (f"a{open_} b c", f"{close}a {open_}{close}b c{open_}", f"{open_}{open_}x y{close} " * 40):
        assert len(snippet(pasted, None)) <= SNIPPET_CHARS
        plain = snippet(None, None, pasted)  # only a tag matched: the pasted as typed, its marks left out
        assert len(plain) <= SNIPPET_CHARS and "«" not in plain and "»" not in plain


HOSTILE = [
    'leak" OR 1=1 --',
    "NEAR(a b)",
    "*",
    "'; DROP TABLE repertoire_items; --",
    '"',
    "leak AND NOT (pressure OR",
    "title: leak",
    "{title tags}: leak",
    "leak* ^leak -leak +leak",
    "a & b | !c <-> d:*",
    "l'eau women's ’s",
    "_ __ ___",
    "\x00\x01 leak",
    "💧 leak 💧",
    "x" * 10_000,
    " ".join(["leak", "pressure", "meter"] * 1200),
    'leak" NEAR(a b) * ( - : ' * 400,  # 10 kB of FTS5 syntax
    " ".join(f"word{n}" for n in range(1500)),  # 10 kB of distinct words: only the first few are looked for
]


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
async def test_hostile_queries_are_plain_words(repertoire: Repertoire, query: str) -> None:
    leak = await repertoire.add("Leak near the station", tags="leakage,near")
    hits = await repertoire.search(query)
    assert [hit.item_id for hit in hits] == ([leak] if {"leak", "near"} & set(words(query)) else [])
    async with repertoire.database.session() as session:
        await closest_tags(session, query, community_ids=repertoire.communities)
        await authors_for(session, query, community_ids=repertoire.communities)
    assert await repertoire.ids("leak") == [leak]  # the table is still there


async def test_member_syntax_is_searched_as_words(repertoire: Repertoire) -> None:
    near = await repertoire.add("Near misses", "A near miss at the plant.")
    await repertoire.add("Leak", "A leak.")
    assert await repertoire.ids("NEAR(a b)") == [near]  # NEAR is a word here, not FTS5's operator


async def test_a_query_of_punctuation_does_not_touch_the_database() -> None:
    class NoDatabase:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the database was used: {name}")

    for query in ("*", '"', "-- ;", "''", "", "   ", "the and of"):
        assert words(query) == []
        assert await search_items(NoDatabase(), query, community_ids=[1]) == []  # type: ignore[arg-type]
        assert await closest_tags(NoDatabase(), query, community_ids=[1]) == []  # type: ignore[arg-type]
        assert await authors_for(NoDatabase(), query, community_ids=[1]) == []  # type: ignore[arg-type]


def test_words_are_unicode_without_stop_words_and_apostrophes_as_in_profiles() -> None:
    assert words("Leak AND detection") == ["leak", "detection"]
    assert words("l'eau, women's ÉNERGIE") == ["eau", "women", "énergie"]
    assert words("leak leaks LEAK") == ["leak", "leaks"]
    assert len(words(" ".join(f"w{n}" for n in range(100)))) == search.MAX_WORDS


async def test_closest_tags_suggest_the_communitys_tags_as_written(repertoire: Repertoire) -> None:
    await repertoire.add("Membranes", tags="Membranes,reverse-osmosis")
    await repertoire.add("Meters", tags="smart-metering,billing")
    await repertoire.add("Sister", community=1, tags="membrane-bioreactor")

    async with repertoire.database.session() as session:
        ours = [repertoire.communities[0]]
        assert await closest_tags(session, "membrane", community_ids=ours) == ["Membranes"]
        assert (await closest_tags(session, "smart meetering", community_ids=ours))[0] == "smart-metering"
        assert await closest_tags(session, "osmosis", community_ids=ours) == ["reverse-osmosis"]
        assert await closest_tags(session, "desalination", community_ids=ours) == []
        both = await closest_tags(session, "membrane", community_ids=repertoire.communities, limit=3)
        assert both == ["membrane-bioreactor", "Membranes"]  # a part of a tag matching exactly comes first
        assert await closest_tags(session, "membrane", community_ids=ours, limit=0) == []


async def test_authors_for_counts_items_and_the_tags_and_titles_that_matched(repertoire: Repertoire) -> None:
    await repertoire.add("Membrane fouling", tags="membranes,fouling", author=0)
    await repertoire.add("Membrane cleaning", tags="Membranes,cleaning", author=0)
    await repertoire.add("Membrane costs", "What membranes cost.", tags="membranes,costs", author=0)
    await repertoire.add("Brine", "Brine from the membrane plant.", tags="brine", author=1)
    await repertoire.add("Meters", tags="membranes", author=2)  # a tag alone matches too
    await repertoire.add("Membrane map", tags="gis", author=1)  # the title alone
    await repertoire.add("Membranes again", tags="membranes", author=2, removed=True)

    async with repertoire.database.session() as session:
        found = await authors_for(session, "membrane", community_ids=[repertoire.communities[0]])
        assert found[0].member_id == repertoire.members[0] and found[0].items == 3
        assert found[0].tags in (("membranes",), ("Membranes",))  # as written in their best-matching item
        assert found[0].titles == ()  # a tag matched: that is the evidence named, titles are not read
        by_member = {match.member_id: match for match in found}
        # only the evidence that matched: a title (not #gis), never brine's #brine (its text matched)
        assert by_member[repertoire.members[1]] == AuthorMatch(
            repertoire.members[1], 2, (), ("Membrane map",)
        )
        assert by_member[repertoire.members[2]] == AuthorMatch(repertoire.members[2], 1, ("membranes",))
        assert await authors_for(session, "membrane", community_ids=[repertoire.communities[1]]) == []
        limited = await authors_for(session, "membrane", community_ids=[repertoire.communities[0]], limit=1)
        assert [match.member_id for match in limited] == [repertoire.members[0]]


async def test_reindexing_replaces_an_items_words(repertoire: Repertoire) -> None:
    item_id = await repertoire.add("Leak survey", "Acoustic loggers.")
    async with repertoire.database.session() as session:
        item = await session.get(Item, item_id)
        assert item is not None
        item.title, item.body = "Meter survey", "Smart meters."
        await session.flush()
        await index_item(session, item)
    assert await repertoire.ids("leak") == []
    assert await repertoire.ids("meter") == [item_id]
    if repertoire.database.is_sqlite:  # PostgreSQL's index is a generated column: nothing to take out
        async with repertoire.database.session() as session:
            await unindex_item(session, item_id)
        assert await repertoire.ids("meter") == []


async def test_a_broad_query_ranks_its_newest_matches_and_filters_reach_further(
    repertoire: Repertoire, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "WINDOW", 3)
    old_title = await repertoire.add("Leak", "leak", kind="tool")
    newer = [await repertoire.add(f"Notes {n}", f"Something about a leak, {n}.") for n in range(4)]

    found = await repertoire.ids("leak", limit=3)
    assert set(found) == set(newer[1:])  # the three newest matches, ranked; the rest is out of reach
    assert await repertoire.ids("leak", kind="tool", limit=3) == [old_title]  # too few pass there: all
    assert (await repertoire.ids("leak", limit=10))[0] == old_title  # fewer than asked for: all
    monkeypatch.setattr(search, "WINDOW", 100)
    assert (await repertoire.ids("leak", limit=3))[0] == old_title


async def _recent_rows(repertoire: Repertoire) -> list[int]:
    async with repertoire.database.session() as session:
        return list(
            (await session.execute(text("SELECT rowid FROM repertoire_recent ORDER BY rowid"))).scalars()
        )


async def test_the_newest_items_are_indexed_again_on_their_own_and_only_they(
    repertoire: Repertoire, monkeypatch: pytest.MonkeyPatch
) -> None:
    """repertoire_recent holds every indexed item above the newest one less RECENT: shared, edited or taken
    out, an item is there exactly when it is among those."""
    if not repertoire.database.is_sqlite:
        pytest.skip("SQLite only: PostgreSQL ranks without counting each word's rows")
    monkeypatch.setattr(search, "RECENT", 3)
    ids = [await repertoire.add(f"Leak {n}", f"A leak, {n}.") for n in range(5)]
    assert await _recent_rows(repertoire) == ids[2:]
    async with repertoire.database.session() as session:
        for edited in (ids[0], ids[3]):  # an old item edited stays out; a recent one stays in
            item = await session.get(Item, edited)
            assert item is not None
            item.body = "A burst."
            await index_item(session, item)
    assert await _recent_rows(repertoire) == ids[2:]
    async with repertoire.database.session() as session:
        await unindex_item(session, ids[3])
    assert await _recent_rows(repertoire) == [ids[2], ids[4]]
    newest = await repertoire.add("Leak 5", "A leak, 5.")
    assert await _recent_rows(repertoire) == [ids[4], newest]


async def test_a_broad_query_is_ranked_among_the_newest_items_when_its_window_lies_there(
    repertoire: Repertoire, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same hits, in the same order, as ranking in the whole index (one word: how common it is weighs
    every row alike); and they do come from repertoire_recent, whose rows the window is then read from."""
    if not repertoire.database.is_sqlite:
        pytest.skip("SQLite only: PostgreSQL ranks without counting each word's rows")
    monkeypatch.setattr(search, "RECENT", 6)
    monkeypatch.setattr(search, "WINDOW", 3)
    for n in range(6):
        await repertoire.add(
            f"Leak {n}" if n % 2 else f"Notes {n}", "leak " * (n % 3 + 1) + f"in the network {n}"
        )
    recent = [
        await repertoire.add(f"Notes {n}", "leak " * (n % 3 + 1) + f"at night {n}") for n in range(6, 12)
    ]
    found = await repertoire.search("leak", limit=3)
    assert {hit.item_id for hit in found} == set(recent[3:])  # the three newest matches

    async with repertoire.database.session() as session:  # without it, the whole index ranks the window
        await session.execute(text("DELETE FROM repertoire_recent"))
    assert [(hit.item_id, hit.snippet) for hit in await repertoire.search("leak", limit=3)] == [
        (hit.item_id, hit.snippet) for hit in found
    ]
    assert [hit.rank for hit in await repertoire.search("leak", limit=3)] != [hit.rank for hit in found]
    async with repertoire.database.session() as session:  # one window row missing there: it is not found
        await session.execute(
            text(
                "INSERT INTO repertoire_recent (rowid, item_id, title, tags, body) "
                "SELECT rowid, item_id, title, tags, body FROM repertoire_fts WHERE rowid > :floor"
            ),
            {"floor": recent[0] - 1},
        )
        await session.execute(text("DELETE FROM repertoire_recent WHERE rowid = :id"), {"id": recent[4]})
    assert recent[4] not in await repertoire.ids("leak", limit=3)


async def test_a_broad_query_whose_window_reaches_older_items_is_ranked_in_the_whole_index(
    repertoire: Repertoire, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "RECENT", 3)
    monkeypatch.setattr(search, "WINDOW", 3)
    older = [await repertoire.add(f"Leak {n}", "A leak.") for n in range(3)]
    for n in range(2):
        await repertoire.add(f"Notes {n}", "Dry weather.")
    newest = await repertoire.add("Notes", "A leak at night.")  # the only match among the newest three
    assert set(await repertoire.ids("leak", limit=3)) == {*older[1:], newest}


async def test_any_number_of_words_and_communities_is_searched_with_the_same_statement(
    repertoire: Repertoire, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite prepares each distinct statement anew (~1 ms, as much as a search): the words and the
    communities are bound as JSON arrays, so a search for two words in one community and one for three
    words in two communities share one statement, and find what each of them should."""
    if not repertoire.database.is_sqlite:
        pytest.skip("SQLite only: PostgreSQL's statements are its own driver's business")
    statements: list[str] = []
    run = search._sqlite_rows

    async def recorded(session: Any, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        statements.append(sql)
        return await run(session, sql, params)

    monkeypatch.setattr(search, "_sqlite_rows", recorded)
    water, sister = repertoire.communities
    leak = await repertoire.add("Leak", "A leak at night.")
    meter = await repertoire.add("Meters", "A meter and a valve.", community=1)
    await repertoire.add("Notes", "Dry weather.")

    assert await repertoire.ids("leak meter") == [leak]
    assert set(await repertoire.ids("leak meter valve", community_ids=[water, sister])) == {leak, meter}
    assert len(statements) == 2 and statements[0] == statements[1]


async def test_the_items_a_search_ranks_are_read_from_their_own_index(
    repertoire: Repertoire, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows bm25 ranked are joined to the items for their community, kind, tags and date: through
    ``ix_repertoire_ranked``, not the table's rows with their whole texts (a few hundred pages a search at
    100,000 items), also in a database SQLite has no statistics of (ANALYZE never ran)."""
    if not repertoire.database.is_sqlite:
        pytest.skip("SQLite only: the index is SQLite's (migration 0017)")
    plans: list[str] = []
    run = search._sqlite_rows

    async def explained(session: Any, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        plans.extend(row[-1] for row in await run(session, f"EXPLAIN QUERY PLAN {sql}", params))
        return await run(session, sql, params)

    monkeypatch.setattr(search, "_sqlite_rows", explained)
    leak = await repertoire.add("Leak", "A leak at night.", tags="leakage")
    await repertoire.add("Notes", "Dry weather.")

    assert await repertoire.ids("leak night", kind="story", tag="leakage") == [leak]
    items = [plan for plan in plans if plan.startswith(("SEARCH i ", "SCAN i "))]
    assert items and all("COVERING INDEX ix_repertoire_ranked" in plan for plan in items), plans


async def test_a_word_in_most_items_does_not_widen_a_broad_query(
    repertoire: Repertoire, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "WINDOW", 3)
    leaks = [await repertoire.add(f"Leak {n}", f"Water and a leak, {n}.") for n in range(2)]
    for n in range(6):
        await repertoire.add(f"Notes {n}", f"Water, water, {n}.")

    found = await repertoire.ids("water leak", limit=3)
    if repertoire.database.is_sqlite:  # bm25 weighs "water" at nothing: left out, the query is narrow
        assert set(found) == set(leaks)
    else:  # ts_rank weighs every word: the query stays broad, ranked over its three newest matches
        assert len(found) == 3 and not set(found) & set(leaks)


async def test_postgresql_plans_each_search_for_its_own_words(repertoire: Repertoire) -> None:
    """A generic plan (PostgreSQL's choice for a statement prepared and run five times) knows no word, and
    a common word then costs a scan of every match; each search is planned for its own words instead."""
    if repertoire.database.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite plans every statement for its values")
    await repertoire.add("Leak", "A leak.")
    async with repertoire.database.session() as session:
        for _ in range(7):
            assert len(await search_items(session, "leak", community_ids=[repertoire.communities[0]])) == 1
        mode = await session.scalar(text("SELECT current_setting('plan_cache_mode')"))
    assert mode == "force_custom_plan"
    async with repertoire.database.session() as session:  # for the search's transaction only
        assert await session.scalar(text("SELECT current_setting('plan_cache_mode')")) == "auto"
