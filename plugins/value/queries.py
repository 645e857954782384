"""The value plugin's queries: the raw figures behind every indicator, stories, conversations and rounds.

``figures`` computes exactly the raw figures ``indicators.RAW_FIGURES`` names, for one period; what they
mean is written once, in ``indicators.py``.

Several figures come from other plugins' tables. Plugins do not import each other, so those tables are
declared below by name and the columns read (``_introductions``, ``_meetings`` …): read-only views,
documented here, that must change together with the owning plugin's migrations. Every table exists
whichever plugins are enabled (the migrations create them all), so a disabled plugin just counts 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Integer, String, and_, column, distinct, func, or_, select, table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.db import UTCDateTime
from bot.store import count_active_members
from bot.tables import ActivityEvent, MemberRow, Membership, table_of
from plugins.value.indicators import CYCLES, RAW_FIGURES
from plugins.value.models import Prompt, Round, Story

# --- other plugins' tables, read only -------------------------------------------------------------------

_introductions = table(  # profiles: members copbot introduced (`match`, intro rounds)
    "profiles_introductions",
    column("community_id", Integer),
    column("member_a", Integer),
    column("member_b", Integer),
    column("at", UTCDateTime()),
)
_onboarding = table(  # profiles: onboarding conversations in progress
    "profiles_onboarding", column("member_id", Integer), column("expires_at", UTCDateTime())
)
_meetings = table("meetings", column("id", Integer), column("community_id", Integer))
_rsvps = table(  # meetings: answers per occurrence (or the series)
    "meetings_rsvps",
    column("meeting_id", Integer),
    column("member_id", Integer),
    column("answer", String),
    column("at", UTCDateTime()),
)
_attendance = table(  # meetings: attendance moderators confirmed, keyed by the occurrence's start
    "meetings_attendance",
    column("meeting_id", Integer),
    column("occurrence", String),
    column("member_id", Integer),
    column("at", UTCDateTime()),
)
_changes = table(  # meetings: an occurrence of a series moved (to ``moved_to``) or cancelled
    "meetings_changes",
    column("meeting_id", Integer),
    column("occurrence", String),
    column("moved_to", UTCDateTime()),
)
_items = table(  # repertoire: the community's items
    "repertoire_items",
    column("id", Integer),
    column("community_id", Integer),
    column("author_id", Integer),
    column("created_at", UTCDateTime()),
    column("removed_at", UTCDateTime()),
)
_upvotes = table(
    "repertoire_upvotes",
    column("item_id", Integer),
    column("member_id", Integer),
    column("at", UTCDateTime()),
)
_uses = table(  # repertoire: "I applied this"
    "repertoire_uses", column("item_id", Integer), column("member_id", Integer), column("at", UTCDateTime())
)


def occurrence_key(when: datetime) -> str:
    """How the meetings plugin names an occurrence: its start as UTC ISO text, which sorts in time."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the raw figures --------------------------------------------------------------------------------------


async def figures(
    session: AsyncSession, community_id: int, start: datetime, end: datetime, ties: Sequence[datetime]
) -> dict[str, int]:
    """Every raw figure of ``RAW_FIGURES`` for ``[start, end)``; ``ties`` are the moments new ties formed
    (from :func:`tie_times`, computed once for several periods)."""
    in_window = (
        col(ActivityEvent.community_id) == community_id,
        col(ActivityEvent.at) >= start,
        col(ActivityEvent.at) < end,
    )
    messages, voters, lookups = (
        await session.execute(
            select(
                func.count().filter(col(ActivityEvent.kind) == "message"),
                func.count(distinct(col(ActivityEvent.member_id))).filter(
                    col(ActivityEvent.kind) == "poll_vote"
                ),
                func.count().filter(
                    col(ActivityEvent.kind) == "command", col(ActivityEvent.detail) == "experts"
                ),
            ).where(*in_window)
        )
    ).one()
    active = await count_active_members(session, community_id, start, end)  # not count(distinct): see there
    # voters are persons, as the active members they are a share of (an account linked to another that
    # voted too is the same voter)
    from bot.persons import active_duplicates

    voters -= await active_duplicates(session, community_id, start, end, kind="poll_vote")
    # persons at each meeting, as its answers count them: a moderator who confirmed both of a person's
    # linked accounts confirmed one person's attendance
    members = table_of(MemberRow)
    # in the period the meeting took place in: attendance is keyed by an occurrence's planned start, and
    # one moved across the period's edge counts where it was moved to (a one-off's key moves with it)
    moved = _changes.c.moved_to
    held = or_(
        and_(
            moved.is_(None),
            _attendance.c.occurrence >= occurrence_key(start),
            _attendance.c.occurrence < occurrence_key(end),
        ),
        and_(moved >= start, moved < end),
    )
    attended = (
        select(
            _attendance.c.meeting_id,
            _attendance.c.occurrence,
            func.coalesce(members.c.person_id, members.c.id),
        )
        .select_from(
            _attendance.join(_meetings, _meetings.c.id == _attendance.c.meeting_id)
            .join(members, members.c.id == _attendance.c.member_id)
            .outerjoin(
                _changes,
                and_(
                    _changes.c.meeting_id == _attendance.c.meeting_id,
                    _changes.c.occurrence == _attendance.c.occurrence,
                ),
            )
        )
        .where(_meetings.c.community_id == community_id, held)
        .distinct()
        .subquery()
    )
    attendance = await session.scalar(select(func.count()).select_from(attended))
    items_added = await session.scalar(
        select(func.count())
        .select_from(_items)
        .where(
            _items.c.community_id == community_id,
            _items.c.created_at >= start,
            _items.c.created_at < end,
            _items.c.removed_at.is_(None),
        )
    )
    introductions = await session.scalar(
        select(func.count())
        .select_from(_introductions)
        .where(
            _introductions.c.community_id == community_id,
            _introductions.c.at >= start,
            _introductions.c.at < end,
        )
    )
    uses = await session.scalar(
        select(func.count())
        .select_from(_uses.join(_items, _items.c.id == _uses.c.item_id))
        .where(_items.c.community_id == community_id, _uses.c.at >= start, _uses.c.at < end)
    )
    raw = {
        "active_members": int(active or 0),
        "messages": int(messages or 0),
        "attendance": int(attendance or 0),
        "poll_voters": int(voters or 0),
        "items_added": int(items_added or 0),
        "introductions": int(introductions or 0),
        "new_ties": sum(1 for at in ties if start <= at < end),
        "expert_lookups": int(lookups or 0),
        "repertoire_uses": int(uses or 0),
    }
    told = await stories_per_cycle(session, community_id, start, end)
    raw.update({f"stories_{cycle}": told.get(cycle, 0) for cycle in CYCLES})
    assert set(raw) == RAW_FIGURES, "indicators.py and queries.py disagree on the raw figures"
    return raw


async def tie_times(session: AsyncSession, community_id: int, until: datetime) -> list[datetime]:
    """When each pair of members first interacted, up to ``until`` — the ``new_ties`` indicator.

    An interaction between two members (see ``indicators.py``): copbot introduced them; both said yes
    to, or were confirmed at, the same meeting (at the later of the two answers); one upvoted or applied
    an item the other is credited for. A pair's tie forms at the earliest of its interactions.
    """
    first: dict[tuple[int, int], datetime] = {}
    # Ties are between persons: a person's linked accounts are one member (no tie with themselves, and one
    # tie with someone else whichever of their accounts met them). Linked accounts are few: all are read.
    linked = await session.execute(
        select(col(MemberRow.id), col(MemberRow.person_id)).where(col(MemberRow.person_id).is_not(None))
    )
    person_of = {int(account): int(person) for account, person in linked.all() if account and person}

    def meet(a: int, b: int, at: datetime) -> None:
        a, b = person_of.get(a, a), person_of.get(b, b)
        if a == b or at >= until:
            return
        pair = (a, b) if a < b else (b, a)
        if pair not in first or at < first[pair]:
            first[pair] = at

    for a, b, at in await session.execute(
        select(_introductions.c.member_a, _introductions.c.member_b, _introductions.c.at).where(
            _introductions.c.community_id == community_id
        )
    ):
        meet(a, b, at)
    together: dict[int, dict[int, datetime]] = {}  # meeting → member → first yes or attendance
    said_yes = select(_rsvps.c.meeting_id, _rsvps.c.member_id, _rsvps.c.at).where(_rsvps.c.answer == "yes")
    attended = select(_attendance.c.meeting_id, _attendance.c.member_id, _attendance.c.at)
    for query, source in ((said_yes, _rsvps), (attended, _attendance)):
        rows = await session.execute(
            query.join(_meetings, _meetings.c.id == source.c.meeting_id).where(
                _meetings.c.community_id == community_id
            )
        )
        for meeting, member, at in rows:
            seen = together.setdefault(meeting, {})
            if member not in seen or at < seen[member]:
                seen[member] = at
    for members in together.values():
        ordered = sorted(members.items())
        for index, (a, at_a) in enumerate(ordered):
            for b, at_b in ordered[index + 1 :]:
                meet(a, b, max(at_a, at_b))
    for source in (_upvotes, _uses):
        rows = await session.execute(
            select(source.c.member_id, _items.c.author_id, source.c.at)
            .join(_items, _items.c.id == source.c.item_id)
            .where(_items.c.community_id == community_id)
        )
        for member, author, at in rows:
            meet(member, author, at)
    return sorted(first.values())


async def stories_per_cycle(
    session: AsyncSession, community_id: int, start: datetime, end: datetime
) -> dict[str | None, int]:
    rows = await session.execute(
        select(col(Story.cycle), func.count())
        .where(
            col(Story.community_id) == community_id,
            col(Story.created_at) >= start,
            col(Story.created_at) < end,
        )
        .group_by(col(Story.cycle))
    )
    return {cycle: int(count) for cycle, count in rows.all()}


# --- stories --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Told:
    """A story as shown: its author's name only if the author chose to be public."""

    story: Story
    name: str | None


async def latest_public(session: AsyncSession, community_id: int) -> dict[str, Told]:
    """Per cycle, the latest story its author agreed to show."""
    found: dict[str, Told] = {}
    rows = await session.execute(
        select(Story, col(MemberRow.display_name), col(MemberRow.public))
        .join(MemberRow, col(MemberRow.id) == col(Story.author_id))
        .where(
            col(Story.community_id) == community_id,
            col(Story.public).is_(True),
            col(Story.cycle).is_not(None),
        )
        .order_by(col(Story.created_at).desc(), col(Story.id).desc())
    )
    for story, name, public in rows.all():
        if story.cycle is not None and story.cycle not in found:  # the query leaves out cycle IS NULL
            found[story.cycle] = Told(story, name if public else None)
    return found


async def public_stories(session: AsyncSession, community_id: int, limit: int = 100) -> list[Told]:
    """The stories authors agreed to show, newest first."""
    rows = await session.execute(
        select(Story, col(MemberRow.display_name), col(MemberRow.public))
        .join(MemberRow, col(MemberRow.id) == col(Story.author_id))
        .where(col(Story.community_id) == community_id, col(Story.public).is_(True))
        .order_by(col(Story.created_at).desc(), col(Story.id).desc())
        .limit(limit)
    )
    return [Told(story, name if public else None) for story, name, public in rows.all()]


# --- conversations and rounds -------------------------------------------------------------------------


async def open_prompt(session: AsyncSession, member_id: int) -> Prompt | None:
    """The member's conversation in progress (the latest not ended), if any."""
    return await session.scalar(
        select(Prompt)
        .where(col(Prompt.member_id) == member_id, col(Prompt.ended_at).is_(None))
        .order_by(col(Prompt.asked_at).desc(), col(Prompt.id).desc())
        .limit(1)
    )


async def end_open_prompts(session: AsyncSession, member_id: int, now: datetime, outcome: str) -> None:
    for prompt in (
        await session.execute(
            select(Prompt).where(col(Prompt.member_id) == member_id, col(Prompt.ended_at).is_(None))
        )
    ).scalars():
        prompt.ended_at, prompt.outcome = now, outcome


async def expire_prompts(session: AsyncSession, now: datetime) -> None:
    """Conversations past their time end quietly: nobody is told, the member has moved on."""
    for prompt in (
        await session.execute(
            select(Prompt).where(col(Prompt.ended_at).is_(None), col(Prompt.expires_at) <= now)
        )
    ).scalars():
        prompt.ended_at, prompt.outcome = now, "expired"


async def last_round(session: AsyncSession, community_id: int) -> Round | None:
    return await session.scalar(
        select(Round)
        .where(col(Round.community_id) == community_id)
        .order_by(col(Round.period_end).desc())
        .limit(1)
    )


async def onboarding_waits(session: AsyncSession, member_id: int, now: datetime) -> bool:
    """Whether the member's onboarding conversation (profiles) waits for an answer: it goes first."""
    waiting = await session.scalar(
        select(_onboarding.c.member_id).where(
            _onboarding.c.member_id == member_id, _onboarding.c.expires_at > now
        )
    )
    return waiting is not None


async def to_ask(
    session: AsyncSession,
    community_id: int,
    start: datetime,
    end: datetime,
    now: datetime,
    previous_round: datetime | None = None,
) -> list[MemberRow]:
    """Who a round asks: members of the community (not bots, not gone) active in ``[start, end)``, with
    prompts on, not asked (nor telling a story) in this period — after the previous round ran, or since
    ``start`` for the first round — and not in another conversation with copbot (a value prompt, or
    onboarding) right now. A person with linked accounts is asked once, on the account they used last."""
    active = (
        select(col(ActivityEvent.member_id))
        .where(
            col(ActivityEvent.community_id) == community_id,
            col(ActivityEvent.at) >= start,
            col(ActivityEvent.at) < end,
        )
        .distinct()
    )
    rows = list(
        (
            await session.execute(
                select(MemberRow)
                .join(Membership, col(Membership.member_id) == col(MemberRow.id))
                .where(
                    col(Membership.community_id) == community_id,
                    col(Membership.left_at).is_(None),
                    col(MemberRow.id).in_(active),
                    col(MemberRow.is_bot).is_(False),
                    col(MemberRow.prompts).is_(True),
                )
                .order_by(col(MemberRow.id))
            )
        ).scalars()
    )
    if not rows:
        return []
    # The previous round's own questions were asked at its run time, which is this period's start.
    asked_now = (
        col(Prompt.asked_at) > previous_round if previous_round is not None else col(Prompt.asked_at) >= start
    )
    told_now = (
        col(Story.created_at) > previous_round
        if previous_round is not None
        else col(Story.created_at) >= start
    )
    asked = set(
        (
            await session.execute(
                select(col(Prompt.member_id)).where(col(Prompt.community_id) == community_id, asked_now)
            )
        ).scalars()
    )
    told = set(
        (
            await session.execute(
                select(col(Story.author_id)).where(col(Story.community_id) == community_id, told_now)
            )
        ).scalars()
    )
    busy = set(
        (
            await session.execute(
                select(col(Prompt.member_id)).where(
                    col(Prompt.ended_at).is_(None), col(Prompt.expires_at) > now
                )
            )
        ).scalars()
    )
    busy |= set(
        (
            await session.execute(select(_onboarding.c.member_id).where(_onboarding.c.expires_at > now))
        ).scalars()
    )
    person_of = await _persons(session, [row.id for row in rows if row.id is not None] + list(asked | told))
    done_persons = {person_of.get(member, member) for member in asked | told}
    chosen: dict[int, MemberRow] = {}
    for row in rows:
        assert row.id is not None
        person = row.person_id or row.id
        if person in done_persons or row.id in busy:
            continue
        if person not in chosen or row.last_seen > chosen[person].last_seen:
            chosen[person] = row
    return sorted(chosen.values(), key=lambda row: row.id or 0)


async def _persons(session: AsyncSession, member_ids: Iterable[int]) -> dict[int, int]:
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(col(MemberRow.id), func.coalesce(col(MemberRow.person_id), col(MemberRow.id))).where(
            col(MemberRow.id).in_(ids)
        )
    )
    return {member: int(person) for member, person in rows.all() if member is not None}


async def communities_of(session: AsyncSession, member_id: int) -> list[int]:
    """The communities the member is in now (for a story told in a direct chat)."""
    rows = await session.execute(
        select(col(Membership.community_id)).where(
            col(Membership.member_id) == member_id,
            col(Membership.left_at).is_(None),
        )
    )
    return sorted(rows.scalars())
