"""Matrix paths a member hits, against the tests' Synapse with copbot's real adapter.

A message queued for a room copbot was removed from (or banned from) is given up at once; one for a room
whose power levels shut copbot out is tried again later, saying what to change in Element. A member who
leaves their direct chat with copbot stays a member of the community, and gets copbot's next direct
message in a new chat.

A command typed in a thread is answered in that thread: Element shows a plain reply (``m.in_reply_to``
alone) in the room's main timeline, away from the conversation it answers.
"""

from __future__ import annotations

import asyncio

import pytest
from nio import (
    JoinResponse,
    RoomBanResponse,
    RoomCreateResponse,
    RoomLeaveResponse,
    RoomPutStateResponse,
)
from sqlalchemy import select

from bot import outbox
from bot.model import Content, Member, Room
from bot.tables import MemberRow, Membership, OutboxRow
from tests.e2e.matrix_support import (
    SLUG,
    Bots,
    adapter_of,
    content_of,
    eventually,
    in_reply_to,
    reply,
    room_with_bot,
    send,
    send_event,
    wait_for_invite,
)
from tests.harness.synapse import wait_for_event

STEP = 15.0


async def test_a_command_in_a_thread_is_answered_in_the_thread(bots: Bots, members) -> None:  # type: ignore[no-untyped-def]
    owner = await members("owner")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id))
    bot_id = adapter_of(bot).user_id
    room_id = await room_with_bot(owner, bot_id)

    root = await send(owner, room_id, "Shall we talk about leaks?")
    command = await send_event(
        owner,
        room_id,
        "m.room.message",
        {
            "msgtype": "m.text",
            "body": "!about",
            "m.relates_to": {
                "rel_type": "m.thread",
                "event_id": root,
                "is_falling_back": True,
                "m.in_reply_to": {"event_id": root},
            },
        },
    )
    _, answer = await wait_for_event(
        owner, lambda e: e.sender == bot_id and in_reply_to(e) == command, timeout=STEP
    )
    relates = content_of(answer)["m.relates_to"]
    assert relates["rel_type"] == "m.thread" and relates["event_id"] == root, relates
    assert relates["m.in_reply_to"] == {"event_id": command}
    assert relates.get("is_falling_back") is False  # a real reply to the command, not a fallback

    outside = await send(owner, room_id, "!about")  # in the main timeline: a plain reply, as before
    _, plain = await wait_for_event(
        owner, lambda e: e.sender == bot_id and in_reply_to(e) == outside, timeout=STEP
    )
    assert content_of(plain)["m.relates_to"] == {"m.in_reply_to": {"event_id": outside}}


async def test_a_message_for_a_room_copbot_was_removed_from_is_given_up_at_once(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    """Synapse's 403 to a send from a room copbot was kicked from says no retry can deliver it: the message
    is given up at once, not retried twenty times with a warning each time. Another room gets its own."""
    owner = await members("owner")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id))
    bot_id = adapter_of(bot).user_id
    kept, left = await room_with_bot(owner, bot_id), await room_with_bot(owner, bot_id)
    await owner.room_kick(left, bot_id)
    now = bot.services.clock.now()
    async with bot.services.db.session() as session:
        for key, room_id in (("left", left), ("kept", kept)):
            await outbox.put(session, key, Content(f"for {key}"), room=Room("matrix", room_id), now=now)
    await bot.pipeline.outbox.deliver()
    async with bot.services.db.session() as session:
        rows = {row.key: row for row in (await session.execute(select(OutboxRow))).scalars()}
    assert (rows["left"].attempts, rows["left"].message_id, rows["left"].sent_at is not None) == (1, "", True)
    assert "may not post" in (rows["left"].last_error or "")
    assert rows["kept"].attempts == 0 and rows["kept"].message_id.startswith("$")


async def test_a_room_whose_power_levels_shut_copbot_out_is_tried_again_saying_what_to_fix_in_element(  # type: ignore[no-untyped-def]
    bots: Bots, members, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A room admin raised "Send messages" (``events_default``) above copbot's power level: Synapse's 403
    gave the message up at once, although the admin can undo it. Now it is tried again later (shortened
    here), ``status`` says in which room and what to change in Element, and once the admin lowers the level
    again the message goes out. A room copbot was banned from is still given up at once: nothing helps."""
    monkeypatch.setattr(outbox, "PERMISSION_RETRIES", (1.0, 1.0, 1.0))
    monkeypatch.setattr(outbox, "RETRY_FIRST", 0.01)
    owner = await members("owner")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id))
    bot_id = adapter_of(bot).user_id
    kept, shut, banned = [
        await room_with_bot(owner, bot_id, name=name) for name in ("kept", "shut", "banned")
    ]
    levels = await owner.room_get_state_event(shut, "m.room.power_levels")
    raised = {**levels.content, "events_default": 50}
    assert isinstance(await owner.room_put_state(shut, "m.room.power_levels", raised), RoomPutStateResponse)
    assert isinstance(await owner.room_ban(banned, bot_id), RoomBanResponse)
    now = bot.services.clock.now()
    async with bot.services.db.session() as session:
        for key, room_id in (("shut", shut), ("banned", banned)):
            await outbox.put(session, key, Content(f"for {key}"), room=Room("matrix", room_id), now=now)
    await bot.pipeline.outbox.deliver()

    rows = await _outbox_rows(bot)
    assert (rows["banned"].attempts, rows["banned"].message_id, rows["banned"].sent_at is not None) == (
        1,
        "",
        True,
    )
    assert (rows["shut"].attempts, rows["shut"].sent_at) == (1, None)  # kept for another attempt
    why = rows["shut"].last_error or ""
    assert "power level" in why and "shut" in why and "Element" in why and "Send messages" in why, why
    status = await reply(owner, bot, await send(owner, kept, "!status"))
    cannot = [line for line in status["body"].splitlines() if line.startswith("Cannot post: ")]
    assert len(cannot) == 1 and "shut" in cannot[0] and "Element" in cannot[0], status["body"]

    restored = {**levels.content, "events_default": 0}  # the admin undoes it
    assert isinstance(await owner.room_put_state(shut, "m.room.power_levels", restored), RoomPutStateResponse)
    _, delivered = await wait_for_event(
        owner, lambda e: e.sender == bot_id and content_of(e).get("body") == "for shut", timeout=STEP
    )
    rows = await _settled_rows(bot, "shut")
    assert rows["shut"].message_id == delivered.event_id and rows["shut"].attempts in (1, 2)
    assert bot.pipeline.outbox.refused == {}


async def _outbox_rows(bot) -> dict[str, OutboxRow]:  # type: ignore[no-untyped-def]
    async with bot.services.db.session() as session:
        return {row.key: row for row in (await session.execute(select(OutboxRow))).scalars()}


async def _settled_rows(bot, key: str) -> dict[str, OutboxRow]:  # type: ignore[no-untyped-def]
    """The outbox's rows once ``key`` is marked sent (the event may reach members just before)."""
    for _ in range(250):
        rows = await _outbox_rows(bot)
        if rows[key].sent_at is not None:
            return rows
        await asyncio.sleep(0.02)
    return rows


async def test_a_member_who_closes_the_direct_chat_stays_a_member_and_gets_the_next_one_anew(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    """Ana leaves her direct chat with copbot (Element: "Leave" on the chat). She is still in the
    community's room, so still its member; and copbot's next direct message reaches her in a new chat,
    not the one she left, where nobody would read it."""
    owner = await members("owner")
    ana = await members("ana")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id))
    adapter = adapter_of(bot)
    room_id = await room_with_bot(owner, adapter.user_id, ana)
    await reply(ana, bot, await send(ana, room_id, "!echo hello"))  # ana is a member: she spoke

    dm = await ana.room_create(is_direct=True, invite=[adapter.user_id])
    assert isinstance(dm, RoomCreateResponse), dm
    await eventually(lambda: adapter.rooms.direct_room_for(ana.user_id) == dm.room_id, "the chat taken")
    await reply(ana, bot, await send(ana, dm.room_id, "!echo in private"))
    assert isinstance(await ana.room_leave(dm.room_id), RoomLeaveResponse)
    await eventually(lambda: adapter.rooms.direct_room_for(ana.user_id) is None, "copbot to leave it too")

    community_id = bot.registry.community_ids[SLUG]
    async with bot.services.db.session() as session:
        ana_id = (
            await session.execute(select(MemberRow.id).where(MemberRow.platform_id == ana.user_id))
        ).scalar_one()
        membership = await session.get(Membership, (community_id, ana_id))
    assert membership is not None and membership.left_at is None, "leaving a direct chat is no leaving"

    await adapter.send_direct(Member("matrix", ana.user_id, "ana"), Content("Your reminder"))
    new_dm = await wait_for_invite(ana, adapter.user_id)
    assert new_dm != dm.room_id
    assert isinstance(await ana.join(new_dm), JoinResponse)
    room, _ = await wait_for_event(ana, lambda e: content_of(e).get("body") == "Your reminder", timeout=STEP)
    assert room == new_dm
