"""Wires config, database, scheduler, plugins, adapters and web; starts them in order, stops in reverse."""

from __future__ import annotations

import asyncio
import gc
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
from bot.pipeline import Pipeline
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
        self.pipeline = Pipeline(self.services, self.registry)
        self.scheduler = Scheduler(sync_url(self.db.url), self.clock, self.pipeline.run_job)
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
        await self.pipeline.journal.start(self.clock.now())
        await self.registry.setup()
        await self._restore_jobs()
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
            await adapter.start(self.pipeline.dispatcher(adapter))
        # Work a previous process committed but did not finish, and work that fell due while copbot was
        # down, is done now — before start() returns, so even a process that exits right away does it.
        await self.pipeline.outbox.start()
        await self.scheduler.run_due()
        if self._run_scheduler_loop:
            await self.scheduler.start()
        else:
            self.scheduler.running = True
        await self.registry.started()  # plugins' work that needs the platforms (e.g. reconciling roles)
        self._started = True
        # Everything built while starting (modules, tables, specs, the plugins) lives as long as the bot: a
        # full garbage collection would otherwise walk all of it again and again, a ~40 ms pause now and then
        # in the middle of someone's command. Frozen, collections only look at what handling events makes.
        gc.freeze()
        log.info(
            "copbot started: platforms %s, plugins %s, database %s",
            ", ".join(a.platform for a in self.adapters) or "none",
            ", ".join(self.registry.plugins),
            self.db.backend,
        )

    async def _restore_jobs(self) -> None:
        """Jobs the plugins' own data implies (an open poll's close) are put back if the store lacks them:
        the domain's deadline is the truth, the job store only a means to meet it."""
        restored = 0
        async with self.db.session() as session:
            wanted = [job for plugin in self.registry.plugins.values() for job in await plugin.jobs(session)]
        for job in wanted:
            if await self.scheduler.ensure(job.id, job.when, job.target, **job.payload):
                restored += 1
        if restored:
            log.warning("restored %d scheduled job(s) missing from the job store", restored)

    async def _emit(self, event) -> None:  # type: ignore[no-untyped-def]
        adapter = self.services.adapters.get(event.room.platform)
        if adapter is not None:
            await self.pipeline.emit(event, adapter)

    async def stop(self) -> None:
        """Stop in reverse order; each part is stopped even if an earlier one fails.

        The scheduler stops first, letting a job in progress finish while the platforms can still carry
        its messages; the outbox then finishes a delivery in progress.
        """
        await _quietly(self.scheduler.stop(), "stopping scheduler")
        await _quietly(self.pipeline.outbox.stop(), "stopping the outbox")
        for adapter in reversed(self.adapters):
            await _quietly(adapter.stop(), f"stopping {adapter.platform}")
        if self.web is not None:
            await _quietly(self.web.stop(), "stopping web")
        await _quietly(self.registry.teardown(), "tearing down plugins")
        await _quietly(self.pipeline.journal.stop(), "writing the last activity")
        await _quietly(self.db.close(), "closing database")
        self._started = False

    def request_stop(self) -> None:
        self._stopping.set()

    async def run(self) -> int:
        """Run until SIGINT/SIGTERM or, on the console, the end of input; returns the exit code.

        start() runs as a task raced against the stop request: a signal must stop copbot even while it is
        still starting (a homeserver being retried, say). The start is then cancelled and what it had
        started is stopped; a start that fails raises its error here, after the same clean-up.
        """
        self._stop_on_signals()
        starting = asyncio.create_task(self.start(), name="copbot-start")
        stop_requested = asyncio.create_task(self._stopping.wait(), name="copbot-stop-requested")
        try:
            await asyncio.wait((starting, stop_requested), return_when=asyncio.FIRST_COMPLETED)
            if starting.done():
                starting.result()
                await self._until_done(stop_requested)
        finally:
            stop_requested.cancel()
            if not starting.done():
                log.info("stop requested while starting; stopping what was started")
                await _cancel(starting)
            await self.stop()
        return 0

    def _stop_on_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, self.request_stop)
            except (NotImplementedError, RuntimeError):
                pass

    async def _until_done(self, stop_requested: asyncio.Task[bool]) -> None:
        """Until a stop is requested or, on the console, input ends."""
        waiters = [
            asyncio.create_task(adapter.finished.wait())
            for adapter in self.adapters
            if isinstance(adapter, ConsoleAdapter)
        ]
        await asyncio.wait([stop_requested, *waiters], return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()


async def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it; what it raises on the way out no longer matters, since we stop."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # we are being cancelled ourselves, not just the task
    except Exception as error:
        log.info("the interrupted start ended with %r", error)


async def _quietly(awaitable, what: str) -> None:  # type: ignore[no-untyped-def]
    try:
        await awaitable
    except Exception:
        log.exception("error while %s", what)
