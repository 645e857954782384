"""Wires config, database, scheduler, plugins, adapters and web; starts them in order, stops in reverse."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from bot import migrate
from bot.adapters.base import Adapter
from bot.adapters.console import ConsoleAdapter
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.core_commands import Core
from bot.db import Database, sync_url
from bot.metrics import Metrics
from bot.plugin import Plugin
from bot.registry import Registry, discover_plugins
from bot.scheduler import Scheduler
from bot.services import Services

log = logging.getLogger(__name__)


class CopBot:
    """One running bot. Tests build it with their own clock, adapters and plugins."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        adapters: Sequence[Adapter] | None = None,
        plugins: Iterable[type[Plugin]] | None = None,
        console_io: tuple[TextIO, TextIO] | None = None,
        run_scheduler_loop: bool = True,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.db = Database(settings.database_url)
        self.services = Services(
            settings=settings, db=self.db, clock=self.clock, metrics=Metrics(), started_at=self.clock.now()
        )
        self.registry = Registry(self.services)
        self.scheduler = Scheduler(sync_url(self.db.url), self.clock, self.registry.run_job)
        self.services.scheduler = self.scheduler
        self._plugin_classes = list(plugins) if plugins is not None else None
        self._given_adapters = list(adapters) if adapters is not None else None
        self._console_io = console_io
        self._run_scheduler_loop = run_scheduler_loop
        self.adapters: list[Adapter] = []
        self.web: Any = None
        self._stopping = asyncio.Event()
        self._started = False

    def _build_adapters(self) -> list[Adapter]:
        if self._given_adapters is not None:
            return self._given_adapters
        adapters: list[Adapter] = []
        settings = self.settings
        if settings.console_enabled:
            stdin, stdout = self._console_io or (None, None)
            adapters.append(
                ConsoleAdapter(
                    clock=self.clock,
                    community=settings.console.community or settings.community_list()[0].slug,
                    moderators=settings.console.moderators,
                    stdin=stdin,
                    stdout=stdout,
                )
            )
        if settings.matrix is not None:
            from bot.adapters.matrix import MatrixAdapter  # imports nio only when Matrix is configured

            adapters.append(
                MatrixAdapter(
                    config=settings.matrix,
                    communities=settings.community_list(),
                    db=self.db,
                    clock=self.clock,
                )
            )
        if settings.discord is not None:
            from bot.adapters.discord_adapter import DiscordAdapter  # imports discord.py only when configured

            adapters.append(DiscordAdapter(settings, self.db, self.clock))
        return adapters

    async def start(self) -> None:
        await migrate.upgrade(self.db)
        await self.scheduler.open()
        if self._plugin_classes is None:
            classes = list(discover_plugins().values())
        else:  # tests name their plugins; the core commands are always there
            classes = [Core, *[cls for cls in self._plugin_classes if cls is not Core]]
        self.registry.load(classes)
        async with self.db.session() as session:
            await self.registry.load_communities(session)
        await self.registry.journal.start(self.clock.now())
        await self.registry.setup()
        for target, meta in self.registry.recurring:
            await self.scheduler.every(
                f"recurring:{target}",
                target,
                interval=meta.interval,
                cron=meta.cron,
                timezone=self.settings.timezone,
            )
        if self.settings.web.enabled:  # before the platforms: a taken port must fail before anyone chats
            from bot.web.app import WebServer  # aiohttp.web: loaded only when the web part runs

            self.web = WebServer(self.services)
            await self.web.start()
        self.adapters = self._build_adapters()
        for adapter in self.adapters:
            self.services.adapters[adapter.platform] = adapter
        self.services.emit = self._emit
        for adapter in self.adapters:
            await adapter.install_commands(self.registry.specs)
            await adapter.start(self.registry.dispatcher(adapter))
        if self._run_scheduler_loop:
            await self.scheduler.start()
        else:
            self.scheduler.running = True
        self._started = True
        log.info(
            "copbot started: platforms %s, plugins %s, database %s",
            ", ".join(a.platform for a in self.adapters) or "none",
            ", ".join(self.registry.plugins),
            self.db.backend,
        )

    async def _emit(self, event) -> None:  # type: ignore[no-untyped-def]
        adapter = self.services.adapters.get(event.room.platform)
        if adapter is not None:
            await self.registry.emit(event, adapter)

    async def stop(self) -> None:
        """Stop in reverse order; each part is stopped even if an earlier one fails."""
        for adapter in reversed(self.adapters):
            await _quietly(adapter.stop(), f"stopping {adapter.platform}")
        if self.web is not None:
            await _quietly(self.web.stop(), "stopping web")
        await _quietly(self.scheduler.stop(), "stopping scheduler")
        await _quietly(self.registry.teardown(), "tearing down plugins")
        await _quietly(self.registry.journal.stop(), "writing the last activity")
        await _quietly(self.db.close(), "closing database")
        self._started = False

    def request_stop(self) -> None:
        self._stopping.set()

    async def run(self) -> int:
        """Run until SIGINT/SIGTERM or, on the console, the end of input; returns the exit code."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, self.request_stop)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            await self.start()
            waiters = [asyncio.create_task(self._stopping.wait())]
            waiters += [
                asyncio.create_task(adapter.finished.wait())
                for adapter in self.adapters
                if isinstance(adapter, ConsoleAdapter)
            ]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
        finally:
            await self.stop()
        return 0


async def _quietly(awaitable, what: str) -> None:  # type: ignore[no-untyped-def]
    try:
        await awaitable
    except Exception:
        log.exception("error while %s", what)
