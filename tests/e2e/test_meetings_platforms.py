"""Meetings through the real platform paths: Discord (discord.py against the tests' Discord server) and
Matrix (matrix-nio against a real Synapse).

Each test asserts what members see — the requests copbot makes, the events members' clients receive — and
what is stored: meetings.platform_event_id, announcement_id, and the answers in meetings_rsvps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from nio import AsyncClient, Event, JoinResponse, RoomRedactResponse
from sqlalchemy import select

from bot.app import CopBot
from bot.clock import FakeClock
from bot.tables import MemberRow, Membership, StateRow
from plugins.meetings.models import Meeting, Rsvp, occurrence_key
from plugins.meetings.plugin import Meetings
from tests.e2e.matrix_support import STEP as MATRIX_STEP
from tests.e2e.matrix_support import (
    BotAccount,
    Bots,
    adapter_of,
    content_of,
    in_reply_to,
    room_with_bot,
    send,
    send_event,
    wait_for_invite,
)
from tests.e2e.test_discord import EPHEMERAL, BotFactory
from tests.harness.discord_server import FakeDiscord, Request
from tests.harness.synapse import wait_for_event

STEP = 10.0


# --- helpers ----------------------------------------------------------------------------------------------


async def settled(check: Callable[[], Awaitable[Any]], what: str, timeout: float = STEP) -> Any:  # noqa: ASYNC109
    """Poll ``check`` (a coroutine function) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {value!r}")
        await asyncio.sleep(0.05)


async def meeting_row(bot: CopBot, meeting_id: int = 1) -> Meeting:
    async with bot.db.session() as session:
        meeting = await session.get(Meeting, meeting_id)
    assert meeting is not None
    return meeting


async def meeting_once(bot: CopBot, test: Callable[[Meeting], object], what: str) -> Meeting:
    """Meeting #1 once ``test`` holds for it (what copbot stores after a platform call settles)."""

    async def check() -> Meeting | None:
        meeting = await meeting_row(bot)
        return meeting if test(meeting) else None

    return await settled(check, what)


async def answers(bot: CopBot, meeting_id: int = 1) -> list[tuple[str, str, str]]:
    """The stored answers as (platform id of the member, occurrence, answer), sorted."""
    async with bot.db.session() as session:
        rows = await session.execute(
            select(MemberRow.platform_id, Rsvp.occurrence, Rsvp.answer)
            .join(MemberRow, MemberRow.id == Rsvp.member_id)
            .where(Rsvp.meeting_id == meeting_id)
        )
        return sorted(tuple(row) for row in rows.all())  # type: ignore[misc]


async def answers_become(bot: CopBot, expected: list[tuple[str, str, str]], what: str) -> None:
    async def check() -> bool:
        return await answers(bot) == expected

    await settled(check, what)


def future_start(days: int = 3, hour: int = 15, now: datetime | None = None) -> datetime:
    """A whole hour some days ahead of ``now`` (the real time unless given), in UTC."""
    day = ((now or datetime.now(UTC)) + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def typed(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M}"


# --- Discord ------------------------------------------------------------------------------------------------


def stamp(moment: datetime) -> str:
    unix = int(moment.timestamp())
    return f"<t:{unix}:F> (<t:{unix}:R>)"


def custom_ids(payload: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in payload.get("components") or [] for c in row["components"]]


def card_fields(payload: dict[str, Any]) -> dict[str, str]:
    [embed] = payload["embeds"]
    return {field["name"]: field["value"] for field in embed["fields"]}


async def schedule_on_discord(
    discord_server: FakeDiscord, start: datetime, **options: Any
) -> tuple[Request, Request]:
    """alice (the guild's owner) plans a meeting with /meeting schedule: (the response, the event's POST)."""
    record = await discord_server.interaction_slash(
        "meeting",
        {"title": "Leakage call", "start": typed(start), **options},
        user="alice",
        subcommand="schedule",
    )
    response = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    created = await discord_server.wait_for_request(
        "POST", rf"/guilds/{discord_server.guild_id}/scheduled-events$"
    )
    return response, created


async def test_discord_schedule_creates_a_scheduled_event_and_an_announcement_with_buttons(
    discord_server: FakeDiscord,
    discord_bot: BotFactory,
) -> None:
    bot = await discord_bot(plugins=(Meetings,))
    start = future_start()
    response, created = await schedule_on_discord(
        discord_server, start, duration="90m", where="https://meet.example"
    )

    assert response.json["type"] == 4
    data = response.json["data"]
    assert not (data.get("flags") or 0) & EPHEMERAL  # the announcement is for everyone
    assert data["content"].startswith(f"Meeting #1 planned for {start:%a %-d %b} 15:00 UTC, once.")
    assert custom_ids(data) == ["meetings:1:yes", "meetings:1:maybe", "meetings:1:no"]
    fields = card_fields(data)
    assert fields["When"] == stamp(start)  # each reader sees it in their own zone
    assert fields["Where"] == "https://meet.example"
    assert fields["Answers"] == "✅ 0 · ❔ 0 · ❌ 0"

    event = created.json
    assert event["name"] == "Leakage call"
    assert datetime.fromisoformat(event["scheduled_start_time"]) == start
    assert datetime.fromisoformat(event["scheduled_end_time"]) == start + timedelta(minutes=90)
    assert event["entity_metadata"] == {"location": "https://meet.example"}
    assert event["entity_type"] == 3  # external: a place or a link
    assert event["description"] == "Meeting #1: answer with /meeting rsvp 1, or mark Interested."
    [event_id] = discord_server.guilds[discord_server.guild_id].scheduled_events

    announcement = discord_server.bot_messages("general")[-1]
    meeting = await meeting_once(bot, lambda m: m.platform_event_id, "the event's id stored on the meeting")
    assert meeting.platform_event_id == event_id
    assert meeting.platform_event_for == occurrence_key(start)
    assert meeting.announcement_id == announcement["id"]
    assert (meeting.starts_at, meeting.duration_minutes, meeting.place) == (start, 90, "https://meet.example")


async def click(discord_server: FakeDiscord, message_id: str, user: str, answer: str) -> dict[str, Any]:
    """``user`` clicks an RSVP button on the announcement; the data of copbot's answer to the click."""
    record = await discord_server.interaction_component(f"meetings:1:{answer}", message_id, user)
    call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert call.json["type"] == 4
    return call.json["data"]


async def edited_to(discord_server: FakeDiscord, message_id: str, counts: str, *, start: int = 0) -> Request:
    """Wait for the announcement's PATCH that shows ``counts``."""
    return await discord_server.wait_for_request(
        "PATCH",
        rf"/channels/{discord_server.channel_id('general')}/messages/{message_id}$",
        predicate=lambda r: card_fields(r.json).get("Answers") == counts,
        start=start,
    )


async def test_an_edit_of_the_card_read_before_a_move_never_lands_after_it(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    """A click's edit of the announcement is still on its way (held here) when the meeting is moved: the
    move's edit must not overtake it with the card left showing the old time — the edit under way reads
    the meeting again and sends the moved card last."""
    bot = await discord_bot(plugins=(Meetings,))
    start = future_start()
    await schedule_on_discord(discord_server, start, where="Delft")
    announcement = discord_server.bot_messages("general")[-1]["id"]
    await meeting_once(bot, lambda m: m.platform_event_id, "the mirrored event")
    await click(discord_server, announcement, "bob", "yes")
    await edited_to(discord_server, announcement, "✅ 1 · ❔ 0 · ❌ 0")

    adapter = bot.services.adapters["discord"]
    real_edit, held, release = adapter.edit, asyncio.Event(), asyncio.Event()

    async def slow_first_edit(room: Any, message_id: str, content: Any) -> None:
        if not held.is_set():
            held.set()
            await release.wait()  # the click's edit, read before the move, still on its way
        await real_edit(room, message_id, content)

    adapter.edit = slow_first_edit
    await click(discord_server, announcement, "carol", "no")
    await asyncio.wait_for(held.wait(), 5)
    moved = start + timedelta(days=1, hours=1)
    record = await discord_server.interaction_slash(
        "meeting", {"meeting_id": 1, "start": typed(moved)}, user="alice", subcommand="move"
    )
    await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    await meeting_once(bot, lambda m: m.starts_at == moved, "the move stored")
    release.set()

    card = rf"/channels/{discord_server.channel_id('general')}/messages/{announcement}$"
    await discord_server.wait_for_request(
        "PATCH", card, predicate=lambda r: card_fields(r.json).get("When") == stamp(moved)
    )
    await asyncio.sleep(0.3)  # anything still on its way
    last = card_fields(discord_server.find("PATCH", card)[-1].json)
    assert (last["When"], last["Answers"]) == (stamp(moved), "✅ 1 · ❔ 0 · ❌ 1")


async def _bob_schedules_while_the_event_creation_is_held(
    discord_server: FakeDiscord, bot: CopBot, release: asyncio.Event
) -> datetime:
    """bob plans a meeting; its platform event's creation is held on its way until ``release``."""
    adapter = bot.services.adapters["discord"]
    real_create, held = adapter.create_event, asyncio.Event()  # type: ignore[attr-defined]

    async def slow_first_create(room: Any, **details: Any) -> str:
        if not held.is_set():
            held.set()
            await release.wait()
        return await real_create(room, **details)  # type: ignore[no-any-return]

    adapter.create_event = slow_first_create  # type: ignore[attr-defined]
    start = future_start()
    record = await discord_server.interaction_slash(
        "meeting", {"title": "Leakage call", "start": typed(start)}, user="bob", subcommand="schedule"
    )
    await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    await asyncio.wait_for(held.wait(), 5)
    return start


async def _slash_meeting(discord_server: FakeDiscord, subcommand: str, **options: Any) -> None:
    record = await discord_server.interaction_slash(
        "meeting", {"meeting_id": 1, **options}, user="alice", subcommand=subcommand
    )
    await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")


async def test_a_meeting_moved_while_its_event_is_being_created_gets_one_event_at_the_moved_time(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    """The platform event of bob's new meeting is still being created (held here) when alice, a moderator,
    moves the meeting: the move must not create a second event — the creation under way reads the meeting
    again and moves the one event it made."""
    bot = await discord_bot(plugins=(Meetings,))
    release = asyncio.Event()
    start = await _bob_schedules_while_the_event_creation_is_held(discord_server, bot, release)
    moved = start + timedelta(days=1, hours=1)
    await _slash_meeting(discord_server, "move", start=typed(moved))
    await meeting_once(bot, lambda m: m.starts_at == moved, "the move stored")
    release.set()

    events = rf"/guilds/{discord_server.guild_id}/scheduled-events"
    stored = await meeting_once(bot, lambda m: m.platform_event_id, "the mirrored event")
    await discord_server.wait_for_request(
        "PATCH",
        rf"{events}/{stored.platform_event_id}$",
        predicate=lambda r: datetime.fromisoformat(r.json["scheduled_start_time"]) == moved,
    )
    await asyncio.sleep(0.3)  # anything still on its way
    assert len(discord_server.find("POST", rf"{events}$")) == 1, "one meeting, one event"
    [(event_id, event)] = discord_server.guilds[discord_server.guild_id].scheduled_events.items()
    assert event_id == (await meeting_row(bot)).platform_event_id
    assert datetime.fromisoformat(event["scheduled_start_time"]) == moved


async def test_a_meeting_cancelled_while_its_event_is_being_created_leaves_no_event(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    """bob's new meeting is cancelled by alice, a moderator, while its event is still being created (held
    here): the event, once made, is taken away — not left in the guild's events for a meeting that will not
    happen."""
    bot = await discord_bot(plugins=(Meetings,))
    release = asyncio.Event()
    await _bob_schedules_while_the_event_creation_is_held(discord_server, bot, release)
    await _slash_meeting(discord_server, "cancel")
    await meeting_once(bot, lambda m: m.cancelled_at is not None, "the cancel stored")
    release.set()

    events = rf"/guilds/{discord_server.guild_id}/scheduled-events"
    created = await discord_server.wait_for_request("POST", rf"{events}$")
    await discord_server.wait_for_request("DELETE", rf"{events}/{created.response['id']}$")
    await asyncio.sleep(0.3)  # anything still on its way
    assert discord_server.guilds[discord_server.guild_id].scheduled_events == {}
    assert (await meeting_row(bot)).platform_event_id == ""


async def test_discord_move_updates_the_event_and_tells_who_comes_and_cancel_deletes_it(
    discord_server: FakeDiscord,
    discord_bot: BotFactory,
) -> None:
    bot = await discord_bot(plugins=(Meetings,))
    start = future_start()
    await schedule_on_discord(discord_server, start, where="Delft")
    announcement = discord_server.bot_messages("general")[-1]["id"]
    event_id = (
        await meeting_once(bot, lambda m: m.platform_event_id, "the mirrored event")
    ).platform_event_id
    await click(discord_server, announcement, "bob", "yes")
    await click(discord_server, announcement, "carol", "no")
    await edited_to(discord_server, announcement, "✅ 1 · ❔ 0 · ❌ 1")

    moved = start + timedelta(days=1, hours=1)
    mark = len(discord_server.requests)
    record = await discord_server.interaction_slash(
        "meeting", {"meeting_id": 1, "start": typed(moved)}, user="alice", subcommand="move"
    )
    response = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert response.json["data"]["content"] == f"Meeting #1 moved to {moved:%a %-d %b} 16:00 UTC."
    patch = await discord_server.wait_for_request(
        "PATCH", rf"/guilds/{discord_server.guild_id}/scheduled-events/{event_id}$", start=mark
    )
    assert datetime.fromisoformat(patch.json["scheduled_start_time"]) == moved
    assert datetime.fromisoformat(patch.json["scheduled_end_time"]) == moved + timedelta(hours=1)
    assert patch.json["name"] == "Leakage call" and patch.json["entity_metadata"] == {"location": "Delft"}
    stored_event = discord_server.guilds[discord_server.guild_id].scheduled_events[event_id]
    assert datetime.fromisoformat(stored_event["scheduled_start_time"]) == moved

    bob_dm = discord_server.dm_channel("bob")
    told = await discord_server.wait_for_request("POST", rf"/channels/{bob_dm}/messages$", start=mark)
    # a Discord timestamp: bob set no zone, and his client shows it in his own
    assert told.json["content"] == f"Leakage call moved from {stamp(start)} to {stamp(moved)}."
    opened = [str(r.json["recipient_id"]) for r in discord_server.find("POST", r"/users/@me/channels$")]
    assert discord_server.user_id("carol") not in opened  # she said no: not told
    assert discord_server.user_id("alice") not in opened  # she moved it herself

    card = rf"/channels/{discord_server.channel_id('general')}/messages/{announcement}$"
    edit = await discord_server.wait_for_request(  # an edit for the clicks may still be on its way first
        "PATCH", card, start=mark, predicate=lambda r: card_fields(r.json).get("When") == stamp(moved)
    )
    assert card_fields(edit.json)["Answers"] == "✅ 1 · ❔ 0 · ❌ 1"  # the answers moved with the meeting
    meeting = await meeting_once(
        bot, lambda m: m.platform_event_for == occurrence_key(moved), "the mirror moved"
    )
    assert (meeting.starts_at, meeting.platform_event_id) == (moved, event_id)
    # and no edit read before the move arrives after it: the card keeps the new time
    assert card_fields(discord_server.find("PATCH", card)[-1].json)["When"] == stamp(moved)
    bob, carol = discord_server.user_id("bob"), discord_server.user_id("carol")
    assert await answers(bot) == sorted(
        [(bob, occurrence_key(moved), "yes"), (carol, occurrence_key(moved), "no")]
    )

    mark = len(discord_server.requests)
    record = await discord_server.interaction_slash(
        "meeting", {"meeting_id": 1}, user="alice", subcommand="cancel"
    )
    response = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert response.json["data"]["content"] == "Meeting #1 (Leakage call) is cancelled."
    deleted = await discord_server.wait_for_request(
        "DELETE", rf"/guilds/{discord_server.guild_id}/scheduled-events/{event_id}$", start=mark
    )
    assert deleted.status == 204
    assert event_id not in discord_server.guilds[discord_server.guild_id].scheduled_events
    told = await discord_server.wait_for_request("POST", rf"/channels/{bob_dm}/messages$", start=mark)
    assert told.json["content"] == f"Leakage call on {stamp(moved)} is cancelled."
    meeting = await meeting_once(bot, lambda m: not m.platform_event_id, "the event's id cleared")
    assert meeting.cancelled_at is not None
    assert await bot.services.scheduler.job_ids() == []
    last = await discord_server.wait_for_request(
        "PATCH", rf"/channels/{discord_server.channel_id('general')}/messages/{announcement}$", start=mark
    )
    [embed] = last.json["embeds"]
    assert embed["title"] == "📅 Meeting #1: Leakage call (cancelled)"
    assert embed["footer"]["text"] == "This meeting is cancelled."
    assert last.json["components"] == []  # no buttons left to answer a cancelled meeting with


async def test_discord_rsvp_buttons_are_counted_also_after_a_restart_and_the_announcement_is_edited(
    discord_server: FakeDiscord,
    discord_bot: BotFactory,
) -> None:
    bot = await discord_bot(plugins=(Meetings,))
    start = future_start()
    await schedule_on_discord(discord_server, start)
    announcement = discord_server.bot_messages("general")[-1]["id"]
    key = occurrence_key(start)
    bob, carol = discord_server.user_id("bob"), discord_server.user_id("carol")

    answered = await click(discord_server, announcement, "bob", "yes")
    assert (answered["content"], answered["flags"]) == (
        f"You are coming to Leakage call {stamp(start)}.",
        EPHEMERAL,
    )
    edit = await edited_to(discord_server, announcement, "✅ 1 · ❔ 0 · ❌ 0")
    assert custom_ids(edit.json) == ["meetings:1:yes", "meetings:1:maybe", "meetings:1:no"]  # still there
    assert edit.json["allowed_mentions"]["parse"] == []  # an edit pings nobody
    assert await answers(bot) == [(bob, key, "yes")]
    answered = await click(discord_server, announcement, "bob", "maybe")
    assert answered["content"] == f"You might come to Leakage call {stamp(start)}."
    await edited_to(discord_server, announcement, "✅ 0 · ❔ 1 · ❌ 0")
    assert await answers(bot) == [(bob, key, "maybe")]
    await bot.stop()

    again = await discord_bot(plugins=(Meetings,))  # a new process, on the same database
    mark = len(discord_server.requests)
    answered = await click(discord_server, announcement, "carol", "yes")  # a button posted before the restart
    assert (answered["content"], answered["flags"]) == (
        f"You are coming to Leakage call {stamp(start)}.",
        EPHEMERAL,
    )
    await edited_to(discord_server, announcement, "✅ 1 · ❔ 1 · ❌ 0", start=mark)
    assert await answers(again) == sorted([(bob, key, "maybe"), (carol, key, "yes")])
    shown = discord_server.messages[announcement]  # what everyone sees in the channel now
    assert {f["name"]: f["value"] for f in shown["embeds"][0]["fields"]}["Answers"] == "✅ 1 · ❔ 1 · ❌ 0"
    assert custom_ids(shown) == ["meetings:1:yes", "meetings:1:maybe", "meetings:1:no"]
    general = discord_server.channel_id("general")
    assert discord_server.find("POST", rf"/channels/{general}/messages$") == []  # edited, never posted again


async def test_discord_a_member_who_leaves_the_server_is_no_longer_counted_on_the_announcement(
    discord_server: FakeDiscord,
    discord_bot: BotFactory,
) -> None:
    """bob and carol said yes; bob leaves the server: the announcement is edited to one coming, and only
    carol's answer is kept (before, bob was still counted and reminded after he had left)."""
    bot = await discord_bot(plugins=(Meetings,))
    start = future_start()
    await schedule_on_discord(discord_server, start)
    announcement = discord_server.bot_messages("general")[-1]["id"]
    key = occurrence_key(start)
    await click(discord_server, announcement, "bob", "yes")
    await click(discord_server, announcement, "carol", "yes")
    await edited_to(discord_server, announcement, "✅ 2 · ❔ 0 · ❌ 0")

    mark = len(discord_server.requests)
    await discord_server.member_remove(None, "bob")
    await edited_to(discord_server, announcement, "✅ 1 · ❔ 0 · ❌ 0", start=mark)
    assert await answers(bot) == [(discord_server.user_id("carol"), key, "yes")]


async def test_discord_meeting_list_does_not_label_times_every_reader_sees_in_their_own_zone(
    discord_server: FakeDiscord,
    discord_bot: BotFactory,
) -> None:
    """On Discord the list's times are timestamps each reader's client shows in their own zone. Before,
    the list was headed "(times in UTC)" (the caller's zone), which a reader in Tokyo, seeing JST times,
    was told were UTC; now the header names no zone."""
    await discord_bot(plugins=(Meetings,))
    start = future_start()
    await schedule_on_discord(discord_server, start, every="weekly", count=2)
    record = await discord_server.interaction_slash("meeting", {}, user="bob", subcommand="list")
    listed = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    following = start + timedelta(days=7)
    assert listed.json["data"]["content"] == (
        "Meetings in the next 30 days:\n"
        f"#1 {stamp(start)} Leakage call · ✅ 0 · ❔ 0 · ❌ 0\n"
        f"#1 {stamp(following)} Leakage call · ✅ 0 · ❔ 0 · ❌ 0"
    )


async def test_discord_a_title_written_as_markdown_neither_hides_a_link_nor_swallows_the_reminders_pings(
    discord_server: FakeDiscord,
    discord_bot: BotFactory,
) -> None:
    """A member's meeting title is shown as text in copbot's own messages: its masked link stays a visible
    address (not a live "Verify here" hiding it) and its unclosed code fence cannot turn the reminder's
    mentions into code, so whoever said yes is pinged (audit of 4 December, Discord item 6)."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    bot = await discord_bot(plugins=(Meetings,), clock=clock)
    start = future_start(now=clock.now())
    title = "[Verify here](https://phish.example) ``` sync"
    record = await discord_server.interaction_slash(
        "meeting", {"title": title, "start": typed(start)}, user="alice", subcommand="schedule"
    )
    await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    announcement = discord_server.bot_messages("general")[-1]["id"]
    answered = await click(discord_server, announcement, "bob", "yes")
    shown = "\\[Verify here](https://phish.example) \\`\\`\\` sync"
    assert answered["content"] == f"You are coming to {shown} {stamp(start)}."
    assert (await meeting_row(bot)).title == title  # stored as typed: only Discord's text is escaped

    general = discord_server.channel_id("general")
    mark = len(discord_server.requests)
    clock.set(start - timedelta(hours=24))
    assert await bot.services.scheduler.run_due() == 1
    reminder = await discord_server.wait_for_request("POST", rf"/channels/{general}/messages$", start=mark)
    bob = discord_server.user_id("bob")
    assert reminder.json["content"] == f"⏰ {shown} starts in 24 hours: {stamp(start)}. <@{bob}>"
    assert [str(user) for user in reminder.json["allowed_mentions"]["users"]] == [bob]


async def test_discord_interested_in_the_scheduled_event_is_a_maybe_until_unmarked(
    discord_server: FakeDiscord,
    discord_bot: BotFactory,
) -> None:
    bot = await discord_bot(plugins=(Meetings,))
    start = future_start()
    await schedule_on_discord(discord_server, start)
    announcement = discord_server.bot_messages("general")[-1]["id"]
    meeting = await meeting_once(bot, lambda m: m.platform_event_id, "the mirrored event")
    event_id, key = meeting.platform_event_id, meeting.platform_event_for
    assert key == occurrence_key(start)
    bob, carol = discord_server.user_id("bob"), discord_server.user_id("carol")

    await discord_server.scheduled_event_user_add(event_id, "bob")
    await edited_to(discord_server, announcement, "✅ 0 · ❔ 1 · ❌ 0")
    assert await answers(bot) == [(bob, key, "maybe")]

    await click(discord_server, announcement, "carol", "yes")
    await discord_server.scheduled_event_user_add(event_id, "carol")  # she already said yes: it stays yes
    mark = len(discord_server.requests)
    await discord_server.scheduled_event_user_remove(event_id, "bob")
    await edited_to(discord_server, announcement, "✅ 1 · ❔ 0 · ❌ 0", start=mark)
    assert await answers(bot) == [(carol, key, "yes")]
    await discord_server.scheduled_event_user_remove(event_id, "carol")  # un-marking never takes back a yes
    await asyncio.sleep(0.3)
    assert await answers(bot) == [(carol, key, "yes")]


async def test_discord_interested_after_a_series_meeting_is_over_is_a_maybe_for_the_next_one(
    discord_server: FakeDiscord,
    discord_bot: BotFactory,
) -> None:
    """A weekly call's event still shows the call that took place yesterday (it rolls on with the next
    reminder): bob marking it Interested now means the next call. Before, his maybe was stored for the
    call that was over and the next one did not count him; now it is the next call's, the announcement
    counts him, and the event moves on to that call."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    bot = await discord_bot(plugins=(Meetings,), clock=clock)
    start = future_start(now=clock.now())
    await schedule_on_discord(discord_server, start, every="weekly")
    announcement = discord_server.bot_messages("general")[-1]["id"]
    meeting = await meeting_once(bot, lambda m: m.platform_event_id, "the mirrored event")
    event_id = meeting.platform_event_id
    assert meeting.platform_event_for == occurrence_key(start)

    clock.set(start + timedelta(days=1))  # the first call is over; the next is in six days
    following = start + timedelta(days=7)
    mark = len(discord_server.requests)
    await discord_server.scheduled_event_user_add(event_id, "bob")
    await edited_to(discord_server, announcement, "✅ 0 · ❔ 1 · ❌ 0", start=mark)
    assert await answers(bot) == [(discord_server.user_id("bob"), occurrence_key(following), "maybe")]
    patch = await discord_server.wait_for_request(
        "PATCH", rf"/guilds/{discord_server.guild_id}/scheduled-events/{event_id}$", start=mark
    )
    assert datetime.fromisoformat(patch.json["scheduled_start_time"]) == following
    await meeting_once(bot, lambda m: m.platform_event_for == occurrence_key(following), "the event rolled")


async def test_discord_a_reaction_taken_back_withdraws_its_answer_and_given_again_answers_again(
    discord_server: FakeDiscord,
    discord_bot: BotFactory,
) -> None:
    """bob reacts ✅ to the announcement, changes his mind with ❌, takes both back and reacts ✅ again.
    Taking back ❌ withdrew nothing (he stayed a no, and would be left out of reminders as one); and
    Discord's reaction events carry no id of their own, so the second ✅ was taken for a delivery of the
    first, already handled: bob stayed a no while his ✅ showed under the card."""
    bot = await discord_bot(plugins=(Meetings,))
    start = future_start()
    await schedule_on_discord(discord_server, start)
    announcement = discord_server.bot_messages("general")[-1]["id"]
    key = occurrence_key(start)
    bob = discord_server.user_id("bob")

    await discord_server.reaction_add(announcement, "bob", "✅")
    await answers_become(bot, [(bob, key, "yes")], "bob's ✅")
    await discord_server.reaction_add(announcement, "bob", "❌")
    await answers_become(bot, [(bob, key, "no")], "bob's ❌")
    await discord_server.reaction_remove(announcement, "bob", "✅")  # not his answer any more: nothing
    await discord_server.reaction_remove(announcement, "bob", "❌")
    await answers_become(bot, [], "bob's ❌ taken back: his answer withdrawn")
    await discord_server.reaction_add(announcement, "bob", "✅")
    await answers_become(bot, [(bob, key, "yes")], "bob's ✅ given again")


# --- Matrix -------------------------------------------------------------------------------------------------


def reaction(event_id: str, key: str) -> dict[str, Any]:
    return {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}


def replaces(event_id: str, counts: str) -> Callable[[Event], bool]:
    """An ``m.replace`` edit of ``event_id`` whose new content shows ``counts``."""

    def match(event: Event) -> bool:
        content = content_of(event)
        relates = content.get("m.relates_to") or {}
        new = content.get("m.new_content") or {}
        return (
            relates.get("rel_type") == "m.replace"
            and relates.get("event_id") == event_id
            and f"Answers: {counts}" in new.get("body", "")
        )

    return match


@dataclass
class MatrixMeeting:
    bot: CopBot
    clock: FakeClock
    room_id: str
    announcement: Event
    start: datetime
    account: BotAccount


async def plan_on_matrix(bots: Bots, owner: AsyncClient, *others: AsyncClient) -> MatrixMeeting:
    """The owner plans a meeting three days ahead of the bot's (fake) clock in a room with ``others``."""
    clock = FakeClock(datetime.now(UTC).replace(second=0, microsecond=0))
    account = await asyncio.to_thread(bots.account, owner.user_id)
    bot = await bots.start(account, plugins=(Meetings,), clock=clock)
    bot_id = adapter_of(bot).user_id
    room_id = await room_with_bot(owner, bot_id, *others)
    start = future_start(now=clock.now())
    command = await send(
        owner, room_id, f'!meeting schedule "Leakage call" {typed(start)} --where https://meet.example'
    )
    _, posted = await wait_for_event(
        owner, lambda e: e.sender == bot_id and in_reply_to(e) == command, timeout=MATRIX_STEP
    )
    body = content_of(posted)["body"]
    assert body.startswith(f"Meeting #1 planned for {start:%a %-d %b} 15:00 UTC, once.")
    assert "Answers: ✅ 0 · ❔ 0 · ❌ 0" in body
    assert "react ✅ ❌ ❔ to this message" in body
    meeting = await meeting_row(bot)
    assert meeting.announcement_id == posted.event_id
    assert meeting.platform_event_id == ""  # Matrix has no event of its own to mirror the meeting as
    return MatrixMeeting(bot, clock, room_id, posted, start, account)


async def test_matrix_a_reaction_is_an_answer_and_the_announcement_is_edited_in_place(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    owner, ana, bo = await members("owner"), await members("ana"), await members("bo")
    planned = await plan_on_matrix(bots, owner, ana, bo)
    bot, room_id, announcement = planned.bot, planned.room_id, planned.announcement.event_id
    bot_id = adapter_of(bot).user_id
    key = occurrence_key(planned.start)

    await send_event(ana, room_id, "m.reaction", reaction(announcement, "✅"))
    await answers_become(bot, [(ana.user_id, key, "yes")], "ana's yes stored")
    _, edit = await wait_for_event(owner, replaces(announcement, "✅ 1 · ❔ 0 · ❌ 0"), timeout=MATRIX_STEP)
    edited = content_of(edit)
    assert edit.sender == bot_id
    assert edited["m.new_content"]["body"].startswith("Meeting #1 planned for ")  # headline kept on edits
    assert "📅 Meeting #1: Leakage call" in edited["m.new_content"]["body"]
    assert edited["m.mentions"] == {}  # an updated count pings nobody
    assert edited["m.new_content"]["m.mentions"] == {"user_ids": []}
    assert edited["body"].startswith("* ")

    dm_id = await wait_for_invite(ana, bot_id)  # the confirmation, privately
    assert isinstance(await ana.join(dm_id), JoinResponse)
    _, confirmed = await wait_for_event(
        ana,
        lambda e: e.sender == bot_id and "Leakage call" in content_of(e).get("body", ""),
        timeout=MATRIX_STEP,
    )
    assert (
        content_of(confirmed)["body"]
        == f"You are coming to Leakage call {planned.start:%a %-d %b} 15:00 UTC."
    )

    await send_event(bo, room_id, "m.reaction", reaction(announcement, "❌"))
    await answers_become(bot, sorted([(ana.user_id, key, "yes"), (bo.user_id, key, "no")]), "bo's no stored")
    await wait_for_event(owner, replaces(announcement, "✅ 1 · ❔ 0 · ❌ 1"), timeout=MATRIX_STEP)


async def test_matrix_a_reaction_redacted_withdraws_the_answer_it_gave(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    """ana redacted her ✅ (took it back): she stayed a yes. Now the answer goes, and the card counts it."""
    owner, ana, bo = await members("owner"), await members("ana"), await members("bo")
    planned = await plan_on_matrix(bots, owner, ana, bo)
    bot, room_id, announcement = planned.bot, planned.room_id, planned.announcement.event_id
    given = await send_event(ana, room_id, "m.reaction", reaction(announcement, "✅"))
    await answers_become(bot, [(ana.user_id, occurrence_key(planned.start), "yes")], "ana's yes stored")
    async with asyncio.timeout(MATRIX_STEP):
        assert isinstance(await ana.room_redact(room_id, given), RoomRedactResponse)
    await answers_become(bot, [], "ana's yes withdrawn")
    await wait_for_event(owner, replaces(announcement, "✅ 0 · ❔ 0 · ❌ 0"), timeout=MATRIX_STEP)


async def test_matrix_a_reaction_given_before_a_restart_and_redacted_after_it_withdraws_its_answer(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    """A redaction names only the reaction's event, whose content the homeserver strips: copbot knew what a
    reaction stood for only if it had seen it given since it started. ana took her ✅ back while copbot was
    down, bo his ❌ after its restart: both stayed answers, the card counted them, reminders went to ana.
    Now both are withdrawn, the card counts none, and copbot forgets the reactions it kept for this."""
    owner, ana, bo = await members("owner"), await members("ana"), await members("bo")
    planned = await plan_on_matrix(bots, owner, ana, bo)
    bot, room_id, announcement = planned.bot, planned.room_id, planned.announcement.event_id
    key = occurrence_key(planned.start)
    yes = await send_event(ana, room_id, "m.reaction", reaction(announcement, "✅"))
    no = await send_event(bo, room_id, "m.reaction", reaction(announcement, "❌"))
    await answers_become(bot, sorted([(ana.user_id, key, "yes"), (bo.user_id, key, "no")]), "both stored")
    await wait_for_event(owner, replaces(announcement, "✅ 1 · ❔ 0 · ❌ 1"), timeout=MATRIX_STEP)
    await bots.stop(bot)

    async with asyncio.timeout(MATRIX_STEP):
        assert isinstance(await ana.room_redact(room_id, yes), RoomRedactResponse)  # while copbot is down
    bot = await bots.start(planned.account, plugins=(Meetings,), clock=planned.clock)
    await answers_become(bot, [(bo.user_id, key, "no")], "ana's yes withdrawn")
    await wait_for_event(owner, replaces(announcement, "✅ 0 · ❔ 0 · ❌ 1"), timeout=MATRIX_STEP)
    async with asyncio.timeout(MATRIX_STEP):
        assert isinstance(await bo.room_redact(room_id, no), RoomRedactResponse)  # after the restart
    await answers_become(bot, [], "bo's no withdrawn")
    await wait_for_event(owner, replaces(announcement, "✅ 0 · ❔ 0 · ❌ 0"), timeout=MATRIX_STEP)
    async with bot.db.session() as session:
        kept = (await session.execute(select(StateRow.key).where(StateRow.key.startswith("reaction:")))).all()
    assert kept == []  # what was kept of the reactions went with them


async def test_matrix_the_reminder_at_its_time_mentions_who_said_yes_and_nobody_who_said_no(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    owner, ana, bo = await members("owner"), await members("ana"), await members("bo")
    planned = await plan_on_matrix(bots, owner, ana, bo)
    bot, clock, start = planned.bot, planned.clock, planned.start
    bot_id = adapter_of(bot).user_id
    key = occurrence_key(start)
    await send_event(ana, planned.room_id, "m.reaction", reaction(planned.announcement.event_id, "✅"))
    await send_event(bo, planned.room_id, "m.reaction", reaction(planned.announcement.event_id, "❌"))
    await answers_become(bot, sorted([(ana.user_id, key, "yes"), (bo.user_id, key, "no")]), "both stored")

    scheduler = bot.services.scheduler
    assert await scheduler.next_run("meeting:1:reminder") == start - timedelta(hours=24)
    clock.set(start - timedelta(hours=24, minutes=1))
    assert await scheduler.run_due() == 0
    clock.set(start - timedelta(hours=24))
    assert await scheduler.run_due() == 1
    _, reminder = await wait_for_event(
        owner,
        lambda e: e.sender == bot_id and content_of(e).get("body", "").startswith("⏰"),
        timeout=MATRIX_STEP,
    )
    reminded = content_of(reminder)
    assert reminded["body"] == (
        f"⏰ Leakage call starts in 24 hours: {start:%a %-d %b} 15:00 UTC — https://meet.example."
        f" {ana.user_id}"
    )
    assert reminded["m.mentions"] == {"user_ids": [ana.user_id]}  # not bo, who said no
    assert f'<a href="https://matrix.to/#/{ana.user_id}">' in reminded["formatted_body"]  # a pill
    assert bo.user_id not in reminded["formatted_body"]
    assert await scheduler.next_run("meeting:1:reminder") == start - timedelta(minutes=15)
    assert (await meeting_row(bot)).reminded_through == start - timedelta(hours=24)
    assert await scheduler.run_due() == 0  # sent once


async def test_matrix_a_member_who_leaves_the_room_is_no_longer_counted(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    """ana and bo said yes; bo leaves the community's room: his answer is withdrawn and the announcement
    is edited to one coming (before, he was still counted and reminded)."""
    owner, ana, bo = await members("owner"), await members("ana"), await members("bo")
    planned = await plan_on_matrix(bots, owner, ana, bo)
    bot, room_id, announcement = planned.bot, planned.room_id, planned.announcement.event_id
    key = occurrence_key(planned.start)
    await send_event(ana, room_id, "m.reaction", reaction(announcement, "✅"))
    await send_event(bo, room_id, "m.reaction", reaction(announcement, "✅"))
    await wait_for_event(owner, replaces(announcement, "✅ 2 · ❔ 0 · ❌ 0"), timeout=MATRIX_STEP)

    await bo.room_leave(room_id)
    await wait_for_event(owner, replaces(announcement, "✅ 1 · ❔ 0 · ❌ 0"), timeout=MATRIX_STEP)
    await answers_become(bot, [(ana.user_id, key, "yes")], "bo's answer withdrawn")


async def test_matrix_a_member_who_leaves_one_of_the_community_s_rooms_stays_in_it(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    """The community has two rooms, bo is in both and said yes; he leaves the second: he is still in the
    community — his answer stays, he is not marked gone (before, leaving any room of a community was
    leaving it, and withdrew his answers). Leaving the last room is leaving."""
    owner, ana, bo = await members("owner"), await members("ana"), await members("bo")
    planned = await plan_on_matrix(bots, owner, ana, bo)
    bot, room_id, announcement = planned.bot, planned.room_id, planned.announcement.event_id
    bot_id = adapter_of(bot).user_id
    key = occurrence_key(planned.start)
    second = await room_with_bot(owner, bot_id, bo)
    await send_event(ana, room_id, "m.reaction", reaction(announcement, "✅"))
    await send_event(bo, room_id, "m.reaction", reaction(announcement, "✅"))
    await wait_for_event(owner, replaces(announcement, "✅ 2 · ❔ 0 · ❌ 0"), timeout=MATRIX_STEP)

    await bo.room_leave(second)
    command = await send(owner, second, "!meeting list")  # after the leave in that room's timeline
    await wait_for_event(
        owner, lambda e: e.sender == bot_id and in_reply_to(e) == command, timeout=MATRIX_STEP
    )
    await asyncio.sleep(1.0)  # members' events are handled side by side: time for the leave's, if any

    assert await answers(bot) == sorted([(ana.user_id, key, "yes"), (bo.user_id, key, "yes")])
    async with bot.db.session() as session:
        left = await session.scalar(
            select(Membership.left_at)
            .join(MemberRow, MemberRow.id == Membership.member_id)
            .where(MemberRow.platform_id == bo.user_id)
        )
    assert left is None

    await bo.room_leave(room_id)  # the community's last room he was in
    await wait_for_event(owner, replaces(announcement, "✅ 1 · ❔ 0 · ❌ 0"), timeout=MATRIX_STEP)
    await answers_become(bot, [(ana.user_id, key, "yes")], "bo's answer withdrawn")


async def test_discord_a_series_announcement_names_its_start_and_labels_its_next_meeting(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    """A weekly call's first meeting is moved a day later: the announcement still says when the series
    was planned for and how it repeats, and names the moved meeting apart, labelled, as a timestamp each
    reader sees in their own zone (as the card's When) — not "planned for <the moved day>, weekly on
    <the original weekday>s", which read as a series moved to another day."""
    bot = await discord_bot(plugins=(Meetings,))
    start = future_start()
    response, _ = await schedule_on_discord(discord_server, start, every="weekly")
    headline = f"Meeting #1 planned for {start:%a %-d %b} 15:00 UTC, weekly on {start:%A}s."
    assert response.json["data"]["content"] == headline  # the first meeting: nothing apart
    announcement = discord_server.bot_messages("general")[-1]["id"]
    await meeting_once(bot, lambda m: m.announcement_id == announcement, "the announcement kept")

    moved = start + timedelta(days=1, hours=1)
    mark = len(discord_server.requests)
    record = await discord_server.interaction_slash(
        "meeting", {"meeting_id": 1, "start": typed(moved)}, user="alice", subcommand="move"
    )
    await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    card = rf"/channels/{discord_server.channel_id('general')}/messages/{announcement}$"
    edit = await discord_server.wait_for_request(
        "PATCH", card, start=mark, predicate=lambda r: card_fields(r.json).get("When") == stamp(moved)
    )
    assert edit.json["content"] == f"{headline} Next meeting: {stamp(moved)} (moved)."
    meeting = await meeting_row(bot)
    assert meeting.starts_at == start  # the series' start is stored as planned; the move beside it


async def test_matrix_a_series_announcement_names_its_start_and_labels_its_next_meeting(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    """As on Discord: the weekly call's first meeting moved, its announcement (edited in place) keeps the
    series' start and rule and names the moved meeting apart — in the meeting's zone, as its card's When."""
    owner = await members("owner")
    clock = FakeClock(datetime.now(UTC).replace(second=0, microsecond=0))
    bot = await bots.start(
        await asyncio.to_thread(bots.account, owner.user_id), plugins=(Meetings,), clock=clock
    )
    bot_id = adapter_of(bot).user_id
    room_id = await room_with_bot(owner, bot_id)
    start = future_start(now=clock.now())
    command = await send(owner, room_id, f'!meeting schedule "Leakage call" {typed(start)} --every weekly')
    _, posted = await wait_for_event(
        owner, lambda e: e.sender == bot_id and in_reply_to(e) == command, timeout=MATRIX_STEP
    )
    headline = f"Meeting #1 planned for {start:%a %-d %b} 15:00 UTC, weekly on {start:%A}s."
    assert content_of(posted)["body"].startswith(headline + "\n")
    await settled(lambda: meeting_row(bot), "the meeting stored")
    moved = start + timedelta(days=1, hours=1)
    await send(owner, room_id, f"!meeting move 1 {typed(moved)}")

    def edited(event: Event) -> bool:
        content = content_of(event)
        return (content.get("m.relates_to") or {}).get("rel_type") == "m.replace" and "Next meeting" in (
            content.get("m.new_content") or {}
        ).get("body", "")

    _, edit = await wait_for_event(owner, edited, timeout=MATRIX_STEP)
    body = content_of(edit)["m.new_content"]["body"]
    assert body.startswith(f"{headline} Next meeting: {moved:%a %-d %b} 16:00 UTC (moved).\n"), body
    assert f"When: {moved:%a %-d %b} 16:00 UTC" in body
