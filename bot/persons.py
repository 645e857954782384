"""Counting persons, not accounts: someone who linked their Discord and Matrix accounts (``profile link``)
is one member of a community that serves both, with one level — so the figures (`stats`, the digest, the
dashboard, the value report) count them once, though each account has its own membership and activity.

A person's accounts are the anchor (``members.person_id`` NULL) and those naming it in ``person_id``. Of
those present in a community, one counts: the anchor if it is there, else the linked account with the
lowest id; the others are *duplicates*. Only linked accounts can be duplicates, so the statements below
walk ``members.person_id``'s index over the few linked accounts, never the whole community: a figure
subtracts what they find from its count of accounts (or leaves them out with ``NOT IN``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, bindparam, column, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import TextualSelect

from bot.db import UTCDateTime

# A membership present now, or at :then (joined by then and not yet left).
_LIVE_NOW = "{ms}.left_at IS NULL"
_LIVE_THEN = "{ms}.joined_at <= :then AND ({ms}.left_at IS NULL OR {ms}.left_at > :then)"
# Did anything in the community in [:start, :end).
_ACTIVE = (
    "EXISTS (SELECT 1 FROM activity_events AS a WHERE a.member_id = {m}.id AND a.community_id = :community"
    " AND a.at >= :start AND a.at < :end)"
)
# Did anything of :kind in the community in [:start, :end).
_ACTIVE_KIND = _ACTIVE.removesuffix(")") + " AND a.kind = :kind)"
_MEMBERSHIP = (
    "EXISTS (SELECT 1 FROM memberships AS {ms} WHERE {ms}.member_id = {m}.id"
    " AND {ms}.community_id = :community AND {live})"
)


def _duplicates(present: str) -> str:
    """The linked accounts ``me`` present in the community (``present`` of an alias ``{m}``) beside another
    account of their person that counts before them (the anchor, or a linked one with a lower id)."""
    return f"""
        SELECT me.id FROM members AS me
        WHERE me.person_id IS NOT NULL AND {present.format(m="me", ms="mine")}
          AND EXISTS (
            SELECT 1 FROM members AS other
            WHERE (other.id = me.person_id OR (other.person_id = me.person_id AND other.id < me.id))
              AND {present.format(m="other", ms="theirs")}
          )
    """


def duplicates_sql(*, at_then: bool = False) -> str:
    """The accounts not counted among the community's members: its ids, for ``NOT IN`` in a statement of
    text; bound ``:community`` (and ``:then``, with ``at_then``: members at that moment, not now)."""
    return _duplicates(_MEMBERSHIP.replace("{live}", _LIVE_THEN if at_then else _LIVE_NOW))


def duplicate_members(community_id: int) -> TextualSelect:
    """The accounts not counted among the community's members now, for ``NOT IN``."""
    statement = text(duplicates_sql()).bindparams(community=community_id)
    return statement.columns(column("id", Integer))


async def duplicate_count(session: AsyncSession, community_id: int) -> int:
    """How many of the community's memberships now are a person counted already."""
    found = await session.scalar(
        text(f"SELECT count(*) FROM ({duplicates_sql()}) AS d"), {"community": community_id}
    )
    return int(found or 0)


async def active_duplicates(
    session: AsyncSession, community_id: int, start: datetime, end: datetime, *, kind: str | None = None
) -> int:
    """How many of the accounts that did anything in ``[start, end)`` (or anything of ``kind``: voted,
    say) are a person counted already."""
    active = _ACTIVE if kind is None else _ACTIVE_KIND
    statement = text(f"SELECT count(*) FROM ({_duplicates(active)}) AS d").bindparams(
        bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime())
    )
    params: dict[str, object] = {"community": community_id, "start": start, "end": end}
    if kind is not None:
        params["kind"] = kind
    found = await session.scalar(statement, params)
    return int(found or 0)
