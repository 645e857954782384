"""Matrix paths a member hits, against the tests' Synapse with copbot's real adapter.

A command typed in a thread is answered in that thread: Element shows a plain reply (``m.in_reply_to``
alone) in the room's main timeline, away from the conversation it answers.
"""

from __future__ import annotations

import asyncio

from tests.e2e.matrix_support import (
    Bots,
    adapter_of,
    content_of,
    in_reply_to,
    room_with_bot,
    send,
    send_event,
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
