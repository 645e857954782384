"""Two copbots on one Discord application and one database (issue 16): with Discord's sharding each
connects only its shards and serves the communities whose guilds are on them; without sharding both get
every event and each handles only its own communities' — a slash command is answered by exactly one.

discord.py's real gateway and HTTP code talks to the tests' Discord server, which sends a guild's events
only to the session identified with that guild's shard (``(guild_id >> 22) % shard_count``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app import CopBot
from bot.config import Settings
from tests.conftest import discord_table
from tests.harness.discord_server import FakeDiscord, HandlerErrors, shard_of

Start = Callable[..., Any]


@pytest.fixture
async def two_bots(
    discord_server: FakeDiscord, discord_errors: HandlerErrors, tmp_path: Path
) -> AsyncIterator[tuple[Start, dict[str, str]]]:
    """Guilds "water" (on shard 0 of 2) and "waste" (shard 1), bob in both; ``start(**discord_or_instance)``
    starts a copbot on the shared database."""
    guilds = {
        slug: discord_server.add_guild(f"{slug} guild", shard=(shard, 2))
        for slug, shard in (("water", 0), ("waste", 1))
    }
    for guild in guilds.values():
        discord_server.add_member("bob", guild=guild)
    running: list[CopBot] = []

    async def start(
        *, discord: dict[str, Any] | None = None, instance: dict[str, Any] | None = None
    ) -> CopBot:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'copbot.db'}",
            web={"enabled": False},
            discord=discord_table(discord_server, **(discord or {})),
            instance=instance or {},
            communities=[
                {"slug": slug, "name": f"{slug.title()} CoP", "discord": {"guild_id": guild}}
                for slug, guild in guilds.items()
            ],
        )
        bot = CopBot(settings, plugins=[], run_scheduler_loop=False)
        await bot.start()
        discord_errors.install(bot.services.adapters["discord"].client)  # type: ignore[attr-defined]
        running.append(bot)
        return bot

    try:
        yield start, guilds
    finally:
        for bot in running:
            await bot.stop()


def answered(bot: CopBot, command: str) -> float:
    return bot.services.metrics.commands.labels(command, "ok")._value.get()  # type: ignore[no-any-return]


async def test_each_process_connects_its_shards_and_serves_their_guilds(
    discord_server: FakeDiscord, two_bots: tuple[Start, dict[str, str]]
) -> None:
    start, guilds = two_bots
    assert {slug: shard_of(guild, 2) for slug, guild in guilds.items()} == {"water": 0, "waste": 1}
    bots = {
        slug: await start(discord={"shard_count": 2, "shard_ids": [shard]})
        for slug, shard in (("water", 0), ("waste", 1))
    }
    assert sorted(tuple(p["shard"]) for p in discord_server.identify_payloads) == [(0, 2), (1, 2)]
    assert {slug: list(bot.registry.served) for slug, bot in bots.items()} == {
        "water": ["water"],
        "waste": ["waste"],
    }
    for guild in guilds.values():
        channel = discord_server.channel_id("general", guild)
        await discord_server.message_create(channel, "bob", "!about")
        await discord_server.wait_for_request("POST", rf"/channels/{channel}/messages")
    await asyncio.sleep(0.3)  # a moment for a second answer, which must not come
    for slug, guild in guilds.items():
        channel = discord_server.channel_id("general", guild)
        assert len(discord_server.find("POST", rf"/channels/{channel}/messages")) == 1
        assert answered(bots[slug], "about") == 1  # by the process with that guild's shard
    record = await discord_server.interaction_slash("about", user="bob", guild=guilds["waste"])
    call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
    assert call.json["type"] == 4
    await asyncio.sleep(0.3)  # the answer is counted once the command returned
    assert answered(bots["waste"], "about") == 2 and answered(bots["water"], "about") == 1


async def test_without_shards_each_process_answers_only_its_communities(
    discord_server: FakeDiscord, two_bots: tuple[Start, dict[str, str]]
) -> None:
    start, guilds = two_bots
    bots = {slug: await start(instance={"communities": [slug]}) for slug in guilds}
    for slug, guild in guilds.items():
        record = await discord_server.interaction_slash("about", user="bob", guild=guild)
        await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
        await asyncio.sleep(0.3)  # the other process got it too, and must stay silent (and it is counted)
        assert len(discord_server.find("POST", rf"/interactions/{record.id}/.+/callback")) == 1
        assert answered(bots[slug], "about") == 1
    assert all(answered(bot, "about") == 1 for bot in bots.values())
