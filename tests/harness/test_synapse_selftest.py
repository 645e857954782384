"""Self-test of the Synapse harness: if this fails, every Matrix end-to-end test would fail confusingly.

Run with ``pytest tests/harness/test_synapse_selftest.py -p tests.harness.synapse``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from nio import AsyncClient, Event, JoinResponse, RoomCreateResponse, RoomMessageText, RoomSendResponse

from tests.harness.synapse import Synapse, member_client, wait_for_event

STEP_TIMEOUT = 15.0


def _text(body: str) -> dict[str, str]:
    """Content of a plain ``m.text`` message."""
    return {"msgtype": "m.text", "body": body}


def _is_message(body: str) -> Callable[[Event], bool]:
    """Match the text message with exactly ``body``, so earlier messages in the room never satisfy a wait."""

    def predicate(event: Event) -> bool:
        return isinstance(event, RoomMessageText) and event.body == body

    return predicate


async def _send(client: AsyncClient, room_id: str, body: str) -> None:
    """Send a text message and insist it was accepted, within a bound."""
    async with asyncio.timeout(STEP_TIMEOUT):
        response = await client.room_send(room_id, "m.room.message", _text(body))
    assert isinstance(response, RoomSendResponse), response


def test_register_returns_usable_credentials(synapse: Synapse) -> None:
    """The shared-secret API yields a user id on our server name and a token the server accepts."""
    user = synapse.register("selftest-plain-" + str(time.monotonic_ns()))
    assert user.user_id.endswith(":localhost")
    assert user.access_token and user.device_id
    whoami = synapse.request("GET", "/_matrix/client/v3/account/whoami", token=user.access_token)
    assert whoami["user_id"] == user.user_id


async def test_message_round_trip_survives_restart(synapse: Synapse) -> None:
    """A invites B, B joins, messages flow both before and after a homeserver restart, with B's client
    kept open across the restart (as a running bot's would be)."""
    alice = await member_client(synapse, "alice")
    bob = await member_client(synapse, "bob")
    try:
        async with asyncio.timeout(STEP_TIMEOUT):
            created = await alice.room_create(name="selftest", invite=[bob.user_id])
        assert isinstance(created, RoomCreateResponse), created
        room_id = created.room_id

        async with asyncio.timeout(STEP_TIMEOUT):
            joined = await bob.join(room_id)
        assert isinstance(joined, JoinResponse), joined

        await _send(alice, room_id, "before restart")
        got_room, event = await wait_for_event(bob, _is_message("before restart"), timeout=STEP_TIMEOUT)
        assert got_room == room_id
        assert event.sender == alice.user_id

        # Bob waits in a long-poll sync while the server goes away, like a bot's sync loop would.
        waiter = asyncio.create_task(
            wait_for_event(bob, _is_message("after restart"), timeout=STEP_TIMEOUT * 2)
        )
        await asyncio.sleep(0.2)
        await asyncio.to_thread(synapse.restart)
        await _send(alice, room_id, "after restart")
        got_room, event = await waiter
        assert got_room == room_id
        assert event.sender == alice.user_id
    finally:
        await alice.close()
        await bob.close()


async def test_events_from_one_sync_are_not_lost(synapse: Synapse) -> None:
    """Two messages that arrive in the same sync can be awaited one after the other, in either order."""
    alice = await member_client(synapse, "alice")
    bob = await member_client(synapse, "bob")
    try:
        async with asyncio.timeout(STEP_TIMEOUT):
            created = await alice.room_create(invite=[bob.user_id])
            assert isinstance(created, RoomCreateResponse), created
            assert isinstance(await bob.join(created.room_id), JoinResponse)
        await _send(alice, created.room_id, "one")
        await _send(alice, created.room_id, "two")
        assert (await wait_for_event(bob, _is_message("two"), timeout=STEP_TIMEOUT))[0] == created.room_id
        assert (await wait_for_event(bob, _is_message("one"), timeout=STEP_TIMEOUT))[0] == created.room_id
    finally:
        await alice.close()
        await bob.close()


async def test_rate_limits_are_loosened(synapse: Synapse) -> None:
    """A burst above Synapse's default message limit (10 at once, then one per 5 s) passes: a suite would
    otherwise hit M_LIMIT_EXCEEDED within seconds. Member clients return a 429 at once, so it would show."""
    client = await member_client(synapse, "burst")
    try:
        async with asyncio.timeout(STEP_TIMEOUT):
            room = await client.room_create()
        assert isinstance(room, RoomCreateResponse), room
        for i in range(15):
            await _send(client, room.room_id, f"burst {i}")
    finally:
        await client.close()
