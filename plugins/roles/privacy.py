"""What the roles plugin stores about a person (their level history, moves they made as a moderator, link
codes), for ``profile export``, and forgetting it.

The level history is the community's record (the dashboard's moves and the levels of past months are
computed from it): forgotten, it stays as "a former member", with the person's names taken out of the
reasons moderators typed. Link codes are deleted; the link between accounts itself is the core's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.privacy import FORMER, contains, iso, needles, rows_changed, scrub
from bot.tables import CommunityRow, MemberRow
from plugins.roles.models import LevelChange, LinkCode


async def personal_data(session: AsyncSession, member_ids: Sequence[int]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    rows = (
        await session.execute(
            select(LevelChange, col(CommunityRow.slug))
            .join(CommunityRow, col(CommunityRow.id) == col(LevelChange.community_id))
            .where(col(LevelChange.member_id).in_(member_ids))
            .order_by(col(LevelChange.at), col(LevelChange.id))
        )
    ).all()
    if rows:
        found["level_history"] = [
            {
                "community": slug,
                "from": change.old_level,
                "to": change.new_level,
                "by": "a moderator" if change.actor_id is not None else "a rule",
                "rule": change.rule,
                "reason": change.reason,
                "at": iso(change.at),
            }
            for change, slug in rows
        ]
    made = int(
        await session.scalar(
            select(func.count()).select_from(LevelChange).where(col(LevelChange.actor_id).in_(member_ids))
        )
        or 0
    )
    if made:
        found["level_changes_you_made_as_moderator"] = made
    codes = list(
        (await session.execute(select(LinkCode).where(col(LinkCode.member_id).in_(member_ids)))).scalars()
    )
    if codes:
        found["link_codes"] = [{"code": code.code, "expires_at": iso(code.expires_at)} for code in codes]
    return found


async def forget(session: AsyncSession, member_ids: Sequence[int]) -> list[str]:
    said: list[str] = []
    codes = await rows_changed(session, delete(LinkCode).where(col(LinkCode.member_id).in_(member_ids)))
    if codes:
        said.append(f"{codes} link code{'s' if codes != 1 else ''} deleted.")
    accounts = list(
        (await session.execute(select(MemberRow).where(col(MemberRow.id).in_(member_ids)))).scalars()
    )
    words = needles(accounts)
    if words:  # names in reasons moderators typed, on anyone's history
        named = list(
            (
                await session.execute(
                    select(LevelChange).where(
                        or_(*(col(LevelChange.reason).ilike(f"%{word}%") for word in words))
                    )
                )
            ).scalars()
        )
        for change in named:
            if contains(change.reason, words):
                change.reason = scrub(change.reason, words)
    history = int(
        await session.scalar(
            select(func.count()).select_from(LevelChange).where(col(LevelChange.member_id).in_(member_ids))
        )
        or 0
    )
    if history:
        said.append(
            f"Your level history ({history} change{'s' if history != 1 else ''}) kept for the community's "
            f"figures, as '{FORMER}', with your names taken out of the reasons."
        )
    return said
