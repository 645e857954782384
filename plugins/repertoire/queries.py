"""The repertoire's queries: items with their upvotes and uses, the most upvoted, what to export, what to
suggest while an item's number is typed."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.plugin import UNNAMED
from bot.suggest import Suggestion, narrowed, suggestion
from bot.tables import MemberRow
from plugins.repertoire.export import Exported
from plugins.repertoire.models import Item, Upvote, Use
from plugins.repertoire.rules import split_tags
from plugins.repertoire.search import unindex_item


@dataclass(frozen=True)
class Shown:
    item: Item
    author: str
    upvotes: int
    used: int


async def counts(session: AsyncSession, item_ids: Sequence[int]) -> tuple[dict[int, int], dict[int, int]]:
    """Upvotes and uses per item (the uses standing: not a forgotten member's)."""
    if not item_ids:
        return {}, {}
    upvotes = await session.execute(
        select(col(Upvote.item_id), func.count())
        .where(col(Upvote.item_id).in_(item_ids))
        .group_by(col(Upvote.item_id))
    )
    uses = await session.execute(
        select(col(Use.item_id), func.count())
        .where(col(Use.item_id).in_(item_ids), col(Use.withdrawn).is_(False))
        .group_by(col(Use.item_id))
    )
    return dict(upvotes.all()), dict(uses.all())


async def names(session: AsyncSession, member_ids: Sequence[int]) -> dict[int, str]:
    if not member_ids:
        return {}
    rows = await session.execute(
        select(col(MemberRow.id), col(MemberRow.display_name)).where(
            col(MemberRow.id).in_(sorted(set(member_ids)))
        )
    )
    return {member_id: name for member_id, name in rows.all() if member_id is not None}


async def shown(session: AsyncSession, items: Sequence[Item], *, web: bool = False) -> list[Shown]:
    """The items with their authors' names and counts; ``web``: named only if the author chose to be
    (``profile set public on``), else "a member", as on every web page."""
    ids = [item.id for item in items if item.id is not None]
    upvotes, uses = await counts(session, ids)
    authors = [item.author_id for item in items]
    named = await (public_names(session, authors) if web else names(session, authors))
    return [
        Shown(
            item,
            named.get(item.author_id, UNNAMED if web else "a former member"),
            upvotes.get(item.id or 0, 0),
            uses.get(item.id or 0, 0),
        )
        for item in items
    ]


async def by_ids(session: AsyncSession, item_ids: Sequence[int]) -> dict[int, Item]:
    if not item_ids:
        return {}
    rows = await session.execute(select(Item).where(col(Item.id).in_(item_ids)))
    return {item.id: item for item in rows.scalars() if item.id is not None}


async def top(
    session: AsyncSession, community_id: int, kind: str | None, limit: int = 10
) -> list[tuple[Item, int]]:
    """The most upvoted items that are not removed (newest first among equals). Ranked by their ids and
    counts alone, then the ``limit`` shown read whole: sorting every item's whole row (its text) took ~3.5
    times as long (5,000 items: 32 ms against 9)."""
    votes = func.count(col(Upvote.member_id)).label("votes")
    ranking = (
        select(col(Item.id), votes)
        .outerjoin(Upvote, col(Upvote.item_id) == col(Item.id))
        .where(col(Item.community_id) == community_id, col(Item.removed_at).is_(None))
        .group_by(col(Item.id))
        .order_by(votes.desc(), col(Item.created_at).desc(), col(Item.id).desc())
        .limit(limit)
    )
    if kind is not None:
        ranking = ranking.where(col(Item.kind) == kind)
    ranked = (await session.execute(ranking)).all()
    if not ranked:
        return []
    shown = await session.execute(select(Item).where(col(Item.id).in_([item_id for item_id, _ in ranked])))
    items = {item.id: item for item in shown.scalars()}
    return [(items[item_id], int(count)) for item_id, count in ranked]


async def all_items(session: AsyncSession, community_id: int, *, web: bool = False) -> list[Exported]:
    """Every item of the community that is not removed, oldest first, as exported; ``web``: for the web
    export, which names only the authors who chose to be named on the web."""
    items = list(
        (
            await session.execute(
                select(Item)
                .where(col(Item.community_id) == community_id, col(Item.removed_at).is_(None))
                .order_by(col(Item.id))
            )
        ).scalars()
    )
    return [
        Exported(
            id=entry.item.id or 0,
            kind=entry.item.kind,
            title=entry.item.title,
            body=entry.item.body,
            url=entry.item.url,
            tags=list(split_tags(entry.item.tags)),
            author=entry.author,
            created_at=entry.item.created_at.isoformat(),
            updated_at=entry.item.updated_at.isoformat(),
            source_link=entry.item.source_link,
            upvotes=entry.upvotes,
            used=entry.used,
            copied_from=entry.item.copied_from_id,
        )
        for entry in await shown(session, items, web=web)
    ]


async def saved_from(session: AsyncSession, community_id: int, platform: str, message_id: str) -> Item | None:
    return await session.scalar(
        select(Item).where(
            col(Item.community_id) == community_id,
            col(Item.origin_platform) == platform,
            col(Item.origin_message_id) == message_id,
        )
    )


async def saved_copies(
    session: AsyncSession, community_id: int, platform: str, room: str, message_id: str
) -> list[int]:
    """The item saved from a message (with 📌) and every copy of it passed on to sister communities (and
    from there further): all that copbot keeps of that message."""
    found: list[int] = [
        item_id
        for item_id in (
            await session.scalars(
                select(col(Item.id)).where(
                    col(Item.community_id) == community_id,
                    col(Item.origin_platform) == platform,
                    col(Item.origin_message_id) == message_id,
                    col(Item.origin_room) == room,
                )
            )
        ).all()
        if item_id is not None
    ]
    return [*found, *(copy.id for copy in await copies_of(session, found) if copy.id is not None)]


async def copies_of(session: AsyncSession, item_ids: Sequence[int | None]) -> list[Item]:
    """The copies of these items passed to sister communities, and the copies passed on from those."""
    found: list[Item] = []
    seen = set(item_ids)
    wanted = list(item_ids)
    while wanted:
        copies = [
            copy
            for copy in (
                await session.execute(select(Item).where(col(Item.copied_from_id).in_(wanted)))
            ).scalars()
            if copy.id not in seen
        ]
        found += copies
        seen.update(copy.id for copy in copies)
        wanted = [copy.id for copy in copies]
    return found


async def delete_items(session: AsyncSession, item_ids: Sequence[int]) -> None:
    """Delete items for good, with their upvotes, "used" marks and search index entries."""
    if not item_ids:
        return
    for table in (Upvote, Use):
        await session.execute(delete(table).where(col(table.item_id).in_(item_ids)))
    for item_id in item_ids:
        await unindex_item(session, item_id)
    await session.execute(delete(Item).where(col(Item.id).in_(item_ids)))


def _added(community_id: int, start: datetime, end: datetime) -> tuple[Any, ...]:
    return (
        col(Item.community_id) == community_id,
        col(Item.created_at) >= start,
        col(Item.created_at) < end,
        col(Item.removed_at).is_(None),
    )


async def added_between(
    session: AsyncSession, community_id: int, start: datetime, end: datetime, *, limit: int | None = None
) -> list[Item]:
    """Items added in ``[start, end)`` (not removed), oldest first; the first ``limit`` of them."""
    rows = await session.execute(
        select(Item)
        .where(*_added(community_id, start, end))
        .order_by(col(Item.created_at), col(Item.id))
        .limit(limit)
    )
    return list(rows.scalars())


async def count_added_between(
    session: AsyncSession, community_id: int, start: datetime, end: datetime
) -> int:
    return int(
        await session.scalar(select(func.count()).select_from(Item).where(*_added(community_id, start, end)))
        or 0
    )


async def upvoted_between(
    session: AsyncSession, community_id: int, start: datetime, end: datetime, *, limit: int
) -> list[tuple[Item, int]]:
    """Items with the most upvotes given in ``[start, end)``: the period's upvotes are counted first (by
    time, on their own index), so a large repertoire's older votes are never read."""
    given = (
        select(col(Upvote.item_id), func.count().label("votes"))
        .where(col(Upvote.at) >= start, col(Upvote.at) < end)
        .group_by(col(Upvote.item_id))
        .subquery()
    )
    rows = await session.execute(
        select(Item, given.c.votes)
        .join(given, given.c.item_id == col(Item.id))
        .where(col(Item.community_id) == community_id, col(Item.removed_at).is_(None))
        .order_by(given.c.votes.desc(), col(Item.id))
        .limit(limit)
    )
    return [(item, int(count)) for item, count in rows.all()]


async def newest(
    session: AsyncSession, community_id: int, kind: str | None, tag: str | None, *, limit: int
) -> tuple[list[Item], int]:
    """The newest items that are not removed (of the kind, with the tag, compared whole and regardless of
    case), at most ``limit``, and how many there are in all."""
    query = select(Item).where(col(Item.community_id) == community_id, col(Item.removed_at).is_(None))
    if kind is not None:
        query = query.where(col(Item.kind) == kind)
    if tag is not None:
        listed = literal(",") + func.lower(col(Item.tags)) + literal(",")
        query = query.where(listed.contains(f",{tag.lower()},", autoescape=True))
    total = int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = await session.execute(
        query.order_by(col(Item.created_at).desc(), col(Item.id).desc()).limit(limit)
    )
    return list(rows.scalars()), total


async def public_names(session: AsyncSession, member_ids: Sequence[int]) -> dict[int, str]:
    """The names of those of these members who chose to show their name on the web (members.public)."""
    if not member_ids:
        return {}
    rows = await session.execute(
        select(col(MemberRow.id), col(MemberRow.display_name), col(MemberRow.platform_id)).where(
            col(MemberRow.id).in_(sorted(set(member_ids))),
            col(MemberRow.public).is_(True),
        )
    )
    return {member_id: name or platform_id for member_id, name, platform_id in rows.all() if member_id}


async def suggestions(
    session: AsyncSession,
    community_id: int,
    typed: str,
    *,
    removed: bool,
    authors: Collection[int] | None = None,
) -> list[Suggestion]:
    """The community's items (or its removed ones) whose title holds what is typed, newest first, each with
    its kind; only those of ``authors``, if given. Read from ``ix_repertoire_titles`` alone (migration
    0015): a keystroke reads titles, not the items' texts (a member's own: their rows, a few)."""
    query = (
        select(col(Item.id), col(Item.title), col(Item.kind))
        .where(
            col(Item.community_id) == community_id,
            col(Item.removed_at).is_not(None) if removed else col(Item.removed_at).is_(None),
        )
        .order_by(col(Item.id).desc())
    )
    if authors is not None:
        query = query.where(col(Item.author_id).in_(sorted(authors)))
    rows = await session.execute(narrowed(query, col(Item.id), col(Item.title), typed))
    return [suggestion(number, title, kind) for number, title, kind in rows if number is not None]
