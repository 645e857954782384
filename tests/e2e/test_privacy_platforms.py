"""``profile export`` through the real platform paths: a JSON file sent by direct message — on Discord
(discord.py against the tests' Discord server) and on Matrix (matrix-nio against a real Synapse) — while the
room hears only that it was sent."""

from __future__ import annotations

import asyncio
import json

from bot.core_commands import Core
from plugins.profiles.plugin import Profiles
from tests.e2e.matrix_support import STEP as MATRIX_STEP
from tests.e2e.matrix_support import (
    Bots,
    adapter_of,
    content_of,
    in_reply_to,
    room_with_bot,
    send,
    wait_for_invite,
)
from tests.e2e.test_discord import EPHEMERAL, BotFactory
from tests.e2e.test_matrix import download
from tests.harness.discord_server import FakeDiscord
from tests.harness.synapse import Synapse, wait_for_event

PLUGINS = (Core, Profiles)


async def test_discord_export_is_a_json_file_by_direct_message(
    discord_server: FakeDiscord, discord_bot: BotFactory
) -> None:
    await discord_bot(plugins=PLUGINS)
    record = await discord_server.interaction_slash(
        "profile", {"field": "org", "value": "Vitens"}, user="alice", subcommand="set"
    )
    await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    record = await discord_server.interaction_slash("profile", {}, user="alice", subcommand="export")
    answer = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert answer.json["data"]["content"] == "I sent you everything I store about you, by direct message."
    assert answer.json["data"]["flags"] == EPHEMERAL and not answer.files
    await discord_server.wait_for_request("POST", r"/users/@me/channels$")
    dm = discord_server.dm_channel("alice")
    sent = await discord_server.wait_for_request("POST", rf"/channels/{dm}/messages$")
    assert sent.json["content"] == "Everything copbot stores about you, as JSON (attached)."
    [file] = sent.files
    assert file.filename.startswith("copbot-my-data-") and file.filename.endswith(".json")
    data = json.loads(file.data)
    assert data["accounts"][0]["display_name"] == "Alice"
    assert data["plugins"]["profiles"]["profiles"][0]["organisation"] == "Vitens"


async def test_matrix_export_is_a_json_file_in_the_direct_room(  # type: ignore[no-untyped-def]
    bots: Bots, members, synapse: Synapse
) -> None:
    owner, ana = await members("owner"), await members("ana")
    bot = await bots.start(await asyncio.to_thread(bots.account, owner.user_id), plugins=PLUGINS)
    bot_id = adapter_of(bot).user_id
    room_id = await room_with_bot(owner, bot_id, ana)
    asked = await send(ana, room_id, "!profile export")
    dm_id = await wait_for_invite(ana, bot_id)
    _, said = await wait_for_event(  # what the room hears, as the owner sees it
        owner, lambda e: e.sender == bot_id and in_reply_to(e) == asked, timeout=MATRIX_STEP
    )
    assert content_of(said)["body"] == "I sent you everything I store about you, by direct message."
    await ana.join(dm_id)
    room, file = await wait_for_event(
        ana,
        lambda e: e.sender == bot_id and content_of(e).get("msgtype") == "m.file",
        timeout=MATRIX_STEP,
    )
    assert room == dm_id != room_id
    content = content_of(file)
    assert content["info"]["mimetype"] == "application/json"
    data = json.loads(await asyncio.to_thread(download, synapse, content["url"], ana.access_token))
    assert [account["platform_id"] for account in data["accounts"]] == [ana.user_id]
