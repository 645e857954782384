"""Self-test of the FakeDiscord harness: an unmodified discord.py client against the fake server.

Why: the harness is only worth something if discord.py accepts every payload it sends and every reply it
gives, so these tests drive real discord.py objects (Client, CommandTree, View, Modal) through each
feature the copbot adapter relies on, and assert both sides: what the bot saw and what it sent.
"""

from __future__ import annotations

import asyncio
import datetime
import io
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.harness.discord_server import (
    ClientConnector,
    FakeDiscord,
    HandlerErrors,
    Intent,
    point_discord_py_at,
    running_client,
)

pytest_plugins = ["tests.harness.discord_server"]

WAIT = 3.0


def make_client(
    *, members: bool = True, message_content: bool = True
) -> tuple[discord.Client, app_commands.CommandTree[discord.Client]]:
    """A plain Client with a command tree; short guild_ready_timeout so on_ready is not delayed 2 s."""
    intents = discord.Intents.default()
    intents.members = members
    intents.message_content = message_content
    client = discord.Client(intents=intents, guild_ready_timeout=0.05)
    return client, app_commands.CommandTree(client)


async def next_item(queue: asyncio.Queue[Any]) -> Any:
    """The next event a handler queued, or a clear failure instead of a hang."""
    return await asyncio.wait_for(queue.get(), WAIT)


def user_messages(client: discord.Client) -> asyncio.Queue[discord.Message]:
    """Queue the messages ``client`` receives, ignoring the echoes of its own messages."""
    queue: asyncio.Queue[discord.Message] = asyncio.Queue()

    @client.event
    async def on_message(message: discord.Message) -> None:
        if message.author != client.user:
            await queue.put(message)

    return queue


# ---------------------------------------------------------------------------------------------- gateway


async def test_connect_ready_with_guild_and_members(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, _ = make_client()
    readies: list[bool] = []

    @client.event
    async def on_ready() -> None:
        readies.append(True)

    await discord_connect(client)

    assert readies == [True]
    assert client.user is not None and str(client.user.id) == discord_server.bot_user["id"]
    assert client.application_id == int(discord_server.application_id)
    guild = client.get_guild(int(discord_server.guild_id))
    assert guild is not None and guild.name == "Test Guild"
    assert {m.name for m in guild.members} == {"copbot", "alice", "bob", "carol"}
    assert {c.name for c in guild.text_channels} == {"general", "announcements", "bot-log"}
    assert {r.name for r in guild.roles} >= {"@everyone", "Moderator", "Member"}
    carol = guild.get_member(int(discord_server.user_id("carol")))
    assert carol is not None and {r.name for r in carol.roles} == {"@everyone", "Moderator", "Member"}
    assert guild.owner_id == int(discord_server.user_id("alice"))
    assert discord_server.intents == client.intents.value
    assert [f.op for f in discord_server.gateway_log if f.op in (2, 6)] == [2]
    assert [r.path for r in discord_server.requests[:2]] == ["/users/@me", "/oauth2/applications/@me"]
    assert discord_server.requests[0].headers["Authorization"] == f"Bot {discord_server.token}"


async def test_members_are_chunked_through_op8_when_not_sent_in_guild_create(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    discord_server.full_member_list = False
    client, _ = make_client()

    await discord_connect(client)

    request = next(f for f in discord_server.gateway_log if f.op == 8)
    chunk = next(f for f in discord_server.gateway_sent if f.t == "GUILD_MEMBERS_CHUNK")
    assert chunk.d["nonce"] == request.d["nonce"]
    guild = client.get_guild(int(discord_server.guild_id))
    assert guild is not None and guild.chunked and len(guild.members) == 4


async def test_without_members_intent_only_the_bot_is_a_member_and_joins_are_withheld(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, _ = make_client(members=False)
    joined: list[discord.Member] = []

    @client.event
    async def on_member_join(member: discord.Member) -> None:
        joined.append(member)

    await discord_connect(client)
    guild = client.get_guild(int(discord_server.guild_id))
    assert guild is not None and [m.name for m in guild.members] == ["copbot"]
    assert guild.member_count == 4

    delivered = await discord_server.dispatch(
        "GUILD_MEMBER_ADD", {**discord_server.add_member("dave"), "guild_id": discord_server.guild_id}
    )
    assert delivered == 0
    assert joined == []


async def test_member_join_reaches_on_member_join(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, _ = make_client()
    joined: asyncio.Queue[discord.Member] = asyncio.Queue()
    client.event(_queue_handler("on_member_join", joined))
    await discord_connect(client)

    await discord_server.member_add(None, "dave", roles=["Member"])

    member = await next_item(joined)
    assert member.name == "dave" and member.guild.id == int(discord_server.guild_id)
    assert [r.name for r in member.roles] == ["@everyone", "Member"]
    assert member.guild.member_count == 5


def _queue_handler(name: str, queue: asyncio.Queue[Any]) -> Any:
    """An event handler called ``name`` that puts its single argument on ``queue``."""

    async def handler(arg: Any) -> None:
        await queue.put(arg)

    handler.__name__ = name
    return handler


async def test_reconnect_resumes_and_replays_missed_events(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, _ = make_client()
    messages = user_messages(client)
    resumed: list[bool] = []

    @client.event
    async def on_resumed() -> None:
        resumed.append(True)

    await discord_connect(client)
    session_id = discord_server.sessions[0].id

    await discord_server.send_reconnect(wait_resumed=False)
    await discord_server.message_create("general", "alice", "sent while reconnecting")
    resume = await discord_server.wait_for_gateway_op(6)
    assert resume.d["session_id"] == session_id
    assert (await next_item(messages)).content == "sent while reconnecting"

    await discord_server.message_create("general", "bob", "after the resume")
    assert (await next_item(messages)).content == "after the resume"
    assert resumed == [True]
    assert [f.op for f in discord_server.gateway_log].count(2) == 1  # resumed, not re-identified


async def test_server_side_drop_also_resumes(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, _ = make_client()
    messages = user_messages(client)
    await discord_connect(client)

    await discord_server.drop_connection()
    await discord_server.message_create("general", "carol", "still here")

    assert (await next_item(messages)).content == "still here"


async def test_disallowed_privileged_intent_closes_with_4014(discord_server: FakeDiscord) -> None:
    discord_server.privileged_intents = 0
    client, _ = make_client()

    with pytest.raises(discord.PrivilegedIntentsRequired):
        async with running_client(discord_server, client):
            pass


async def test_bad_token_fails_login(discord_server: FakeDiscord) -> None:
    client, _ = make_client()
    with point_discord_py_at(discord_server):
        with pytest.raises(discord.LoginFailure):
            await client.login("not-the-token")
        await client.close()


async def test_autosharded_client_uses_gateway_bot(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client = discord.AutoShardedClient(intents=discord.Intents.default(), guild_ready_timeout=0.05)

    await discord_connect(client)

    assert discord_server.last("GET", "/gateway/bot").status == 200
    assert discord_server.identify_payloads[0]["shard"] == [0, 1]
    assert client.get_guild(int(discord_server.guild_id)) is not None


def test_point_discord_py_at_sets_and_restores() -> None:
    import discord.gateway
    import discord.http

    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    with point_discord_py_at(api_base_url="http://127.0.0.1:1/api/v10", gateway_url="ws://127.0.0.1:1/"):
        assert discord.http.Route("GET", "/users/@me").url == "http://127.0.0.1:1/api/v10/users/@me"
        assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "ws://127.0.0.1:1/"
    assert discord.http.Route.BASE == base
    assert discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY == gateway


# ---------------------------------------------------------------------------------------------- messages


async def test_message_create_reaches_on_message(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, _ = make_client()
    messages = user_messages(client)
    await discord_connect(client)
    bob = discord_server.user_id("bob")

    sent = await discord_server.message_create("general", "alice", f"hello <@{bob}>")

    message = await next_item(messages)
    assert message.id == int(sent["id"])
    assert message.content == f"hello <@{bob}>"
    assert isinstance(message.author, discord.Member) and message.author.name == "alice"
    assert isinstance(message.channel, discord.TextChannel) and message.channel.name == "general"
    assert [m.name for m in message.mentions] == ["bob"]


async def test_message_content_is_withheld_without_the_intent(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, _ = make_client(message_content=False)
    messages = user_messages(client)
    await discord_connect(client)
    assert not discord_server.intents or not discord_server.intents & Intent.MESSAGE_CONTENT

    await discord_server.message_create("general", "alice", "secret plans", embeds=[{"title": "x"}])
    stripped = await next_item(messages)
    assert stripped.content == "" and stripped.embeds == []

    await discord_server.message_create("general", "alice", f"hey <@{discord_server.bot_user['id']}> help")
    assert (await next_item(messages)).content.endswith("help")  # mentions of the bot keep content

    await discord_server.message_create(discord_server.dm_channel("alice"), "alice", "psst")
    dm = await next_item(messages)
    assert dm.content == "psst" and isinstance(dm.channel, discord.DMChannel)  # DMs keep content


async def test_send_with_allowed_mentions_is_recorded_and_echoed(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, _ = make_client()
    own: asyncio.Queue[discord.Message] = asyncio.Queue()

    @client.event
    async def on_message(message: discord.Message) -> None:
        if message.author == client.user:
            await own.put(message)

    await discord_connect(client)
    channel = client.get_channel(int(discord_server.channel_id("general")))
    assert isinstance(channel, discord.TextChannel)
    alice = discord_server.user_id("alice")

    sent = await channel.send(
        f"hi <@{alice}> @everyone",
        allowed_mentions=discord.AllowedMentions(
            everyone=False, users=[discord.Object(int(alice))], roles=False
        ),
    )

    call = discord_server.last("POST", rf"/channels/{channel.id}/messages")
    assert call.json["content"] == f"hi <@{alice}> @everyone"
    # discord.py sends the user ids of allowed_mentions as integers.
    assert call.json["allowed_mentions"] == {"parse": [], "users": [int(alice)], "replied_user": True}
    assert sent.id == int(call.response["id"]) and sent.author == client.user
    echoed = await next_item(own)
    assert echoed.id == sent.id  # Discord echoes the bot's own messages on the gateway


async def test_empty_message_is_rejected_like_discord(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, _ = make_client()
    await discord_connect(client)
    channel = client.get_channel(int(discord_server.channel_id("general")))
    assert isinstance(channel, discord.TextChannel)

    with pytest.raises(discord.HTTPException) as info:
        await channel.send("")
    assert info.value.code == 50006


async def test_rest_reads_edits_uploads_and_deletes_parse_in_discord_py(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, _ = make_client()
    await discord_connect(client)
    guild = client.get_guild(int(discord_server.guild_id))
    channel = client.get_channel(int(discord_server.channel_id("bot-log")))
    assert guild is not None and isinstance(channel, discord.TextChannel)

    async with channel.typing():
        sent = await channel.send("report", file=discord.File(io.BytesIO(b"a,b\n1,2\n"), "report.csv"))
    upload = discord_server.last("POST", rf"/channels/{channel.id}/messages")
    assert upload.json["content"] == "report" and upload.files[0].filename == "report.csv"
    assert upload.files[0].data == b"a,b\n1,2\n"
    assert sent.attachments[0].filename == "report.csv" and sent.attachments[0].size == 8

    edited = await sent.edit(content="report v2")
    assert edited.content == "report v2" and edited.edited_at is not None
    assert (await channel.fetch_message(sent.id)).content == "report v2"
    assert [m.content async for m in channel.history(limit=5)] == ["report v2"]

    assert {m.name async for m in guild.fetch_members(limit=None)} == {"copbot", "alice", "bob", "carol"}
    assert (await guild.fetch_member(int(discord_server.user_id("bob")))).name == "bob"
    assert {r.name for r in await guild.fetch_roles()} >= {"@everyone", "Moderator"}
    assert "general" in {c.name for c in await guild.fetch_channels()}

    await sent.delete()
    assert discord_server.last("DELETE", rf"/channels/{channel.id}/messages/{sent.id}").status == 204
    assert str(sent.id) not in discord_server.messages
    with pytest.raises(discord.NotFound):
        await channel.fetch_message(sent.id)


async def test_reaction_add_reaches_on_raw_reaction_add(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, _ = make_client()
    reactions: asyncio.Queue[discord.RawReactionActionEvent] = asyncio.Queue()
    client.event(_queue_handler("on_raw_reaction_add", reactions))
    await discord_connect(client)
    message = await discord_server.message_create("general", "alice", "react to me")

    await discord_server.reaction_add(message["id"], "bob", "🎉")

    event = await next_item(reactions)
    assert event.message_id == int(message["id"]) and event.user_id == int(discord_server.user_id("bob"))
    assert str(event.emoji) == "🎉" and event.member is not None and event.member.name == "bob"
    assert event.guild_id == int(discord_server.guild_id)


async def test_bot_reaction_is_recorded(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, _ = make_client()
    messages = user_messages(client)
    await discord_connect(client)
    await discord_server.message_create("general", "alice", "react please")
    message = await next_item(messages)

    await message.add_reaction("👍")

    call = discord_server.last(
        "PUT", rf"/channels/{message.channel.id}/messages/{message.id}/reactions/👍/@me"
    )
    assert call.status == 204
    assert discord_server.messages[str(message.id)]["reactions"][0]["me"] is True


async def test_poll_send_vote_and_expire(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, _ = make_client()
    votes: asyncio.Queue[tuple[discord.abc.User, discord.PollAnswer]] = asyncio.Queue()

    @client.event
    async def on_poll_vote_add(user: discord.abc.User, answer: discord.PollAnswer) -> None:
        await votes.put((user, answer))

    await discord_connect(client)
    channel = client.get_channel(int(discord_server.channel_id("general")))
    assert isinstance(channel, discord.TextChannel)
    poll = discord.Poll("Lunch?", duration=datetime.timedelta(hours=2))
    poll.add_answer(text="Pizza").add_answer(text="Salad")

    message = await channel.send(poll=poll)

    call = discord_server.last("POST", rf"/channels/{channel.id}/messages")
    assert call.json["poll"]["question"] == {"text": "Lunch?"}
    assert [a["poll_media"]["text"] for a in call.json["poll"]["answers"]] == ["Pizza", "Salad"]
    assert message.poll is not None and message.poll.duration == datetime.timedelta(hours=2)
    await discord_server.poll_vote_add(message.id, "bob", 2)
    user, answer = await next_item(votes)
    assert user.name == "bob" and answer.text == "Salad"

    ended = await message.end_poll()
    assert discord_server.last("POST", rf"/channels/{channel.id}/polls/{message.id}/expire").status == 200
    assert ended.poll is not None and ended.poll.is_finalised()


async def test_dm_both_directions(discord_server: FakeDiscord, discord_connect: ClientConnector) -> None:
    client, _ = make_client()
    messages = user_messages(client)
    await discord_connect(client)
    alice = await client.fetch_user(int(discord_server.user_id("alice")))

    await alice.send("welcome!")

    create = discord_server.last("POST", "/users/@me/channels")
    assert create.json == {"recipient_id": alice.id}
    dm_id = discord_server.dm_channel("alice")
    assert discord_server.last("POST", rf"/channels/{dm_id}/messages").json["content"] == "welcome!"

    await discord_server.message_create(dm_id, "alice", "thanks")
    reply = await next_item(messages)
    assert isinstance(reply.channel, discord.DMChannel) and reply.content == "thanks"


async def test_commands_bot_prefix_command_and_member_remove(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    intents = discord.Intents.default()
    intents.members = True
    intents.message_content = True
    bot = commands.Bot(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
    removed: asyncio.Queue[discord.RawMemberRemoveEvent] = asyncio.Queue()
    bot.event(_queue_handler("on_raw_member_remove", removed))

    @bot.command()
    async def hello(ctx: commands.Context[commands.Bot], who: discord.Member) -> None:
        await ctx.reply(f"hello {who.display_name}")

    await discord_connect(bot)
    general = discord_server.channel_id("general")
    bob = discord_server.user_id("bob")

    trigger = await discord_server.message_create("general", "alice", f"!hello <@{bob}>")

    call = await discord_server.wait_for_request("POST", rf"/channels/{general}/messages")
    assert call.json["content"] == "hello Bob"
    assert str(call.json["message_reference"]["message_id"]) == trigger["id"]
    assert discord_server.bot_messages("general")[-1]["type"] == 19  # a reply

    await discord_server.member_remove(None, "bob")
    event = await next_item(removed)
    assert event.user.name == "bob"
    guild = bot.get_guild(int(discord_server.guild_id))
    assert guild is not None and guild.get_member(int(bob)) is None


# ---------------------------------------------------------------------------------------------- guild


async def test_role_and_scheduled_event_calls(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, _ = make_client()
    updates: asyncio.Queue[discord.Member] = asyncio.Queue()

    @client.event
    async def on_member_update(before: discord.Member, after: discord.Member) -> None:
        await updates.put(after)

    await discord_connect(client)
    guild = client.get_guild(int(discord_server.guild_id))
    assert guild is not None
    bob = guild.get_member(int(discord_server.user_id("bob")))
    moderator = guild.get_role(int(discord_server.role_id("Moderator")))
    assert bob is not None and moderator is not None

    await bob.add_roles(moderator, reason="promotion")
    call = discord_server.last("PUT", rf"/guilds/{guild.id}/members/{bob.id}/roles/{moderator.id}")
    assert call.status == 204 and call.headers["X-Audit-Log-Reason"] == "promotion"
    assert moderator in (await next_item(updates)).roles

    start = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    event = await guild.create_scheduled_event(
        name="Monthly meetup",
        start_time=start,
        end_time=start + datetime.timedelta(hours=2),
        entity_type=discord.EntityType.external,
        location="https://example.org/meet",
        privacy_level=discord.PrivacyLevel.guild_only,
    )
    body = discord_server.last("POST", rf"/guilds/{guild.id}/scheduled-events").json
    assert body["name"] == "Monthly meetup" and body["entity_type"] == 3
    assert body["entity_metadata"] == {"location": "https://example.org/meet"}
    assert event.name == "Monthly meetup" and event.location == "https://example.org/meet"
    assert [e.name for e in await guild.fetch_scheduled_events()] == ["Monthly meetup"]


async def test_role_creation_and_the_role_hierarchy(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    """New roles go to the bottom; the bot may only give roles below its own highest, with Manage Roles."""
    above = discord_server.add_role("Admins")  # made after the bot's role was placed: above it
    assert (
        above["position"]
        > discord_server.guilds[discord_server.guild_id].roles[discord_server.role_id("copbot")]["position"]
    )
    client, _ = make_client()
    created: asyncio.Queue[discord.Role] = asyncio.Queue()

    @client.event
    async def on_guild_role_create(role: discord.Role) -> None:
        await created.put(role)

    await discord_connect(client)
    guild = client.get_guild(int(discord_server.guild_id))
    assert guild is not None
    role = await guild.create_role(name="Core", permissions=discord.Permissions.none(), mentionable=False)
    body = discord_server.last("POST", rf"/guilds/{guild.id}/roles$").json
    assert body["name"] == "Core" and body["permissions"] == "0" and body["mentionable"] is False
    assert role.position == 1 and (await next_item(created)).id == role.id
    assert [r["name"] for r in discord_server.roles_by_position()][:3] == ["@everyone", "Core", "Moderator"]

    bob = guild.get_member(int(discord_server.user_id("bob")))
    assert bob is not None
    await bob.edit(roles=[*bob.roles[1:], role])
    assert discord_server.member_roles("bob") == ["Member", "Core"]
    admins = guild.get_role(int(above["id"]))
    assert admins is not None
    with pytest.raises(discord.Forbidden) as refused:
        await bob.add_roles(admins)
    assert refused.value.code == 50013
    with pytest.raises(discord.Forbidden):
        await bob.edit(roles=[*bob.roles[1:], admins])
    assert discord_server.member_roles("bob") == ["Member", "Core"]


async def test_scheduled_event_interest_edit_and_delete(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    """Marking "Interested" reaches discord.py's own events; PATCH and DELETE answer like Discord."""
    client, _ = make_client()
    interest: asyncio.Queue[tuple[str, int, int]] = asyncio.Queue()

    @client.event
    async def on_scheduled_event_user_add(event: discord.ScheduledEvent, user: discord.User) -> None:
        await interest.put(("add", event.id, user.id))

    @client.event
    async def on_scheduled_event_user_remove(event: discord.ScheduledEvent, user: discord.User) -> None:
        await interest.put(("remove", event.id, user.id))

    await discord_connect(client)
    guild = client.get_guild(int(discord_server.guild_id))
    assert guild is not None
    start = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    event = await guild.create_scheduled_event(
        name="Monthly meetup",
        start_time=start,
        end_time=start + datetime.timedelta(hours=2),
        entity_type=discord.EntityType.external,
        location="https://example.org/meet",
        privacy_level=discord.PrivacyLevel.guild_only,
    )
    bob = int(discord_server.user_id("bob"))
    assert await discord_server.scheduled_event_user_add(event.id, "bob") == 1
    assert await next_item(interest) == ("add", event.id, bob)
    assert (await guild.fetch_scheduled_event(event.id)).user_count == 1
    await discord_server.scheduled_event_user_remove(event.id, "bob")
    assert await next_item(interest) == ("remove", event.id, bob)

    edited = await event.edit(location="Room 4")
    assert edited is not None and edited.location == "Room 4"
    assert discord_server.last("PATCH", rf"/guilds/{guild.id}/scheduled-events/{event.id}").status == 200
    await event.delete()
    assert discord_server.last("DELETE", rf"/guilds/{guild.id}/scheduled-events/{event.id}").status == 204
    with pytest.raises(discord.NotFound):
        await event.delete()
    with pytest.raises(KeyError):
        await discord_server.scheduled_event_user_add(event.id, "bob")


async def test_unknown_route_is_recorded_as_404(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    discord_server.fail_on_unhandled_routes = False  # this test hits one on purpose
    client, _ = make_client()
    await discord_connect(client)
    channel = client.get_channel(int(discord_server.channel_id("general")))
    assert isinstance(channel, discord.TextChannel)

    with pytest.raises(discord.NotFound):
        await channel.create_invite()

    assert [(r.method, r.path) for r in discord_server.unhandled] == [
        ("POST", f"/channels/{channel.id}/invites")
    ]
    assert discord_server.unhandled[0].response == {"message": "404: Not Found", "code": 0}


# ---------------------------------------------------------------------------------------------- commands


async def test_tree_sync_records_bulk_overwrite_and_subcommands_dispatch(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, tree = make_client()
    guild_obj = discord.Object(int(discord_server.guild_id))
    calls: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    event = app_commands.Group(name="event", description="Community events", guild_ids=[guild_obj.id])

    @event.command(name="create", description="Create an event")
    @app_commands.describe(title="Event title", channel="Where")
    @app_commands.choices(
        kind=[
            app_commands.Choice(name="Talk", value="talk"),
            app_commands.Choice(name="Social", value="social"),
        ]
    )
    async def create(
        interaction: discord.Interaction, title: str, kind: str, channel: discord.TextChannel | None = None
    ) -> None:
        await calls.put((title, (kind, channel)))
        await interaction.response.send_message("created")

    tree.add_command(event)
    await discord_connect(client)

    synced = await tree.sync(guild=guild_obj)

    put = discord_server.last("PUT", rf"/applications/{client.application_id}/guilds/{guild_obj.id}/commands")
    assert [c["name"] for c in put.json] == ["event"]
    sub = put.json[0]["options"][0]
    assert (sub["type"], sub["name"]) == (1, "create")
    assert [(o["name"], o["type"], o.get("required", False)) for o in sub["options"]] == [
        ("title", 3, True),
        ("kind", 3, True),
        ("channel", 7, False),
    ]
    assert [c.id for c in synced] == [int(c["id"]) for c in discord_server.guild_commands[str(guild_obj.id)]]

    await discord_server.interaction_slash(
        "event",
        {"title": "Show & tell", "kind": "talk", "channel": "announcements"},
        subcommand="create",
        user="carol",
    )
    title, (kind, channel) = await next_item(calls)
    assert (title, kind) == ("Show & tell", "talk")
    assert isinstance(channel, discord.TextChannel) and channel.name == "announcements"

    with pytest.raises(ValueError, match="not a choice"):
        await discord_server.interaction_slash(
            "event", {"title": "x", "kind": "party"}, subcommand="create", user="carol"
        )
    with pytest.raises(ValueError, match="not registered"):
        await discord_server.interaction_slash("nope", user="carol")


async def test_invalid_command_definition_is_rejected_on_sync(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, _ = make_client()
    await discord_connect(client)
    # discord.py validates names locally, so send the bad payload the way a hand-written sync would.
    with pytest.raises(discord.HTTPException) as info:
        await client.http.bulk_upsert_global_commands(
            client.application_id, [{"name": "Bad Name", "description": "x"}]
        )
    assert info.value.code == 50035 and "In 0.name" in str(info.value)


async def test_slash_command_ephemeral_reply(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, tree = make_client()
    seen: asyncio.Queue[tuple[discord.Member, int]] = asyncio.Queue()

    @tree.command(description="Give kudos")
    @app_commands.describe(member="Who", points="How many")
    async def kudos(interaction: discord.Interaction, member: discord.Member, points: int = 1) -> None:
        await seen.put((member, points))
        await interaction.response.send_message(f"{member.mention} +{points}", ephemeral=True)

    await discord_connect(client)
    await tree.sync()

    record = await discord_server.interaction_slash("kudos", {"member": "bob", "points": 3}, user="alice")

    member, points = await next_item(seen)
    assert member.name == "bob" and isinstance(member, discord.Member) and points == 3
    call = await discord_server.wait_for_request(
        "POST", rf"/interactions/{record.id}/{record.token}/callback"
    )
    assert call.query == {"with_response": "1"}
    assert call.json["type"] == 4
    assert call.json["data"]["flags"] == 64
    assert call.json["data"]["content"] == f"<@{discord_server.user_id('bob')}> +3"
    assert record.acked and record.response_type == 4
    original = discord_server.messages[record.original_message_id or ""]
    assert original["flags"] & 64 and original["interaction_metadata"]["user"]["username"] == "alice"


async def test_deferred_reply_then_followups_use_the_webhook_route(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, tree = make_client()
    sent: asyncio.Queue[list[discord.WebhookMessage]] = asyncio.Queue()

    @tree.command(description="Slow answer")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        first = await interaction.followup.send("done")
        second = await interaction.followup.send("one more thing", ephemeral=True)
        await sent.put([first, second])

    await discord_connect(client)
    await tree.sync()

    record = await discord_server.interaction_slash("slow", user="bob")

    first, second = await next_item(sent)
    callback = discord_server.last("POST", rf"/interactions/{record.id}/.+/callback")
    assert callback.json == {"type": 5}
    posts = discord_server.find("POST", rf"/webhooks/{discord_server.application_id}/{record.token}")
    assert [p.json["content"] for p in posts] == ["done", "one more thing"]
    assert all("Authorization" not in p.headers for p in posts)
    assert posts[0].query["wait"] == "1"
    assert first.id == int(record.original_message_id or 0)  # the first follow-up completed the defer
    assert not discord_server.messages[str(first.id)]["flags"] & 128
    assert second.id != first.id and second.flags.ephemeral


async def test_original_response_can_be_read_edited_and_deleted(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, tree = make_client()
    done: asyncio.Queue[str] = asyncio.Queue()

    @tree.command(description="Countdown")
    async def countdown(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("3")
        original = await interaction.original_response()
        await interaction.edit_original_response(content=f"{original.content}, 2, 1")
        await interaction.delete_original_response()
        await done.put(original.content)

    await discord_connect(client)
    await tree.sync()
    record = await discord_server.interaction_slash("countdown", user="alice")

    assert await next_item(done) == "3"
    base = rf"/webhooks/{discord_server.application_id}/{record.token}/messages/@original"
    assert discord_server.last("PATCH", base).json["content"] == "3, 2, 1"
    assert discord_server.last("DELETE", base).status == 204
    assert record.original_message_id not in discord_server.messages


async def test_followup_before_ack_and_second_ack_fail_like_discord(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, tree = make_client()
    outcome: asyncio.Queue[int] = asyncio.Queue()

    @tree.command(description="Too eager")
    async def eager(interaction: discord.Interaction) -> None:
        try:
            await interaction.followup.send("too early")
        except discord.NotFound as exc:
            await outcome.put(exc.code)
        await interaction.response.send_message("ok")

    await discord_connect(client)
    await tree.sync()
    record = await discord_server.interaction_slash("eager", user="bob")

    assert await next_item(outcome) == 10015
    await discord_server.wait_for_ack(record)
    url = f"{discord_server.api_base_url}/interactions/{record.id}/{record.token}/callback"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json={"type": 4, "data": {"content": "again"}}) as resp,
    ):
        assert resp.status == 400
        assert resp.headers["Content-Type"] == "application/json"
        assert (await resp.json())["code"] == 40060


async def test_autocomplete_choices_are_recorded(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, tree = make_client()
    fruits = ["apple", "apricot", "banana"]

    @tree.command(description="Pick a fruit")
    async def fruit(interaction: discord.Interaction, name: str) -> None:
        await interaction.response.send_message(name)

    @fruit.autocomplete("name")
    async def fruit_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=f, value=f) for f in fruits if f.startswith(current)]

    await discord_connect(client)
    await tree.sync()

    record = await discord_server.interaction_slash("fruit", {"name": "ap"}, user="alice", focused="name")

    await discord_server.wait_for_ack(record)
    assert record.response_type == 8
    assert record.autocomplete_choices == [
        {"name": "apple", "value": "apple"},
        {"name": "apricot", "value": "apricot"},
    ]


# ---------------------------------------------------------------------------------------------- components


class RsvpView(discord.ui.View):
    """A persistent-style view: fixed custom_ids, as copbot uses for RSVP buttons."""

    def __init__(self) -> None:
        super().__init__(timeout=None)
        self.clicks: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    @discord.ui.button(label="Going", custom_id="rsvp:yes", style=discord.ButtonStyle.success)
    async def going(self, interaction: discord.Interaction, button: discord.ui.Button[RsvpView]) -> None:
        await self.clicks.put(("yes", interaction.user.name))
        await interaction.response.edit_message(content=f"{interaction.user.name} is going", view=self)

    @discord.ui.select(
        custom_id="rsvp:role",
        options=[
            discord.SelectOption(label="Speaker", value="speaker"),
            discord.SelectOption(label="Listener", value="listener"),
        ],
    )
    async def role(self, interaction: discord.Interaction, select: discord.ui.Select[RsvpView]) -> None:
        await self.clicks.put((select.values[0], interaction.user.name))
        await interaction.response.defer()


async def test_button_and_select_clicks_reach_the_view(
    discord_server: FakeDiscord, discord_connect: ClientConnector
) -> None:
    client, _ = make_client()
    await discord_connect(client)
    channel = client.get_channel(int(discord_server.channel_id("general")))
    assert isinstance(channel, discord.TextChannel)
    view = RsvpView()
    message = await channel.send("RSVP here", view=view)
    sent = discord_server.last("POST", rf"/channels/{channel.id}/messages").json
    assert [c["custom_id"] for c in sent["components"][0]["components"]] == ["rsvp:yes"]

    record = await discord_server.interaction_component("rsvp:yes", message.id, "bob")

    assert await next_item(view.clicks) == ("yes", "bob")
    await discord_server.wait_for_ack(record)
    assert record.response_type == 7
    assert discord_server.messages[str(message.id)]["content"] == "bob is going"

    picked = await discord_server.interaction_component("rsvp:role", message.id, "carol", values=["speaker"])
    assert await next_item(view.clicks) == ("speaker", "carol")
    await discord_server.wait_for_ack(picked)
    assert picked.response_type == 6

    with pytest.raises(ValueError, match="no component"):
        await discord_server.interaction_component("rsvp:maybe", message.id, "bob")


class FeedbackModal(discord.ui.Modal, title="Feedback"):
    """A one-field modal, to check the type-9 callback and the modal-submit round trip."""

    text: discord.ui.TextInput[FeedbackModal] = discord.ui.TextInput(
        label="Your feedback", custom_id="fb:text"
    )

    def __init__(self, received: asyncio.Queue[str]) -> None:
        super().__init__(custom_id="feedback")
        self.received = received

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.received.put(self.text.value)
        await interaction.response.send_message("thanks", ephemeral=True)


async def test_modal_open_and_submit(discord_server: FakeDiscord, discord_connect: ClientConnector) -> None:
    client, tree = make_client()
    received: asyncio.Queue[str] = asyncio.Queue()

    @tree.command(description="Send feedback")
    async def feedback(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(FeedbackModal(received))

    await discord_connect(client)
    await tree.sync()
    opener = await discord_server.interaction_slash("feedback", user="alice")
    await discord_server.wait_for_ack(opener)
    assert opener.response_type == 9 and opener.modal is not None and opener.modal["title"] == "Feedback"

    submit = await discord_server.interaction_modal_submit("feedback", {"fb:text": "great bot"}, user="alice")

    assert await next_item(received) == "great bot"
    await discord_server.wait_for_ack(submit)
    assert submit.response_type == 4


# ---------------------------------------------------------------------------------------------- errors


async def test_swallowed_handler_exceptions_are_collected(discord_server: FakeDiscord) -> None:
    client, tree = make_client()

    @client.event
    async def on_message(message: discord.Message) -> None:
        if message.author != client.user:
            raise RuntimeError("boom in on_message")

    @tree.command(description="Fails")
    async def broken(interaction: discord.Interaction) -> None:
        raise RuntimeError("boom in command")

    errors = HandlerErrors()
    errors.attach()
    try:
        async with running_client(discord_server, client, errors=errors, tree=tree):
            await tree.sync()
            await discord_server.message_create("general", "alice", "trigger")
            await discord_server.interaction_slash("broken", user="alice")
            await errors.wait_for_errors(2, timeout=WAIT)
    finally:
        errors.detach()

    with pytest.raises(AssertionError) as info:
        errors.check()
    assert "boom in on_message" in str(info.value) and "boom in command" in str(info.value)
    assert len(errors.errors) == 2  # on_error/tree.on_error hooks and the log record are de-duplicated
