"""What the repertoire stores about a person (items credited to them, items they saved for others,
upvotes given, items they applied), for ``profile export``, and forgetting it.

Items are the community's knowledge: forgotten, they stay credited to "a former member" and lose the link
to the original message (which would show who wrote it) — or, with ``--remove-items``, they are deleted with
their upvotes and marks. Upvotes and "used" marks the person gave stay as counts, by "a former member".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.privacy import FORMER, iso
from bot.tables import CommunityRow
from plugins.repertoire.models import Item, Upvote, Use
from plugins.repertoire.search import unindex_item


async def personal_data(session: AsyncSession, member_ids: Sequence[int]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    rows = (
        await session.execute(
            select(Item, CommunityRow.slug)
            .join(CommunityRow, CommunityRow.id == Item.community_id)
            .where(Item.author_id.in_(member_ids))  # type: ignore[attr-defined]
            .order_by(Item.id)  # type: ignore[arg-type]
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
            select(Item.id, Item.title)
            .where(Item.added_by_id.in_(member_ids), Item.author_id.not_in(member_ids))  # type: ignore[attr-defined]
            .order_by(Item.id)  # type: ignore[arg-type]
        )
    ).all()
    if saved:
        found["items_you_saved_for_others"] = [{"item": i, "title": title} for i, title in saved]
    for key, table in (("upvotes_given", Upvote), ("items_you_applied", Use)):
        marks = (
            await session.execute(
                select(table.item_id, Item.title, table.at)  # type: ignore[attr-defined]
                .join(Item, Item.id == table.item_id)  # type: ignore[attr-defined]
                .where(table.member_id.in_(member_ids))  # type: ignore[attr-defined]
                .order_by(table.item_id)  # type: ignore[attr-defined]
            )
        ).all()
        if marks:
            found[key] = [{"item": i, "title": title, "at": iso(at)} for i, title, at in marks]
    return found


async def forget(session: AsyncSession, member_ids: Sequence[int], *, remove_items: bool) -> list[str]:
    said: list[str] = []
    items = [
        int(item_id)
        for item_id in (
            await session.execute(select(Item.id).where(Item.author_id.in_(member_ids)))  # type: ignore[attr-defined]
        ).scalars()
    ]
    plural = "s" if len(items) != 1 else ""
    if items and remove_items:
        for table in (Upvote, Use):
            await session.execute(delete(table).where(table.item_id.in_(items)))  # type: ignore[attr-defined]
        for item_id in items:
            await unindex_item(session, item_id)
        await session.execute(delete(Item).where(Item.id.in_(items)))  # type: ignore[union-attr]
        said.append(f"{len(items)} repertoire item{plural} credited to you deleted, with their upvotes.")
    elif items:
        await session.execute(
            update(Item)
            .where(Item.id.in_(items))  # type: ignore[union-attr]
            .values(origin_platform=None, origin_room=None, origin_message_id=None, source_link="")
            .execution_options(synchronize_session=False)
        )
        said.append(
            f"{len(items)} repertoire item{plural} kept, credited to '{FORMER}', without the links to your "
            "original messages (to delete instead, use profile forget --confirm --remove-items)."
        )
    marks = []
    for label, table in (("upvote", Upvote), ("'used' mark", Use)):
        count = int(
            await session.scalar(
                select(func.count()).select_from(table).where(table.member_id.in_(member_ids))  # type: ignore[attr-defined]
            )
            or 0
        )
        if count:
            marks.append(f"{count} {label}{'s' if count != 1 else ''}")
    if marks:
        said.append(f"{' and '.join(marks)} you gave kept as counts, by '{FORMER}'.")
    return said
