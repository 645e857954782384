"""What the value plugin stores about a person (their stories, the conversations that asked for them), for
``profile export``, and forgetting it.

Forgotten, the conversations are deleted; stories stay for the value report as "a former member" — shown
only if the author had agreed, and never with a name — or, with ``--remove-items``, are deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.privacy import FORMER, iso, rows_changed
from bot.tables import CommunityRow
from plugins.value.models import Prompt, Story


async def personal_data(session: AsyncSession, member_ids: Sequence[int]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    stories = (
        await session.execute(
            select(Story, col(CommunityRow.slug))
            .join(CommunityRow, col(CommunityRow.id) == col(Story.community_id))
            .where(col(Story.author_id).in_(member_ids))
            .order_by(col(Story.id))
        )
    ).all()
    if stories:
        found["stories"] = [
            {
                "community": slug,
                "story": story.text,
                "cycle": story.cycle,
                "may_be_shown": story.public,
                "asked_or_told": "asked" if story.source == "prompt" else "told unprompted",
                "at": iso(story.created_at),
            }
            for story, slug in stories
        ]
    prompts = (
        await session.execute(
            select(Prompt, col(CommunityRow.slug))
            .join(CommunityRow, col(CommunityRow.id) == col(Prompt.community_id))
            .where(col(Prompt.member_id).in_(member_ids))
            .order_by(col(Prompt.id))
        )
    ).all()
    if prompts:
        found["story_conversations"] = [
            {
                "community": slug,
                "asked_at": iso(prompt.asked_at),
                "ended_at": iso(prompt.ended_at),
                "outcome": prompt.outcome or "open",
            }
            for prompt, slug in prompts
        ]
    return found


async def forget(session: AsyncSession, member_ids: Sequence[int], *, remove_items: bool) -> list[str]:
    said: list[str] = []
    asked = await rows_changed(session, delete(Prompt).where(col(Prompt.member_id).in_(member_ids)))
    if asked:
        said.append(f"{asked} value-story conversation{'s' if asked != 1 else ''} deleted.")
    stories = [
        story_id
        for story_id in (
            await session.execute(select(col(Story.id)).where(col(Story.author_id).in_(member_ids)))
        ).scalars()
        if story_id is not None
    ]
    plural = "s" if len(stories) != 1 else ""
    if stories and remove_items:
        await session.execute(update(Prompt).where(col(Prompt.story_id).in_(stories)).values(story_id=None))
        await session.execute(delete(Story).where(col(Story.id).in_(stories)))
        said.append(f"{len(stories)} value stor{'ies' if plural else 'y'} you told deleted.")
    elif stories:
        said.append(
            f"{len(stories)} value stor{'ies' if plural else 'y'} kept for the value report, by '{FORMER}': "
            "shown only where you had agreed, never with a name (to delete instead, use "
            "profile forget --confirm --remove-items)."
        )
    return said
