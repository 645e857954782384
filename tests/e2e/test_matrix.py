"""copbot on Matrix, end to end: a real Synapse, copbot's MatrixAdapter, and real nio clients as members.

Every test builds its own bot account and rooms on the one session-wide Synapse, so tests never see each
other's events. Waits are bounded (``wait_for_event``'s timeout), so a broken adapter fails, never hangs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import urllib.request
from html import unescape
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from nio import (
    AsyncClient,
    JoinResponse,
    RoomCreateResponse,
    RoomPutStateResponse,
)
from sqlalchemy import select

import bot.adapters.matrix_timeline as matrix_timeline
from bot.adapters.base import EditAdapter, MessageSource
from bot.adapters.matrix import MatrixAdapter
from bot.adapters.matrix_client import MatrixClient
from bot.adapters.matrix_invites import ENCRYPTED_NOT_SUPPORTED
from bot.app import CopBot
from bot.model import (
    Attachment,
    Capability,
    Content,
    Member,
    MemberJoined,
    PollSpec,
    PollVoted,
    ReactionAdded,
    Room,
)
from bot.tables import MemberRow
from tests.e2e.matrix_support import (
    SLUG,
    STEP,
    BotAccount,
    Bots,
    adapter_of,
    ask,
    content_of,
    eventually,
    history,
    in_reply_to,
    is_membership,
    recorder_of,
    reply,
    room_with_bot,
    send,
    send_event,
    wait_for_invite,
)
from tests.harness.synapse import Synapse, wait_for_event

# --- tests ------------------------------------------------------------------------------------------------


async def test_invite_joins_attaches_and_answers_help_and_about(bots: Bots, members) -> None:  # type: ignore[no-untyped-def]
    """An invite from a listed member is accepted and the room attached to the community; commands get
    rich replies with an HTML body."""
    owner = await members("owner")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id))
    adapter = adapter_of(bot)
    room_id = await room_with_bot(owner, adapter.user_id)
    community_id = bot.registry.community_ids[SLUG]
    attached = await eventually(lambda: bot.registry.room_map.get(("matrix", room_id)), "the room attached")
    assert attached == community_id

    help_reply = await ask(owner, bot, room_id, "!help")
    assert help_reply["body"].startswith("Commands you can use")
    assert "!echo" in help_reply["body"]
    assert help_reply["format"] == "org.matrix.custom.html"
    assert "<br>" in help_reply["formatted_body"]
    about = await ask(owner, bot, room_id, "!about")
    assert about["body"].startswith("I am copbot") and "Water CoP (leak detection)" in about["body"]


async def test_invites_from_strangers_are_declined_and_encrypted_rooms_answered(bots: Bots, members) -> None:  # type: ignore[no-untyped-def]
    owner = await members("owner")
    stranger = await members("stranger")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id))
    bot_id = adapter_of(bot).user_id

    declined = await stranger.room_create(invite=[bot_id])
    assert isinstance(declined, RoomCreateResponse)
    _, leave = await wait_for_event(stranger, is_membership(bot_id, "leave"), timeout=STEP)
    assert "communities it serves" in content_of(leave).get("reason", "")
    assert ("matrix", declined.room_id) not in bot.registry.room_map

    encryption = {
        "type": "m.room.encryption",
        "state_key": "",
        "content": {"algorithm": "m.megolm.v1.aes-sha2"},
    }
    encrypted = await owner.room_create(invite=[bot_id], initial_state=[encryption])
    assert isinstance(encrypted, RoomCreateResponse)
    _, notice = await wait_for_event(
        owner, lambda e: e.sender == bot_id and "body" in content_of(e), timeout=STEP
    )
    assert content_of(notice)["body"] == ENCRYPTED_NOT_SUPPORTED
    await wait_for_event(owner, is_membership(bot_id, "leave"), timeout=STEP)


async def test_status_is_refused_to_members_and_answered_at_power_level_50(bots: Bots, members) -> None:  # type: ignore[no-untyped-def]
    owner = await members("owner")
    ana = await members("ana")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id))
    room_id = await room_with_bot(owner, adapter_of(bot).user_id, ana)

    refused = await ask(ana, bot, room_id, "!status")
    assert refused["body"] == "!status is for moderators only; nothing was changed."

    levels = await owner.room_get_state_event(room_id, "m.room.power_levels")
    content = dict(levels.content)
    content["users"] = {**content["users"], ana.user_id: 50}
    assert isinstance(
        await owner.room_put_state(room_id, "m.room.power_levels", content), RoomPutStateResponse
    )
    answered = await ask(ana, bot, room_id, "!status")
    assert answered["body"].startswith("copbot ")
    assert "Platforms: matrix (connected)" in answered["body"]


async def test_member_html_is_escaped_and_only_intended_mentions_ping(bots: Bots, members) -> None:  # type: ignore[no-untyped-def]
    owner = await members("owner")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id))
    room_id = await room_with_bot(owner, adapter_of(bot).user_id)

    echoed = await ask(owner, bot, room_id, '!echo <b>bold</b> <a href="x">link</a> @room')
    html = echoed["formatted_body"]
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>" not in html
    assert "&lt;a href=&quot;x&quot;&gt;" in html
    pill = f'<a href="https://matrix.to/#/{owner.user_id}">'
    assert html.startswith(pill)  # the intended mention is a real pill…
    assert echoed["m.mentions"] == {"user_ids": [owner.user_id]}  # …and "@room" pings nobody
    assert echoed["body"] == f'{owner.user_id} said: <b>bold</b> <a href="x">link</a> @room'

    unknown = await ask(owner, bot, room_id, "!<script>x</script>")
    assert "&lt;script&gt;" in unknown["formatted_body"] and "<script>" not in unknown["formatted_body"]


async def test_a_reply_past_matrix_s_event_size_is_split_between_lines_into_whole_html(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    """A reply whose HTML passes Matrix's 64 KiB event limit (here 26,000 characters of "&<>", which
    escaping makes 100,000) was refused by the homeserver (M_TOO_LARGE): the member got nothing. Now it
    comes as several messages, the first the reply, each within the limit, split between lines (the
    bodies joined give the whole text) and never inside an HTML tag or entity."""
    owner = await members("owner")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id))
    bot_id = adapter_of(bot).user_id
    room_id = await room_with_bot(owner, bot_id)
    lines = [f"{n:03d} " + "&<>" * 20 for n in range(400)]
    command = await send(owner, room_id, "!echo " + "\n".join(lines))
    await wait_for_event(
        owner, lambda e: e.sender == bot_id and lines[-1] in content_of(e).get("body", ""), timeout=STEP
    )
    events = await asyncio.to_thread(history, bots.synapse, owner.access_token, room_id)
    parts = [e for e in events if e["sender"] == bot_id and e["type"] == "m.room.message"]
    assert len(parts) >= 2
    assert parts[0]["content"]["m.relates_to"] == {"m.in_reply_to": {"event_id": command}}
    assert "\n".join(part["content"]["body"] for part in parts) == f"{owner.user_id} said: " + "\n".join(
        lines
    )
    for part in parts:
        content = part["content"]
        size = len(json.dumps(part, ensure_ascii=False, separators=(",", ":")).encode())
        assert size <= 65_536, size
        html = content["formatted_body"]
        text = re.sub(r"<(/?)(a|br)\b[^<>]*>", "", html)  # the pill and line breaks: all the markup there is
        assert "<" not in text and ">" not in text, "a tag cut in two"
        assert re.fullmatch(r"(?:[^&]|&(?:amp|lt|gt|quot|#x27);)*", text), "an entity cut in two"
        shown = re.sub(r'<a href="[^"]*">[^<]*</a>', owner.user_id, html).replace("<br>", "\n")
        assert unescape(shown) == content["body"]  # the same lines as the body: nothing lost or cut
    assert parts[0]["content"]["m.mentions"] == {"user_ids": [owner.user_id]}


async def test_reaction_reaches_a_plugin_listener(bots: Bots, members) -> None:  # type: ignore[no-untyped-def]
    owner = await members("owner")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id))
    room_id = await room_with_bot(owner, adapter_of(bot).user_id)
    message_id = await send(owner, room_id, "a useful story")
    relates = {"rel_type": "m.annotation", "event_id": message_id, "key": "📌"}
    await send_event(owner, room_id, "m.reaction", {"m.relates_to": relates})

    recorder = recorder_of(bot)
    found = await eventually(
        lambda: [e for e in recorder.seen if isinstance(e, ReactionAdded)],
        "the reaction to reach the listener",
    )
    assert found[0].message_id == message_id and found[0].emoji == "📌"
    assert found[0].member.id == owner.user_id and found[0].room.id == room_id


async def test_direct_message_opens_a_dm_room_and_reuses_it(bots: Bots, members, synapse: Synapse) -> None:  # type: ignore[no-untyped-def]
    owner = await members("owner")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id))
    adapter = adapter_of(bot)
    await room_with_bot(owner, adapter.user_id)
    member = Member("matrix", owner.user_id, "Owner")

    await adapter.send_direct(member, Content("Welcome! What is your organisation type?"))
    dm_id = await wait_for_invite(owner, adapter.user_id)
    assert isinstance(await owner.join(dm_id), JoinResponse)
    room, _ = await wait_for_event(
        owner,
        lambda e: e.sender == adapter.user_id and "Welcome" in content_of(e).get("body", ""),
        timeout=STEP,
    )
    assert room == dm_id
    await adapter.send_direct(member, Content("And your expertise?"))
    room, _ = await wait_for_event(
        owner, lambda e: content_of(e).get("body") == "And your expertise?", timeout=STEP
    )
    assert room == dm_id  # reused, not a second DM room
    token = adapter.client.access_token
    m_direct = await asyncio.to_thread(
        synapse.request,
        "GET",
        f"/_matrix/client/v3/user/{adapter.user_id}/account_data/m.direct",
        None,
        token,
    )
    assert m_direct == {owner.user_id: [dm_id]}  # recorded in m.direct, for restarts and other clients

    answer = await ask(owner, bot, dm_id, "!about")  # the member answers in the DM: a direct room
    assert answer["body"].startswith("I am copbot")


async def test_a_member_can_open_a_direct_chat_with_the_bot(bots: Bots, members) -> None:  # type: ignore[no-untyped-def]
    """A member the bot shares a community room with opens a DM: accepted, kept as a direct room; a
    stranger's DM invite is declined."""
    owner = await members("owner")
    ana = await members("ana")
    stranger = await members("stranger")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id))
    adapter = adapter_of(bot)
    await room_with_bot(owner, adapter.user_id, ana)
    assert await adapter.rooms.shares_room_with(ana.user_id)

    dm = await ana.room_create(is_direct=True, invite=[adapter.user_id])
    assert isinstance(dm, RoomCreateResponse), dm
    await wait_for_event(ana, is_membership(adapter.user_id, "join"), timeout=STEP)
    assert (await ask(ana, bot, dm.room_id, "!about"))["body"].startswith("I am copbot")
    assert adapter.rooms.direct_room_for(ana.user_id) == dm.room_id

    refused = await stranger.room_create(is_direct=True, invite=[adapter.user_id])
    assert isinstance(refused, RoomCreateResponse), refused
    await wait_for_event(stranger, is_membership(adapter.user_id, "leave"), timeout=STEP)


async def test_native_poll_is_sent_and_votes_come_back(bots: Bots, members) -> None:  # type: ignore[no-untyped-def]
    owner = await members("owner")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id))
    adapter = adapter_of(bot)
    room_id = await room_with_bot(owner, adapter.user_id)

    spec = PollSpec("Next meetup topic?", ("Leaks", "Meters", "Pumps"))
    poll_id = await adapter.send(Room("matrix", room_id), Content(text="", poll=spec))
    _, start = await wait_for_event(owner, lambda e: e.source.get("type") == "m.poll.start", timeout=STEP)
    assert start.event_id == poll_id
    poll = content_of(start)
    assert poll["m.poll"]["question"]["m.text"][0]["body"] == "Next meetup topic?"
    unstable = poll["org.matrix.msc3381.poll.start"]
    assert [a["org.matrix.msc1767.text"] for a in unstable["answers"]] == ["Leaks", "Meters", "Pumps"]
    assert "1. Leaks" in poll["body"]  # the text fallback
    meters = unstable["answers"][1]["id"]
    pumps = poll["m.poll"]["answers"][2]["m.id"]

    reference = {"rel_type": "m.reference", "event_id": poll_id}
    unstable_vote = {"m.relates_to": reference, "org.matrix.msc3381.poll.response": {"answers": [meters]}}
    await send_event(owner, room_id, "org.matrix.msc3381.poll.response", unstable_vote)
    await send_event(owner, room_id, "m.poll.response", {"m.relates_to": reference, "m.selections": [pumps]})

    assert json.loads(await adapter.state.get(f"poll:{poll_id}") or "null") == [
        "a0",
        "a1",
        "a2",
    ]  # for restarts
    recorder = recorder_of(bot)
    votes = await eventually(
        lambda: (v := [e for e in recorder.seen if isinstance(e, PollVoted)]) and len(v) == 2 and v,
        "two votes",
    )
    assert [(v.poll_message_id, v.answers, v.member.id) for v in votes] == [
        (poll_id, (1,), owner.user_id),
        (poll_id, (2,), owner.user_id),
    ]
    end_id = await adapter.end_poll(Room("matrix", room_id), poll_id, "Meters and Pumps: 1 vote each")
    _, end = await wait_for_event(owner, lambda e: e.source.get("type") == "m.poll.end", timeout=STEP)
    assert end.event_id == end_id
    assert content_of(end)["m.relates_to"] == {"rel_type": "m.reference", "event_id": poll_id}


async def test_first_start_ignores_history_and_existing_members(
    bots: Bots, members, synapse: Synapse
) -> None:  # type: ignore[no-untyped-def]
    """A brand-new bot in a room with history does not run old commands or welcome existing members."""
    owner = await members("owner")
    ana = await members("ana")
    account = await asyncio.to_thread(bots.account, owner.user_id)
    earlier = AsyncClient(synapse.base_url, account.user_id)  # the account, used before copbot ever ran
    try:
        assert (await earlier.login(account.password)).__class__.__name__ == "LoginResponse"
        created = await owner.room_create(invite=[account.user_id, ana.user_id])
        assert isinstance(created, RoomCreateResponse)
        room_id = created.room_id
        assert isinstance(await earlier.join(room_id), JoinResponse)
        assert isinstance(await ana.join(room_id), JoinResponse)
        old_command = await send(owner, room_id, "!about")
    finally:
        await earlier.close()

    bot = await bots.start(account)
    live = await ask(owner, bot, room_id, "!echo live")
    assert live["body"].endswith("said: live")
    late = await members("late")
    await owner.room_invite(room_id, late.user_id)
    assert isinstance(await late.join(room_id), JoinResponse)
    recorder = recorder_of(bot)
    joined = await eventually(
        lambda: [e for e in recorder.seen if isinstance(e, MemberJoined)], "the live join"
    )
    assert [e.member.id for e in joined] == [late.user_id]  # ana, already there, was not "joined"
    with pytest.raises(TimeoutError):
        await wait_for_event(owner, lambda e: in_reply_to(e) == old_command, timeout=0.5)


async def replies_to(member: AsyncClient, bot_id: str, sent: list[str]) -> list[Any]:
    """The bot's replies to the commands ``sent``, one each, in the order ``member`` sees them."""
    answers = []
    for _ in sent:
        _, event = await wait_for_event(
            member, lambda e: e.sender == bot_id and in_reply_to(e) in sent, timeout=STEP
        )
        answers.append(event)
    return answers


@pytest.mark.parametrize(
    ("catchup_limit", "catchup_budget", "pages"),
    [(4, 20_000, True), (10_000, 20_000, False), (10_000, 8, True)],
    ids=["paged back", "one sync", "budget shared among rooms"],
)
async def test_commands_sent_while_down_are_answered_once_in_order(  # type: ignore[no-untyped-def]
    bots: Bots,
    members,
    synapse: Synapse,
    monkeypatch: pytest.MonkeyPatch,
    catchup_limit: int,
    catchup_budget: int,
    pages: bool,
) -> None:
    """Stop the bot, send 15 commands, restart: all 15 answered once, in order — with a catch-up timeline
    smaller than the backlog (too small a limit, or a budget shared by the rooms), so the paging back to
    the stored token is what finds them; and with the whole backlog in the first sync (the harness's
    Synapse allows it, as README advises)."""
    monkeypatch.setattr(MatrixAdapter, "timeline_limit", 4)
    monkeypatch.setattr(MatrixAdapter, "catchup_limit", catchup_limit)
    monkeypatch.setattr(MatrixAdapter, "catchup_budget", catchup_budget)
    paged: list[str] = []
    page_back = matrix_timeline.page_back

    async def counting_page_back(
        client: MatrixClient, room_id: str, start: str, since: str | None, *, limit: int, pages: int
    ) -> list[dict[str, Any]]:
        paged.append(room_id)
        return await page_back(client, room_id, start, since, limit=limit, pages=pages)

    monkeypatch.setattr(matrix_timeline, "page_back", counting_page_back)
    owner = await members("owner")
    account = await asyncio.to_thread(bots.account, owner.user_id)
    bot = await bots.start(account)
    bot_id = adapter_of(bot).user_id
    room_id = await room_with_bot(owner, bot_id)
    assert (await ask(owner, bot, room_id, "!echo before"))["body"].endswith("said: before")
    await bots.stop(bot)

    sent = [await send(owner, room_id, f"!echo missed {n}") for n in range(1, 16)]
    bot = await bots.start(account)
    answers = await replies_to(owner, bot_id, sent)
    assert [in_reply_to(e) for e in answers] == sent
    assert [content_of(e)["body"].rsplit(" ", 1)[1] for e in answers] == [str(n) for n in range(1, 16)]
    assert paged == ([room_id] if pages else [])

    await bots.stop(bot)  # a second restart must not replay anything
    bot = await bots.start(account)
    assert (await ask(owner, bot, room_id, "!echo after"))["body"].endswith("said: after")
    with pytest.raises(TimeoutError):
        await wait_for_event(owner, lambda e: e.sender == bot_id and in_reply_to(e) in sent, timeout=0.5)

    token = adapter_of(bot).client.access_token
    devices = await asyncio.to_thread(synapse.request, "GET", "/_matrix/client/v3/devices", None, token)
    assert len(devices["devices"]) == 2  # registration's device + one for copbot, reused by every restart


class SlowCatchUp:
    """A way to the Synapse that holds back every catch-up sync (one asking for more events than a live
    sync) by ``delay`` seconds, as a homeserver gathering a large backlog from its database does."""

    def __init__(self, synapse: Synapse, delay: float) -> None:
        self.synapse = synapse
        self.delay = delay
        self.held = 0
        """Catch-up syncs held back so far."""
        self.url = ""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        self._session = aiohttp.ClientSession()

    async def __aenter__(self) -> SlowCatchUp:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()
        await self._session.close()

    async def _forward(self, request: web.Request) -> web.Response:
        if request.path.endswith("/sync"):
            asked = json.loads(request.query.get("filter", "{}")).get("room", {}).get("timeline", {})
            if asked.get("limit", 0) > MatrixAdapter.timeline_limit:
                self.held += 1
                await asyncio.sleep(self.delay)
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        async with self._session.request(
            request.method,
            self.synapse.base_url + request.path_qs,
            headers=headers,
            data=await request.read(),
        ) as answer:
            body = await answer.read()
            return web.Response(
                status=answer.status,
                body=body,
                headers={"Content-Type": answer.headers.get("Content-Type", "application/json")},
            )


async def test_a_homeserver_slow_to_gather_the_backlog_still_catches_the_bot_up(  # type: ignore[no-untyped-def]
    bots: Bots, members, synapse: Synapse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catch-up sync may take the homeserver longer than a live sync's allowance (``sync_grace_seconds``,
    here 1 s against a 1.5 s wait): it has its own (``catchup_grace_seconds``), so the sync is not cut short
    and asked again from the start forever; the commands sent while down are answered once, in order."""
    monkeypatch.setattr(MatrixAdapter, "sync_grace_seconds", 1.0)
    owner = await members("owner")
    account = await asyncio.to_thread(bots.account, owner.user_id)
    async with SlowCatchUp(synapse, delay=1.5) as slow:
        bot = await bots.start(account, homeserver=slow.url)
        bot_id = adapter_of(bot).user_id
        room_id = await room_with_bot(owner, bot_id)
        assert (await ask(owner, bot, room_id, "!echo before"))["body"].endswith("said: before")
        await bots.stop(bot)

        sent = [await send(owner, room_id, f"!echo missed {n}") for n in range(1, 4)]
        held = slow.held
        bot = await bots.start(account, homeserver=slow.url)
        answers = await replies_to(owner, bot_id, sent)
        assert [in_reply_to(e) for e in answers] == sent
        assert slow.held == held + 1  # one catch-up sync, held 1.5 s and answered, not asked again
        assert adapter_of(bot).connected
        with pytest.raises(TimeoutError):
            await wait_for_event(owner, lambda e: e.sender == bot_id and in_reply_to(e) in sent, timeout=0.5)


async def test_homeserver_restart_is_survived(bots: Bots, members, synapse: Synapse) -> None:  # type: ignore[no-untyped-def]
    owner = await members("owner")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id))
    adapter = adapter_of(bot)
    room_id = await room_with_bot(owner, adapter.user_id)
    assert adapter.connected

    states: list[bool] = []

    async def watch() -> None:
        while True:
            states.append(adapter.connected)
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    try:
        await asyncio.to_thread(synapse.restart)
        answer = await ask(owner, bot, room_id, "!about")
        assert answer["body"].startswith("I am copbot")
        await eventually(lambda: adapter.connected, "the adapter to report connected again")
    finally:
        watcher.cancel()
    assert False in states  # the outage was visible (``/healthz`` reports it), and it recovered


async def test_rate_limited_replies_wait_and_are_all_sent(  # type: ignore[no-untyped-def]
    bots: Bots, members, synapse: Synapse, caplog: pytest.LogCaptureFixture
) -> None:
    """With the bot held to one message a second, M_LIMIT_EXCEEDED is waited out and nothing is lost."""
    owner = await members("owner")
    account = await asyncio.to_thread(bots.account, owner.user_id)
    bot = await bots.start(account)
    room_id = await room_with_bot(owner, account.user_id)
    limit = {"messages_per_second": 2, "burst_count": 1}
    await asyncio.to_thread(
        synapse.request,
        "POST",
        f"/_synapse/admin/v1/users/{account.user_id}/override_ratelimit",
        limit,
        synapse.admin_token(),
    )
    caplog.set_level(logging.WARNING, logger="bot.adapters.matrix_http")
    try:
        sent = [await send(owner, room_id, f"!echo quick {n}") for n in range(3)]
        for command_id in sent:
            await reply(owner, bot, command_id)
    finally:
        await asyncio.to_thread(
            synapse.request,
            "DELETE",
            f"/_synapse/admin/v1/users/{account.user_id}/override_ratelimit",
            None,
            synapse.admin_token(),
        )
    assert any("rate limited" in record.getMessage() for record in caplog.records)


async def test_access_token_login_reuses_the_given_device(bots: Bots, members, synapse: Synapse) -> None:  # type: ignore[no-untyped-def]
    """A configured access token is used as is: no password login, so no new device."""
    owner = await members("owner")
    user = await asyncio.to_thread(synapse.register, f"copbot-token-{time.monotonic_ns()}")
    account = BotAccount(user.user_id, "", f"sqlite+aiosqlite:///{bots.tmp_path / 'token.db'}", owner.user_id)
    bot = await bots.start(account, access_token=user.access_token)
    room_id = await room_with_bot(owner, user.user_id)
    assert (await ask(owner, bot, room_id, "!about"))["body"].startswith("I am copbot")
    devices = await asyncio.to_thread(
        synapse.request, "GET", "/_matrix/client/v3/devices", None, user.access_token
    )
    assert [d["device_id"] for d in devices["devices"]] == [user.device_id]


async def test_edits_and_redactions_are_not_commands_but_replies_are(bots: Bots, members) -> None:  # type: ignore[no-untyped-def]
    owner = await members("owner")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id))
    bot_id = adapter_of(bot).user_id
    room_id = await room_with_bot(owner, bot_id)
    first = await send(owner, room_id, "!echo one")
    await reply(owner, bot, first)

    edit = await send_event(
        owner,
        room_id,
        "m.room.message",
        {
            "msgtype": "m.text",
            "body": "!echo two",  # Element writes "* !echo two"; some clients and bridges leave out the "* "
            "m.new_content": {"msgtype": "m.text", "body": "!echo two"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": first},
        },
    )
    await owner.room_redact(room_id, first, reason="typo")
    answered = await ask_in_reply(owner, bot, room_id, "!echo three", to=first)
    assert answered["body"].endswith("said: three")  # the quoted fallback is not part of the command
    with pytest.raises(TimeoutError):  # replies come in order, so an answer to the edit would be here by now
        await wait_for_event(owner, lambda e: e.sender == bot_id and in_reply_to(e) == edit, timeout=0.5)


async def test_an_edit_replaces_the_original_at_a_member_s_client(
    bots: Bots, members, synapse: Synapse
) -> None:  # type: ignore[no-untyped-def]
    """An edit is an ``m.replace`` of copbot's message: the new content in ``m.new_content``, a ``* ``
    fallback, and nobody pinged again; an edit of a message that is gone is dropped quietly."""
    owner = await members("owner")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id))
    adapter = adapter_of(bot)
    assert Capability.EDITS in adapter.capabilities and isinstance(adapter, EditAdapter)
    room_id = await room_with_bot(owner, adapter.user_id)
    room = Room("matrix", room_id)
    going = Member("matrix", owner.user_id, "Owner")
    original = await adapter.send(room, Content(f"Leakage call: {going.id} is going (1)", mentions=(going,)))
    await wait_for_event(owner, lambda e: e.event_id == original, timeout=STEP)

    await adapter.edit(room, original, Content(f"Leakage call: {going.id} is going (2)", mentions=(going,)))
    _, edit = await wait_for_event(
        owner,
        lambda e: (content_of(e).get("m.relates_to") or {}).get("rel_type") == "m.replace",
        timeout=STEP,
    )
    content = content_of(edit)
    assert edit.sender == adapter.user_id
    assert content["m.relates_to"] == {"rel_type": "m.replace", "event_id": original}
    new = content["m.new_content"]
    assert new["body"] == f"Leakage call: {going.id} is going (2)"
    assert new["formatted_body"].startswith('Leakage call: <a href="https://matrix.to/#/')
    assert new["m.mentions"] == {"user_ids": [going.id]} and "m.relates_to" not in new
    assert content["body"] == f"* Leakage call: {going.id} is going (2)"
    assert content["m.mentions"] == {}  # an edit pings nobody
    seen_by_server = await asyncio.to_thread(
        synapse.request,
        "GET",
        f"/_matrix/client/v3/rooms/{room_id}/event/{original}",
        None,
        owner.access_token,
    )
    assert seen_by_server["unsigned"]["m.relations"]["m.replace"]["event_id"] == edit.event_id

    await owner.room_redact(room_id, original, reason="outdated")
    await wait_for_event(owner, lambda e: e.source.get("type") == "m.room.redaction", timeout=STEP)
    await adapter.edit(room, original, Content("Too late"))  # gone: logged at debug, nothing sent
    await adapter.send(room, Content("marker"))
    _, after = await wait_for_event(
        owner,
        lambda e: e.sender == adapter.user_id and content_of(e).get("body") in ("marker", "* Too late"),
        timeout=STEP,
    )
    assert content_of(after)["body"] == "marker"


async def ask_in_reply(
    client: AsyncClient, bot: CopBot, room_id: str, text: str, *, to: str
) -> dict[str, Any]:
    """Send ``text`` as a rich reply to ``to``, with the quoted fallback older clients add."""
    content = {
        "msgtype": "m.text",
        "body": f"> <{client.user_id}> earlier text\n\n{text}",
        "m.relates_to": {"m.in_reply_to": {"event_id": to}},
    }
    return await reply(client, bot, await send_event(client, room_id, "m.room.message", content))


async def test_a_revoked_stored_token_means_a_new_login_on_the_same_device(  # type: ignore[no-untyped-def]
    bots: Bots, members, synapse: Synapse
) -> None:
    owner = await members("owner")
    account = await asyncio.to_thread(bots.account, owner.user_id)
    bot = await bots.start(account)
    device = adapter_of(bot).client.device_id
    token = adapter_of(bot).client.access_token
    await bots.stop(bot)
    await asyncio.to_thread(synapse.request, "POST", "/_matrix/client/v3/logout", {}, token)

    bot = await bots.start(account)
    assert adapter_of(bot).client.access_token != token
    assert adapter_of(bot).client.device_id == device
    room_id = await room_with_bot(owner, account.user_id)
    assert (await ask(owner, bot, room_id, "!about"))["body"].startswith("I am copbot")


async def test_configured_rooms_and_space_children_are_joined_whoever_invites(bots: Bots, members) -> None:  # type: ignore[no-untyped-def]
    """A room listed by alias and a child room of the community's space are the community's, even when
    the invite comes from someone not in ``accept_invites_from``."""
    owner = await members("owner")
    account = await asyncio.to_thread(bots.account, owner.user_id)
    space = await owner.room_create(name="Water space", room_type="m.space", invite=[account.user_id])
    assert isinstance(space, RoomCreateResponse), space
    alias_local = f"water-{time.monotonic_ns()}"
    listed = await owner.room_create(alias=alias_local)
    assert isinstance(listed, RoomCreateResponse), listed
    config = {"rooms": [f"#{alias_local}:localhost"], "space": space.room_id, "accept_invites_from": []}
    bot = await bots.start(account, matrix=config)
    community_id = bot.registry.community_ids[SLUG]
    assert bot.registry.room_map[("matrix", space.room_id)] == community_id  # joined on its invite at start

    await owner.room_invite(listed.room_id, account.user_id)
    await eventually(
        lambda: bot.registry.room_map.get(("matrix", listed.room_id)), "the listed room attached"
    )

    child = await owner.room_create(name="Leak detection")
    assert isinstance(child, RoomCreateResponse), child
    via = {"via": ["localhost"]}
    await owner.room_put_state(space.room_id, "m.space.child", via, state_key=child.room_id)
    await owner.room_invite(child.room_id, account.user_id)
    attached = await eventually(
        lambda: bot.registry.room_map.get(("matrix", child.room_id)), "the child room"
    )
    assert attached == community_id
    assert (await ask(owner, bot, child.room_id, "!about"))["body"].startswith("I am copbot")

    other = await owner.room_create(name="Unrelated", invite=[account.user_id])
    assert isinstance(other, RoomCreateResponse), other
    await wait_for_event(owner, is_membership(account.user_id, "leave"), timeout=STEP)
    assert ("matrix", other.room_id) not in bot.registry.room_map


async def test_a_member_s_message_is_read_back_with_its_sender_and_linked(bots: Bots, members) -> None:  # type: ignore[no-untyped-def]
    """What saving a message needs: its sender (with display name) and latest text, None once redacted."""
    owner = await members("owner")
    ana = await members("ana")
    await ana.set_displayname("Ana")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id))
    adapter = adapter_of(bot)
    assert isinstance(adapter, MessageSource)
    room_id = await room_with_bot(owner, adapter.user_id, ana)
    room = Room("matrix", room_id)
    said = await send(ana, room_id, "Log presure at night: leaks show")
    await ask(ana, bot, room_id, "!about")  # copbot has synced past Ana's join and message

    message = await adapter.fetch_message(room, said)
    assert message is not None
    assert (message.id, message.room, message.text) == (said, room, "Log presure at night: leaks show")
    assert (message.author.id, message.author.display_name, message.author.is_bot) == (
        ana.user_id,
        "Ana",
        False,
    )

    edited = {"msgtype": "m.text", "body": "Log pressure at night: leaks show"}
    relates = {"rel_type": "m.replace", "event_id": said}
    await send_event(
        ana,
        room_id,
        "m.room.message",
        {**edited, "body": "* " + edited["body"], "m.new_content": edited, "m.relates_to": relates},
    )
    message = await adapter.fetch_message(room, said)
    assert message is not None and message.text == "Log pressure at night: leaks show"  # the latest edit

    own_id = await adapter.send(room, Content("Saved to the repertoire."))
    own = await adapter.fetch_message(room, own_id)
    assert own is not None and own.author.is_bot and own.text == "Saved to the repertoire."

    via = adapter.user_id.split(":", 1)[1]
    assert adapter.permalink(room, said) == (
        f"https://matrix.to/#/{quote(room_id, safe='')}/{quote(said, safe='')}?via={via}"
    )
    assert adapter.permalink(room, said).startswith("https://matrix.to/#/%21")

    await owner.room_redact(room_id, said, reason="off topic")
    assert await adapter.fetch_message(room, said) is None
    assert await adapter.fetch_message(room, "$no-such-event") is None
    reaction = await send_event(
        ana,
        room_id,
        "m.reaction",
        {"m.relates_to": {"rel_type": "m.annotation", "event_id": own_id, "key": "📌"}},
    )
    assert await adapter.fetch_message(room, reaction) is None  # not a message


def download(synapse: Synapse, mxc: str, token: str) -> bytes:
    """The bytes behind an ``mxc://`` URL, as a member's client fetches them (authenticated media)."""
    server, media_id = mxc.removeprefix("mxc://").split("/", 1)
    request = urllib.request.Request(
        f"{synapse.base_url}/_matrix/client/v1/media/download/{server}/{media_id}"
    )
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=STEP) as response:
        return bytes(response.read())


async def test_an_attachment_arrives_as_m_file_after_the_text_and_downloads_the_same_bytes(  # type: ignore[no-untyped-def]
    bots: Bots, members, synapse: Synapse
) -> None:
    owner = await members("owner")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id))
    adapter = adapter_of(bot)
    assert Capability.FILES in adapter.capabilities
    room_id = await room_with_bot(owner, adapter.user_id)
    room = Room("matrix", room_id)
    export = Attachment("repertoire.csv", b"title,author\nNight-time pressure logging,Ana\n", "text/csv")

    for key in (None, "outbox:7"):  # from the outbox, the text and the file have transaction ids of their own
        sent_id = await adapter.send(room, Content("Your export", attachment=export, delivery_key=key))
        _, first = await wait_for_event(
            owner,
            lambda e: e.sender == adapter.user_id and content_of(e).get("msgtype") in ("m.notice", "m.file"),
            timeout=STEP,
        )
        assert (first.event_id, content_of(first)["body"]) == (sent_id, "Your export")  # the text comes first
        _, file = await wait_for_event(
            owner,
            lambda e: e.sender == adapter.user_id and content_of(e).get("msgtype") == "m.file",
            timeout=STEP,
        )
        content = content_of(file)
        assert (content["body"], content["filename"]) == ("repertoire.csv", "repertoire.csv")
        assert content["info"] == {"mimetype": "text/csv", "size": len(export.data)}
        assert content["url"].startswith("mxc://")
        assert await asyncio.to_thread(download, synapse, content["url"], owner.access_token) == export.data

    only_file = await adapter.send(room, Content("", attachment=export))  # no text: just the file
    _, alone = await wait_for_event(owner, lambda e: e.sender == adapter.user_id, timeout=STEP)
    assert alone.event_id == only_file and content_of(alone)["msgtype"] == "m.file"


async def test_a_member_s_display_name_is_kept_after_copbot_restarts(bots: Bots, members) -> None:  # type: ignore[no-untyped-def]
    """Ana set her display name before copbot restarted. A restart resumes from the stored sync position,
    whose answers carry no room state that did not change: her name is still hers, in copbot's replies and
    in what it stores (role list, experts, the digest read it), not her user id's localpart."""
    owner = await members("owner")
    ana = await members("ana")
    async with asyncio.timeout(STEP):
        await ana.set_displayname("Ana Lima")
    account = await asyncio.to_thread(bots.account, owner.user_id)
    bot = await bots.start(account)
    room_id = await room_with_bot(owner, adapter_of(bot).user_id, ana)
    first = await ask(ana, bot, room_id, "!echo before")
    assert ">Ana Lima</a> said: before" in first["formatted_body"]
    await bots.stop(bot)

    bot = await bots.start(account)
    again = await ask(ana, bot, room_id, "!echo after")
    assert ">Ana Lima</a> said: after" in again["formatted_body"]
    async with bot.db.session() as session:
        stored = await session.scalar(
            select(MemberRow.display_name).where(MemberRow.platform_id == ana.user_id)
        )
    assert stored == "Ana Lima"
