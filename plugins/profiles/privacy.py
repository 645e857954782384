"""What the profiles plugin stores about a person (their profile, an onboarding in progress, the
introductions copbot made), for ``profile export``, and forgetting it for ``profile forget``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.privacy import FORMER, iso, rows_changed
from bot.tables import CommunityRow, MemberRow
from plugins.profiles import fields
from plugins.profiles.models import Introduction, Onboarding, Profile


async def personal_data(session: AsyncSession, member_ids: Sequence[int]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    profiles = list(
        (await session.execute(select(Profile).where(col(Profile.member_id).in_(member_ids)))).scalars()
    )
    if profiles:
        found["profiles"] = [
            {
                "organisation": profile.org,
                "organisation_type": fields.ORG_TYPES.get(profile.org_type or "", profile.org_type),
                "country": profile.country,
                "expertise": profile.expertise,
                "interests": profile.interests,
                "introductions": "on" if profile.intros else "off",
                "updated_at": iso(profile.updated_at),
            }
            for profile in profiles
        ]
    onboarding = list(
        (await session.execute(select(Onboarding).where(col(Onboarding.member_id).in_(member_ids)))).scalars()
    )
    if onboarding:
        found["onboarding_in_progress"] = [
            {"question": row.step + 1, "started_at": iso(row.started_at), "ends_at": iso(row.expires_at)}
            for row in onboarding
        ]
    mine = set(member_ids)
    rows = await session.execute(
        select(Introduction, col(CommunityRow.slug))
        .outerjoin(CommunityRow, col(CommunityRow.id) == col(Introduction.community_id))
        .where(or_(col(Introduction.member_a).in_(member_ids), col(Introduction.member_b).in_(member_ids)))
        .order_by(col(Introduction.at))
    )
    introductions = rows.all()
    if introductions:
        others = {b if a in mine else a for a, b in ((i.member_a, i.member_b) for i, _ in introductions)}
        names = dict(
            (
                await session.execute(
                    select(col(MemberRow.id), col(MemberRow.display_name)).where(
                        col(MemberRow.id).in_(others)
                    )
                )
            ).all()
        )
        found["introductions"] = [
            {
                "with": names.get(intro.member_b if intro.member_a in mine else intro.member_a, FORMER),
                "how": "an intro round" if intro.kind == "round" else "match",
                "community": slug,
                "at": iso(intro.at),
            }
            for intro, slug in introductions
        ]
    return found


async def forget(session: AsyncSession, member_ids: Sequence[int]) -> list[str]:
    said: list[str] = []
    profiles = int(
        await session.scalar(
            select(func.count()).select_from(Profile).where(col(Profile.member_id).in_(member_ids))
        )
        or 0
    )
    if session.bind is not None and session.bind.dialect.name == "sqlite":
        for member_id in member_ids:  # the search index holds a copy of the profile
            await session.execute(text("DELETE FROM profiles_fts WHERE member_id = :id"), {"id": member_id})
    await session.execute(delete(Profile).where(col(Profile.member_id).in_(member_ids)))
    if profiles:
        said.append(
            "Your profile (organisation, country, expertise, interests, introductions) deleted: "
            "experts and match no longer find you."
        )
    onboarding = await rows_changed(
        session, delete(Onboarding).where(col(Onboarding.member_id).in_(member_ids))
    )
    if onboarding:
        said.append("Your onboarding conversation deleted.")
    introduced = int(
        await session.scalar(
            select(func.count())
            .select_from(Introduction)
            .where(
                or_(col(Introduction.member_a).in_(member_ids), col(Introduction.member_b).in_(member_ids))
            )
        )
        or 0
    )
    if introduced:
        said.append(
            f"{introduced} introduction{'s' if introduced != 1 else ''} copbot made kept for the community's "
            f"figures, with '{FORMER}' in your place."
        )
    return said
