"""The digest stores nothing about a member as such, but posted digests name people as text (new members,
moves inward, authors of new items) and show items' titles: ``profile export`` says how many name the
member, and ``profile forget`` replaces their names there by "a former member" — in copbot's copies (the
dashboard's latest digest, the Atom feed); ``profile set public off`` by "a member" there; and ``profile
forget --remove-items`` replaces the lines of the items it deletes by "an item since removed", as does an
item leaving the repertoire otherwise (``repertoire remove``, or its message deleted on the platform: the
repertoire calls :func:`remove_items`). The messages already posted in the chat are the platform's and are
not changed.

Each copy keeps its entries (``digest_entries``: which line names which member, where, and which line
shows which item, whose), so a name is changed where the digest wrote it — the name the member had then,
though they were renamed since — and nothing else: a member called "Water" leaves "Water CoP" and others'
"Water pumps" alone. Digests posted before the entries were kept (migration 0020) have none: there the
member's current names and ids are replaced as whole words, as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot import escaping
from bot.plugin import UNNAMED
from bot.privacy import FORMER, contains, needles, scrub
from bot.tables import MemberRow
from plugins.digest.models import DigestEntryRow, DigestPost

REMOVED_ITEM = "an item since removed"
"""What a line that showed a deleted item says instead (its title, and its author's name, gone)."""
_ITEM = re.compile(r"<li>(.*?)</li>", re.DOTALL)


async def _naming(session: AsyncSession, member_ids: Sequence[int]) -> tuple[list[DigestPost], list[str]]:
    """Posts without entries (posted before they were kept) that hold the members' names or ids."""
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
    posts = [p for p in posts if contains(f"{p.title}\n{p.text}\n{p.html}", words)]
    if posts:
        with_entries = set(
            (
                await session.execute(
                    select(col(DigestEntryRow.post_id))
                    .where(col(DigestEntryRow.post_id).in_([p.id for p in posts]))
                    .distinct()
                )
            ).scalars()
        )
        posts = [p for p in posts if p.id not in with_entries]
    return posts, words


async def _entries_naming(session: AsyncSession, member_ids: Sequence[int], *, items: bool) -> list[int]:
    """The posts whose entries name these members (or, with ``items``, show their items)."""
    which: ColumnElement[bool] = col(DigestEntryRow.member_id).in_(member_ids)
    if items:
        which = or_(which, col(DigestEntryRow.item_by).in_(member_ids))
    return sorted(set((await session.execute(select(col(DigestEntryRow.post_id)).where(which))).scalars()))


async def personal_data(session: AsyncSession, member_ids: Sequence[int]) -> dict[str, Any]:
    named = await _entries_naming(session, member_ids, items=False)
    legacy, _ = await _naming(session, member_ids)
    if not named and not legacy:
        return {}
    return {"posted_digests_that_name_you": len(named) + len(legacy)}


async def _rewrite(
    session: AsyncSession, member_ids: Sequence[int], name: str, *, remove_items: bool
) -> tuple[int, int]:
    """The entries naming these members say ``name``; with ``remove_items``, the lines of their items say
    :data:`REMOVED_ITEM` — changed in the entries and at their places in the copies. How many posts were
    renamed in, and how many lost items."""
    wanted = set(member_ids)
    post_ids = await _entries_naming(session, member_ids, items=remove_items)
    renamed, emptied = await _change(
        session,
        post_ids,
        name,
        renames=lambda entry: entry.member_id in wanted,
        removes=lambda entry: remove_items and entry.item_by in wanted,
    )
    return len(renamed), len(emptied)


async def remove_items(session: AsyncSession, item_ids: Sequence[int]) -> int:
    """The lines of these repertoire items (removed, or deleted with the message they were saved from) say
    :data:`REMOVED_ITEM` in the copies; how many posts lost one."""
    wanted = set(item_ids)
    post_ids = sorted(
        set(
            (
                await session.execute(
                    select(col(DigestEntryRow.post_id)).where(col(DigestEntryRow.item_id).in_(wanted))
                )
            ).scalars()
        )
    )
    _, emptied = await _change(
        session, post_ids, "", renames=lambda entry: False, removes=lambda entry: entry.item_id in wanted
    )
    return len(emptied)


async def _change(
    session: AsyncSession,
    post_ids: Sequence[int],
    name: str,
    *,
    renames: Callable[[DigestEntryRow], bool],
    removes: Callable[[DigestEntryRow], bool],
) -> tuple[set[int], set[int]]:
    """In these posts, the entries ``renames`` picks say ``name`` where they named a member, and the lines
    of those ``removes`` picks say :data:`REMOVED_ITEM`; the posts renamed in, and those that lost items."""
    renamed, emptied = set(), set()
    for post_id in post_ids:
        post = await session.get(DigestPost, post_id)
        if post is None:
            continue
        entries = list(
            (
                await session.execute(select(DigestEntryRow).where(col(DigestEntryRow.post_id) == post_id))
            ).scalars()
        )
        rows = post.text.split("\n")
        changed: dict[int, tuple[int, str, str]] = {}  # row → (its <li>, the line before, the line now)
        # in each row, later places first: a name changed does not move the places before it
        for entry in sorted(entries, key=lambda e: (e.row, -e.at)):
            before, current = changed.get(entry.row, (entry.item, entry.line, entry.line))[1:]
            if entry.row >= len(rows) or rows[entry.row] != f"• {before}":
                continue  # the copy no longer has this line as written (never expected)
            if removes(entry):
                changed[entry.row] = (entry.item, before, REMOVED_ITEM)
                entry.item_by, entry.item_id = None, None
                emptied.add(post_id)
            elif renames(entry) and current[entry.at : entry.at + len(entry.name)] == entry.name:
                end = entry.at + len(entry.name)
                changed[entry.row] = (entry.item, before, current[: entry.at] + name + current[end:])
                entry.member_id, entry.name = None, ""
                renamed.add(post_id)
        if not changed:
            continue
        new_items: dict[int, str] = {}
        for row, (item, _, now) in changed.items():
            rows[row] = f"• {now}"
            new_items[item] = escaping.escape(now)
            for entry in entries:
                if entry.row == row:
                    entry.line = now
                    if now == REMOVED_ITEM:  # the line is gone: nothing in it names anyone
                        entry.member_id, entry.name, entry.item_by, entry.item_id = None, "", None, None
        post.text = "\n".join(rows)
        post.html = _replace_items(post.html, new_items)
    return renamed, emptied


def _replace_items(html: str, new: dict[int, str]) -> str:
    """``html`` with the contents of its ``<li>`` number ``n`` (0-based) replaced by ``new[n]``: member text
    in a copy is escaped, so no ``</li>`` is ever inside one."""
    parts: list[str] = []
    done = 0
    for index, match in enumerate(_ITEM.finditer(html)):
        if index in new:
            parts += [html[done : match.start()], f"<li>{new[index]}</li>"]
            done = match.end()
    return "".join(parts) + html[done:]


async def _rename(
    session: AsyncSession, member_ids: Sequence[int], name: str, *, remove_items: bool
) -> tuple[int, int]:
    """The members' names in the web copies of posted digests replaced by ``name`` (and their items'
    lines, with ``remove_items``); how many posts named them, and how many lost items."""
    renamed, emptied = await _rewrite(session, member_ids, name, remove_items=remove_items)
    posts, words = await _naming(session, member_ids)  # posted before entries were kept
    for post in posts:
        post.title = scrub(post.title, words, name)
        post.text = scrub(post.text, words, name)
        post.html = scrub(post.html, words, escaping.escape(name, quote=True))
    return renamed + len(posts), emptied


async def hide_names(session: AsyncSession, member_ids: Sequence[int]) -> None:
    """Members who turned ``public`` off are "a member" in the web copies of digests posted before."""
    await _rename(session, member_ids, UNNAMED, remove_items=False)


async def forget(session: AsyncSession, member_ids: Sequence[int], *, remove_items: bool) -> list[str]:
    posts, emptied = await _rename(session, member_ids, FORMER, remove_items=remove_items)
    if not posts and not emptied:
        return []
    copies = (
        "in copbot's copies (the dashboard, the Atom feed); the digest messages already in the chat stay as "
        "the platform keeps them."
    )
    shows = f"no longer show{'s' if emptied == 1 else ''} the repertoire items deleted"
    if not posts:
        return [f"{emptied} posted digest{'s' if emptied != 1 else ''} {shows}, {copies}"]
    said = (
        f"{posts} posted digest{'s' if posts != 1 else ''} that named you now say{'s' if posts == 1 else ''} "
        f"'{FORMER}'"
    )
    if emptied:
        said += f", and {shows}" if emptied == posts else f", and {emptied} {shows}"
    return [f"{said}, {copies}"]
