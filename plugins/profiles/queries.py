"""The profiles plugin's queries: profiles, who is in the community and active, introductions made."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.tables import ActivityEvent, MemberRow, Membership, table_of
from plugins.profiles.fields import split_tags, tag_key
from plugins.profiles.matching import Person
from plugins.profiles.models import Introduction, Profile
from plugins.profiles.search import index_profile


async def get_profile(session: AsyncSession, member_id: int) -> Profile | None:
    return await session.get(Profile, member_id)


async def save_profile(session: AsyncSession, member_id: int, now: datetime, **changes: object) -> Profile:
    profile = await session.get(Profile, member_id)
    if profile is None:
        profile = Profile(member_id=member_id, updated_at=now)
        session.add(profile)
    for field, value in changes.items():
        setattr(profile, field, value)
    profile.updated_at = now
    await session.flush()
    await index_profile(session, profile)
    return profile


async def member_row(session: AsyncSession, member_id: int) -> MemberRow | None:
    return await session.get(MemberRow, member_id)


async def persons_of(session: AsyncSession, member_ids: Iterable[int]) -> dict[int, int]:
    """Each member's person: linked accounts are one person (``members.person_id``)."""
    wanted = sorted(set(member_ids))
    if not wanted:
        return {}
    rows = await session.execute(
        select(col(MemberRow.id), func.coalesce(col(MemberRow.person_id), col(MemberRow.id))).where(
            col(MemberRow.id).in_(wanted)
        )
    )
    return {int(member): int(person) for member, person in rows.all() if member is not None}


async def still_members(
    session: AsyncSession, member_ids: Iterable[int], community_ids: Sequence[int]
) -> set[int]:
    """Which of ``member_ids`` are members of one of ``community_ids`` now: what someone who left shared
    stays in the repertoire, but they are no longer there to ask (the profile search leaves them out too)."""
    wanted = sorted(set(member_ids))
    if not wanted or not community_ids:
        return set()
    rows = await session.execute(
        select(col(Membership.member_id)).where(
            col(Membership.member_id).in_(wanted),
            col(Membership.community_id).in_(list(community_ids)),
            col(Membership.left_at).is_(None),
        )
    )
    return set(rows.scalars())


async def people(session: AsyncSession, community_id: int) -> list[tuple[Person, MemberRow, Profile]]:
    """Everyone in the community with a profile, as the matching rules see them."""
    rows = await session.execute(
        select(MemberRow, Profile)
        .join(Profile, col(Profile.member_id) == col(MemberRow.id))
        .join(Membership, col(Membership.member_id) == col(MemberRow.id))
        .where(col(Membership.community_id) == community_id, col(Membership.left_at).is_(None))
    )
    return [(person_of(row.id or 0, row.display_name, profile), row, profile) for row, profile in rows]


def person_of(member_id: int, name: str, profile: Profile | Any) -> Person:
    """A member as the matching rules see them, from their profile (an ORM object or a plain row); each
    tag's key made once (``match`` reads a whole community's profiles)."""
    expertise = [(tag_key(tag), tag) for tag in split_tags(profile.expertise)]
    interests = [(tag_key(tag), tag) for tag in split_tags(profile.interests)]
    return Person(
        member_id=member_id,
        name=name,
        org_type=profile.org_type,
        country=profile.country,
        expertise=frozenset(key for key, _ in expertise),
        interests=frozenset(key for key, _ in interests),
        labels=dict(expertise + interests),
    )


async def people_to_meet(session: AsyncSession, community_id: int, since: datetime) -> list[Person]:
    """Who ``match`` may suggest: members in the community now with expertise or interests, who did
    anything there since ``since`` or joined since then (newcomers are worth meeting).

    One statement of plain rows; activity is asked member by member — one look-up each in the member-first
    ``ix_activity_member_window`` — rather than by grouping the window's rows by member, which reads every
    row of it (two months of a busy community: hundreds of thousands)."""
    members, profiles, memberships = table_of(MemberRow).c, table_of(Profile).c, table_of(Membership).c
    activity = table_of(ActivityEvent).c
    acted = (
        select(activity.id)
        .where(
            activity.member_id == members.id,
            activity.community_id == community_id,
            activity.at >= since,
        )
        .exists()
    )
    rows = await session.execute(
        select(
            members.id,
            members.display_name,
            profiles.org_type,
            profiles.country,
            profiles.expertise,
            profiles.interests,
        )
        .select_from(table_of(Membership))
        .join(table_of(MemberRow), members.id == memberships.member_id)
        .join(table_of(Profile), profiles.member_id == members.id)
        .where(
            memberships.community_id == community_id,
            memberships.left_at.is_(None),
            or_(profiles.expertise != "", profiles.interests != ""),
            or_(memberships.joined_at >= since, acted),
        )
    )
    return [person_of(row.id, row.display_name, row) for row in rows]


async def introduced_to(session: AsyncSession, member_id: int) -> set[int]:
    rows = await session.execute(
        select(col(Introduction.member_a), col(Introduction.member_b)).where(
            or_(col(Introduction.member_a) == member_id, col(Introduction.member_b) == member_id)
        )
    )
    return {b if a == member_id else a for a, b in rows}


async def record_introduction(
    session: AsyncSession,
    community_id: int | None,
    a: int,
    b: int,
    kind: str,
    at: datetime,
    round: int | None = None,
) -> None:
    low, high = sorted((a, b))
    session.add(
        Introduction(community_id=community_id, member_a=low, member_b=high, kind=kind, round=round, at=at)
    )


async def last_round(session: AsyncSession, community_id: int) -> tuple[int, set[frozenset[int]]]:
    """The number of the latest intro round and its pairs (a new round must not repeat them)."""
    number = await session.scalar(
        select(func.max(col(Introduction.round))).where(
            col(Introduction.community_id) == community_id, col(Introduction.kind) == "round"
        )
    )
    if number is None:
        return 0, set()
    rows = await session.execute(
        select(col(Introduction.member_a), col(Introduction.member_b)).where(
            col(Introduction.community_id) == community_id,
            col(Introduction.kind) == "round",
            col(Introduction.round) == number,
        )
    )
    return int(number), {frozenset(pair) for pair in rows}


def since(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


def _joined(community_id: int, start: datetime, end: datetime) -> tuple[Any, ...]:
    """Persons who joined in ``[start, end)`` and are members now, each once: the account that counts for
    them (:mod:`bot.persons`), and only if none of their linked accounts joined before — a member whose
    second account joins (and is linked) is not a newcomer."""
    from bot.persons import duplicate_members  # only when a digest is built

    memberships, accounts = table_of(Membership).c, table_of(MemberRow).c
    earlier, other = table_of(Membership).alias("joined_earlier"), table_of(MemberRow).alias("linked")
    # Each a look-up by key: the person's anchor's membership, and their other linked accounts (through
    # ``members.person_id``'s index) then each one's membership — else SQLite walks every membership.
    anchor_before = (
        select(earlier.c.member_id)
        .where(
            earlier.c.community_id == community_id,
            earlier.c.member_id == accounts.person_id,
            earlier.c.joined_at < start,
        )
        .exists()
    )
    linked_before = (
        select(other.c.id)
        .where(
            other.c.person_id == func.coalesce(accounts.person_id, accounts.id),
            select(earlier.c.member_id)
            .where(
                earlier.c.community_id == community_id,
                earlier.c.member_id == other.c.id,
                earlier.c.joined_at < start,
            )
            .exists(),
        )
        .exists()
    )
    return (
        memberships.community_id == community_id,
        memberships.joined_at >= start,
        memberships.joined_at < end,
        memberships.left_at.is_(None),
        accounts.is_bot.is_(False),
        memberships.member_id.not_in(duplicate_members(community_id)),
        ~anchor_before,
        ~linked_before,
    )


async def joined_between(
    session: AsyncSession, community_id: int, start: datetime, end: datetime, *, limit: int | None = None
) -> list[tuple[MemberRow, Profile | None]]:
    """Members who joined the community in ``[start, end)`` (still members), oldest first, with profiles;
    the first ``limit`` of them."""
    rows = await session.execute(
        select(MemberRow, Profile)
        .join(Membership, col(Membership.member_id) == col(MemberRow.id))
        .outerjoin(Profile, col(Profile.member_id) == col(MemberRow.id))
        .where(*_joined(community_id, start, end))
        .order_by(col(Membership.joined_at), col(MemberRow.id))
        .limit(limit)
    )
    return [(row, profile) for row, profile in rows.all()]


async def count_joined_between(
    session: AsyncSession, community_id: int, start: datetime, end: datetime
) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Membership)
            .join(MemberRow, col(Membership.member_id) == col(MemberRow.id))
            .where(*_joined(community_id, start, end))
        )
        or 0
    )
