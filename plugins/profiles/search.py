"""Ranked full-text search over profiles, behind one repository method for SQLite and PostgreSQL.

SQLite ranks with FTS5's bm25 (expertise weighs most, then interests, then the organisation's name);
PostgreSQL ranks with ``ts_rank`` over the same fields. Both stem words (``leaks`` finds ``leakage``),
which a substring match would not, and neither is confused by a word that merely contains the topic.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import BindParameter, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from plugins.profiles.fields import split_tags, unaccented
from plugins.profiles.models import Profile

_WORD = re.compile(r"\w+(?:['’]\w+)*['’]?", re.UNICODE)  # "l'" typed alone is an elided word too
LIMIT = 10


@dataclass(frozen=True)
class Hit:
    member_id: int
    rank: float


def words(topic: str) -> list[str]:
    """Search terms as the index splits them; the one-letter pieces of ``women's`` or ``l'eau`` (or of
    ``l'`` typed alone) would match half the dictionary as prefixes, so they are left out."""
    found: list[str] = []
    for word in _WORD.findall(topic):
        pieces = re.split(r"['’]", word.lower())
        found += [piece for piece in pieces if len(pieces) == 1 or len(piece) > 1]
    return found[:12]


async def index_profile(session: AsyncSession, profile: Profile) -> None:
    """Keep the SQLite FTS5 index in step with a saved profile (PostgreSQL indexes at query time)."""
    if session.bind is None or session.bind.dialect.name != "sqlite":
        return
    await session.execute(text("DELETE FROM profiles_fts WHERE member_id = :id"), {"id": profile.member_id})
    await session.execute(
        text("INSERT INTO profiles_fts (member_id, expertise, interests, org) VALUES (:id, :e, :i, :o)"),
        {"id": profile.member_id, "e": profile.expertise, "i": profile.interests, "o": profile.org},
    )


async def search_profiles(
    session: AsyncSession, topic: str, *, community_ids: Sequence[int] | None
) -> list[Hit]:
    """Members of the communities whose profile matches ``topic``, best first (at most LIMIT)."""
    terms = words(topic)
    if not terms:
        return []
    members = (
        "SELECT member_id FROM memberships WHERE community_id IN :communities AND left_at IS NULL"
        if community_ids
        else "SELECT id FROM members"
    )
    expanding: list[BindParameter[Any]] = [bindparam("communities", expanding=True)] if community_ids else []
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = text(
            f"""
            SELECT p.member_id, ts_rank(
                setweight(to_tsvector('english', p.expertise), 'A') ||
                setweight(to_tsvector('english', p.interests), 'B') ||
                setweight(to_tsvector('english', p.org), 'C'),
                to_tsquery('english', :query)) AS rank
            FROM profiles p
            WHERE p.member_id IN ({members})
              AND (setweight(to_tsvector('english', p.expertise), 'A') ||
                   setweight(to_tsvector('english', p.interests), 'B') ||
                   setweight(to_tsvector('english', p.org), 'C')) @@ to_tsquery('english', :query)
            ORDER BY rank DESC, p.member_id
            LIMIT {LIMIT}
            """
        ).bindparams(*expanding)
        prefixes = " | ".join(f"{term}:*" for term in terms)  # "leak" also finds "leakage"
        rows = await session.execute(query, {"query": prefixes, **_communities(community_ids)})
        return [Hit(member_id, float(rank)) for member_id, rank in rows]
    query = text(
        f"""
        SELECT member_id, bm25(profiles_fts, 0.0, 10.0, 3.0, 1.0) AS rank
        FROM profiles_fts
        WHERE profiles_fts MATCH :query AND member_id IN ({members})
        ORDER BY rank, member_id
        LIMIT {LIMIT}
        """
    ).bindparams(*expanding)
    match = " OR ".join(f'"{term}"*' for term in terms)  # prefix queries: "leak" also finds "leakage"
    rows = await session.execute(query, {"query": match, **_communities(community_ids)})
    return [Hit(int(member_id), -float(rank)) for member_id, rank in rows]


def _communities(community_ids: Sequence[int] | None) -> dict[str, list[int]]:
    return {"communities": list(community_ids)} if community_ids else {}


class Why(NamedTuple):
    """Why a profile matched a topic: the words for the list, and whether it was on interests alone — someone
    who wants to learn about the topic, listed apart from those who know about it."""

    said: str
    interested_only: bool


def why(profile: Profile, topic: str) -> Why:
    """The tags that matched, for the member reading the list: 'expertise: leak detection'."""
    terms = words(topic)

    def matching(stored: str) -> list[str]:
        return [tag for tag in split_tags(stored) if any(_alike(t, w) for t in terms for w in words(tag))]

    expertise, interests = matching(profile.expertise), matching(profile.interests)
    in_org = any(_alike(t, w) for t in terms for w in words(profile.org))
    parts = []
    if expertise:
        parts.append("expertise: " + ", ".join(expertise))
    if interests:
        parts.append("interests: " + ", ".join(interests))
    if not parts and in_org:
        parts.append(f"organisation: {profile.org}")
    said = "; ".join(parts) or "related words in their profile"
    return Why(said, interested_only=bool(interests) and not expertise and not in_org)


def _alike(query: str, word: str) -> bool:
    """Same word up to its ending (leak, leaks, leakage; meters, metering) — enough to point at a tag.
    Accents do not count, as the index (FTS5's unicode61) ignores them: a profile found for "energie"
    by its "Énergie" is said to match on that tag, and one only interested in it is listed apart."""
    query, word = unaccented(query), unaccented(word)
    common = next(
        (i for i, (a, b) in enumerate(zip(query, word, strict=False)) if a != b), min(len(query), len(word))
    )
    return common >= max(3, max(len(query), len(word)) - 3)  # "net" is not "networks"
