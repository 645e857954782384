"""The Discord platform through discord.py's whole real path, against the tests' Discord-compatible server.

Every REST call copbot makes is recorded by the server and asserted; exceptions discord.py would only
log fail the test (the ``discord_errors`` fixture).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.adapters.base import EditAdapter, EventAdapter, MessageSource, TimestampAdapter
from bot.app import CopBot
from bot.clock import Clock
from bot.config import Settings
from bot.context import Context
from bot.model import (
    Attachment,
    Button,
    ButtonClicked,
    Capability,
    Card,
    Content,
    EventInterest,
    Member,
    MemberJoined,
    PollSpec,
    PollVoted,
    ReactionAdded,
    Room,
    SelectMenu,
)
from bot.plugin import Plugin, command, listen
from bot.tables import ActivityEvent, MemberRow
from tests.conftest import discord_table, two_guilds
from tests.harness.discord_server import FakeDiscord, HandlerErrors, Intent, point_discord_py_at

EPHEMERAL = 64
EXPORT = Attachment("repertoire.csv", b"title,author\nNight-time pressure logging,Bob\n", "text/csv")


class Lab(Plugin):
    """A plugin that exercises what the Discord adapter must carry."""

    name = "lab"
    seen: list[Any] = []  # noqa: RUF012  (shared across restarts on purpose: a restarted bot is a new object)

    @command("lab slow", examples=("lab slow",))
    async def slow(self, ctx: Context) -> None:
        """Take longer than Discord's deadline."""
        await asyncio.sleep(2.6)
        await ctx.reply("done at last")

    @command("lab echo", examples=("lab echo hello",))
    async def echo(self, ctx: Context, text: str, *, times: int = 1) -> None:
        """Repeat what a member wrote (member text must never ping everyone)."""
        await ctx.reply(" ".join([text] * times))

    @command("lab vote", examples=("lab vote",))
    async def vote(self, ctx: Context) -> None:
        """Post buttons."""
        await ctx.reply(
            Content("Pick one", buttons=(Button("Yes", "lab:vote:7:yes"), Button("No", "lab:vote:7:no")))
        )

    @command("lab crash", examples=("lab crash",))
    async def crash(self, ctx: Context) -> None:
        """Fail on purpose."""
        raise RuntimeError("boom")

    @command("lab poll", examples=('lab poll "Next topic?" Leakage Metering Tariffs',))
    async def poll(self, ctx: Context, question: str, answers: list[str]) -> None:
        """Post a poll, natively where it fits."""
        await ctx.reply(Content("", poll=PollSpec(question, tuple(answers))))

    @command("lab export", examples=("lab export",))
    async def export(self, ctx: Context, *, copies: int = 1) -> None:
        """Send a file (more copies: the first is an interaction's response, the rest its follow-ups)."""
        for _ in range(copies):
            await ctx.reply(Content("Your export", attachment=EXPORT))

    @command("lab pick", examples=("lab pick",))
    async def pick(self, ctx: Context) -> None:
        """Post a select menu."""
        menu = SelectMenu(
            "lab:pick:1", (("utility", "Utility"), ("research", "Research")), "Your organisation"
        )
        await ctx.reply(Content("What kind of organisation?", select=menu))

    @listen(PollVoted)
    async def voted(self, ctx: Context, event: PollVoted) -> None:
        Lab.seen.append(event)

    @listen(ButtonClicked)
    async def clicked(self, ctx: Context, event: ButtonClicked) -> None:
        Lab.seen.append(event)
        await ctx.reply(Content(f"counted {event.custom_id.rsplit(':', 1)[1]}", ephemeral=True))

    @listen(MemberJoined)
    async def joined(self, ctx: Context, event: MemberJoined) -> None:
        Lab.seen.append(event)
        await ctx.send(ctx.room, Content(f"Welcome {ctx.mention(event.member)}!", mentions=(event.member,)))

    @listen(ReactionAdded)
    async def reacted(self, ctx: Context, event: ReactionAdded) -> None:
        Lab.seen.append(event)

    @listen(EventInterest)
    async def interested(self, ctx: Context, event: EventInterest) -> None:
        Lab.seen.append(event)


class Other(Plugin):
    """Listens to clicks too, but must never get the lab's."""

    name = "other"
    clicks: list[Any] = []  # noqa: RUF012

    @listen(ButtonClicked)
    async def clicked(self, ctx: Context, event: ButtonClicked) -> None:
        Other.clicks.append(event)


BotFactory = Callable[..., Any]


async def seen_by_lab(kind: type, count: int) -> list[Any]:
    """The first ``count`` events of ``kind`` the Lab's listeners got, waiting for them a while."""
    for _ in range(250):
        found = [event for event in Lab.seen if isinstance(event, kind)]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"the Lab saw {Lab.seen!r}, not {count} {kind.__name__}")


@pytest.fixture
def copbot_errors() -> Iterator[HandlerErrors]:
    """copbot catches handler errors itself (the member gets an apology); here they still fail the test."""
    errors = HandlerErrors(loggers=("bot", "copbot"))
    errors.attach()
    try:
        yield errors
    finally:
        errors.detach()
    errors.check()


@pytest.fixture
async def discord_bot(
    discord_server: FakeDiscord, discord_errors: HandlerErrors, copbot_errors: HandlerErrors, tmp_path: Path
) -> AsyncIterator[BotFactory]:
    """Start copbot with the Discord platform configured against the test server; stopped at the end."""
    Lab.seen, Other.clicks = [], []
    running: list[CopBot] = []

    async def start(
        plugins: tuple[type[Plugin], ...] = (Lab, Other),
        *,
        clock: Clock | None = None,
        plugin_config: dict[str, dict[str, Any]] | None = None,
        community: dict[str, Any] | None = None,
        **discord_overrides: Any,
    ) -> CopBot:
        """``plugin_config`` is ``[plugins.*]``; ``community`` adds to the "water" community's settings."""
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'copbot.db'}",
            web={"enabled": False},
            plugins=plugin_config or {},
            discord=discord_table(discord_server, **discord_overrides),
            communities=[
                {
                    "slug": "water",
                    "name": "Water CoP",
                    "discord": {
                        "guild_id": discord_server.guild_id,
                        "level_roles": {"active": "Member", "core": "Moderator"},
                    },
                    **(community or {}),
                }
            ],
        )
        bot = CopBot(settings, clock=clock, plugins=list(plugins), run_scheduler_loop=False)
        await bot.start()
        adapter = bot.services.adapters["discord"]
        discord_errors.install(adapter.client)  # type: ignore[attr-defined]
        running.append(bot)
        return bot

    with point_discord_py_at(discord_server):  # restores discord.py's URLs after the test
        yield start
        for bot in running:
            if bot.services.adapters["discord"].connected:
                await bot.stop()


async def test_connects_and_syncs_commands_from_the_specs_only_when_they_change(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    bot = await discord_bot()
    assert 2 in [frame.op for frame in discord_server.gateway_log]  # IDENTIFY, then READY and GUILD_CREATE
    intents = discord_server.intents or 0
    assert intents & (1 << 15) and intents & (1 << 1)  # message content and members, as configured
    assert bot.services.adapters["discord"].connected
    puts = discord_server.find("PUT", rf"/applications/{discord_server.application_id}/commands$")
    assert len(puts) == 1
    commands = {command["name"]: command for command in puts[0].json}
    assert {"help", "about", "status", "lab"} <= set(commands)
    assert commands["status"]["default_member_permissions"] == "32"
    echo = next(option for option in commands["lab"]["options"] if option["name"] == "echo")
    assert echo["type"] == 1
    assert [(o["name"], o["type"], o["required"]) for o in echo["options"]] == [
        ("text", 3, True),
        ("times", 4, False),
    ]
    help_options = commands["help"]["options"]
    assert help_options[0]["name"] == "command" and help_options[0]["required"] is False
    await bot.stop()

    again = await discord_bot()
    puts = discord_server.find("PUT", rf"/applications/{discord_server.application_id}/commands$")
    assert len(puts) == 1, "an unchanged command set is not synced again"
    await again.stop()


async def test_slash_help_answers_through_the_interaction_callback_ephemerally(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    await discord_bot()
    record = await discord_server.interaction_slash("help", user="bob")
    call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert call.json["type"] == 4
    assert call.json["data"]["flags"] == EPHEMERAL
    content = call.json["data"]["content"]
    assert "/lab echo — Repeat what a member wrote" in content  # written as slash commands, where asked
    assert "/status" not in content  # moderators only


async def test_slash_status_by_a_member_is_refused_ephemerally_and_changes_nothing(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    bot = await discord_bot()
    record = await discord_server.interaction_slash("status", user="bob")
    call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert call.json["data"]["flags"] == EPHEMERAL
    assert call.json["data"]["content"] == "/status is for moderators only; nothing was changed."
    await bot.pipeline.journal.flush()
    async with bot.db.session() as session:
        assert (await session.execute(select(ActivityEvent))).all() == []
    record = await discord_server.interaction_slash("status", user="alice")  # the owner: Manage Server
    call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert "Platforms: discord (connected)" in call.json["data"]["content"]
    record = await discord_server.interaction_slash("status", user="carol")  # only a Moderator role…
    call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert call.json["data"]["content"].startswith("/status is for moderators only")


async def test_a_configured_moderator_role_makes_a_moderator(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    await discord_bot(moderator_roles=["Moderator"])  # …which the config can name
    record = await discord_server.interaction_slash("status", user="carol")
    call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert "Platforms: discord (connected)" in call.json["data"]["content"]


async def test_a_moderator_by_a_configured_role_may_run_moderator_commands_in_discords_client(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    """Moderator commands were registered for Manage Server only (``default_member_permissions``), so
    Discord neither listed nor sent /status for carol, a moderator by a configured role: copbot's own check
    never got the chance to let her in."""
    discord_server.command_permissions = True  # no override in Server Settings → Integrations
    await discord_bot(moderator_roles=["Moderator"])
    puts = discord_server.find("PUT", rf"/applications/{discord_server.application_id}/commands$")
    status = next(command for command in puts[-1].json if command["name"] == "status")
    assert status.get("default_member_permissions") is None  # copbot decides who moderates, per member
    record = await discord_server.interaction_slash("status", user="carol")
    call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert "Platforms: discord (connected)" in call.json["data"]["content"]
    record = await discord_server.interaction_slash("status", user="bob")  # listed to all, refused by copbot
    call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert call.json["data"]["content"] == "/status is for moderators only; nothing was changed."


async def test_a_slow_handler_is_deferred_then_followed_up(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    await discord_bot()
    record = await discord_server.interaction_slash("lab", {}, user="bob", subcommand="slow")
    deferred = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert deferred.json["type"] == 5  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE, within the deadline
    follow_up = await discord_server.wait_for_request(
        "POST", rf"/webhooks/{discord_server.application_id}/{record.token}", timeout=10
    )
    assert follow_up.json["content"] == "done at last"
    assert "authorization" not in {key.lower() for key in follow_up.headers}


async def test_slash_options_are_typed_and_validated_like_text(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    await discord_bot()
    record = await discord_server.interaction_slash(
        "lab", {"text": "hi", "times": 3}, user="bob", subcommand="echo"
    )
    call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert call.json["data"]["content"] == "hi hi hi"


async def test_a_time_zone_being_typed_is_completed_from_the_iana_names_and_nothing_is_stored(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    from plugins.meetings.plugin import Meetings

    bot = await discord_bot(plugins=(Meetings,))
    puts = discord_server.find("PUT", rf"/applications/{discord_server.application_id}/commands$")
    commands = {command["name"]: command for command in puts[-1].json}
    zone = next(option for option in commands["timezone"]["options"] if option["name"] == "zone")
    assert zone["autocomplete"] is True and "choices" not in zone
    schedule = next(o for o in commands["meeting"]["options"] if o["name"] == "schedule")
    flags = {option["name"]: option.get("autocomplete", False) for option in schedule["options"]}
    assert flags["tz"] is True and not any(flags[name] for name in flags if name != "tz")

    record = await discord_server.interaction_slash("timezone", {"zone": "amst"}, user="bob", focused="zone")
    call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert call.json == {
        "type": 8,
        "data": {"choices": [{"name": "Europe/Amsterdam", "value": "Europe/Amsterdam"}]},
    }
    record = await discord_server.interaction_slash(
        "meeting",
        {"title": "Sync", "start": "friday 10:00", "tz": "york"},
        user="bob",
        subcommand="schedule",
        focused="tz",
    )
    await discord_server.wait_for_ack(record)
    assert record.autocomplete_choices == [{"name": "America/New_York", "value": "America/New_York"}]
    record = await discord_server.interaction_slash("timezone", {"zone": ""}, user="bob", focused="zone")
    await discord_server.wait_for_ack(record)
    assert record.autocomplete_choices is not None and len(record.autocomplete_choices) == 25
    assert record.autocomplete_choices[0] == {"name": "UTC", "value": "UTC"}
    async with bot.db.session() as session:  # suggestions are not commands: no activity, nobody's zone set
        assert (await session.execute(select(ActivityEvent))).first() is None
    assert not discord_server.find("POST", r"/webhooks/")  # and no follow-up: the one answer was the choices


async def test_an_id_being_typed_is_completed_from_the_communitys_polls_meetings_and_items(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    from plugins.meetings.plugin import Meetings
    from plugins.polls.plugin import Polls
    from plugins.repertoire.plugin import Repertoire

    bot = await discord_bot(plugins=(Polls, Meetings, Repertoire))
    puts = discord_server.find("PUT", rf"/applications/{discord_server.application_id}/commands$")
    poll = next(command for command in puts[-1].json if command["name"] == "poll")
    vote = next(option for option in poll["options"] if option["name"] == "vote")
    flags = {option["name"]: option.get("autocomplete", False) for option in vote["options"]}
    assert flags == {"poll_id": True, "choices": False}

    async def said(user: str, text: str) -> None:
        before = len(discord_server.bot_messages("general"))
        await discord_server.message_create("general", user, text)
        for _ in range(200):
            if len(discord_server.bot_messages("general")) > before:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"no answer to {text!r}")

    async def typed(user: str, group: str, sub: str, options: dict[str, Any], focused: str) -> Any:
        record = await discord_server.interaction_slash(
            group, options, user=user, subcommand=sub, focused=focused
        )
        await discord_server.wait_for_ack(record)
        return record.autocomplete_choices

    await said("bob", '!poll create "Leakage first?" Yes No')
    await said("bob", '!poll create "Which metering pilot?" North South')
    await said("bob", '!poll create "Tariff review date?" May June')
    await said("bob", "!poll close 3")
    assert await typed("bob", "poll", "close", {"poll_id": ""}, "poll_id") == [
        {"name": "#2 Which metering pilot?", "value": 2},
        {"name": "#1 Leakage first?", "value": 1},
    ]
    assert await typed("carol", "poll", "close", {"poll_id": ""}, "poll_id") == []  # not hers to close
    assert await typed("carol", "poll", "vote", {"poll_id": "LEAK", "choices": "1"}, "poll_id") == [
        {"name": "#1 Leakage first?", "value": 1}
    ]
    assert await typed("carol", "poll", "results", {"poll_id": "#3"}, "poll_id") == [
        {"name": "#3 Tariff review date? · closed", "value": 3}
    ]

    first = (datetime.now(UTC) + timedelta(days=20)).replace(hour=14, minute=0, second=0, microsecond=0)
    demo = first + timedelta(days=15, hours=-4, minutes=-30)
    await said("bob", f'!meeting schedule "Monthly call" {first:%Y-%m-%dT%H:%M} --every monthly --tz UTC')
    await said("bob", f'!meeting schedule "Leak detection demo" {demo:%Y-%m-%dT%H:%M} --tz UTC')
    assert await typed("carol", "meeting", "show", {"meeting_id": "de mo"}, "meeting_id") == [
        {"name": f"#2 Leak detection demo · {demo:%a} {demo.day} {demo:%b} 09:30 UTC", "value": 2}
    ]
    choices = await typed("carol", "meeting", "rsvp", {"meeting_id": "", "answer": "yes"}, "meeting_id")
    assert [choice["value"] for choice in choices] == [2, 1]
    assert await typed("carol", "meeting", "cancel", {"meeting_id": ""}, "meeting_id") == []  # bob's
    moved = await typed("bob", "meeting", "move", {"meeting_id": "", "start": "x"}, "meeting_id")
    assert [choice["value"] for choice in moved] == [2, 1]
    assert choices[1]["name"].startswith("#1 Monthly call · monthly")

    await said("bob", '!share story "Finding leaks by night" We listened to the pipes at 3 am #leakage')
    await said("bob", '!share tool "Leak 100% logger" https://example.org/logger')
    await said("bob", "!repertoire remove 2")
    assert await typed("carol", "repertoire", "show", {"item_id": "leak"}, "item_id") == [
        {"name": "#1 Finding leaks by night · story", "value": 1}
    ]
    assert await typed("carol", "repertoire", "show", {"item_id": "100%"}, "item_id") == []
    assert await typed("carol", "repertoire", "restore", {"item_id": ""}, "item_id") == []  # for moderators
    assert await typed("alice", "repertoire", "restore", {"item_id": "100%"}, "item_id") == [
        {"name": "#2 Leak 100% logger · tool", "value": 2}
    ]
    await bot.pipeline.journal.flush()
    carol = next(uid for uid, user in discord_server.users.items() if user["username"] == "carol")
    async with bot.db.session() as session:  # typing is not acting: nothing of carol's was counted
        row = (
            await session.execute(select(MemberRow).where(MemberRow.platform_id == str(carol)))
        ).scalar_one()
        counted = (await session.execute(select(ActivityEvent.member_id))).scalars().all()
    assert counted and row.id not in counted
    await said("carol", '!share practice "Leak walks" Walk the mains at dawn')
    mine = await typed("carol", "repertoire", "edit", {"item_id": "leak", "text": "x"}, "item_id")
    assert mine == [{"name": "#3 Leak walks · practice", "value": 3}]  # bob's are not carol's to edit
    anyone = await typed("alice", "repertoire", "remove", {"item_id": ""}, "item_id")
    assert [choice["value"] for choice in anyone] == [3, 1]  # a moderator may remove any


async def test_a_slash_answer_longer_than_a_message_arrives_whole_in_pieces(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    """Discord takes 2,000 characters a message: the rest follows the interaction's answer (a whole
    ``/help`` is ~4,500), instead of being cut off."""
    await discord_bot()
    record = await discord_server.interaction_slash(
        "lab", {"text": "leak " * 99 + "end", "times": 6}, user="bob", subcommand="echo"
    )
    call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    followup = await discord_server.wait_for_request("POST", r"/webhooks/\d+/[^/]+$")
    pieces = [call.json["data"]["content"], followup.json["content"]]
    assert all(len(piece) <= 2000 for piece in pieces)
    assert " ".join(pieces).split() == ("leak " * 99 + "end ").split() * 6


async def test_prefix_command_with_message_content(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    await discord_bot()
    message = await discord_server.message_create("general", "bob", "!about")
    sent = await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    assert sent.json["content"].startswith("I am copbot, a helper for Communities of Practice")
    assert int(sent.json["message_reference"]["message_id"]) == int(message["id"])


async def test_member_text_never_pings_everyone(discord_server: FakeDiscord, discord_bot: BotFactory) -> None:
    await discord_bot()
    await discord_server.message_create("general", "bob", '!lab echo "@everyone look <@&1> @here"')
    sent = await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    assert sent.json["content"] == "@\u200beveryone look <@\u200b&1> @\u200bhere"  # not even styled as pings
    assert sent.json["allowed_mentions"]["parse"] == []
    assert sent.json["allowed_mentions"].get("users", []) == []
    assert sent.json["allowed_mentions"].get("roles", []) == []


async def test_member_join_reaches_a_listener_and_only_the_newcomer_is_pinged(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    await discord_bot()
    newcomer = discord_server.add_user("dana")
    await discord_server.member_add(None, "dana")
    sent = await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    assert sent.json["content"] == f"Welcome <@{newcomer['id']}>!"
    assert [str(user) for user in sent.json["allowed_mentions"]["users"]] == [newcomer["id"]]
    assert [type(event).__name__ for event in Lab.seen] == ["MemberJoined"]


async def test_members_who_joined_while_copbot_was_down_get_the_join_handling(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    bot = await discord_bot()
    assert Lab.seen == []  # the first start takes note of who is there: nobody is a newcomer
    await bot.stop()
    discord_server.add_user("erin")
    discord_server.add_member("erin")
    await discord_bot()
    sent = await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    assert sent.json["content"] == f"Welcome <@{discord_server.user_id('erin')}>!"
    assert [event.member.id for event in Lab.seen] == [discord_server.user_id("erin")]


async def test_a_reaction_reaches_a_listener(discord_server: FakeDiscord, discord_bot: BotFactory) -> None:
    await discord_bot()
    message = await discord_server.message_create("general", "alice", "a good practice")
    await discord_server.reaction_add(message["id"], "bob", "📌")
    for _ in range(100):
        if Lab.seen:
            break
        await asyncio.sleep(0.02)
    bob = discord_server.user_id("bob")
    assert [(e.emoji, e.member.id, e.message_id) for e in Lab.seen] == [("📌", bob, message["id"])]


async def test_a_button_click_after_a_restart_is_routed_to_its_plugin(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    bot = await discord_bot()
    await discord_server.message_create("general", "bob", "!lab vote")
    sent = await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    custom_ids = [c["custom_id"] for row in sent.json["components"] for c in row["components"]]
    assert custom_ids == ["lab:vote:7:yes", "lab:vote:7:no"]
    posted = discord_server.bot_messages("general")[-1]
    await bot.stop()

    await discord_bot()  # a new process: no View of the old one is in memory
    record = await discord_server.interaction_component("lab:vote:7:no", posted["id"], "alice")
    call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert (call.json["data"]["content"], call.json["data"]["flags"]) == ("counted no", EPHEMERAL)
    assert [event.custom_id for event in Lab.seen] == ["lab:vote:7:no"]
    assert Other.clicks == []


async def test_a_gateway_reconnect_ends_in_resume(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    bot = await discord_bot()
    await discord_server.send_reconnect()
    assert 6 in [frame.op for frame in discord_server.gateway_log]  # RESUME
    await discord_server.message_create("general", "bob", "!about")
    await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    assert bot.services.adapters["discord"].connected


async def test_a_direct_message_opens_a_dm_channel(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    from bot.model import Member

    bot = await discord_bot()
    adapter = bot.services.adapters["discord"]
    bob = Member("discord", discord_server.user_id("bob"), "bob")
    await adapter.send_direct(bob, Content("Welcome to the Water CoP"))
    opened = await discord_server.wait_for_request("POST", r"/users/@me/channels$")
    assert str(opened.json["recipient_id"]) == bob.id
    sent = await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    assert sent.json["content"] == "Welcome to the Water CoP"


async def test_a_failing_handler_gets_an_ephemeral_apology_and_the_bot_keeps_going(
    discord_server: FakeDiscord, discord_bot: BotFactory, copbot_errors: HandlerErrors
) -> None:
    await discord_bot()
    record = await discord_server.interaction_slash("lab", {}, user="bob", subcommand="crash")
    call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert call.json["data"]["flags"] == EPHEMERAL
    assert call.json["data"]["content"].startswith("Sorry, something went wrong on my side")
    logged = await copbot_errors.wait_for_errors(1)
    assert "lab crash" in logged[0].message and isinstance(logged[0].exc, RuntimeError)
    copbot_errors.clear()  # expected here; anywhere else it fails the test
    record = await discord_server.interaction_slash("about", user="bob")
    await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")


async def test_a_native_poll_is_sent_and_a_vote_comes_back_as_poll_voted(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    await discord_bot()
    await discord_server.message_create("general", "bob", '!lab poll "Next topic?" Leakage Metering Tariffs')
    sent = await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    poll = sent.json["poll"]
    assert poll["question"]["text"] == "Next topic?"
    assert poll["duration"] == 768  # no deadline: open in Discord's UI as long as Discord allows
    assert [answer["poll_media"]["text"] for answer in poll["answers"]] == ["Leakage", "Metering", "Tariffs"]
    message_id = discord_server.bot_messages("general")[-1]["id"]
    await discord_server.poll_vote_add(message_id, "alice", 2)
    for _ in range(100):
        if Lab.seen:
            break
        await asyncio.sleep(0.02)
    assert [(e.poll_message_id, e.answers) for e in Lab.seen] == [(message_id, (1,))]


async def test_a_poll_with_more_answers_than_discord_allows_falls_back_to_text(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    await discord_bot()
    answers = " ".join(f"A{n}" for n in range(1, 16))
    await discord_server.message_create("general", "bob", f'!lab poll "Which?" {answers}')
    sent = await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    assert "poll" not in sent.json
    assert sent.json["content"].startswith("Which?")
    long = "Pressure management in district metered areas with smart valves"  # 64: more than Discord takes
    start = len(discord_server.requests)
    await discord_server.message_create("general", "bob", f'!lab poll "Which?" "{long}" Metering')
    sent = await discord_server.wait_for_request("POST", r"/channels/\d+/messages$", start=start)
    assert "poll" not in sent.json  # buttons: a native poll would cut the answer short


async def test_level_roles_are_mirrored_in_one_call_and_events_are_created(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    from datetime import UTC, datetime, timedelta

    bot = await discord_bot()
    adapter = bot.services.adapters["discord"]
    carol = Member("discord", discord_server.user_id("carol"), "carol")
    assert await adapter.set_level_role("water", carol, "active") is True  # type: ignore[attr-defined]
    patch = await discord_server.wait_for_request("PATCH", rf"/guilds/\d+/members/{carol.id}")
    assert [str(role) for role in patch.json["roles"]] == [discord_server.role_id("Member")]  # core role gone
    assert await adapter.set_level_role("water", carol, "peripheral") is False  # type: ignore[attr-defined]
    start = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    room = Room("discord", discord_server.channel_id("general"), community_id="water")
    event_id = await adapter.create_event(  # type: ignore[attr-defined]
        room,
        title="Leakage CoP call",
        start=start,
        end=start + timedelta(hours=1),
        where="https://meet.example",
    )
    created = await discord_server.wait_for_request("POST", r"/guilds/\d+/scheduled-events$")
    assert created.json["name"] == "Leakage CoP call"
    assert created.json["entity_metadata"] == {"location": "https://meet.example"}
    assert event_id.isdigit()


async def test_commands_sync_per_guild_when_configured(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    await discord_bot(command_guilds=[discord_server.guild_id])
    app, guild = discord_server.application_id, discord_server.guild_id
    assert len(discord_server.find("PUT", rf"/applications/{app}/guilds/{guild}/commands$")) == 1
    assert discord_server.find("PUT", rf"/applications/{app}/commands$") == []


async def test_healthz_reports_the_gateway(discord_server: FakeDiscord, discord_bot: BotFactory) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from bot.web.app import create_app

    bot = await discord_bot()
    async with TestClient(TestServer(create_app(bot.services))) as client:
        assert (await (await client.get("/healthz")).json())["platforms"] == {"discord": True}
        await bot.services.adapters["discord"].stop()
        response = await client.get("/healthz")
        assert response.status == 503 and (await response.json())["platforms"] == {"discord": False}


async def test_without_the_message_content_intent_messages_still_count_as_activity(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    bot = await discord_bot(message_content=False)
    await discord_server.message_create("general", "bob", "!about")
    for _ in range(100):
        await bot.pipeline.journal.flush()
        async with bot.db.session() as session:
            kinds = (await session.execute(select(ActivityEvent.kind))).scalars().all()
        if kinds:
            break
        await asyncio.sleep(0.02)
    assert kinds == ["message"]
    assert discord_server.find("POST", r"/channels/\d+/messages$") == []  # no text, so no command


async def test_a_select_menu_choice_is_routed_with_its_value(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    await discord_bot()
    await discord_server.message_create("general", "bob", "!lab pick")
    sent = await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    menu = sent.json["components"][0]["components"][0]
    assert (menu["type"], menu["custom_id"]) == (3, "lab:pick:1")
    assert [option["value"] for option in menu["options"]] == ["utility", "research"]
    posted = discord_server.bot_messages("general")[-1]
    record = await discord_server.interaction_component(
        "lab:pick:1", posted["id"], "bob", values=["research"]
    )
    call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert call.json["data"]["content"] == "counted 1"
    assert [(event.custom_id, event.values) for event in Lab.seen] == [("lab:pick:1", ("research",))]


async def test_a_newcomer_is_welcomed_and_onboarded_with_a_select_menu(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    from plugins.profiles.models import Profile
    from plugins.profiles.plugin import Profiles
    from plugins.welcome.plugin import Welcome

    bot = await discord_bot(plugins=(Welcome, Profiles))
    dana = discord_server.add_user("dana")
    await discord_server.member_add(None, "dana")
    welcome = await discord_server.wait_for_request(
        "POST", rf"/channels/{discord_server.channel_id('general')}/messages$"
    )
    assert welcome.json["content"].startswith(f"Welcome to Water CoP, <@{dana['id']}>!")
    assert [str(user) for user in welcome.json["allowed_mentions"]["users"]] == [dana["id"]]
    opened = await discord_server.wait_for_request("POST", r"/users/@me/channels$")
    assert str(opened.json["recipient_id"]) == dana["id"]
    dm_channel = discord_server.dm_channel("dana")
    question = await discord_server.wait_for_request("POST", rf"/channels/{dm_channel}/messages$")
    assert "(1/6) What kind of organisation do you work for?" in question.json["content"]
    menu = question.json["components"][0]["components"][0]
    assert menu["type"] == 3 and menu["custom_id"].startswith("profiles:orgtype:")
    assert [option["value"] for option in menu["options"]][:3] == ["utility", "industry", "regulator"]

    posted = discord_server.bot_messages(dm_channel)[-1]
    record = await discord_server.interaction_component(
        menu["custom_id"], posted["id"], "dana", values=["regulator"]
    )
    ack = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert ack.json["data"]["content"] == "Noted: Regulator" and ack.json["data"]["flags"] == EPHEMERAL
    second = await discord_server.wait_for_request(
        "POST",
        rf"/channels/{dm_channel}/messages$",
        predicate=lambda r: "(2/6)" in (r.json or {}).get("content", ""),
    )
    assert second.json["content"] == "(2/6) What is your organisation called?"
    await discord_server.message_create(dm_channel, "dana", "Water Authority Rhine")
    await discord_server.wait_for_request(
        "POST",
        rf"/channels/{dm_channel}/messages$",
        predicate=lambda r: "(3/6)" in (r.json or {}).get("content", ""),
    )
    for _ in range(100):  # the question is sent inside the unit of work; its commit follows at once
        async with bot.db.session() as session:
            profiles = [(p.org_type, p.org) for p in (await session.execute(select(Profile))).scalars()]
        if profiles and profiles[0][1]:
            break
        await asyncio.sleep(0.02)
    assert profiles == [("regulator", "Water Authority Rhine")]


async def test_polls_are_native_when_they_fit_and_buttons_otherwise(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    from plugins.polls.models import PollVote
    from plugins.polls.plugin import Polls

    bot = await discord_bot(plugins=(Polls,))
    await discord_server.message_create(
        "general", "bob", '!poll create "Next topic?" Leakage Metering Tariffs'
    )
    native = await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    assert [a["poll_media"]["text"] for a in native.json["poll"]["answers"]] == [
        "Leakage",
        "Metering",
        "Tariffs",
    ]
    assert "components" not in native.json or native.json["components"] == []
    # the native poll shows the question and options: the text only what it cannot, not them twice
    assert native.json["content"] == "📊 Poll #1. Vote with /poll vote 1 <number>."
    native_id = discord_server.bot_messages("general")[-1]["id"]
    await discord_server.poll_vote_add(native_id, "alice", 2)  # Discord's answer ids start at 1

    options = " ".join(f"Option{n}" for n in range(1, 16))
    await discord_server.message_create("general", "bob", f'!poll create "Which of fifteen?" {options}')
    buttons = await discord_server.wait_for_request(
        "POST", r"/channels/\d+/messages$", predicate=lambda r: "fifteen" in (r.json or {}).get("content", "")
    )
    assert "poll" not in buttons.json
    assert "15. Option15" in buttons.json["content"]  # no native poll: the text keeps the options
    ids = [c["custom_id"] for row in buttons.json["components"] for c in row["components"]]
    assert ids == [f"polls:2:{n}" for n in range(15)]
    posted = discord_server.bot_messages("general")[-1]
    record = await discord_server.interaction_component("polls:2:14", posted["id"], "carol")
    call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert (call.json["data"]["content"], call.json["data"]["flags"]) == (
        "Your vote in poll #2: Option15",
        EPHEMERAL,
    )
    for _ in range(100):
        async with bot.db.session() as session:
            votes = sorted(
                (v.poll_id, v.choices) for v in (await session.execute(select(PollVote))).scalars()
            )
        if len(votes) == 2:
            break
        await asyncio.sleep(0.02)
    assert votes == [(1, "1"), (2, "14")]


async def test_a_native_poll_stays_open_in_discord_until_copbot_closes_it(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    from bot.clock import FakeClock
    from plugins.polls.plugin import Polls

    clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    await discord_bot(plugins=(Polls,), clock=clock)
    await discord_server.message_create(
        "general", "bob", '!poll create "Next topic?" Leakage Metering --closes 2h20m'
    )
    native = await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    # Discord counts a poll's duration in whole hours: 2 would end voting in its UI 20 minutes before
    # copbot's deadline; copbot ends the native poll itself when the poll closes.
    assert native.json["poll"]["duration"] == 3


async def test_when_a_poll_closes_is_a_discord_timestamp_every_reader_sees_in_their_zone(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    from bot.clock import FakeClock
    from plugins.polls.plugin import Polls

    clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    await discord_bot(plugins=(Polls,), clock=clock, community={"timezone": "Europe/Berlin"})
    await discord_server.message_create(
        "general", "bob", '!poll create "Next topic?" Leakage Metering --closes "2026-03-04 17:00"'
    )
    posted = await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    closes = int(datetime(2026, 3, 4, 16, 0, tzinfo=UTC).timestamp())  # 17:00 in Berlin, as bob typed it
    assert posted.json["content"].endswith(f"Closes <t:{closes}:F> (<t:{closes}:R>).")
    start = len(discord_server.requests)
    await discord_server.message_create("general", "carol", "!poll list")
    listed = await discord_server.wait_for_request("POST", r"/channels/\d+/messages$", start=start)
    assert f"closes <t:{closes}:F> (<t:{closes}:R>)" in listed.json["content"]


async def test_an_anonymous_vote_is_confirmed_privately_and_ids_are_range_checked(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    from plugins.polls.models import PollVote, PollVoter
    from plugins.polls.plugin import Polls

    bot = await discord_bot(plugins=(Polls,))
    puts = discord_server.find("PUT", rf"/applications/{discord_server.application_id}/commands$")
    poll_group = next(command for command in puts[-1].json if command["name"] == "poll")
    vote = next(option for option in poll_group["options"] if option["name"] == "vote")
    poll_id = next(option for option in vote["options"] if option["name"] == "poll_id")
    assert (poll_id["min_value"], poll_id["max_value"]) == (1, 2**53)  # the client refuses the rest

    await discord_server.message_create("general", "alice", '!poll create "Adopt it?" Yes No --anonymous')
    await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    record = await discord_server.interaction_slash(
        "poll", {"poll_id": 1, "choices": "2"}, user="bob", subcommand="vote"
    )
    call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert (call.json["data"]["content"], call.json["data"]["flags"]) == (
        "Your vote in poll #1: No (anonymous)",
        EPHEMERAL,
    )

    await discord_server.message_create("general", "carol", "!poll vote 1 1")  # typed in the channel
    in_channel = await discord_server.wait_for_request(
        "POST",
        r"/channels/\d+/messages$",
        predicate=lambda r: "recorded" in (r.json or {}).get("content", ""),
    )
    assert in_channel.json["content"] == "Your vote in poll #1 is recorded."
    private = await discord_server.wait_for_request(
        "POST",
        r"/channels/\d+/messages$",
        predicate=lambda r: "(anonymous)" in (r.json or {}).get("content", ""),
    )
    assert private.json["content"] == "Your vote in poll #1: Yes (anonymous)"
    assert discord_server.find("POST", r"/users/@me/channels$")  # by direct message
    public = [m for m in discord_server.bot_messages("general") if not (m.get("flags") or 0) & EPHEMERAL]
    channel_text = " ".join(m.get("content", "") for m in public)
    assert "Yes (anonymous)" not in channel_text and "No (anonymous)" not in channel_text
    for _ in range(100):  # the reply goes out before the handler's unit of work commits
        async with bot.db.session() as session:
            voters = len((await session.execute(select(PollVoter))).all())
            assert (await session.execute(select(PollVote))).all() == []
        if voters == 2:
            break
        await asyncio.sleep(0.02)
    assert voters == 2


async def _meeting_event(adapter: Any, discord_server: FakeDiscord, start: datetime) -> tuple[Room, str]:
    """A scheduled event for a meeting, created the way the meetings plugin does."""
    room = Room("discord", discord_server.channel_id("general"), community_id="water")
    event_id = await adapter.create_event(
        room,
        title="Leakage CoP call",
        start=start,
        end=start + timedelta(hours=1),
        where="https://meet.example",
    )
    return room, event_id


async def test_a_scheduled_event_is_updated_then_cancelled_and_a_second_cancel_is_fine(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    bot = await discord_bot()
    adapter = bot.services.adapters["discord"]
    assert Capability.SCHEDULED_EVENTS in adapter.capabilities and isinstance(adapter, EventAdapter)
    start = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    room, event_id = await _meeting_event(adapter, discord_server, start)

    moved = start + timedelta(days=7, hours=1)
    await adapter.update_event(
        room,
        event_id,
        title="Leakage CoP call (moved)",
        start=moved,
        end=moved + timedelta(minutes=90),
        where="Room 4, Utrecht",
        description="Agenda: pressure management",
    )
    patch = await discord_server.wait_for_request("PATCH", rf"/guilds/\d+/scheduled-events/{event_id}$")
    assert patch.status == 200
    assert datetime.fromisoformat(patch.json["scheduled_start_time"]) == moved
    assert datetime.fromisoformat(patch.json["scheduled_end_time"]) == moved + timedelta(minutes=90)
    assert patch.json["entity_metadata"] == {"location": "Room 4, Utrecht"}
    assert (patch.json["name"], patch.json["description"]) == (
        "Leakage CoP call (moved)",
        "Agenda: pressure management",
    )
    stored = discord_server.guilds[discord_server.guild_id].scheduled_events[event_id]
    assert stored["entity_metadata"] == {"location": "Room 4, Utrecht"}

    await adapter.cancel_event(room, event_id)
    deleted = await discord_server.wait_for_request("DELETE", rf"/guilds/\d+/scheduled-events/{event_id}$")
    assert deleted.status == 204
    assert event_id not in discord_server.guilds[discord_server.guild_id].scheduled_events
    await adapter.cancel_event(room, event_id)  # already gone: not an error
    deletes = discord_server.find("DELETE", rf"/guilds/\d+/scheduled-events/{event_id}$")
    assert [call.status for call in deletes] == [204, 404]


async def test_marking_an_event_interested_reaches_a_listener_also_after_a_restart(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    bot = await discord_bot()
    assert (discord_server.intents or 0) & (1 << 16)  # GUILD_SCHEDULED_EVENTS
    _, event_id = await _meeting_event(
        bot.services.adapters["discord"], discord_server, datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    )
    await discord_server.scheduled_event_user_add(event_id, "bob")
    [first] = await seen_by_lab(EventInterest, 1)
    general = discord_server.channel_id("general")
    bob, carol = discord_server.user_id("bob"), discord_server.user_id("carol")
    assert (first.member.id, first.member.display_name, first.platform_event_id, first.interested) == (
        bob,
        "Bob",
        event_id,
        True,
    )
    assert (first.room.id, first.room.community_id) == (general, "water")
    await bot.stop()

    await discord_bot()  # a new process: the event was created by the previous one
    await discord_server.scheduled_event_user_add(event_id, "carol")
    await discord_server.scheduled_event_user_remove(event_id, "bob")
    events = await seen_by_lab(EventInterest, 3)
    assert [(e.member.id, e.platform_event_id, e.interested) for e in events] == [
        (bob, event_id, True),
        (carol, event_id, True),
        (bob, event_id, False),
    ]
    assert len({e.event_id for e in events}) == 3  # each delivery is its own event


async def test_interest_of_a_member_discord_py_has_not_cached_still_arrives(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    """Without the members intent discord.py knows no member, and its own ``on_scheduled_event_user_add``
    would drop the payload; copbot reads it itself and looks the user up."""
    bot = await discord_bot(members=False)
    _, event_id = await _meeting_event(
        bot.services.adapters["discord"], discord_server, datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    )
    await discord_server.scheduled_event_user_add(event_id, "bob")
    [event] = await seen_by_lab(EventInterest, 1)
    assert (event.member.id, event.member.display_name, event.platform_event_id) == (
        discord_server.user_id("bob"),
        "Bob",
        event_id,
    )
    assert discord_server.find("GET", rf"/users/{discord_server.user_id('bob')}$")


async def test_an_edit_patches_the_message_keeps_its_buttons_and_pings_nobody(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    bot = await discord_bot()
    adapter = bot.services.adapters["discord"]
    assert Capability.EDITS in adapter.capabilities and isinstance(adapter, EditAdapter)
    await discord_server.message_create("general", "bob", "!lab vote")
    await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    posted = discord_server.bot_messages("general")[-1]
    room = Room("discord", posted["channel_id"], community_id="water")
    bob = Member("discord", discord_server.user_id("bob"), "Bob")
    buttons = (Button("Yes", "lab:vote:7:yes"), Button("No", "lab:vote:7:no"))

    await adapter.edit(
        room,
        posted["id"],
        Content(
            f"Pick one — 1 vote so far, first by <@{bob.id}> @everyone",
            mentions=(bob,),
            card=Card("Tally", (("Yes", "1"), ("No", "0"))),
            buttons=buttons,
        ),
    )
    patch = await discord_server.wait_for_request("PATCH", rf"/channels/{room.id}/messages/{posted['id']}$")
    assert patch.status == 200
    # the member is mentioned (not pinged: an edit pings nobody); the mass mention is broken, as when sent
    assert patch.json["content"] == f"Pick one — 1 vote so far, first by <@{bob.id}> @\u200beveryone"
    assert [c["custom_id"] for row in patch.json["components"] for c in row["components"]] == [
        "lab:vote:7:yes",
        "lab:vote:7:no",
    ]
    assert patch.json["embeds"][0]["title"] == "Tally"
    mentions = patch.json["allowed_mentions"]
    assert mentions["parse"] == [] and mentions.get("users", []) == [] and mentions.get("roles", []) == []
    stored = discord_server.messages[posted["id"]]
    assert stored["content"].startswith("Pick one — 1 vote") and stored["edited_timestamp"]

    record = await discord_server.interaction_component("lab:vote:7:yes", posted["id"], "alice")
    call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert call.json["data"]["content"] == "counted yes"  # the kept buttons still route to their plugin

    await adapter.edit(room, posted["id"], Content("Closed"))  # no card, no buttons: both go
    last = discord_server.last("PATCH", rf"/channels/{room.id}/messages/{posted['id']}$")
    assert (last.json["content"], last.json["embeds"], last.json["components"]) == ("Closed", [], [])

    await discord_server.message_delete(posted["id"])
    await adapter.edit(room, posted["id"], Content("Too late"))  # gone: logged at debug, no error
    gone = discord_server.last("PATCH", rf"/channels/{room.id}/messages/{posted['id']}$")
    assert gone.status == 404


async def test_times_are_written_for_each_reader_s_zone(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    bot = await discord_bot()
    adapter = bot.services.adapters["discord"]
    assert Capability.TIMESTAMPS in adapter.capabilities and isinstance(adapter, TimestampAdapter)
    start = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    unix = int(start.timestamp())
    assert adapter.timestamp(start) == f"<t:{unix}:F> (<t:{unix}:R>)"
    assert adapter.timestamp(start.replace(tzinfo=None)) == adapter.timestamp(start)  # naive means UTC


def _room(discord_server: FakeDiscord, channel: str = "general") -> Room:
    return Room("discord", discord_server.channel_id(channel), community_id="water")


async def test_a_message_is_fetched_again_with_its_author_and_linked(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    bot = await discord_bot()
    adapter = bot.services.adapters["discord"]
    assert isinstance(adapter, MessageSource)
    room = _room(discord_server)
    posted = await discord_server.message_create("general", "bob", "Log pressure at night: **leaks** show")
    message = await adapter.fetch_message(room, posted["id"])
    assert message is not None
    assert (message.id, message.room, message.text) == (posted["id"], room, posted["content"])  # as typed
    bob = discord_server.user_id("bob")
    assert (message.author.id, message.author.display_name, message.author.is_bot) == (bob, "Bob", False)
    assert discord_server.last("GET", rf"/channels/{room.id}/messages/{posted['id']}$").status == 200
    guild = discord_server.guild_id
    assert adapter.permalink(room, posted["id"]) == (
        f"https://discord.com/channels/{guild}/{room.id}/{posted['id']}"
    )

    await discord_server.message_create("general", "bob", "!about")
    await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    own = discord_server.bot_messages("general")[-1]
    mine = await adapter.fetch_message(room, own["id"])
    assert mine is not None and mine.author.is_bot and mine.text.startswith("I am copbot")

    await discord_server.message_delete(posted["id"])
    assert await adapter.fetch_message(room, posted["id"]) is None  # 404: gone
    assert await adapter.fetch_message(room, "not-an-id") is None

    dm_channel = discord_server.dm_channel("bob")
    said = await discord_server.message_create(dm_channel, "bob", "a thought, privately")
    direct = Room("discord", dm_channel, community_id="water", is_direct=True)
    in_dm = await adapter.fetch_message(direct, said["id"])
    assert in_dm is not None and (in_dm.author.id, in_dm.text) == (bob, "a thought, privately")
    assert (
        adapter.permalink(direct, said["id"]) == f"https://discord.com/channels/@me/{dm_channel}/{said['id']}"
    )


async def test_without_the_message_content_intent_a_fetched_message_comes_without_its_text(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    discord_server.privileged_intents = Intent.PRIVILEGED & ~Intent.MESSAGE_CONTENT  # not approved
    bot = await discord_bot(message_content=False)
    adapter = bot.services.adapters["discord"]
    room = _room(discord_server)
    posted = await discord_server.message_create("general", "bob", "a good practice")
    message = await adapter.fetch_message(room, posted["id"])
    assert message is not None
    assert (message.author.id, message.text) == (discord_server.user_id("bob"), "")  # Discord withheld it


async def test_an_attachment_is_sent_as_a_file_in_a_message_a_response_and_a_follow_up(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    bot = await discord_bot()
    assert Capability.FILES in bot.services.adapters["discord"].capabilities
    await discord_server.message_create("general", "bob", "!lab export")
    sent = await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    assert sent.headers["Content-Type"].startswith("multipart/form-data")
    assert sent.json["content"] == "Your export"
    assert [(f.filename, f.data) for f in sent.files] == [(EXPORT.filename, EXPORT.data)]
    stored = discord_server.bot_messages("general")[-1]
    assert [(a["filename"], a["size"]) for a in stored["attachments"]] == [
        ("repertoire.csv", len(EXPORT.data))
    ]

    record = await discord_server.interaction_slash("lab", {"copies": 2}, user="bob", subcommand="export")
    response = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert response.json["data"]["content"] == "Your export"
    assert [(f.filename, f.data) for f in response.files] == [(EXPORT.filename, EXPORT.data)]
    follow_up = await discord_server.wait_for_request(
        "POST", rf"/webhooks/{discord_server.application_id}/{record.token}"
    )
    assert follow_up.json["content"] == "Your export"
    assert [(f.filename, f.data) for f in follow_up.files] == [(EXPORT.filename, EXPORT.data)]


async def test_card_text_is_escaped_as_data_and_message_text_only_where_it_could_mislead(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    bot = await discord_bot()
    adapter = bot.services.adapters["discord"]
    written = "**bold** [link](http://x) @everyone <@&123> # Header"
    card = Card("# " + written, ((written, "-# " + written),), footer="copbot's own words")
    await adapter.send(_room(discord_server), Content(written, card=card))
    sent = await discord_server.wait_for_request("POST", r"/channels/\d+/messages$")
    escaped = "\\*\\*bold\\*\\* \\[link](http://x) @\u200beveryone <@\u200b&123> # Header"
    [embed] = sent.json["embeds"]
    assert embed["title"] == "\\# " + escaped  # no header, no bold, no masked link, no @everyone
    assert embed["fields"] == [{"name": escaped, "value": "\\-# " + escaped, "inline": False}]
    assert embed["footer"]["text"] == "copbot's own words"
    # message text keeps its looks (bold, a header), but no masked link and nothing styled as a ping
    assert sent.json["content"] == "**bold** \\[link](http://x) @\u200beveryone <@\u200b&123> # Header"
    assert sent.json["allowed_mentions"]["parse"] == []


async def test_a_direct_chat_belongs_to_the_community_of_the_members_guild(
    discord_server: FakeDiscord, discord_errors: HandlerErrors, copbot_errors: HandlerErrors, tmp_path: Path
) -> None:
    """Of several communities, a direct chat is the community whose guild its member is in. Every direct
    chat was the first guild's: zoe, only in Waste's guild, read Water's experts from hers. A chat of no
    community is refused, never answered from every community's profiles."""
    from plugins.profiles.plugin import Profiles  # the plugin whose answer differs by community

    waste = discord_server.add_guild("waste guild")
    discord_server.add_member("zoe", guild=waste)
    settings = two_guilds(discord_server, tmp_path, waste)
    bot = CopBot(settings, plugins=[Profiles], run_scheduler_loop=False)
    with point_discord_py_at(discord_server):
        await bot.start()
        discord_errors.install(bot.services.adapters["discord"].client)  # type: ignore[attr-defined]
        try:
            general = discord_server.channel_id("general")
            await discord_server.message_create(general, "bob", "!profile set expertise leak detection")
            saved = await discord_server.wait_for_request("POST", rf"/channels/{general}/messages$")
            assert saved.json["content"].startswith("Saved expertise"), saved.json
            discord_server.add_user("yves")  # in neither guild: his chat belongs to no community
            answers = {}
            for who in ("zoe", "bob", "yves"):
                chat = discord_server.dm_channel(who)
                await discord_server.message_create(chat, who, "!experts leak detection")
                answer = await discord_server.wait_for_request("POST", rf"/channels/{chat}/messages$")
                answers[who] = answer.json["content"]
            assert answers["zoe"].startswith("Nobody's profile or shared items mention leak detection yet")
            bob = discord_server.user_id("bob")
            assert bob not in answers["zoe"]
            assert bob in answers["bob"] and "expertise: leak detection" in answers["bob"], answers["bob"]
            assert answers["yves"].startswith("this room belongs to no community."), answers["yves"]
            assert bob not in answers["yves"]
        finally:
            await bot.stop()


async def test_a_member_with_a_profile_joining_a_sister_community_is_shown_it_not_asked_again(
    discord_server: FakeDiscord, discord_errors: HandlerErrors, copbot_errors: HandlerErrors, tmp_path: Path
) -> None:
    """A profile is one per account, seen in every community its member is in. dana, who told Water her
    expertise, joined Waste and was asked the six onboarding questions from the first again; she is now
    shown the profile Waste's members will see, and how to change it."""
    from plugins.profiles.models import Onboarding
    from plugins.profiles.plugin import Profiles
    from plugins.welcome.plugin import Welcome

    waste = discord_server.add_guild("waste guild")
    settings = two_guilds(discord_server, tmp_path, waste)
    bot = CopBot(settings, plugins=[Welcome, Profiles], run_scheduler_loop=False)
    with point_discord_py_at(discord_server):
        await bot.start()
        discord_errors.install(bot.services.adapters["discord"].client)  # type: ignore[attr-defined]
        try:
            await discord_server.member_add(None, "dana")
            chat = discord_server.dm_channel("dana")
            first = await discord_server.wait_for_request("POST", rf"/channels/{chat}/messages$")
            assert "(1/6) What kind of organisation do you work for?" in first.json["content"]
            await discord_server.message_create(chat, "dana", "stop")
            await discord_server.wait_for_request(
                "POST", rf"/channels/{chat}/messages$", predicate=lambda r: "Stopped" in r.json["content"]
            )
            general = discord_server.channel_id("general")
            await discord_server.message_create(general, "dana", "!profile set expertise leak detection")
            await discord_server.wait_for_request(
                "POST", rf"/channels/{general}/messages$", predicate=lambda r: "Saved" in r.json["content"]
            )
            await discord_server.member_add(waste, "dana")
            welcome = await discord_server.wait_for_request(
                "POST", rf"/channels/{discord_server.channel_id('general', waste)}/messages$"
            )
            assert welcome.json["content"].startswith("Welcome to Waste CoP, <@"), welcome.json
            kept = await discord_server.wait_for_request(
                "POST", rf"/channels/{chat}/messages$", predicate=lambda r: "Waste" in r.json["content"]
            )
            assert kept.json["content"] == (
                "Hi Dana, welcome to Waste CoP! Your profile is already here, and its members see it too. "
                "Change a field with /profile set, or answer the questions again with /profile onboarding."
            )
            [card] = kept.json["embeds"]
            assert card["title"] == "Profile of Dana"
            assert {"name": "Expertise", "value": "leak detection", "inline": False} in card["fields"], card
            await asyncio.sleep(0.2)  # nothing more comes: no question
            assert not any("(1/6)" in m["content"] for m in discord_server.bot_messages(chat)[-2:])
            async with bot.db.session() as session:
                assert (await session.execute(select(Onboarding))).scalars().all() == []
        finally:
            await bot.stop()


async def test_renamed_levels_are_offered_by_their_names_and_set_by_them(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    from plugins.roles.plugin import Roles

    await discord_bot(plugins=(Roles,), plugin_config={"roles": {"names": {"core": "Stewards"}}})
    puts = discord_server.find("PUT", rf"/applications/{discord_server.application_id}/commands$")
    role = next(command for command in puts[-1].json if command["name"] == "role")
    set_ = next(option for option in role["options"] if option["name"] == "set")
    level = next(option for option in set_["options"] if option["name"] == "level")
    assert level["choices"][0] == {"name": "Stewards", "value": "core"}
    assert {"name": "active", "value": "active"} in level["choices"]
