"""What the repertoire stores about a person (items credited to them, items they saved for others or
removed, upvotes given, items they applied), for ``profile export``, and forgetting it.

Items are the community's knowledge: forgotten, they stay credited to "a former member" and lose the link
to the original message (which would show who wrote it) — or, with ``--remove-items``, they are deleted with
their upvotes and marks. Upvotes the person gave are withdrawn (kept unnamed, they were given a second time
by the member come back as a new one); so are the "used" marks they gave, from their items ("applied by"),
while the value report still counts them as what happened in their period (``Use.withdrawn``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.privacy import FORMER, iso, rows_changed
from bot.tables import CommunityRow
from plugins.repertoire.models import Item, Upvote, Use
from plugins.repertoire.search import unindex_item


async def personal_data(session: AsyncSession, member_ids: Sequence[int]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    rows = (
        await session.execute(
            select(Item, col(CommunityRow.slug))
            .join(CommunityRow, col(CommunityRow.id) == col(Item.community_id))
            .where(col(Item.author_id).in_(member_ids))
            .order_by(col(Item.id))
        )
    ).all()
    if rows:
        found["items_credited_to_you"] = [
            {
                "item": item.id,
                "community": slug,
                "kind": item.kind,
                "title": item.title,
                "text": item.body,
                "link": item.url,
                "tags": item.tags,
                "original_message": item.source_link,
                "created_at": iso(item.created_at),
                "removed": item.removed_at is not None,
            }
            for item, slug in rows
        ]
    saved = (
        await session.execute(
            select(col(Item.id), col(Item.title))
            .where(col(Item.added_by_id).in_(member_ids), col(Item.author_id).not_in(member_ids))
            .order_by(col(Item.id))
        )
    ).all()
    if saved:
        found["items_you_saved_for_others"] = [{"item": i, "title": title} for i, title in saved]
    removed = (
        await session.execute(
            select(col(Item.id), col(Item.title), col(Item.removed_at))
            .where(col(Item.removed_by_id).in_(member_ids), col(Item.removed_at).is_not(None))
            .order_by(col(Item.id))
        )
    ).all()
    if removed:  # a moderator's, of others' items too: the row holds their id
        found["items_you_removed"] = [{"item": i, "title": title, "at": iso(at)} for i, title, at in removed]
    for key, table in (("upvotes_given", Upvote), ("items_you_applied", Use)):
        marks = (
            await session.execute(
                select(col(table.item_id), col(Item.title), col(table.at))
                .join(Item, col(Item.id) == col(table.item_id))
                .where(col(table.member_id).in_(member_ids))
                .order_by(col(table.item_id))
            )
        ).all()
        if marks:
            found[key] = [{"item": i, "title": title, "at": iso(at)} for i, title, at in marks]
    return found


async def forget(session: AsyncSession, member_ids: Sequence[int], *, remove_items: bool) -> list[str]:
    said: list[str] = []
    items = [
        item_id
        for item_id in (
            await session.execute(select(col(Item.id)).where(col(Item.author_id).in_(member_ids)))
        ).scalars()
        if item_id is not None
    ]
    plural = "s" if len(items) != 1 else ""
    if items and remove_items:
        for table in (Upvote, Use):
            await session.execute(delete(table).where(col(table.item_id).in_(items)))
        for item_id in items:
            await unindex_item(session, item_id)
        await session.execute(delete(Item).where(col(Item.id).in_(items)))
        said.append(f"{len(items)} repertoire item{plural} credited to you deleted, with their upvotes.")
    elif items:
        await session.execute(
            update(Item)
            .where(col(Item.id).in_(items))
            .values(origin_platform=None, origin_room=None, origin_message_id=None, source_link="")
            .execution_options(synchronize_session=False)
        )
        said.append(
            f"{len(items)} repertoire item{plural} kept, credited to '{FORMER}', without the links to your "
            "original messages (to delete instead, use profile forget --confirm --remove-items)."
        )
    # An upvote is a standing opinion, as a vote in a poll still open: kept unnamed, nothing would stop the
    # member, back later as a new member, from upvoting the same item again and counting twice. Withdrawn,
    # the counts stay right and nothing of theirs is kept.
    upvotes = await rows_changed(session, delete(Upvote).where(col(Upvote.member_id).in_(member_ids)))
    if upvotes:
        said.append(
            f"{upvotes} upvote{'s' if upvotes != 1 else ''} you gave withdrawn. If you come back, you may "
            "upvote again."
        )
    # A "used" mark is both: on the item, a standing "applied by" count of people, which the member come
    # back would join a second time; in the value report, an "I applied this" that happened in its period.
    # Withdrawn from the item, it stays counted there.
    used = await rows_changed(
        session,
        update(Use)
        .where(col(Use.member_id).in_(member_ids), col(Use.withdrawn).is_(False))
        .values(withdrawn=True)
        .execution_options(synchronize_session=False),
    )
    if used:
        marks, item, it, its = (
            ("mark", "its item", "it", "its") if used == 1 else ("marks", "their items", "them", "their")
        )
        said.append(
            f"{used} 'used' {marks} you gave withdrawn from {item}: if you come back, you may mark {it} "
            f"again. The value report still counts {it} in {its} period, by no one."
        )
    return said
