"""The CoP plugins on Matrix, end to end on the real Synapse: welcome and onboarding, and native polls."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from nio import JoinResponse
from sqlalchemy import func, select

from bot.tables import ActivityEvent, MemberRow, Membership
from plugins.polls.models import Poll, PollVote
from plugins.polls.plugin import Polls
from plugins.profiles.models import Profile
from plugins.profiles.plugin import Profiles
from plugins.profiles.queries import save_profile
from plugins.roles.plugin import Roles
from plugins.welcome.plugin import Welcome
from tests.e2e.matrix_support import (
    STEP,
    Bots,
    adapter_of,
    ask,
    content_of,
    eventually,
    history,
    room_with_bot,
    send,
    send_event,
    wait_for_invite,
)
from tests.harness.synapse import wait_for_event


async def test_a_joining_member_is_welcomed_and_onboarded_by_direct_message(bots: Bots, members) -> None:  # type: ignore[no-untyped-def]
    owner = await members("owner")
    newcomer = await members("newcomer")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id), plugins=(Welcome, Profiles))
    adapter = adapter_of(bot)
    room_id = await room_with_bot(owner, adapter.user_id)

    async with asyncio.timeout(STEP):
        await owner.room_invite(room_id, newcomer.user_id)
    joined_at = time.monotonic()
    assert isinstance(await newcomer.join(room_id), JoinResponse)

    _, welcome = await wait_for_event(
        owner,
        lambda e: e.sender == adapter.user_id and "Welcome to Water CoP" in content_of(e).get("body", ""),
        timeout=STEP,
    )
    body = content_of(welcome)
    assert newcomer.user_id in body["body"]
    assert body["m.mentions"] == {"user_ids": [newcomer.user_id]}
    assert f'href="https://matrix.to/#/{newcomer.user_id}"' in body["formatted_body"]  # a pill

    dm_id = await wait_for_invite(newcomer, adapter.user_id)
    assert time.monotonic() - joined_at < 2.0, "the welcome and the onboarding DM come within 2 s of joining"
    assert isinstance(await newcomer.join(dm_id), JoinResponse)
    _, question = await wait_for_event(
        newcomer,
        lambda e: e.sender == adapter.user_id and "(1/6)" in content_of(e).get("body", ""),
        timeout=STEP,
    )
    assert "1. Utility" in content_of(question)["body"]

    async def answer(text: str, expect: str) -> None:
        await send(newcomer, dm_id, text)
        await wait_for_event(
            newcomer,
            lambda e: e.sender == adapter.user_id and expect in content_of(e).get("body", ""),
            timeout=STEP,
        )

    await answer("3", "(2/6)")
    await answer("Rijkswaterstaat", "(3/6)")
    await answer("Belgium", "(4/6)")
    await answer("water quality, <b>regulation</b>", "(5/6)")
    await answer("skip", "(6/6)")
    await answer("Europe/Brussels", "Here is the profile I saved")
    async with bot.db.session() as session:
        row = (
            await session.execute(select(MemberRow).where(MemberRow.platform_id == newcomer.user_id))
        ).scalar_one()
        profile = await session.get(Profile, row.id)
    assert profile is not None and row.timezone == "Europe/Brussels"
    assert (profile.org_type, profile.org, profile.country) == ("regulator", "Rijkswaterstaat", "BE")
    assert profile.expertise == "water quality, <b>regulation</b>"  # as typed; escaped wherever shown


async def test_a_poll_is_native_votes_come_from_the_poll_ui_and_it_ends_with_the_results(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    owner = await members("owner")
    voters = [await members(name) for name in ("ana", "bo", "cy")]
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id), plugins=(Polls,))
    adapter = adapter_of(bot)
    room_id = await room_with_bot(owner, adapter.user_id, *voters)

    await send(owner, room_id, '!poll create "Next topic?" Leakage Metering Tariffs')
    _, start = await wait_for_event(voters[0], lambda e: e.source.get("type") == "m.poll.start", timeout=STEP)
    poll = content_of(start)
    assert poll["m.poll"]["question"]["m.text"][0]["body"] == "Next topic?"
    answers = [answer["m.id"] for answer in poll["m.poll"]["answers"]]
    assert [a["m.text"][0]["body"] for a in poll["m.poll"]["answers"]] == ["Leakage", "Metering", "Tariffs"]
    reference = {"rel_type": "m.reference", "event_id": start.event_id}

    def response(answer: str) -> dict[str, Any]:
        return {"m.relates_to": reference, "m.selections": [answer]}

    await send_event(voters[0], room_id, "m.poll.response", response(answers[1]))
    await send_event(voters[1], room_id, "m.poll.response", response(answers[0]))
    await send_event(
        voters[2],
        room_id,
        "org.matrix.msc3381.poll.response",
        {"m.relates_to": reference, "org.matrix.msc3381.poll.response": {"answers": [answers[1]]}},
    )
    await send_event(voters[1], room_id, "m.poll.response", response(answers[2]))  # bo changes their mind
    await send_event(voters[0], room_id, "m.poll.response", response("not-an-answer"))  # ignored

    for _ in range(200):
        async with bot.db.session() as session:
            votes = sorted(v.choices for v in (await session.execute(select(PollVote))).scalars())
        if votes == ["1", "1", "2"]:
            break
        await asyncio.sleep(0.05)
    assert votes == ["1", "1", "2"]

    results = await ask(owner, bot, room_id, "!poll results 1")
    assert results["body"].splitlines() == [
        "📊 Poll #1 (open): Next topic? — 3 voters",
        "1. Leakage  ░░░░░░░░░░ 0 (0%)",
        "2. Metering ███████░░░ 2 (67%)",
        "3. Tariffs  ███░░░░░░░ 1 (33%)",
    ]
    await send(owner, room_id, "!poll close 1")
    _, end = await wait_for_event(voters[2], lambda e: e.source.get("type") == "m.poll.end", timeout=STEP)
    ended = content_of(end)
    assert ended["m.relates_to"] == reference
    assert "Metering ███████░░░ 2 (67%)" in ended["m.text"][0]["body"]
    await send_event(voters[2], room_id, "m.poll.response", response(answers[0]))  # after the end: ignored
    await asyncio.sleep(0.5)
    async with bot.db.session() as session:
        assert sorted(v.choices for v in (await session.execute(select(PollVote))).scalars()) == [
            "1",
            "1",
            "2",
        ]


async def test_a_new_poll_is_shown_once_its_text_says_only_what_the_poll_ui_cannot(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    """The reply to poll create repeated the question and options, then the native poll showed them again
    (and its fallback a third time, with the reply's text); now the reply carries the poll's number, how
    to vote by command and that it is anonymous, and the poll alone the question and options."""
    owner = await members("owner")
    ana = await members("ana")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id), plugins=(Polls,))
    adapter = adapter_of(bot)
    room_id = await room_with_bot(owner, adapter.user_id, ana)
    await send(owner, room_id, '!poll create "Next topic?" Leakage Metering Tariffs --anonymous')
    _, start = await wait_for_event(ana, lambda e: e.source.get("type") == "m.poll.start", timeout=STEP)
    poll = content_of(start)
    assert [a["m.text"][0]["body"] for a in poll["m.poll"]["answers"]] == ["Leakage", "Metering", "Tariffs"]
    assert poll["body"] == "Next topic?\n1. Leakage\n2. Metering\n3. Tariffs"  # for clients without polls
    events = await asyncio.to_thread(history, bots.synapse, ana.access_token, room_id)
    said = [
        event["content"]
        for event in events
        if event["sender"] == adapter.user_id and event["type"] == "m.room.message"
    ]
    (reply,) = [content for content in said if "Poll #1" in content.get("body", "")]
    assert reply["body"] == (
        "📊 Poll #1. Vote with !poll vote 1 <number>. Anonymous: nobody sees who voted what — vote in a "
        "direct message to me (!poll vote 1 <number>), since what is posted in the room is public."
    )
    assert not any(word in reply.get("formatted_body", "") for word in ("Next topic?", "Leakage"))
    async with bot.db.session() as session:
        (stored,) = (await session.execute(select(Poll))).scalars()
    assert (stored.question, stored.options, stored.anonymous) == (
        "Next topic?",
        '["Leakage", "Metering", "Tariffs"]',
        True,
    )


async def test_an_anonymous_vote_typed_in_the_room_is_confirmed_only_by_direct_message(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    owner = await members("owner")
    ana = await members("ana")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id), plugins=(Polls,))
    adapter = adapter_of(bot)
    room_id = await room_with_bot(owner, adapter.user_id, ana)
    await send(owner, room_id, '!poll create "Adopt the new practice?" Yes No --anonymous')
    await wait_for_event(ana, lambda e: e.source.get("type") == "m.poll.start", timeout=STEP)

    in_room = await ask(ana, bot, room_id, "!poll vote 1 2")
    assert in_room["body"] == "Your vote in poll #1 is recorded."  # the room learns nothing more
    dm_id = await eventually(lambda: next(iter(ana.invited_rooms), None), "the direct chat's invite")
    assert isinstance(await ana.join(dm_id), JoinResponse)
    room, private = await wait_for_event(
        ana,
        lambda e: e.sender == adapter.user_id and "Your vote in poll #1" in content_of(e).get("body", ""),
        timeout=STEP,
    )
    assert room == dm_id and content_of(private)["body"] == "Your vote in poll #1: No (anonymous)"


async def test_members_who_were_there_before_copbot_are_members(bots: Bots, members) -> None:  # type: ignore[no-untyped-def]
    owner = await members("owner")
    ana = await members("ana")
    async with asyncio.timeout(STEP):
        created = await owner.room_create(invite=[ana.user_id])
    room_id = created.room_id
    assert isinstance(await ana.join(room_id), JoinResponse)  # ana was in the room long before copbot

    account = await asyncio.to_thread(bots.account, owner.user_id)
    async with asyncio.timeout(STEP):
        await owner.room_invite(room_id, account.user_id)
    bot = await bots.start(account, plugins=(Welcome, Profiles), matrix={"rooms": [room_id]})
    community = bot.registry.community_ids["water"]

    async def member_ids() -> set[str]:
        async with bot.db.session() as session:
            found = await session.execute(
                select(MemberRow.platform_id)
                .join(Membership, Membership.member_id == MemberRow.id)
                .where(Membership.community_id == community, Membership.left_at.is_(None))
            )
            return set(found.scalars())

    for _ in range(300):
        if {owner.user_id, ana.user_id} <= await member_ids():
            break
        await asyncio.sleep(0.05)
    assert await member_ids() == {owner.user_id, ana.user_id}  # from the room's member list, not the bot
    async with bot.db.session() as session:  # ana filled in her profile long ago, e.g. in a direct chat
        row = (
            await session.execute(select(MemberRow).where(MemberRow.platform_id == ana.user_id))
        ).scalar_one()
        await save_profile(session, row.id, bot.clock.now(), expertise="leak detection")
    found = await ask(owner, bot, room_id, "!experts leak")
    assert found["body"].splitlines()[0] == "Members who know about leak:"
    assert ana.user_id in found["body"]
    with pytest.raises(TimeoutError):  # nobody already there is welcomed as a newcomer
        await wait_for_event(owner, lambda e: "Welcome to" in content_of(e).get("body", ""), timeout=1.0)


async def test_a_member_who_changes_their_display_name_is_shown_by_it_without_speaking(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    """Newcomers often set their name only after joining: the coordinator's lists show it at once, and the
    name change is no second join (no welcome again) and no activity."""
    owner = await members("owner")
    bo = await members("bo")
    bot = await bots.start(
        await asyncio.to_thread(bots.account, owner.user_id), plugins=(Welcome, Profiles, Roles)
    )
    adapter = adapter_of(bot)
    room_id = await room_with_bot(owner, adapter.user_id)
    async with asyncio.timeout(STEP):
        await owner.room_invite(room_id, bo.user_id)
    assert isinstance(await bo.join(room_id), JoinResponse)
    await wait_for_event(
        owner,
        lambda e: e.sender == adapter.user_id and "Welcome to Water CoP" in content_of(e).get("body", ""),
        timeout=STEP,
    )

    async with asyncio.timeout(STEP):
        await bo.set_displayname("Bo Berg")  # a new m.room.member event, membership still "join"

    async def stored_name() -> str | None:
        async with bot.db.session() as session:
            return await session.scalar(
                select(MemberRow.display_name).where(MemberRow.platform_id == bo.user_id)
            )

    for _ in range(200):
        if await stored_name() == "Bo Berg":
            break
        await asyncio.sleep(0.05)
    assert await stored_name() == "Bo Berg"
    listed = await ask(owner, bot, room_id, "!role list peripheral")
    assert "Bo Berg" in listed["body"] and bo.user_id.removeprefix("@").split(":")[0] not in listed["body"]

    events = await asyncio.to_thread(history, bots.synapse, owner.access_token, room_id)
    welcomes = [e for e in events if "Welcome" in (e.get("content") or {}).get("body", "")]
    assert len(welcomes) == 1  # the name change is no join
    async with bot.db.session() as session:
        row = (
            await session.execute(select(MemberRow).where(MemberRow.platform_id == bo.user_id))
        ).scalar_one()
        activity = await session.scalar(
            select(func.count()).select_from(ActivityEvent).where(ActivityEvent.member_id == row.id)
        )
    assert activity == 0  # changing one's name is not taking part


async def test_a_member_named_by_their_matrix_id_is_called_by_their_display_name(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    """``!role show @bo:server`` answers about "Bo Berg", as ``!profile`` and ``!role list`` call him, not
    about the id's localpart."""
    owner = await members("owner")
    bo = await members("bo")
    async with asyncio.timeout(STEP):
        await bo.set_displayname("Bo Berg")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id), plugins=(Welcome, Roles))
    adapter = adapter_of(bot)
    room_id = await room_with_bot(owner, adapter.user_id, bo)
    await send(bo, room_id, "hello")

    shown = await ask(owner, bot, room_id, f"!role show {bo.user_id}")
    assert shown["body"].startswith("Bo Berg: peripheral"), shown["body"]
    locked = await ask(owner, bot, room_id, f"!role lock {bo.user_id}")
    assert locked["body"].startswith("Bo Berg is locked"), locked["body"]
    assert shown["m.mentions"] == {"user_ids": []}  # named, not pinged
