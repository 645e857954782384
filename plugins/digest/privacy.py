"""The digest stores nothing about a member as such, but posted digests name people as text (new members,
moves inward): ``profile export`` says how many name the member, and ``profile forget`` replaces their names
there by "a former member" — in copbot's copies (the dashboard's latest digest, the Atom feed); ``profile set
public off`` by "a member" there. The messages already posted in the chat are the platform's and are not
changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot import escaping
from bot.plugin import UNNAMED
from bot.privacy import FORMER, contains, needles, scrub
from bot.tables import MemberRow
from plugins.digest.models import DigestPost


async def _naming(session: AsyncSession, member_ids: Sequence[int]) -> tuple[list[DigestPost], list[str]]:
    accounts = list(
        (await session.execute(select(MemberRow).where(col(MemberRow.id).in_(member_ids)))).scalars()
    )
    words = list(needles(accounts))
    words += [escaped for word in words if (escaped := escaping.escape(word, quote=True)) != word]
    if not words:
        return [], []
    like = [
        column.ilike(f"%{word}%")
        for word in words
        for column in (col(DigestPost.title), col(DigestPost.text), col(DigestPost.html))
    ]
    posts = list((await session.execute(select(DigestPost).where(or_(*like)))).scalars())
    return [p for p in posts if contains(f"{p.title}\n{p.text}\n{p.html}", words)], words


async def personal_data(session: AsyncSession, member_ids: Sequence[int]) -> dict[str, Any]:
    posts, _ = await _naming(session, member_ids)
    if not posts:
        return {}
    return {"posted_digests_that_name_you": len(posts)}


async def _rename(session: AsyncSession, member_ids: Sequence[int], name: str) -> int:
    """The members' names and ids in the web copies of posted digests replaced by ``name``; how many."""
    posts, words = await _naming(session, member_ids)
    for post in posts:
        post.title = scrub(post.title, words, name)
        post.text = scrub(post.text, words, name)
        post.html = scrub(post.html, words, escaping.escape(name, quote=True))
    return len(posts)


async def hide_names(session: AsyncSession, member_ids: Sequence[int]) -> None:
    """Members who turned ``public`` off are "a member" in the web copies of digests posted before."""
    await _rename(session, member_ids, UNNAMED)


async def forget(session: AsyncSession, member_ids: Sequence[int]) -> list[str]:
    posts = await _rename(session, member_ids, FORMER)
    if not posts:
        return []
    plural = "s" if posts != 1 else ""
    return [
        f"{posts} posted digest{plural} that named you now say '{FORMER}' in copbot's copies (the "
        "dashboard, the Atom feed); the digest messages already in the chat stay as the platform keeps them."
    ]
