"""A community's Matrix room upgraded (``POST /rooms/{id}/upgrade`` on the real Synapse): copbot follows it.

What members see: copbot joins the new room, posts the announcements of the meetings still to come there
(answers kept) and reminds there; what was aimed at the old room (a room configured by its id) arrives in
the new one, also after a restart. What is stored: the new room attached to the community (``rooms``), the
meetings' ``room_id`` and ``announcement_id``, and the adapter's record of which room replaced which.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from nio import AsyncClient, JoinResponse, RoomCreateResponse, RoomPreset
from sqlalchemy import select

from bot.app import CopBot
from bot.clock import FakeClock
from bot.model import Content, Room
from bot.tables import CommunityRow, RoomRow
from plugins.meetings.models import occurrence_key
from plugins.meetings.plugin import Meetings
from tests.e2e.matrix_support import (
    STEP,
    BotAccount,
    Bots,
    adapter_of,
    content_of,
    in_reply_to,
    is_membership,
    send,
    send_event,
)
from tests.e2e.test_meetings_platforms import (
    answers_become,
    meeting_once,
    meeting_row,
    reaction,
    settled,
    typed,
)
from tests.harness.synapse import wait_for_event


def upgrade(bots: Bots, owner: AsyncClient, room_id: str) -> str:
    """The owner upgrades the room (to the version it has: an upgrade all the same); the new room's id.
    Blocking: run it in a thread."""
    base = f"/_matrix/client/v3/rooms/{quote(room_id)}"
    create = bots.synapse.request("GET", f"{base}/state/m.room.create/", token=owner.access_token)
    answer = bots.synapse.request(
        "POST", f"{base}/upgrade", {"new_version": create.get("room_version", "10")}, owner.access_token
    )
    return str(answer["replacement_room"])


async def attached_rooms(bot: CopBot) -> list[tuple[str, str]]:
    async with bot.db.session() as session:
        rows = await session.execute(
            select(RoomRow.room_id, CommunityRow.slug).join(
                CommunityRow, CommunityRow.id == RoomRow.community_id
            )
        )
        return sorted(tuple(row) for row in rows.all())  # type: ignore[misc]


def by_bot(bot_id: str, starts: str) -> Any:
    """A message of the bot's whose text starts with ``starts``."""

    def match(event: Any) -> bool:
        return event.sender == bot_id and content_of(event).get("body", "").startswith(starts)

    return match


async def in_room(client: AsyncClient, room_id: str, test: Any) -> Any:
    """The next event in ``room_id`` that ``test`` accepts, as ``client`` syncs it."""
    while True:
        found_room, event = await wait_for_event(client, test, timeout=STEP)
        if found_room == room_id:
            return event


async def planned_meeting(bot: CopBot, owner: AsyncClient, room_id: str, start: datetime) -> Any:
    bot_id = adapter_of(bot).user_id
    command = await send(
        owner,
        room_id,
        f'!meeting schedule "Leakage call" {typed(start)} --every weekly --where https://m.example',
    )
    _, posted = await wait_for_event(
        owner, lambda e: e.sender == bot_id and in_reply_to(e) == command, timeout=STEP
    )
    return posted


async def test_matrix_copbot_follows_an_upgraded_room_with_the_meetings_to_come(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    owner, ana = await members("owner"), await members("ana")
    clock = FakeClock(datetime.now(UTC).replace(second=0, microsecond=0))
    account = await asyncio.to_thread(bots.account, owner.user_id)
    bot = await bots.start(account, plugins=(Meetings,), clock=clock)
    adapter = adapter_of(bot)
    bot_id = adapter.user_id
    async with asyncio.timeout(STEP):
        created = await owner.room_create(invite=[bot_id], preset=RoomPreset.public_chat)
    assert isinstance(created, RoomCreateResponse), created
    old = created.room_id
    await wait_for_event(owner, is_membership(bot_id, "join"), timeout=STEP)
    assert isinstance(await ana.join(old), JoinResponse)
    day = (clock.now() + timedelta(days=3)).date()
    start = datetime(day.year, day.month, day.day, 15, tzinfo=UTC)
    old_card = await planned_meeting(bot, owner, old, start)
    await send_event(ana, old, "m.reaction", reaction(old_card.event_id, "✅"))
    key = occurrence_key(start)
    await answers_become(bot, [(ana.user_id, key, "yes")], "ana's yes stored")

    new = await asyncio.to_thread(upgrade, bots, owner, old)

    # copbot joins the public successor by itself, and posts the meeting's card there with ana's answer
    await in_room(owner, new, is_membership(bot_id, "join"))
    card = await in_room(owner, new, by_bot(bot_id, "Meeting #1 planned for"))
    body = content_of(card)["body"]
    assert "📅 Meeting #1: Leakage call" in body
    assert "Answers: ✅ 1 · ❔ 0 · ❌ 0" in body
    assert in_reply_to(card) is None
    meeting = await meeting_once(bot, lambda m: m.room_id == new, "the meeting moved to the new room")
    assert meeting.announcement_id == card.event_id
    assert await attached_rooms(bot) == sorted([(old, "water"), (new, "water")])

    # members answer on the new card, and are reminded in the new room
    assert isinstance(await ana.join(new), JoinResponse)
    await send_event(ana, new, "m.reaction", reaction(card.event_id, "❌"))
    await answers_become(bot, [(ana.user_id, key, "no")], "ana's change of mind on the new card")
    scheduler = bot.services.scheduler
    clock.set(start - timedelta(hours=24))
    assert await scheduler.run_due() == 1
    reminder = await in_room(owner, new, by_bot(bot_id, "⏰ Leakage call"))
    assert content_of(reminder)["body"].startswith("⏰ Leakage call starts in 24 hours")

    # a command in the new room is answered there; what is aimed at the old room arrives in the new one
    command = await send(owner, new, "!meeting list")
    await in_room(owner, new, lambda e: e.sender == bot_id and in_reply_to(e) == command)
    await adapter.send(Room("matrix", old), Content("for the old room"))
    await in_room(owner, new, by_bot(bot_id, "for the old room"))

    # the same after a restart: which room replaced which is stored
    await bots.stop(bot)
    again = await bots.start(account, plugins=(Meetings,), clock=clock)
    await adapter_of(again).send(Room("matrix", old), Content("after the restart"))
    await in_room(owner, new, by_bot(bot_id, "after the restart"))
    assert (await meeting_row(again)).room_id == new


async def test_matrix_an_invite_only_room_upgraded_is_joined_on_the_invite_into_its_successor(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    """The room is configured by its id and nobody's invites are accepted; the successor is invite-only,
    so copbot waits for the invite into it, and takes it from whoever sends it."""
    owner = await members("owner")
    account: BotAccount = await asyncio.to_thread(bots.account, "@nobody:localhost")
    bot_id = account.user_id
    async with asyncio.timeout(STEP):
        created = await owner.room_create(invite=[bot_id])
    assert isinstance(created, RoomCreateResponse), created
    old = created.room_id
    clock = FakeClock(datetime.now(UTC).replace(second=0, microsecond=0))
    bot = await bots.start(account, matrix={"rooms": [old]}, plugins=(Meetings,), clock=clock)
    await wait_for_event(owner, is_membership(bot_id, "join"), timeout=STEP)
    day = (clock.now() + timedelta(days=2)).date()
    await planned_meeting(bot, owner, old, datetime(day.year, day.month, day.day, 9, tzinfo=UTC))

    new = await asyncio.to_thread(upgrade, bots, owner, old)
    stored = adapter_of(bot).state
    # copbot learns of the upgrade, is refused joining (invite-only), and waits for an invite
    await settled(lambda: stored.get(f"predecessor:{new}"), "the successor recorded")
    assert await stored.get(f"successor:{old}") == new
    assert (await meeting_row(bot)).room_id == old
    assert await attached_rooms(bot) == [(old, "water")]

    async with asyncio.timeout(STEP):
        await owner.room_invite(new, bot_id)  # not a member copbot takes invites from otherwise
    await in_room(owner, new, is_membership(bot_id, "join"))
    card = await in_room(owner, new, by_bot(bot_id, "Meeting #1 planned for"))
    await meeting_once(bot, lambda m: m.room_id == new and m.announcement_id == card.event_id, "the move")
    assert await attached_rooms(bot) == sorted([(old, "water"), (new, "water")])
    await adapter_of(bot).send(Room("matrix", old), Content("for the configured room"))
    await in_room(owner, new, by_bot(bot_id, "for the configured room"))


async def public_room_upgraded(bots: Bots, owner: AsyncClient) -> tuple[str, str]:
    """A public room the owner made and upgraded before copbot came: (old room, new room)."""
    async with asyncio.timeout(STEP):
        created = await owner.room_create(preset=RoomPreset.public_chat)
    assert isinstance(created, RoomCreateResponse), created
    return created.room_id, await asyncio.to_thread(upgrade, bots, owner, created.room_id)


async def test_matrix_a_room_configured_by_the_id_it_had_before_an_upgrade_is_followed(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    """The tombstone is history when copbot joins: read from the room's state, not from a sync."""
    owner = await members("owner")
    old, new = await public_room_upgraded(bots, owner)
    account: BotAccount = await asyncio.to_thread(bots.account, "@nobody:localhost")
    bot = await bots.start(account, matrix={"rooms": [old]})
    bot_id = account.user_id
    await in_room(owner, new, is_membership(bot_id, "join"))
    assert await attached_rooms(bot) == sorted([(old, "water"), (new, "water")])
    command = await send(owner, new, "!about")
    await in_room(owner, new, lambda e: e.sender == bot_id and in_reply_to(e) == command)
    await adapter_of(bot).send(Room("matrix", old), Content("for the configured room"))
    await in_room(owner, new, by_bot(bot_id, "for the configured room"))
    assert await adapter_of(bot).state.get(f"successor:{old}") == new


async def test_matrix_a_room_joined_on_an_invite_after_its_upgrade_is_followed(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    """The invite is into the old room: its tombstone comes in the state of a room copbot has just joined
    (before copbot's own join in the timeline, the part that is otherwise history)."""
    owner = await members("owner")
    old, new = await public_room_upgraded(bots, owner)
    account = await asyncio.to_thread(bots.account, owner.user_id)
    bot = await bots.start(account)
    bot_id = adapter_of(bot).user_id
    async with asyncio.timeout(STEP):
        await owner.room_invite(old, bot_id)
    await in_room(owner, new, is_membership(bot_id, "join"))

    async def both_attached() -> bool:
        return await attached_rooms(bot) == sorted([(old, "water"), (new, "water")])

    await settled(both_attached, "both rooms attached to the community")
    command = await send(owner, new, "!about")
    await in_room(owner, new, lambda e: e.sender == bot_id and in_reply_to(e) == command)
