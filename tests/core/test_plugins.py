"""Plugin discovery: bundled packages, third-party entry points, per-plugin config, disabling."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from bot.config import ConfigError
from bot.plugin_config_check import load_checked
from bot.registry import discover_plugins


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed distribution that ships a copbot plugin through the copbot.plugins entry point."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "greeter_plugin.py").write_text(
        textwrap.dedent(
            '''
            from bot.context import Context
            from bot.plugin import Plugin, PluginConfig, command

            class GreeterConfig(PluginConfig):
                greeting: str = "hello"

            class Greeter(Plugin):
                name = "greeter"
                description = "greets"
                Config = GreeterConfig

                @command("greet", examples=("greet",))
                async def greet(self, ctx: Context) -> None:
                    """Say the configured greeting."""
                    await ctx.reply(self.config.greeting)
            '''
        )
    )
    dist = site / "copbot_greeter-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: copbot-greeter\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[copbot.plugins]\ngreeter = greeter_plugin:Greeter\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("greeter_plugin", None)


def test_entry_point_plugins_are_discovered_next_to_bundled_ones(third_party: Path) -> None:
    found = discover_plugins()
    assert {"core", "greeter"} <= set(found)


async def test_a_third_party_plugin_runs_with_its_own_config_table(  # type: ignore[no-untyped-def]
    third_party: Path, console_bot_factory
) -> None:
    plugin = discover_plugins()["greeter"]
    bot = await console_bot_factory([plugin], plugins={"greeter": {"greeting": "welkom"}})
    assert (await bot.say("ana> !greet"))[1] == "[2] copbot> welkom"


async def test_a_disabled_plugin_offers_no_commands(third_party: Path, console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    plugin = discover_plugins()["greeter"]
    bot = await console_bot_factory([plugin], plugins={"greeter": {"enabled": False}})
    assert "greeter" not in bot.bot.registry.plugins
    assert (await bot.say("!greet"))[1] == (
        "[2] copbot> !greet is turned off here (copbot's greeter plugin). Type !help for the list."
    )
    assert "!greet" not in "\n".join(await bot.say("!help"))
    turned_off = "!greet is turned off here (copbot's greeter plugin)."
    assert (await bot.say("!help greet"))[1].endswith(f"copbot> {turned_off}")


def test_a_plugin_config_table_is_validated_by_the_plugin(third_party: Path, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[plugins.greeter]\ngreeting = 3\n")
    with pytest.raises(ConfigError) as error:
        load_checked(path)
    assert error.value.problems == [
        'plugins.greeter.greeting: must be text (in quotes), like greeting = "hello" (got 3)'
    ]
