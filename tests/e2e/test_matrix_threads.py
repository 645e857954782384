"""Matrix paths a member hits, against the tests' Synapse with copbot's real adapter.

A message queued for a room copbot was removed from is given up at once. A member who leaves their direct
chat with copbot stays a member of the community, and gets copbot's next direct message in a new chat.

A command typed in a thread is answered in that thread: Element shows a plain reply (``m.in_reply_to``
alone) in the room's main timeline, away from the conversation it answers.
"""

from __future__ import annotations

import asyncio

from nio import JoinResponse, RoomCreateResponse, RoomLeaveResponse
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
