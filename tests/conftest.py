"""Shared fixtures: a whole bot on the console adapter, with its own database file and a fake clock."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.console import ConsoleAdapter
from bot.app import CopBot
from bot.clock import FakeClock
from bot.config import Settings
from bot.plugin import Plugin
from tests.harness.discord_server import FakeDiscord

pytest_plugins = [
    "tests.harness.postgres",
    "tests.harness.synapse",
    "tests.harness.discord_server",
    "tests.harness.watchdog",
]


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'copbot.db'}",
        # no server of its own; links name the address a web part would have (another process serving it)
        "web": {"enabled": False, "public_url": "http://127.0.0.1:8080"},
    }
    values.update(overrides)
    return Settings(**values)


def discord_table(server: FakeDiscord, **overrides: Any) -> dict[str, Any]:
    """copbot's ``[discord]`` table pointed at the tests' Discord server (REST and gateway on loopback),
    with the guilds' READY wait cut short."""
    return {
        "token": server.token,
        "application_id": server.application_id,
        "api_base_url": server.api_base_url,
        "gateway_url": server.gateway_url,
        "message_content": True,
        "guild_ready_timeout": 0.05,
        **overrides,
    }


def two_guilds(server: FakeDiscord, tmp_path: Path, waste: str) -> Settings:
    """copbot on the tests' Discord server for two communities: Water (the server's own guild) and Waste
    (``waste``, a guild the test added), with the web off."""
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'copbot.db'}",
        web={"enabled": False},
        discord=discord_table(server),
        communities=[
            {"slug": "water", "name": "Water CoP", "discord": {"guild_id": server.guild_id}},
            {"slug": "waste", "name": "Waste CoP", "discord": {"guild_id": waste}},
        ],
    )


class ConsoleBot:
    """A bot on the real console adapter; ``say`` types a line and returns what was printed for it."""

    def __init__(self, bot: CopBot, adapter: ConsoleAdapter, output: io.StringIO) -> None:
        self.bot = bot
        self.adapter = adapter
        self.output = output
        self._seen = 0

    async def say(self, line: str) -> list[str]:
        """Type a line; when it returns, the replies are printed and the bookkeeping is written."""
        await self.adapter.handle_line(line)
        await self.bot.pipeline.journal.flush()
        return self.new_lines()

    async def chat(self, line: str) -> None:
        """Type a line as a member would, without ``say``'s write of the journal: its activity waits in the
        journal, as any activity does for up to half a second (see :meth:`hold_journal`)."""
        await self.adapter.handle_line(line)
        self.new_lines()

    async def hold_journal(self) -> None:
        """No timed write of the journal from now on: what ``chat`` records stays buffered until something
        asks for it to be written (a test of that asking cannot then pass by the timer's luck)."""
        journal = self.bot.pipeline.journal
        journal.interval = 3600.0
        journal._wake.set()  # the journal's loop starts waiting anew, with the interval above
        await asyncio.sleep(0.05)

    def new_lines(self) -> list[str]:
        lines = self.output.getvalue().splitlines()
        fresh = lines[self._seen :]
        self._seen = len(lines)
        return fresh

    @property
    def services(self):  # type: ignore[no-untyped-def]
        return self.bot.services


BotFactory = Callable[..., "Any"]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend: storage code must behave the same on both."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    return request.getfixturevalue("fresh_postgres_url")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
async def console_bot_factory(tmp_path: Path, clock: FakeClock) -> AsyncIterator[BotFactory]:
    """Build and start console bots; every one started is stopped at the end of the test."""
    started: list[CopBot] = []

    async def build(
        plugin_classes: list[type[Plugin]] | None = None,
        *,
        database_url: str | None = None,
        moderators: tuple[str, ...] = ("you",),
        **overrides: Any,
    ) -> ConsoleBot:
        if database_url is not None:
            overrides["database_url"] = database_url
        settings = make_settings(tmp_path, **overrides)
        output = io.StringIO()
        adapter = ConsoleAdapter(
            clock=clock,
            community=settings.community_list()[0].slug,
            moderators=moderators,
            stdin=io.StringIO(""),
            stdout=output,
            interactive=False,
        )
        bot = CopBot(
            settings, clock=clock, adapters=[adapter], plugins=plugin_classes or [], run_scheduler_loop=False
        )
        await bot.start()
        started.append(bot)
        return ConsoleBot(bot, adapter, output)

    yield build
    for bot in started:
        await bot.stop()


MEASURED: list[str] = []
"""The figures of every test of the run, in the process that writes the summary."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Figures travel with their test's report: ``make test`` runs the tests in worker processes
    (pytest-xdist), and only the reports come back to the one that prints the summary."""
    from tests.figures import FIGURES

    outcome = yield
    if FIGURES:
        outcome.get_result().user_properties.extend(("figure", line) for line in FIGURES)
        FIGURES.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    MEASURED.extend(value for name, value in report.user_properties if name == "figure")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures the tests measured (tests/figures.py), in every run."""
    if MEASURED:
        terminalreporter.section("figures measured")
        for line in MEASURED:
            terminalreporter.write_line(line)
