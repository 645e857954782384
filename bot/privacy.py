"""Members' own data: everything copbot stores about a person (``profile export``), and forgetting them
(``profile forget``).

A person is all their linked accounts (``members.person_id``). The core knows its own tables (member rows,
memberships, activity, the outbox); every plugin answers for its own through two hooks,
:meth:`~bot.plugin.Plugin.personal_data` and :meth:`~bot.plugin.Plugin.forget`, so a third-party plugin
takes part without the core knowing its tables.

Forgetting keeps the community's records right while nothing is left that links the platform account to
them:

* Each account's member row stays, so that what others' figures count keeps pointing somewhere (voters of
  closed polls, RSVPs of past meetings, 'used' marks, level history, items kept): its name becomes "a
  former member", its platform id a random opaque value (``forgotten:…``), its zone and choices are
  cleared, tracking and prompts are off, the link between the accounts is gone and its memberships are
  closed. Someone writing from that platform account later is met as a new member. (Votes in polls still
  open and upvotes are withdrawn instead, and 'used' marks from their items, so that they count once if
  the person comes back: see the polls' and the repertoire's ``privacy``.)
* Activity rows are moved to one shared "former member" row that stands for everyone who asked to be
  forgotten, without the room or what they were about (a command's name is kept): every figure computed
  from activity — messages per week, contributions, experts look-ups, poll turnout — stays as it was, and
  no person's pattern can be told apart from the others'. (Counts of distinct active members over a window
  count the former members of that window as one.)
* Texts copbot wrote itself and keeps — messages in its outbox, level-change reasons, posted digests — have
  the person's names and platform ids replaced by "a former member" (:func:`scrub`). What other members wrote
  is theirs and is kept as written.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, Delete, Update, bindparam, case, delete, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot import outbox, store
from bot.model import Attachment, Capability, Card, Content, Member
from bot.tables import ActivityEvent, CommunityRow, MemberRow, Membership, OutboxRow, table_of

if TYPE_CHECKING:
    from bot.services import Services

FORMER = "a former member"
"""How copbot names someone who asked to be forgotten, wherever their records are kept."""
FORGOTTEN_PREFIX = "forgotten:"
"""The platform id of an anonymised member row starts with this, followed by random hex."""
EVERYONE_PLATFORM, EVERYONE_ID = "copbot", "forgotten:everyone"
"""The one shared row that holds the activity of everyone forgotten."""
CONFIRM_WINDOW = timedelta(minutes=10)
EXPORT_VERSION = 1


def is_forgotten(row: MemberRow) -> bool:
    """An anonymised row (or the shared one): nobody any more; never suggest, mention or rank it."""
    return row.platform_id.startswith(FORGOTTEN_PREFIX)


def iso(value: datetime | None) -> str | None:
    """A time as UTC ISO 8601 text, for the export."""
    return value.astimezone(UTC).isoformat() if value is not None else None


async def rows_changed(session: AsyncSession, statement: Update | Delete) -> int:
    """Run an UPDATE or DELETE; how many rows it changed."""
    result = await session.execute(statement)
    # Run for DML, execute() returns a CursorResult (which has rowcount); AsyncSession types it as Result.
    return cast("CursorResult[Any]", result).rowcount


# --- taking names out of texts --------------------------------------------------------------------------


def needles(rows: Iterable[MemberRow]) -> tuple[str, ...]:
    """What stands for the person in a text: their names and platform ids (a name of one letter would
    match too much, so it is left alone)."""
    found: set[str] = set()
    for row in rows:
        for value in (row.display_name, row.platform_id):
            value = (value or "").strip()
            if len(value) >= 2:
                found.add(value)
    return tuple(sorted(found, key=lambda value: (-len(value), value)))


def _pattern(words: Sequence[str]) -> re.Pattern[str] | None:
    if not words:
        return None
    parts = "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{parts})(?!\w)", re.IGNORECASE)


def scrub(value: str, words: Sequence[str], replacement: str = FORMER) -> str:
    """``value`` with each whole-word occurrence of ``words`` (names, ids) replaced by "a former member"."""
    pattern = _pattern(words)
    return pattern.sub(replacement, value) if pattern is not None and value else value


def contains(value: str, words: Sequence[str]) -> bool:
    pattern = _pattern(words)
    return bool(pattern is not None and value and pattern.search(value))


# --- export ---------------------------------------------------------------------------------------------


async def export_data(services: Services, session: AsyncSession, member_id: int) -> dict[str, Any]:
    """Everything copbot stores about the person: their accounts, memberships and levels, their activity
    as counts per month and kind, and what every plugin keeps (its ``personal_data``)."""
    accounts = await store.person_accounts(session, member_id)
    ids = [row.id for row in accounts if row.id is not None]
    now = services.clock.now()
    data: dict[str, Any] = {
        "copbot_export": EXPORT_VERSION,
        "exported_at": iso(now),
        "about": (
            "Everything copbot stores about you, over all your linked accounts. Times are UTC. "
            "Activity is given as counts per month and kind."
        ),
        "accounts": [_account(row, accounts) for row in accounts],
        "memberships": await _memberships(session, ids),
        "activity": await _activity(session, ids, accounts),
        "messages_to_you": await _messages_to(session, accounts),
    }
    registry = services.registry
    found: dict[str, Any] = {}
    for plugin in registry.holders() if registry is not None else ():
        stored = await plugin.personal_data(session, ids)
        if stored:
            found[plugin.name] = dict(stored)
    data["plugins"] = found
    return data


def _account(row: MemberRow, accounts: Sequence[MemberRow]) -> dict[str, Any]:
    others = [f"{other.platform}:{other.platform_id}" for other in accounts if other.id != row.id]
    return {
        "platform": row.platform,
        "platform_id": row.platform_id,
        "display_name": row.display_name,
        "time_zone": row.timezone,
        "reminders": row.reminders,
        "choices": {"public": row.public, "prompts": row.prompts, "tracking": row.tracking},
        "linked_with": others,
        "first_seen": iso(row.first_seen),
        "last_seen": iso(row.last_seen),
    }


async def _memberships(session: AsyncSession, ids: Sequence[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    rows = await session.execute(
        select(
            Membership,
            col(CommunityRow.slug),
            col(CommunityRow.name),
            col(MemberRow.platform),
            col(MemberRow.platform_id),
        )
        .join(CommunityRow, col(CommunityRow.id) == col(Membership.community_id))
        .join(MemberRow, col(MemberRow.id) == col(Membership.member_id))
        .where(col(Membership.member_id).in_(ids))
        .order_by(col(Membership.joined_at))
    )
    return [
        {
            "community": slug,
            "community_name": name,
            "account": f"{platform}:{platform_id}",
            "joined_at": iso(membership.joined_at),
            "left_at": iso(membership.left_at),
            "level": membership.level,
            "level_since": iso(membership.level_since),
            "level_locked": membership.locked,
            "last_seen": iso(membership.last_seen),
        }
        for membership, slug, name, platform, platform_id in rows.all()
    ]


async def _activity(
    session: AsyncSession, ids: Sequence[int], accounts: Sequence[MemberRow]
) -> dict[str, Any]:
    dialect = store.dialect_of(session)
    month = "substr(at, 1, 7)" if dialect == "sqlite" else "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM')"
    by_month: dict[str, dict[str, int]] = {}
    total = 0
    if ids:
        query = text(
            f"SELECT {month} AS month, kind, count(*) FROM activity_events "
            "WHERE member_id IN :ids GROUP BY 1, 2 ORDER BY 1, 2"
        ).bindparams(bindparam("ids", expanding=True))
        for when, kind, count in (await session.execute(query, {"ids": list(ids)})).all():
            by_month.setdefault(str(when), {})[kind] = int(count)
            total += int(count)
    tracking = all(row.tracking for row in accounts)
    return {
        "tracking": "on" if tracking else "off (on some accounts or all: nothing of theirs is recorded)",
        "total": total,
        "by_month": by_month,
        "note": (
            "Every message, reaction, command, vote and contribution is one record (kind and time, "
            "in which room); they make the participation levels and the community's figures."
        ),
    }


async def _messages_to(session: AsyncSession, accounts: Sequence[MemberRow]) -> list[dict[str, Any]]:
    """copbot's own copies of the direct messages it sent the person as part of its work (a reminder, a
    question; see bot/outbox.py): kept with their account until ``profile forget`` deletes them, so they
    are the person's data too."""
    keys = {(row.platform, row.platform_id) for row in accounts}
    if not keys:
        return []
    # a coarse filter in SQL (the id anywhere in the target), the exact one on the decoded target
    ids = _as_json((platform_id for _, platform_id in keys), True)  # as the JSON of a target holds them
    like = [col(OutboxRow.target).ilike(f"%{_like(each)}%", escape="\\") for each in ids]
    rows = await session.execute(select(OutboxRow).where(or_(*like)).order_by(col(OutboxRow.id)))
    found: list[dict[str, Any]] = []
    for row in rows.scalars():
        member = json.loads(row.target).get("member")
        if member is None or (row.platform, member.get("id")) not in keys:
            continue
        content = outbox.decode_content(row.content)
        message: dict[str, Any] = {
            "account": f"{row.platform}:{member.get('id')}",
            "queued_at": iso(row.created_at),
            "sent_at": iso(row.sent_at),
            "text": content.text,
        }
        if content.card is not None:
            message["card"] = {"title": content.card.title, "fields": dict(content.card.fields)}
        found.append(message)
    return found


def export_content(data: dict[str, Any], capabilities: frozenset[Capability], now: datetime) -> Content:
    """The export as a message: a JSON file where the platform takes files, else the JSON as text (the
    console, which runs on the operator's own terminal)."""
    body = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False)
    lead = "Everything copbot stores about you"
    if Capability.FILES in capabilities:
        name = f"copbot-my-data-{now:%Y-%m-%d}.json"
        return Content(
            f"{lead}, as JSON (attached).",
            attachment=Attachment(name, body.encode("utf-8"), "application/json"),
        )
    return Content(f"{lead}, as JSON:\n{body}")


# --- forgetting -----------------------------------------------------------------------------------------


def forget_preview(prefix: str) -> str:
    """What ``profile forget`` will do, for the member to confirm: what it deletes and every kind of thing
    it keeps without their name (README "Privacy") — above all what they wrote themselves and the
    community keeps as its record (meeting notes), so that nobody confirms expecting it gone."""
    return (
        "Forgetting you cannot be undone. copbot would delete your profile, your onboarding answers, the "
        "links between your accounts, your link codes and value-story conversations, and your answers for "
        "meetings still to come; take your names and platform ids out of every account it knows of yours "
        "and out of the texts it keeps; and keep what the community's records count only without you: "
        "your activity as anonymous counts, your votes in closed polls as unnamed votes, past RSVPs, "
        "attendance, 'used' marks, introductions and level history as 'a former member'; the polls and "
        "meetings you created and the meeting notes you wrote, as the community's record, by 'a former "
        "member'; and "
        "your repertoire items and value stories credited to 'a former member' (or deleted, with "
        "--remove-items; the meeting notes stay). Your votes in polls still open and the upvotes you "
        "gave are withdrawn, and so are your 'used' marks from their items (the value report still counts "
        "them), so that you can give them again if you come back; in an anonymous poll still "
        "open, where your choice was never stored, your vote stays counted and a keyed one-way mark of "
        "your account (no name, no id) keeps it from counting twice until the poll closes. "
        f"To go ahead, type {prefix}profile forget --confirm (or {prefix}profile forget --confirm "
        f"--remove-items) within {int(CONFIRM_WINDOW.total_seconds() // 60)} minutes. "
        f"Want a copy first? {prefix}profile export."
    )


@dataclass
class Forgotten:
    """What ``profile forget`` did: sentences for the member, and each account as the platform knew it
    beside its anonymised row (for the caches that map platform accounts to rows)."""

    said: list[str]
    accounts: list[tuple[Member, MemberRow]]


async def forget_person(
    services: Services, session: AsyncSession, member_id: int, *, remove_items: bool
) -> Forgotten:
    """Forget the person ``member_id`` is, in the caller's unit of work: every plugin first (the names can
    still be read), then the core."""
    accounts = await store.person_accounts(session, member_id)
    ids = [row.id for row in accounts if row.id is not None]
    if not ids:
        return Forgotten([], [])
    known = [Member(row.platform, row.platform_id, row.display_name, row.is_bot) for row in accounts]
    said: list[str] = []
    registry = services.registry
    for plugin in registry.holders() if registry is not None else ():
        said += list(await plugin.forget(session, ids, remove_items=remove_items))
    said = await _forget_core(services, session, accounts) + said  # the accounts first, then the details
    return Forgotten(said, list(zip(known, accounts, strict=True)))


async def _forget_core(services: Services, session: AsyncSession, accounts: list[MemberRow]) -> list[str]:
    now = services.clock.now()
    ids = [row.id for row in accounts if row.id is not None]
    words = needles(accounts)
    said: list[str] = []
    # activity: moved to the shared row, without room or detail (a command's name is kept)
    everyone = await _everyone(session, now)
    moved = await rows_changed(
        session,
        update(ActivityEvent)
        .where(col(ActivityEvent.member_id).in_(ids))
        .values(member_id=everyone, room_id="", detail=_command_detail())
        .execution_options(synchronize_session=False),
    )
    if moved:
        said.append(
            f"Your activity ({moved} record{'s' if moved != 1 else ''}) kept only as anonymous counts for "
            f"the community's figures: moved to one shared '{FORMER}' that stands for everyone forgotten, "
            "without rooms or details."
        )
    # the outbox: messages to the person dropped, their names taken out of the others
    dropped, rewritten = await _scrub_outbox(session, accounts, words)
    if dropped or rewritten:
        parts = [f"{dropped} to you deleted"] if dropped else []
        parts += [f"{rewritten} that named you now say '{FORMER}'"] if rewritten else []
        said.append(
            f"copbot's own copies of messages it sent: {' and '.join(parts)} (what is already in the chat "
            "stays as the platform keeps it)."
        )
    # memberships: closed, so the person counts no more among the members (nor twice, if they come back)
    every = list(
        (await session.execute(select(Membership).where(col(Membership.member_id).in_(ids)))).scalars()
    )
    memberships = [membership for membership in every if membership.left_at is None]
    for membership in memberships:
        membership.left_at = now
    for membership in every:  # to the day, as the accounts' own first and last seen
        if membership.last_seen is not None:
            membership.last_seen = _day(membership.last_seen)
    if memberships:
        said.append(
            f"Your membership{'s' if len(memberships) != 1 else ''} closed: you no longer count among the "
            f"members or on a level; past figures keep '{FORMER}' where you were."
        )
    # the member rows: no name, no platform id, no zone or choices, no link between them
    described = ", ".join(f"{row.platform} {row.display_name or row.platform_id}" for row in accounts)
    for row in accounts:
        row.display_name = FORMER
        row.platform_id = FORGOTTEN_PREFIX + secrets.token_hex(12)
        row.timezone = None
        row.reminders = "room"
        row.public = row.prompts = row.tracking = False
        row.person_id = None
        row.first_seen = _day(row.first_seen)
        row.last_seen = _day(row.last_seen)
    await session.flush()
    said.append(
        f"Your account{'s' if len(accounts) != 1 else ''} ({described}) no longer known to copbot: names, "
        "platform ids, time zone and choices removed"
        + (", and the link between them deleted" if len(accounts) > 1 else "")
        + ". If you write in the community again, copbot meets you as a new member."
    )
    return said


def _command_detail() -> Any:
    return case((col(ActivityEvent.kind) == "command", col(ActivityEvent.detail)), else_="")


def _day(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def _everyone(session: AsyncSession, now: datetime) -> int:
    """The shared row for everyone forgotten, made the first time someone is."""
    shared = (col(MemberRow.platform) == EVERYONE_PLATFORM, col(MemberRow.platform_id) == EVERYONE_ID)
    found = await session.scalar(select(col(MemberRow.id)).where(*shared))
    if found is not None:
        return int(found)
    await session.execute(
        store.insert_ignoring_conflicts(session, table_of(MemberRow)).values(
            platform=EVERYONE_PLATFORM,
            platform_id=EVERYONE_ID,
            display_name=FORMER,
            is_bot=False,
            public=False,
            prompts=False,
            tracking=False,
            first_seen=_day(now),
            last_seen=_day(now),
        )
    )
    found = await session.scalar(select(col(MemberRow.id)).where(*shared))
    assert found is not None
    return int(found)


async def _scrub_outbox(
    session: AsyncSession, accounts: Sequence[MemberRow], words: Sequence[str]
) -> tuple[int, int]:
    """Messages queued or sent to the person are deleted; those that name them are rewritten."""
    if not words:
        return 0, 0
    keys = {(row.platform, row.platform_id) for row in accounts}
    like = [col(OutboxRow.target).ilike(f"%{_like(word)}%", escape="\\") for word in _as_json(words, True)]
    like += [col(OutboxRow.content).ilike(f"%{_like(word)}%", escape="\\") for word in _as_json(words)]
    rows = list((await session.execute(select(OutboxRow).where(or_(*like)))).scalars())
    dropped, rewritten = 0, 0
    for row in rows:
        target = json.loads(row.target)
        member = target.get("member")
        if member is not None and (row.platform, member.get("id")) in keys:
            await session.execute(delete(OutboxRow).where(col(OutboxRow.id) == row.id))
            dropped += 1
            continue
        content = outbox.decode_content(row.content)
        cleaned = _scrub_content(content, keys, words)
        if cleaned != content:
            row.content = outbox.encode_content(cleaned)
            rewritten += 1
    return dropped, rewritten


def _as_json(words: Iterable[str], ascii_only: bool = False) -> set[str]:
    """The words as they are written inside the outbox's JSON (targets with ``\\u`` escapes, contents
    without): a name holding ``"`` or ``\\`` is stored escaped, and a search for it as typed finds nothing."""
    return {json.dumps(word, ensure_ascii=ascii_only)[1:-1] for word in words}


def _like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _scrub_content(content: Content, keys: set[tuple[str, str]], words: Sequence[str]) -> Content:
    card = content.card
    if card is not None:
        card = Card(
            scrub(card.title, words),
            tuple((scrub(name, words), scrub(value, words)) for name, value in card.fields),
            scrub(card.footer, words),
        )
    return dataclasses.replace(
        content,
        text=scrub(content.text, words),
        mentions=tuple(m for m in content.mentions if (m.platform, m.id) not in keys),
        card=card,
    )


async def forgotten_among(session: AsyncSession, member_ids: Iterable[int]) -> set[int]:
    """Which of these member rows stand for someone forgotten (to leave out of suggestions and rankings)."""
    wanted = sorted(set(member_ids))
    if not wanted:
        return set()
    rows = await session.execute(
        select(col(MemberRow.id)).where(
            col(MemberRow.id).in_(wanted),
            col(MemberRow.platform_id).startswith(FORGOTTEN_PREFIX),
        )
    )
    return {member_id for member_id in rows.scalars() if member_id is not None}
