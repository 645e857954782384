"""The digest through the real platform paths: Discord (discord.py against the tests' Discord server) and
Matrix (matrix-nio against a real Synapse).

Each test seeds a period of community life through the platform, moves a fake clock to the scheduled
time (Monday 09:00 in the community's zone) and asserts what members see: on Discord, embeds within
Discord's limits that ping nobody and show member text escaped; on Matrix, an ``m.room.message`` with a
plain body and escaped HTML. And what is stored: one ``digest_posts`` row per period, across a restart.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from nio import JoinResponse, RoomCreateResponse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import CopBot
from bot.clock import FakeClock
from bot.plugin import DigestSection, Plugin
from bot.tables import ActivityEvent, Membership, OutboxRow
from plugins.digest.models import DigestPost
from plugins.digest.plugin import DigestPlugin
from plugins.digest.render import period
from plugins.polls.models import Poll
from plugins.polls.plugin import Polls
from plugins.profiles.plugin import Profiles
from plugins.repertoire.plugin import Repertoire
from tests.e2e.matrix_support import (
    SLUG,
    Bots,
    adapter_of,
    content_of,
    history,
    in_reply_to,
    is_membership,
    send,
)
from tests.e2e.matrix_support import STEP as MATRIX_STEP
from tests.e2e.test_discord import BotFactory
from tests.e2e.test_meetings_platforms import settled
from tests.harness.discord_server import FakeDiscord, Request
from tests.harness.synapse import wait_for_event

PLUGINS = (Profiles, Repertoire, Polls, DigestPlugin)
ZONE = "Europe/Amsterdam"
JOB = f"digest:{SLUG}"  # the community is "water" in both platforms' fixtures
# Discord's limits for a message's embeds (https://discord.com/developers/docs/resources/message#embed-limits)
TITLE_LIMIT, FIELD_NAME_LIMIT, FIELD_VALUE_LIMIT, FIELDS_LIMIT, EMBEDS_TOTAL = 256, 256, 1024, 25, 6000


def monday_nine_after(moment: datetime, zone: str) -> datetime:
    """The first Monday 09:00 in ``zone`` after ``moment`` (the digest's default schedule), in UTC."""
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz)
    day = local.date() + timedelta(days=(7 - local.weekday()) % 7)
    nine = datetime(day.year, day.month, day.day, 9, tzinfo=tz)
    if nine <= local:
        day += timedelta(days=7)
        nine = datetime(day.year, day.month, day.day, 9, tzinfo=tz)
    return nine.astimezone(UTC)


async def digest_rows(bot: CopBot) -> list[DigestPost]:
    async with bot.db.session() as session:
        return list((await session.execute(select(DigestPost))).scalars())


# --- Discord ------------------------------------------------------------------------------------------------


def is_digest(request: Request, channel: str) -> bool:
    embeds = (request.json or {}).get("embeds") or []
    return (
        request.method == "POST"
        and request.path == f"/channels/{channel}/messages"
        and any(str(embed.get("title", "")).startswith("📰") for embed in embeds)
    )


def embed_size(embed: dict[str, Any]) -> int:
    """What Discord counts towards the 6,000 characters of a message's embeds."""
    fields = embed.get("fields") or []
    return (
        len(embed.get("title") or "")
        + len(embed.get("description") or "")
        + sum(len(field["name"]) + len(field["value"]) for field in fields)
        + len((embed.get("footer") or {}).get("text") or "")
        + len((embed.get("author") or {}).get("name") or "")
    )


async def slash_share(discord_server: FakeDiscord, user: str, kind: str, title: str, text: str) -> None:
    record = await discord_server.interaction_slash(
        "share", {"kind": kind, "title": title, "text": text}, user=user
    )
    response = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert response.json["data"]["content"].startswith("Added to the repertoire as #"), response.json


def long_title(number: int) -> str:
    """A title of about 190 characters, a third of them markdown that Discord's escaping doubles."""
    words = " ".join(f"*leak_{number}_{n}* `x|y` ~z~" for n in range(8))
    return f"Report {number}: {words}"[:190].strip()


async def test_discord_the_digest_is_posted_once_as_escaped_embeds_within_limits_and_pings_nobody(
    discord_server: FakeDiscord,
    discord_bot: BotFactory,
) -> None:
    general = discord_server.channel_id("general")
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    options: dict[str, Any] = {
        "plugins": PLUGINS,
        "clock": clock,
        "plugin_config": {"digest": {"rooms": {SLUG: {"discord": general}}}},
        "community": {"timezone": ZONE},
    }
    bot = await discord_bot(**options)

    await slash_share(discord_server, "bob", "tool", "**x** @everyone", "https://example.org/x #gis")
    titles = [long_title(number) for number in range(11)]
    for title in titles:  # 12 items: 10 shown, then "… and 2 more"; escaped, they fill several fields
        await slash_share(discord_server, "carol", "story", title, "We logged pressure at night")
    await discord_server.message_create("general", "alice", '!poll create "Next topic?" Leakage Metering')
    await discord_server.wait_for_request(
        "POST", rf"/channels/{general}/messages", predicate=lambda r: "poll" in (r.json or {})
    )
    discord_server.add_user("dana")
    await discord_server.member_add(None, "dana")

    async def joined() -> int:
        async with bot.db.session() as session:
            return int(await session.scalar(select(func.count()).select_from(Membership)) or 0)

    await settled(lambda: _at_least(joined, 4), "alice, bob, carol and dana as members")
    await discord_server.message_create("general", "dana", "Hello all, glad to be here")
    await discord_server.message_create("general", "bob", "Welcome Dana!")
    await settled(lambda: _messages_counted(bot, 2), "both messages counted")
    await bot.pipeline.journal.flush()

    monday = monday_nine_after(datetime.now(UTC), ZONE)  # after everything seeded above
    assert monday.astimezone(ZoneInfo(ZONE)).strftime("%a %H:%M") == "Mon 09:00"
    assert await bot.services.scheduler.next_run(JOB) <= monday
    mark = len(discord_server.requests)
    clock.set(monday)
    assert await bot.services.scheduler.run_due() >= 1
    await settled(lambda: outbox_drained(bot), "the digest's messages sent")  # several, when it is long
    posts = [r for r in discord_server.requests[mark:] if is_digest(r, general)]
    assert posts, discord_server.describe_requests()

    title = f"📰 Water CoP — {period(monday - timedelta(days=7), monday, ZONE)}"
    assert posts[0].json["embeds"][0]["title"] == title
    fields: dict[str, str] = {}
    for post in posts:
        payload = post.json
        assert not payload.get("content")  # the embeds carry it all
        [embed] = payload["embeds"]
        assert len(embed["title"]) <= TITLE_LIMIT and embed["title"].startswith(title)
        assert 0 < len(embed["fields"]) <= FIELDS_LIMIT
        for field in embed["fields"]:
            assert len(field["name"]) <= FIELD_NAME_LIMIT and 0 < len(field["value"]) <= FIELD_VALUE_LIMIT
            fields[field["name"]] = (fields.get(field["name"], "") + "\n" + field["value"]).strip()
        assert embed_size(embed) <= EMBEDS_TOTAL
        mentions = payload["allowed_mentions"]  # pings nobody: no everyone, no role, no user
        assert mentions["parse"] == [] and not mentions.get("users") and not mentions.get("roles")
    # Escaped, the long titles fill more than one field: split between lines, none cut by the adapter.
    assert "New in the repertoire (12) (continued)" in fields

    names = list(fields)
    assert names[0] == "New members (4)", names  # in the digest's order
    assert {"Alice", "Bob", "Carol", "Dana"} == set(
        line.removeprefix("• ") for line in fields["New members (4)"].splitlines()
    )
    new_items = "\n".join(
        value for name, value in fields.items() if name.startswith("New in the repertoire (12)")
    )
    assert "• #1 \\[tool] \\*\\*x\\*\\* @\u200beveryone — Bob" in new_items  # escaped, no ping
    for number, long in enumerate(titles[:9], start=2):  # every line shown whole, none clipped
        shown = long.replace("*", "\\*").replace("_", "\\_").replace("`", "\\`").replace("|", "\\|")
        shown = shown.replace("~", "\\~")
        assert f"• #{number} \\[story] {shown} — Carol" in new_items, (number, new_items)
    assert new_items.endswith("• … and 2 more")
    assert fields["Open polls"] == "• #1 Next topic?"
    activity = fields["Activity (the period before in brackets)"]
    assert activity.splitlines() == [
        "• Messages: 2 (↑ from 0)",
        "• Active members: 4 (↑ from 0)",
        "• Contributions: 12 (↑ from 0)",
    ]
    [row] = await digest_rows(bot)
    assert (row.period_start, row.period_end, row.quiet) == (monday - timedelta(days=7), monday, False)

    await bot.stop()
    mark = len(discord_server.requests)
    again = await discord_bot(**options)  # a new process on the same database, at the same time
    await again.services.scheduler.run_due()
    clock.set(monday + timedelta(hours=2))
    await again.services.scheduler.run_due()
    await settled(lambda: outbox_drained(again), "nothing left to send")
    await asyncio.sleep(0.3)
    assert [r for r in discord_server.requests[mark:] if is_digest(r, general)] == []  # posted once
    assert len(await digest_rows(again)) == 1
    assert await again.services.scheduler.next_run(JOB) == monday_nine_after(monday, ZONE)


async def _at_least(count: Any, wanted: int) -> bool:
    return await count() >= wanted


async def outbox_drained(bot: CopBot) -> bool:
    """Every message put in the outbox was sent (a digest goes out through it, one message per card)."""
    async with bot.db.session() as session:
        waiting = await session.scalar(
            select(func.count()).select_from(OutboxRow).where(OutboxRow.sent_at.is_(None))  # type: ignore[union-attr]
        )
    return not waiting


async def _messages_counted(bot: CopBot, wanted: int) -> bool:
    await bot.pipeline.journal.flush()
    async with bot.db.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(ActivityEvent).where(ActivityEvent.kind == "message")
        )
    return int(count or 0) >= wanted


# --- Matrix -------------------------------------------------------------------------------------------------


async def test_matrix_the_digest_arrives_as_plain_text_and_escaped_html_mentioning_nobody(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    owner, ana = await members("owner"), await members("ana")
    account = await asyncio.to_thread(bots.account, owner.user_id)
    async with asyncio.timeout(MATRIX_STEP):  # the community's room, the bot invited before it starts
        created = await owner.room_create(invite=[account.user_id, ana.user_id])
    assert isinstance(created, RoomCreateResponse), created
    room_id = created.room_id
    async with asyncio.timeout(MATRIX_STEP):
        assert isinstance(await ana.join(room_id), JoinResponse)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    bot = await bots.start(
        account,
        plugins=PLUGINS,
        clock=clock,
        plugin_config={"digest": {"rooms": {SLUG: {"matrix": room_id}}}},
    )
    bot_id = adapter_of(bot).user_id
    await wait_for_event(owner, is_membership(bot_id, "join"), timeout=MATRIX_STEP)

    shared = await send(
        ana, room_id, '!share story "Night <b>x</b> flow" We logged pressure at night #leakage'
    )
    _, added = await wait_for_event(
        ana, lambda e: e.sender == bot_id and in_reply_to(e) == shared, timeout=MATRIX_STEP
    )
    assert content_of(added)["body"].startswith("Added to the repertoire as #1 (story)")
    await send(owner, room_id, "Welcome, ana!")
    await send(owner, room_id, '!poll create "Next topic?" Leakage Metering')
    await wait_for_event(
        owner,
        lambda e: e.sender == bot_id and "Next topic?" in content_of(e).get("body", ""),
        timeout=MATRIX_STEP,
    )

    async def poll_stored() -> int | None:  # the poll is shown while its command commits: wait for that
        async with bot.db.session() as session:
            return await session.scalar(select(func.count()).select_from(Poll))

    await settled(poll_stored, "the poll's command to commit")
    await bot.pipeline.journal.flush()

    monday = monday_nine_after(datetime.now(UTC), "UTC")
    assert await bot.services.scheduler.next_run(JOB) <= monday
    clock.set(monday)
    assert await bot.services.scheduler.run_due() >= 1
    _, posted = await wait_for_event(
        owner,
        lambda e: e.sender == bot_id and "📰" in content_of(e).get("body", ""),
        timeout=MATRIX_STEP,
    )
    content = content_of(posted)
    title = f"📰 Water CoP — {period(monday - timedelta(days=7), monday, 'UTC')}"
    assert posted.source["type"] == "m.room.message"
    assert content["msgtype"] in ("m.notice", "m.text")
    assert content["format"] == "org.matrix.custom.html"

    body = content["body"]  # plain text: what clients without HTML show, member text as written
    assert body.startswith(title + "\n")
    # a heading line per section, its items below it, indented, one bullet each
    assert "\n  New members (2):\n    • " in body
    assert "\n  New in the repertoire (1):\n    • #1 [story] Night <b>x</b> flow" in body
    assert "\n  Open polls:\n    • #1 Next topic?\n" in body
    assert "\n  Activity (the period before in brackets):\n    • Messages: " in body
    assert "\n    • Active members: 2 (↑ from 0)\n" in body
    assert not any(line.startswith("•") for line in body.splitlines())  # nothing run back to column 0

    html = content["formatted_body"]
    assert html.startswith(f"<b>{title}</b><p><b>")  # the card alone: no blank line above it
    assert "<p><b>Open polls</b></p><ul><li>#1 Next topic?</li></ul>" in html  # a heading, then its items
    assert "<p><b>New in the repertoire (1)</b></p><ul><li>#1 [story] Night &lt;b&gt;x&lt;/b&gt; flow" in html
    assert "<b>x</b>" not in html  # member text escaped
    assert "<li>Active members: 2 (↑ from 0)</li>" in html  # a section's lines are its items
    assert "•" not in html  # Element draws the bullets: none doubled
    assert not content.get("m.mentions", {}).get("user_ids")  # the digest pings nobody
    assert ana.user_id not in html and "@room" not in body

    [row] = await digest_rows(bot)
    assert (row.period_end, row.title) == (monday, title)
    assert await bot.services.scheduler.run_due() == 0  # posted once


class Notices(Plugin):
    """A digest section as long as a test needs: the running plugin's ``lines``."""

    name = "notices"
    lines: tuple[str, ...] = ()

    async def digest(
        self, session: AsyncSession, community_id: int, start: datetime, end: datetime, tz: str
    ) -> tuple[DigestSection, ...]:
        return (DigestSection("Notices", self.lines, 60),) if self.lines else ()


async def test_matrix_a_digest_longer_than_discord_allows_arrives_as_one_message(  # type: ignore[no-untyped-def]
    bots: Bots, members
) -> None:
    """A digest of about 12,000 characters (30,000 as HTML) came to Matrix as several messages, cut at
    Discord's 6,000-character embed limit, the sections going on under "(continued)" headings. Matrix's
    limit is an event's 64 KiB: it now arrives as one message, every line in it, each section once."""
    owner = await members("owner")
    account = await asyncio.to_thread(bots.account, owner.user_id)
    async with asyncio.timeout(MATRIX_STEP):  # the digest's room, the bot invited before it starts
        created = await owner.room_create(invite=[account.user_id])
    assert isinstance(created, RoomCreateResponse), created
    room_id = created.room_id
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    bot = await bots.start(
        account,
        plugins=(*PLUGINS, Notices),
        clock=clock,
        plugin_config={"digest": {"rooms": {SLUG: {"matrix": room_id}}}},
    )
    bot_id = adapter_of(bot).user_id
    await wait_for_event(owner, is_membership(bot_id, "join"), timeout=MATRIX_STEP)
    notices = bot.registry.plugins["notices"]
    assert isinstance(notices, Notices)
    notices.lines = tuple(f"Notice {n:02d}: pressure <{n}> & flow at night, " + "x" * 80 for n in range(100))

    monday = monday_nine_after(datetime.now(UTC), "UTC")
    clock.set(monday)
    assert await bot.services.scheduler.run_due() >= 1
    await wait_for_event(
        owner,
        lambda e: e.sender == bot_id and "Notice 99" in content_of(e).get("body", ""),
        timeout=MATRIX_STEP,
    )
    await asyncio.sleep(0.5)  # any further part of it would be in the room by now
    events = await asyncio.to_thread(history, bots.synapse, owner.access_token, room_id)
    posted = [e for e in events if e["sender"] == bot_id and e["type"] == "m.room.message"]
    assert len(posted) == 1, [e["content"]["body"][:80] for e in posted]
    content = posted[0]["content"]
    assert len(content["body"]) > 12_000 and len(content["formatted_body"]) > 2 * 6_000
    for line in notices.lines:
        assert f"    • {line}\n" in content["body"] + "\n"
        assert f"<li>{escape(line)}</li>" in content["formatted_body"]
    assert content["body"].count("Notices") == 1 and "(continued)" not in content["body"]
    assert content["formatted_body"].count("<b>Notices</b>") == 1
