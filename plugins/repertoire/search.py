"""Ranked full-text search over the repertoire, one API for SQLite and PostgreSQL.

SQLite ranks with FTS5's bm25 over ``repertoire_fts`` (title weighs most, then tags, then the text; the
``item_id`` column weighs nothing); PostgreSQL ranks with ``ts_rank`` over the generated ``search`` column
(title A, tags B, text C), found through its GIN index. Both stem (``leaks`` finds ``leak``) and neither
matches a word inside another (``leak`` does not find ``bleak``): there are no prefix queries.

A member's text never reaches the database as query syntax: it is cut into words (unicode ``\\w``), English
stop words are dropped on both backends (PostgreSQL's ``english`` configuration drops them anyway), and each
word goes in quoted (FTS5) or as a bound parameter of ``plainto_tsquery`` (PostgreSQL), the words joined with
OR, so that an item matching more of them ranks higher.

The FTS5 row of an item has the item's id as its rowid (and in ``item_id``): searches join the items by rowid
and re-indexing deletes by rowid, neither scanning the index. Removed items stay indexed; every query leaves
them out. Tags are compared whole and case-insensitively (``lower()``: ASCII only on SQLite, which is enough
for the plugin's tags, stored in lower case).

Broad queries. On SQLite bm25 costs about 1 µs for each row it ranks, and each word's weight takes a pass
over all the rows holding it; a common word among 100,000 items is in ten thousand of them or more, so a
broad query cannot be ranked whole in a few milliseconds (bench/repertoire_search.py: ~20 ms a search). A
query with more than WINDOW matches is therefore ranked, exactly, over its WINDOW newest matches, on both
backends; narrower ones (all of them in a repertoire of a few thousand items) over every match. When the
filters leave fewer results than asked for among those, every match is filtered, then ranked. On SQLite a
word in more than half of the recent items is left out of a broad query that has other words: bm25 gives
such a word no weight, and its pass over most rows would cost more than the rest of the search. The SQLite
search is one statement and one round trip to aiosqlite's thread; a tag narrows the rows it ranks through
the tags column's own index. Its words and communities are bound as JSON arrays (``json_each``), so the
statement's text does not depend on how many there are: SQLite prepares a statement anew for each text
(0.4–1.2 ms, as much as the search), and a search for three words in two communities then finds the one
prepared for two words in one. What it reads of the items it ranks (community, removal, kind, date, tags;
``authors_for`` their author) comes from ``ix_repertoire_ranked`` (migration 0017), not from the rows that
hold their whole texts: a few dozen pages instead of a few hundred.

The newest items, on their own. bm25 weighs each word by how many rows of its index hold it, and counts
them anew for every search: for a word in most of 100,000 items that cost ~2.4 ms before a row was ranked.
So the newest RECENT items are indexed a second time, in ``repertoire_recent`` (``index_item`` keeps it the
rows of ``repertoire_fts`` above its newest rowid less RECENT), and a broad query whose window lies there
whole is ranked there: its words weighed by how common they are among the newest items, the rows those of
the same window. Other queries (a rare word's count is quick) are ranked in ``repertoire_fts``. One
statement holds both rankings; the one not wanted is bounded by a rowid no row reaches, so FTS5 reads
nothing for it (a condition on the branch alone would still walk its matches).

Snippets are made the same way on both backends: the database marks every match in the text (FTS5
``highlight()``, ``ts_headline`` with ``HighlightAll``), for the rows returned only, and :func:`snippet`
cuts the window with the most distinct matched words at word boundaries, the matches wrapped as «word».
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from plugins.repertoire.models import Item

MAX_WORDS = 12
MAX_WORD = 100  # longer is no word a member looks for (and PostgreSQL indexes none over 2 kB)
MAX_LIMIT = 100
WINDOW = 1000  # a broad query is ranked over its most recent matches
RECENT = 10_000  # the newest items, indexed again on their own: a broad query's window is ranked there
SAMPLE = 1000  # the most recent items, to tell which words are in most of them
UBIQUITOUS = 0.5  # the share of items above which bm25 gives a word no weight
CHECKED = 200  # the best rows checked against the filters at first
SNIPPET_CHARS = 160
CONTEXT_CHARS = 40  # words kept before the first match in a snippet, when there is room
MAX_ANCHORS = 40  # matches tried as the snippet's centre
CLOSE_ENOUGH = 0.7  # difflib ratio for a tag to be suggested
TAG_SCAN = 10_000  # the newest items whose tags are suggested
ELLIPSIS = "…"
OPEN, CLOSE = "«", "»"
_MARK_OPEN, _MARK_CLOSE = "\ue000", "\ue001"  # private use: the database marks matches with these
_FTS = "repertoire_fts"
_FTS_ROW = "(:id, :id, :title, :tags, :body)"
_RECENT_FTS = "repertoire_recent"  # the newest RECENT rows of repertoire_fts (SQLite)
_NEVER = 2**63 - 1  # a rowid bound no row reaches: the branch of a statement that must find nothing
_IN_RECENT = "THEN (SELECT floor FROM v) ELSE :never"  # the window's floor, if it lies in repertoire_recent
_NOT_IN_RECENT = "THEN :never ELSE (SELECT floor FROM v)"
_ROWID = "repertoire_fts.rowid"
_WEIGHTS = "0.0, 10.0, 5.0, 1.0"  # bm25's, per column: item_id, title, tags, body; lower ranks better
_BM25 = f"bm25({_FTS}, {_WEIGHTS})"
_MATCHING = "SELECT rowid FROM repertoire_fts WHERE repertoire_fts MATCH {}"
_NEWEST = _MATCHING + " ORDER BY rowid DESC LIMIT 1 OFFSET :window"  # where the WINDOW newest matches start
_NEWEST_ITEM = "SELECT max(id) FROM repertoire_items"
_RECENT_FROM = f"SELECT rowid FROM {_RECENT_FTS} ORDER BY rowid LIMIT 1"  # NULL while it is empty
_IN_JSON = "IN (SELECT value FROM json_each(:communities))"  # one statement for any number of communities
# what a search reads of the items it ranks, ~80 bytes an item (migration 0017); named, since without
# ANALYZE's statistics SQLite would seek each item's row, whole texts and all, by its rowid instead
_ITEMS = "repertoire_items AS i INDEXED BY ix_repertoire_ranked"
_IN_COMMUNITIES = f"SELECT id FROM repertoire_items WHERE community_id {_IN_JSON}"
_HEADLINE_OPTIONS = f"StartSel={_MARK_OPEN}, StopSel={_MARK_CLOSE}, HighlightAll=true"

_WORD = re.compile(r"\w+(?:['’]\w+)*", re.UNICODE)
_ALNUM = re.compile(r"[^\W_]", re.UNICODE)
_TAG_PARTS = re.compile(r"[\W_]+", re.UNICODE)
# PostgreSQL's english.stop (Snowball): dropped on SQLite too, so both backends look for the same words.
STOP_WORDS = frozenset(
    """i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her
    hers herself it its itself they them their theirs themselves what which who whom this that these those
    am is are was were be been being have has had having do does did doing a an the and but if or because
    as until while of at by for with about against between into through during before after above below to
    from up down in out on off over under again further then once here there when where why how all any both
    each few more most other some such no nor not only own same so than too very s t can will just don
    should now""".split()
)


@dataclass(frozen=True)
class Hit:
    item_id: int
    rank: float  # higher is better, comparable within one result list
    snippet: str  # plain text around the best match, matched words as «word»; at most SNIPPET_CHARS


@dataclass(frozen=True)
class AuthorMatch:
    """An author of items matching a topic, with the evidence that matched it: what ``experts`` says of
    them must be why they were found ("tagged #leak-detection", "titled 'Leak map'"), not any tag."""

    member_id: int
    items: int  # how many of their (not removed) items match
    tags: tuple[str, ...] = ()  # those items' tags that match the topic, most frequent first, as written
    titles: tuple[str, ...] = ()  # those items' titles that match it, best-matching item first


def words(query: str) -> list[str]:
    """The search terms in a member's text: lower-case unicode words without stop words, once each.

    The one-letter pieces of ``women's`` or ``l'eau`` are left out, as in the profiles' search; a word with
    no letter or digit (``_``), or longer than MAX_WORD, is no word. At most MAX_WORDS: a pasted page
    costs no more than a line.
    """
    found: list[str] = []
    for match in _WORD.finditer(query):
        pieces = re.split(r"['’]", match.group(0).lower())
        for piece in pieces:
            if (len(pieces) > 1 and len(piece) < 2) or len(piece) > MAX_WORD or piece in STOP_WORDS:
                continue
            if not _ALNUM.search(piece):
                continue
            if piece not in found:
                found.append(piece)
                if len(found) == MAX_WORDS:
                    return found
    return found


def normal_tag(tag: str) -> str:
    """A tag as compared: without ``#`` and the spaces around it, lower case."""
    return tag.strip().removeprefix("#").strip().lower()


def split_tags(stored: str) -> list[str]:
    return [tag.strip() for tag in stored.split(",") if tag.strip()]


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _text(sql: str, *expanding: str) -> Any:
    return text(sql).bindparams(*(bindparam(name, expanding=True) for name in ("communities", *expanding)))


def _fts_match(terms: Sequence[str]) -> str:
    return " OR ".join(f'"{term}"' for term in terms)  # \w words: no '"' inside to double


# --- indexing -------------------------------------------------------------------------------------------


async def index_item(session: AsyncSession, item: Item) -> None:
    """Put a saved item in the SQLite FTS5 index in place of what was there (PostgreSQL: generated)."""
    if _dialect(session) != "sqlite":
        return
    if item.id is None:
        raise ValueError("index_item needs a flushed item: it has no id yet")
    await unindex_item(session, item.id)
    row = {"id": item.id, "title": item.title, "tags": item.tags.replace(",", " "), "body": item.body}
    for table in (_FTS, _RECENT_FTS):
        await session.execute(
            text(f"INSERT INTO {table} (rowid, item_id, title, tags, body) VALUES {_FTS_ROW}"),
            row,
        )
    await session.execute(text(_TRIM_RECENT), {"recent": RECENT})


# what keeps repertoire_recent the rows of repertoire_fts above its newest rowid less RECENT, all of them
_TRIM_RECENT = (
    f"DELETE FROM {_RECENT_FTS} WHERE rowid <= "
    f"(SELECT rowid FROM {_RECENT_FTS} ORDER BY rowid DESC LIMIT 1) - :recent"
)


async def unindex_item(session: AsyncSession, item_id: int) -> None:
    if _dialect(session) != "sqlite":
        return
    for table in (_FTS, _RECENT_FTS):
        await session.execute(text(f"DELETE FROM {table} WHERE rowid = :id"), {"id": item_id})


# --- filters --------------------------------------------------------------------------------------------


def _filters(
    dialect: str, kind: str | None, tag: str | None, params: dict[str, Any], listed: str = "IN :communities"
) -> str:
    """SQL over ``i`` (repertoire_items): in the communities, not removed, of the kind, with the tag."""
    sql = f"i.community_id {listed} AND i.removed_at IS NULL"
    if kind is not None:
        sql += " AND i.kind = :kind"
        params["kind"] = kind
    if tag is not None:
        # the whole tag, case-insensitively: ",smart-metering," in ",leakage,smart-metering,"
        listed = "',' || lower(replace(replace(i.tags, ', ', ','), ' ,', ',')) || ','"
        sql += f" AND {'instr' if dialect == 'sqlite' else 'strpos'}({listed}, :tag) > 0"
        params["tag"] = f",{normal_tag(tag)},"
    return sql


# --- search ---------------------------------------------------------------------------------------------


async def search_items(
    session: AsyncSession,
    query: str,
    *,
    community_ids: Sequence[int],
    kind: str | None = None,
    tag: str | None = None,
    limit: int = 10,
) -> list[Hit]:
    """Items of these communities matching the words of ``query``, best first, newest first among equals."""
    terms = words(query)
    limit = min(limit, MAX_LIMIT)
    if not terms or not community_ids or limit <= 0 or (tag is not None and not normal_tag(tag)):
        return []
    if _dialect(session) == "postgresql":
        return await _search_postgresql(session, terms, community_ids, kind, tag, limit)
    return await _search_sqlite(session, terms, community_ids, kind, tag, limit)


async def _search_postgresql(
    session: AsyncSession,
    terms: list[str],
    community_ids: Sequence[int],
    kind: str | None,
    tag: str | None,
    limit: int,
) -> list[Hit]:
    """As on SQLite: a broad query is ranked over its WINDOW newest matches, all of them if too few of
    those pass the filters. (ts_rank weighs no word by how common it is: no word is left out.)"""
    params: dict[str, Any] = {
        "communities": list(community_ids),
        "limit": limit,
        "options": _HEADLINE_OPTIONS,
    }
    filters = _filters("postgresql", kind, tag, params)
    tsquery = _tsquery(terms, params)
    # The words decide the plan: a common word is found fastest by reading the newest items backwards, a
    # rare one through the GIN index. The driver prepares each statement, and after five runs PostgreSQL
    # may settle on one generic plan that knows no word: p95 26 → 15 ms and the slowest search 110 →
    # 28 ms when every search is planned for its own words (bench/repertoire_search.py, 100,000 items).
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    for window in (WINDOW, None):  # the newest matches; every match if too few of them pass the filters
        # the window is of matches, filtered after; every match is filtered first (an index may serve)
        newest = "ORDER BY i.id DESC LIMIT :window" if window else f"AND {filters}"
        rows = (
            await session.execute(
                _text(
                    f"""
                    WITH matched AS MATERIALIZED (
                        SELECT i.id, i.created_at,
                               CASE WHEN {filters} THEN ts_rank(i.search, {tsquery}) END AS score
                        FROM repertoire_items AS i WHERE i.search @@ {tsquery} {newest}
                    ), best AS MATERIALIZED (
                        SELECT id, score, created_at FROM matched WHERE score IS NOT NULL
                        ORDER BY score DESC, created_at DESC, id DESC LIMIT :limit
                    )
                    SELECT best.id, best.score, ts_headline('english', i.body, {tsquery}, :options),
                           ts_headline('english', i.title, {tsquery}, :options), i.body, i.title,
                           best.created_at
                    FROM best JOIN repertoire_items AS i ON i.id = best.id
                    UNION ALL
                    SELECT NULL, (SELECT count(*) FROM matched), NULL, NULL, NULL, NULL, NULL
                    """
                ),
                {**params, "window": window},
            )
        ).all()
        found = [row for row in rows if row[0] is not None]
        matched = next(int(row[1]) for row in rows if row[0] is None)
        if len(found) >= limit or window is None or matched < window:
            break
    found.sort(key=lambda row: (row[-1], row[0]), reverse=True)
    found.sort(key=lambda row: row[1], reverse=True)
    return [Hit(int(item_id), float(score), snippet(*texts)) for item_id, score, *texts, _at in found]


def _tsquery(terms: Sequence[str], params: dict[str, Any]) -> str:
    """``plainto_tsquery(w0) || plainto_tsquery(w1) …``: each word a bound parameter, never syntax."""
    for index, term in enumerate(terms):
        params[f"w{index}"] = term
    return "(" + " || ".join(f"plainto_tsquery('english', :w{index})" for index in range(len(terms))) + ")"


async def _search_sqlite(
    session: AsyncSession,
    terms: list[str],
    community_ids: Sequence[int],
    kind: str | None,
    tag: str | None,
    limit: int,
) -> list[Hit]:
    """The module's docstring says how: one statement (aiosqlite's round trips cost ~0.5 ms each), run again
    over more rows only when the filters leave too few of the best ones."""
    params: dict[str, Any] = {
        "communities": json.dumps(list(community_ids)),
        "all": _fts_match(terms),
        "window": WINDOW - 1,
        "limit": limit,
        "open": _MARK_OPEN,
        "close": _MARK_CLOSE,
    }
    filters = _filters("sqlite", kind, tag, params, _IN_JSON)
    # The rows ranked. A tag is rare: the index of the tags column (the tag as a phrase, stemmed) tells at
    # once which rows might have it. For the other filters the best CHECKED rows are usually enough, then
    # checked one by one; when they are not, each row is checked before it is ranked.
    tag_words = [word for word in _TAG_PARTS.split(normal_tag(tag)) if word] if tag is not None else []
    if tag_words:
        params["tagged"] = 'tags : "' + " ".join(tag_words) + '"'
    if len(terms) > 1:  # a broad query leaves out the words in most of the recent items, if it has others
        params.update(sample=SAMPLE, ubiquitous=UBIQUITOUS, terms=json.dumps([f'"{term}"' for term in terms]))
        counted = (
            "SELECT value, (SELECT count(*) FROM repertoire_fts WHERE repertoire_fts MATCH value"
            " AND rowid > (SELECT since FROM sample)) FROM json_each(:terms)"
        )
        recent = "SELECT count(*) FROM repertoire_items WHERE id > (SELECT since FROM sample)"
        words_matched = f"""
            sample AS MATERIALIZED (SELECT coalesce(({_NEWEST_ITEM}), 0) - :sample AS since),
            shares(term, recent) AS MATERIALIZED ({counted}),
            newest AS MATERIALIZED (SELECT ({_NEWEST.format(":all")}) AS floor),
            q AS MATERIALIZED (SELECT CASE WHEN (SELECT floor FROM newest) IS NULL THEN :all ELSE coalesce(
                (SELECT group_concat(term, ' OR ') FROM shares WHERE recent <= :ubiquitous * ({recent})), :all
            ) END AS m),"""
        # the window of every word, found already, unless a word in most items was left out
        floor = f"CASE WHEN q.m = :all THEN (SELECT floor FROM newest) ELSE ({_NEWEST.format('q.m')}) END"
    else:
        words_matched = "q AS MATERIALIZED (SELECT :all AS m),"
        floor = f"({_NEWEST.format('q.m')})"
    # the best CHECKED rows; if too few pass the filters, every row in the window; if still too few, all
    # (a kind is a fifth of the items or fewer: checking each row in the window first costs no more)
    plan = [(True, CHECKED), (True, -1), (False, -1)] if kind is None else [(True, -1), (False, -1)]
    step = 0
    while step < len(plan):
        windowed, checked = plan[step]
        if windowed:  # the window in repertoire_recent when it lies there whole, else in repertoire_fts
            ranked = (
                f"SELECT * FROM ({_ranked(_RECENT_FTS, _IN_RECENT, checked, filters, kind, tag_words)})"
                " UNION ALL "
                f"SELECT * FROM ({_ranked(_FTS, _NOT_IN_RECENT, checked, filters, kind, tag_words)})"
            )
        else:
            ranked = _ranked(_FTS, None, checked, filters, kind, tag_words)
        rows = await _sqlite_rows(
            session,
            f"""
                    WITH {words_matched}
                    w AS MATERIALIZED (SELECT q.m, {floor} AS floor FROM q),
                    v AS MATERIALIZED (
                        SELECT coalesce(w.floor, 0) AS floor,
                            coalesce(w.floor >= ({_RECENT_FROM}), 0) AS recent FROM w
                    ),
                    r AS MATERIALIZED ({ranked}),
                    best AS MATERIALIZED (
                        SELECT r.id, r.score, i.created_at FROM r JOIN {_ITEMS} ON i.id = r.id
                        WHERE {filters} ORDER BY r.score DESC, i.created_at DESC, i.id DESC LIMIT :limit
                    )
                    SELECT best.id, best.score, best.created_at, highlight(repertoire_fts, 3, :open, :close),
                        highlight(repertoire_fts, 1, :open, :close), repertoire_fts.body, repertoire_fts.title
                    FROM best JOIN repertoire_fts ON {_ROWID} = best.id
                    WHERE repertoire_fts MATCH :all
                    UNION ALL
                    SELECT NULL, (SELECT count(*) FROM r), (SELECT floor FROM w), NULL, NULL, NULL, NULL
                    """,
            {**params, "checked": checked, "never": _NEVER},
        )
        found = [tuple(row) for row in rows if row[0] is not None]
        ranked, floor = next((row[1], row[2]) for row in rows if row[0] is None)
        everything = checked < 0 or ranked < checked  # every row in the window (or every match) was ranked
        if len(found) >= limit or (everything and (floor is None or not windowed)):
            break
        step = len(plan) - 1 if everything else step + 1  # the window was seen whole: every match next
    # best first, newest first among equals (created_at comes back as text on SQLite: ISO, so it sorts)
    found.sort(key=lambda row: (row[2], row[0]), reverse=True)
    found.sort(key=lambda row: row[1], reverse=True)
    return [Hit(int(item_id), float(score), snippet(*texts)) for item_id, score, _, *texts in found]


def _ranked(
    fts: str, bound: str | None, checked: int, filters: str, kind: str | None, tag_words: list[str]
) -> str:
    """The best ``checked`` rows of ``fts`` matching the query (all if -1), bm25 first. ``bound`` is how
    the window's floor applies (``_IN_RECENT``: this branch finds rows only when the window lies in
    repertoire_recent; ``_NOT_IN_RECENT``: only when it does not), None for every match. The tag's rows
    come from repertoire_fts, a superset of repertoire_recent's."""
    rowid = f"{fts}.rowid"
    cut = f"{rowid} >= CASE WHEN (SELECT recent FROM v) {bound} END" if bound else "1"
    joined = ""
    if checked < 0:  # the filters first (CROSS JOIN: the full-text index leads)
        joined = f"CROSS JOIN {_ITEMS} ON i.id = {rowid}"
        cut += f" AND {filters}"
        if bound is None and not tag_words:  # every match: those of the communities (and kind) only
            cut += f" AND +{rowid} IN ({_IN_COMMUNITIES}{' AND kind = :kind' if kind is not None else ''})"
    if tag_words:
        cut += f" AND +{rowid} IN ({_MATCHING.format(':tagged')})"
    return (
        f"SELECT {rowid} AS id, -bm25({fts}, {_WEIGHTS}) AS score FROM {fts} {joined} "
        f"WHERE {fts} MATCH (SELECT m FROM w) AND {cut} ORDER BY score DESC LIMIT :checked"
    )


async def _sqlite_rows(session: AsyncSession, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of a statement in one round trip to aiosqlite's thread (through SQLAlchemy's adapter a
    statement takes four, ~0.6 ms on a small machine: more than a search's own work). Lists are expanded."""
    for name, value in list(params.items()):
        if isinstance(value, list):
            names = [f"{name}_{index}" for index in range(len(value))]
            sql = re.sub(rf":{name}\b", "(" + ", ".join(f":{each}" for each in names) + ")", sql)
            params = {
                **{key: item for key, item in params.items() if key != name},
                **dict(zip(names, value, strict=True)),
            }
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    fetch_all = getattr(driver, "execute_fetchall", None)  # aiosqlite's; the same connection and transaction
    if fetch_all is None:
        return [tuple(row) for row in await session.execute(text(sql), params)]
    return [tuple(row) for row in await fetch_all(sql, params)]


async def closest_tags(
    session: AsyncSession, query: str, *, community_ids: Sequence[int], limit: int = 3
) -> list[str]:
    """For "nothing found": the communities' tags closest in spelling to the query's words, as written.
    The tags in use are those of the newest TAG_SCAN items (all of them but in a very large repertoire)."""
    terms = words(query)
    if not terms or not community_ids or limit <= 0:
        return []
    rows = await session.execute(
        _text(
            "SELECT DISTINCT t.tags FROM (SELECT tags FROM repertoire_items "
            "WHERE community_id IN :communities AND removed_at IS NULL AND tags <> '' "
            "ORDER BY id DESC LIMIT :scan) AS t"
        ),
        {"communities": list(community_ids), "scan": TAG_SCAN},
    )
    spelled: dict[str, str] = {}
    for (stored,) in rows:
        for tag in split_tags(stored):
            spelled.setdefault(normal_tag(tag), tag)
    wanted = [*terms, " ".join(terms)] if len(terms) > 1 else terms
    import difflib  # on use: not loaded at start-up (memory)

    matcher = difflib.SequenceMatcher(autojunk=False)
    scored: list[tuple[float, str]] = []
    for key in spelled:
        parts = [part for part in _TAG_PARTS.split(key) if part]
        best = 0.0
        for candidate in {key, " ".join(parts), *parts}:  # "smart-metering", "smart metering", "metering"
            matcher.set_seq2(candidate)
            for term in wanted:
                matcher.set_seq1(term)
                if matcher.real_quick_ratio() > best and matcher.quick_ratio() > best:
                    best = max(best, matcher.ratio())
        if best >= CLOSE_ENOUGH:
            scored.append((best, key))
    scored.sort(key=lambda pair: (-pair[0], len(pair[1]), pair[1]))
    return [spelled[key] for _, key in scored[:limit]]


async def authors_for(
    session: AsyncSession, topic: str, *, community_ids: Sequence[int], limit: int = 10
) -> list[AuthorMatch]:
    """Members whose (not removed) items match ``topic``, best first: the most relevant in all (the sum of
    their items' ranks). Every match counts, however broad the topic (no window: this is not typed often)."""
    terms = words(topic)
    limit = min(limit, MAX_LIMIT)
    if not terms or not community_ids or limit <= 0:
        return []
    dialect = _dialect(session)
    params: dict[str, Any] = {"communities": list(community_ids), "limit": limit}
    filters = _filters(dialect, None, None, params)
    if dialect == "postgresql":
        tsquery = _tsquery(terms, params)
        matching = f"""
            SELECT i.author_id, i.tags, ts_rank(i.search, {tsquery}) AS score, i.id
            FROM repertoire_items AS i WHERE i.search @@ {tsquery} AND {filters} OFFSET 0
        """
    else:
        params["match"] = _fts_match(terms)
        # bm25() cannot be used inside an aggregate: the LIMIT keeps this a subquery of its own
        matching = f"""
            SELECT i.author_id, i.tags, -{_BM25} AS score, i.id
            FROM repertoire_fts CROSS JOIN {_ITEMS} ON i.id = repertoire_fts.rowid
            WHERE repertoire_fts MATCH :match AND {filters} LIMIT -1
        """
    authors = await session.execute(
        _text(
            f"""
            SELECT m.author_id, count(*) AS n, sum(m.score) AS total FROM ({matching}) AS m
            GROUP BY m.author_id ORDER BY total DESC, n DESC, m.author_id LIMIT :limit
            """
        ),
        params,
    )
    found = [(int(author_id), int(count)) for author_id, count, _total in authors]
    if not found:
        return []
    items = await session.execute(
        _text(
            f"SELECT m.author_id, m.tags, m.id FROM ({matching}) AS m WHERE m.author_id IN :authors "
            "ORDER BY m.score DESC, m.id DESC",
            "authors",
        ),
        {**params, "authors": [author_id for author_id, _ in found]},
    )
    counts: dict[int, Counter[str]] = {author_id: Counter() for author_id, _ in found}
    spelled: dict[int, dict[str, str]] = {author_id: {} for author_id, _ in found}  # as they first wrote it
    best: dict[int, list[int]] = {author_id: [] for author_id, _ in found}  # their items, best first
    for author_id, stored, item_id in items:
        best[author_id].append(int(item_id))
        for tag in dict.fromkeys(split_tags(stored)):
            if not _mentions(tag, terms):
                continue
            key = normal_tag(tag)
            spelled[author_id].setdefault(key, tag)
            counts[author_id][key] += 1  # most_common() keeps the first seen (best item) first among equals
    titles = await _matching_titles(
        session, terms, {author: ids for author, ids in best.items() if not counts[author]}
    )
    return [
        AuthorMatch(
            author,
            count,
            tuple(spelled[author][key] for key, _ in counts[author].most_common()),
            titles.get(author, ()),
        )
        for author, count in found
    ]


async def _matching_titles(
    session: AsyncSession, terms: Sequence[str], best: dict[int, list[int]], per_author: int = 10
) -> dict[int, tuple[str, ...]]:
    """For authors no tag of whose items matched: the titles that match among their best few items. Read
    apart, for these few rows only: the statements above stay within ix_repertoire_ranked (no titles)."""
    wanted = {item_id: author for author, ids in best.items() for item_id in ids[:per_author]}
    if not wanted:
        return {}
    rows = await session.execute(select(col(Item.id), col(Item.title)).where(col(Item.id).in_(list(wanted))))
    title_of = {item_id: title for item_id, title in rows if item_id is not None}
    return {
        author: tuple(
            dict.fromkeys(
                title_of[item_id]
                for item_id in ids[:per_author]
                if item_id in title_of and _mentions(title_of[item_id], terms)
            )
        )
        for author, ids in best.items()
    }


def _mentions(text: str, terms: Sequence[str]) -> bool:
    """Whether ``text`` has a word alike one of ``terms``: the index's stemming found the item by it."""
    return any(_alike(term, word) for term in terms for word in words(text))


def _alike(query: str, word: str) -> bool:
    """Same word up to its ending (leak, leaks, leakage; meters, metering), accents aside, as the index
    (porter, unicode61) compares them: enough to point at the tag or title an item was found by."""
    query, word = _unaccented(query), _unaccented(word)
    common = next(
        (i for i, (a, b) in enumerate(zip(query, word, strict=False)) if a != b), min(len(query), len(word))
    )
    return common >= max(3, max(len(query), len(word)) - 3)  # "net" is not "networks"


def _unaccented(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()


# --- snippets -------------------------------------------------------------------------------------------


def snippet(
    marked_body: str | None, marked_title: str | None, body: str | None = "", title: str | None = ""
) -> str:
    """Plain text around the best match in the text, or in the title if the text has none; the start of
    the text (or title) when only the tags matched. At most SNIPPET_CHARS, cut between words."""
    for marked in (marked_body, marked_title):
        if marked and _MARK_OPEN in marked:
            return _window_text(_line(marked))
    plain = (body or title or "").replace(_MARK_OPEN, "").replace(_MARK_CLOSE, "")
    return _window_text(" ".join(plain.split()))


def _line(marked: str) -> str:
    """The words one space apart, each carrying its own markers (a match across a space is closed and
    opened again): a snippet then measures and cuts the line with the string methods alone. A search
    makes one for each hit: walking a hundred-word text in Python took most of a snippet's time."""
    if not _SPANNING.search(marked):
        return " ".join(marked.split())  # every match within one word: the usual case
    tokens: list[str] = []
    inside = False
    for raw in marked.split():
        token = (_MARK_OPEN + raw if inside else raw).replace(_MARK_OPEN + _MARK_CLOSE, "")
        inside = token.rfind(_MARK_OPEN) > token.rfind(_MARK_CLOSE)
        tokens.append(token + _MARK_CLOSE if inside else token)
    return " ".join(tokens)


_MATCHED = re.compile(f"{_MARK_OPEN}([^{_MARK_CLOSE}]*){_MARK_CLOSE}")
_SPANNING = re.compile(f"{_MARK_OPEN}[^{_MARK_CLOSE}]*?(?:\\s|$)")  # a match with a space (or no end) in it


def _best_anchor(line: str, limit: int) -> int:
    """Where the matched word starts from which the next ``limit`` characters hold the most distinct
    matched words (then the most matches); the first word if none is marked."""
    matched: list[tuple[int, list[str]]] = []  # each marked word: where it starts, its matched terms
    for match in _MATCHED.finditer(line):
        word = line.rfind(" ", 0, match.start()) + 1
        if matched and matched[-1][0] == word:
            matched[-1][1].append(match.group(1).lower())
        else:
            matched.append((word, [match.group(1).lower()]))
    best, best_score = 0, (0, 0)
    reach = limit - CONTEXT_CHARS
    for first, (anchor, _) in enumerate(matched[:MAX_ANCHORS]):
        seen: list[str] = []
        for word, terms in matched[first:]:
            if word - anchor > reach:
                break
            seen += terms
        score = (len(set(seen)), len(seen))
        if score > best_score:
            best, best_score = anchor, score
    return best


def _around(line: str, anchor: int, limit: int) -> tuple[int, int]:
    """The widest run of whole words around the word at ``anchor`` that fits in ``limit`` with its
    ellipses: a little context before it, as much after it as fits, then more before it if the text ends
    first; ``(anchor, anchor)`` if the word alone is too long. Offsets into ``line``, the end exclusive."""
    size = len(line)

    def end_of(word: int) -> int:
        space = line.find(" ", word)
        return size if space < 0 else space

    def length(start: int, end: int) -> int:  # with "…" before and after when cut there
        return end - start + (start > 0) + (end < size)

    anchor_end = end_of(anchor)
    start = 0 if anchor <= CONTEXT_CHARS else line.find(" ", anchor - CONTEXT_CHARS - 1) + 1
    while start < anchor and length(start, anchor_end) > limit:
        start = line.find(" ", start) + 1
    if length(start, anchor_end) > limit:
        return anchor, anchor
    end = anchor_end
    if length(start, size) <= limit:
        end = size
    else:  # the last space that keeps the run (and its "…") within the limit
        end = max(end, line.rfind(" ", end, start + limit - (start > 0)))
    if start > 0 and length(0, end) <= limit:
        start = 0
    elif start > 0:  # the first word at or after the earliest start that keeps the run within the limit
        start = line.find(" ", end + (end < size) - limit, start) + 1
    return start, end


def _window_text(line: str, limit: int = SNIPPET_CHARS) -> str:
    if not line:
        return ""
    start, end = _around(line, _best_anchor(line, limit), limit)
    if start == end:  # one word longer than the whole snippet: cut inside it
        cut = line[start : start + limit - 2].split(" ", 1)[0]
        if cut.count(_MARK_OPEN) > cut.count(_MARK_CLOSE):
            cut = cut[:-1] + _MARK_CLOSE
        shown = (ELLIPSIS if start > 0 else "") + cut + ELLIPSIS
    else:
        shown = (ELLIPSIS if start > 0 else "") + line[start:end] + (ELLIPSIS if end < len(line) else "")
    return shown.replace(_MARK_OPEN, OPEN).replace(_MARK_CLOSE, CLOSE)
