"""One person, several accounts: a code made on one account and typed on the other links them (one
profile, one level, activity counted together); ``profile unlink`` separates an account again."""

from __future__ import annotations

import secrets
from collections import deque
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_
from sqlmodel import col

from bot import store
from bot.context import Context
from bot.errors import Refused, UsageError
from bot.plugin import command
from bot.tables import MemberRow
from plugins.roles import queries
from plugins.roles.base import RolesBase
from plugins.roles.models import LinkCode

LINK_VALID = timedelta(minutes=15)
WRONG_CODES = 5  # wrong codes an account may type within LINK_VALID before it must wait
MAX_GUESSERS = 10_000  # accounts whose wrong codes are remembered at once (the oldest are forgotten)


class WrongCodes:
    """Wrong link codes typed, per account, over the last LINK_VALID. A code is 32 random bits and lives
    15 minutes, but an account typing codes without end (a script on a homeserver of its own) would in
    time hit somebody's live one and join their person; a few tries are all a member mistyping needs.

    Kept in memory: a failed attempt writes nothing (bad input never does), and a restart forgetting the
    count only gives back what the bot would give in any new quarter of an hour."""

    def __init__(self) -> None:
        self._typed: dict[int, deque[datetime]] = {}

    def _recent(self, account: int, now: datetime) -> deque[datetime]:
        typed = self._typed.get(account, deque())
        while typed and typed[0] <= now - LINK_VALID:
            typed.popleft()
        return typed

    def wait(self, account: int, now: datetime) -> timedelta | None:
        """How long ``account`` must wait before trying a code again, None when it may now."""
        typed = self._recent(account, now)
        if not typed:
            self._typed.pop(account, None)
        if len(typed) < WRONG_CODES:
            return None
        return typed[0] + LINK_VALID - now

    def add(self, account: int, now: datetime) -> None:
        typed = self._recent(account, now)
        typed.append(now)
        self._typed.pop(account, None)
        self._typed[account] = typed  # newest last: the first key is the one longest unheard of
        if len(self._typed) > MAX_GUESSERS:
            del self._typed[next(iter(self._typed))]


class Linking(RolesBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wrong_codes = WrongCodes()

    @command("profile link", examples=("profile link", "profile link 7F3A-09C2"))
    async def link(self, ctx: Context, code: str | None = None) -> None:
        """Join your accounts: without a code, get one; on your other account, type it to link the two.

        Args:
            code: the code you got on your other account
        """
        assert ctx.author_id is not None and ctx.author is not None
        now = ctx.now()
        if code is None:
            # One live code per member: asking again (the first one lost, or seen by someone else) retires
            # the earlier ones; and codes past their time are of no use, so none is kept for ever.
            await ctx.session.execute(
                delete(LinkCode).where(
                    or_(col(LinkCode.member_id) == ctx.author_id, col(LinkCode.expires_at) <= now)
                )
            )
            fresh = "-".join(secrets.token_hex(2).upper() for _ in range(2))
            ctx.session.add(LinkCode(code=fresh, member_id=ctx.author_id, expires_at=now + LINK_VALID))
            await ctx.reply_privately(
                f"Your link code: {fresh}. On your other account, type {ctx.prefix}profile link {fresh} "
                f"within {int(LINK_VALID.total_seconds() // 60)} minutes.",
                public="I sent you a link code by direct message.",
            )
            return
        wait = self._wrong_codes.wait(ctx.author_id, now)
        if wait is not None:
            minutes = max(1, -(-int(wait.total_seconds()) // 60))
            raise Refused(
                f"Too many wrong codes: try again in {minutes} minute{'s' if minutes != 1 else ''}, with a "
                f"new code from {ctx.prefix}profile link on your other account."
            )
        row = await ctx.session.get(LinkCode, code.strip().upper())
        if row is None or row.expires_at <= now:
            self._wrong_codes.add(ctx.author_id, now)
            raise UsageError(
                f"that code is unknown or expired; get a new one with {ctx.prefix}profile link on your other "
                "account"
            )
        if row.member_id == ctx.author_id:
            raise UsageError("type the code on your other account, not the one that made it")
        await ctx.session.delete(row)
        target = await queries.person_of(ctx.session, row.member_id)
        mine = await queries.person_of(ctx.session, ctx.author_id)
        if target == mine:
            await ctx.reply("These accounts are already linked.")
            return
        for account in await queries.accounts_of(ctx.session, mine):
            account.person_id = target
        accounts = await queries.accounts_of(ctx.session, target)
        untracked = await self._align_tracking(ctx, accounts)
        await _align_levels(ctx, accounts)
        names = ", ".join(f"{a.display_name} ({a.platform})" for a in accounts)
        await ctx.reply_privately(
            f"Linked: {names} are one person now — one profile, one level, activity counted together. "
            + ("One of them had tracking off: now it is off on all of them. " if untracked else "")
            + f"Undo with {ctx.prefix}profile unlink.",
            public="Your accounts are linked.",
        )

    async def _align_tracking(self, ctx: Context, accounts: list[MemberRow]) -> bool:
        """Tracking is the person's (``profile set tracking`` sets it on all their accounts): where the
        accounts differed when linked, off holds — one of them asked copbot to record nothing. (Whether the
        name shows on the web and whether copbot asks for stories stay each account's.)"""
        if all(account.tracking for account in accounts) or not any(a.tracking for a in accounts):
            return False
        for account in accounts:
            if account.tracking:
                account.tracking = False
                ctx.member_changed(store.as_member(account))
        return True

    @command("profile unlink", examples=("profile unlink",))
    async def unlink(self, ctx: Context) -> None:
        """Separate this account from your other accounts again."""
        assert ctx.author_id is not None
        row = await ctx.session.get(MemberRow, ctx.author_id)
        assert row is not None
        person = row.person_id or row.id
        accounts = await queries.accounts_of(ctx.session, person or 0)
        if len(accounts) < 2:
            raise Refused("This account is not linked to another one.")
        others = [a for a in accounts if a.id != row.id]
        if row.person_id is None:  # this account was the person's anchor: the next one becomes it
            anchor = others[0]
            for account in others:
                account.person_id = None if account is anchor else anchor.id
        else:
            row.person_id = None
        await ctx.reply("This account is on its own again; its activity counts for it alone from now on.")


async def _align_levels(ctx: Context, accounts: list[MemberRow]) -> None:
    """A person has one level: in each community where several of the linked accounts are members, every
    one of their memberships takes the person's level — the most central, as `role list` reads it — so
    that the bulb (`stats`, the dashboard), which counts the person by one membership, counts them there
    too. Not a move (nothing is recorded): the person was already at that level."""
    from sqlalchemy import select

    from bot.tables import Membership
    from plugins.roles.rules import LEVELS

    ids = [account.id for account in accounts if account.id is not None]
    rows = await ctx.session.execute(
        select(Membership).where(col(Membership.member_id).in_(ids), col(Membership.left_at).is_(None))
    )
    by_community: dict[int, list[Membership]] = {}
    for membership in rows.scalars():
        by_community.setdefault(membership.community_id, []).append(membership)
    for memberships in by_community.values():
        if len(memberships) < 2:
            continue
        centre = min(memberships, key=lambda m: LEVELS.index(m.level) if m.level in LEVELS else len(LEVELS))
        locked = any(membership.locked for membership in memberships)
        for membership in memberships:
            if membership.level != centre.level:
                membership.level, membership.level_since = centre.level, centre.level_since
            membership.locked = locked
