"""Wires config, database, scheduler, plugins, adapters and web; starts them in order, stops in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, TextIO

from bot import migrate, standby
from bot.adapters.base import Adapter
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.core_commands import Core
from bot.db import Database, sync_url
from bot.dispatcher import Dispatcher
from bot.errors import StartupError
from bot.health import Trouble
from bot.metrics import Metrics
from bot.model import Event
from bot.pipeline import Pipeline
from bot.plugin import Plugin
from bot.registry import Registry, discover_plugins
from bot.scheduler import Scheduler
from bot.services import Services
from bot.tasks import cancel_and_wait

log = logging.getLogger(__name__)

SETTLE_SECONDS = 1.0
"""When copbot was loaded with the collector off, how long after start-up the garbage of loading is
collected (see :meth:`CopBot.start`): late enough not to hold up the first replies."""


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
        self.scheduler = Scheduler(
            sync_url(self.db.url),
            self.clock,
            self.pipeline.run_job,
            owners=[c.slug for c in settings.served_communities()] if settings.partitioned else None,
            instance=settings.instance_name,
        )
        self.services.scheduler = self.scheduler
        self._plugin_classes = list(plugins) if plugins is not None else None
        self._given_adapters = list(adapters) if adapters is not None else None
        self._console_io = console_io
        self._run_scheduler_loop = run_scheduler_loop
        self.adapters: list[Adapter] = []
        self.web: Any = None
        self._stopping = asyncio.Event()
        self._housekeeping: asyncio.Task[None] | None = None
        self._started = False

    def _build_adapters(self) -> list[Adapter]:
        if self._given_adapters is not None:
            return self._given_adapters
        adapters: list[Adapter] = []
        settings = self.settings
        if settings.console_enabled:
            from bot.adapters.console import ConsoleAdapter  # the terminal chat: loaded only when it runs

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
                    served=[c.slug for c in settings.served_communities()] if settings.partitioned else None,
                    direct_messages=settings.answers_direct_messages,
                    instance=settings.instance_name if settings.partitioned else "",
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
        await self._declare_recurring()
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
            await adapter.start(Dispatcher(self.pipeline, adapter))
        # Work a previous process committed but did not finish, and work that fell due while copbot was
        # down, is done now — before start() returns, so even a process that exits right away does it.
        await self.pipeline.outbox.start()
        await self.scheduler.run_due()
        if self._run_scheduler_loop:
            await self.scheduler.start()
            self._housekeeping = asyncio.create_task(self._keep_house(), name="copbot-housekeeping")
        else:
            self.scheduler.running = True
        await self.registry.started()  # plugins' work that needs the platforms (e.g. reconciling roles)
        self._started = True
        self.services.ready = True
        # Everything built while starting (modules, tables, specs, the plugins) lives as long as the bot: a
        # full garbage collection would otherwise walk all of it again and again, a ~40 ms pause now and then
        # in the middle of someone's command. Frozen, collections only look at what handling events makes.
        # (`copbot` and `python -m bot` load copbot with the collector off — bot/launch.py — so it is on
        # from here.) Loading with the collector off also leaves ~0.9 MB of garbage in reference cycles (the
        # first class of each slots dataclass, Pydantic's and typing's scaffolding); frozen with the rest it
        # would stay for the life of the process. It is collected first, a second after start-up: that
        # collection walks everything once (~50 ms), which the first replies should not wait for.
        if gc.isenabled():
            gc.freeze()
        else:
            asyncio.get_running_loop().call_later(SETTLE_SECONDS, _collect_and_freeze)
        log.info(
            "copbot started: platforms %s, plugins %s, database %s",
            ", ".join(a.platform for a in self.adapters) or "none",
            ", ".join(self.registry.plugins),
            self.db.backend,
        )

    async def _restore_jobs(self) -> None:
        """Jobs the plugins' own data implies (an open poll's close) are put back if the store lacks them:
        the domain's deadline is the truth, the job store only a means to meet it.

        With several processes on one database each restores the jobs of its own communities (and the one
        answering direct messages those of no community), each job owned by its community."""
        restored = 0
        async with self.db.session() as session:
            wanted = [job for plugin in self.registry.plugins.values() for job in await plugin.jobs(session)]
        served = set(self.registry.served.values())
        for job in wanted:
            community = self.registry.communities.get(job.community_id) if job.community_id else None
            if self.settings.partitioned and (
                job.community_id not in served
                if community is not None
                else not self.settings.answers_direct_messages
            ):
                continue  # another process's
            owner = community.slug if community is not None else self.scheduler.own
            if await self.scheduler.ensure(job.id, job.when, job.target, owner=owner, **job.payload):
                restored += 1
        if restored:
            log.warning("restored %d scheduled job(s) missing from the job store", restored)

    async def _declare_recurring(self) -> None:
        """The plugins' periodic jobs (``@schedule(interval=…)``) are each process's own: one per process,
        ``recurring:<target>`` — ``recurring:<target>@<instance>`` when several processes share the
        database. A process serving everything removes those of processes that shared it before."""
        for target, meta in self.registry.recurring:
            job_id = self.scheduler.own_id(f"recurring:{target}")
            await self.scheduler.every(
                job_id,
                target,
                interval=meta.interval,
                cron=meta.cron,
                timezone=self.settings.timezone,
                owner=self.scheduler.own,
            )
        if not self.settings.partitioned:  # periodic jobs of processes that shared the database before
            for job_id, owner in (await self.scheduler.owners()).items():
                if "@" in job_id and owner.startswith("@") and owner != self.scheduler.own:
                    await self.scheduler.cancel(job_id)

    async def _keep_house(self) -> None:
        """A minute after start, and every day after, what the core keeps only for a while goes
        (bot/housekeeping.py). Each process does it, whatever it serves: deleting is the same done twice."""
        from bot import housekeeping

        await asyncio.sleep(housekeeping.FIRST_AFTER_START)
        while True:
            try:
                await housekeeping.prune(self.db, self.clock.now())
            except Exception as error:
                if not self.db.unavailable(error):
                    log.exception("housekeeping failed; it is tried again tomorrow")
            await asyncio.sleep(housekeeping.EVERY.total_seconds())

    async def _emit(self, event: Event) -> None:
        adapter = self.services.adapters.get(event.room.platform)
        if adapter is not None:
            await self.pipeline.emit(event, adapter)

    async def stop(self) -> None:
        """Stop in reverse order; each part is stopped even if an earlier one fails.

        The scheduler stops first, letting a job in progress finish while the platforms can still carry
        its messages; the outbox then finishes a delivery in progress.
        """
        self.services.ready = False
        if self._housekeeping is not None:
            await cancel_and_wait(self._housekeeping, what="the housekeeping")
            self._housekeeping = None
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

        Before starting, the process takes its instance's lease (bot/standby.py); while another process
        holds it, this one waits as a standby. If an active process loses its lease it stops at once and
        returns :data:`~bot.standby.EXIT_LEASE_LOST`, for its supervisor to start it again.
        """
        self._stop_on_signals()
        lease = standby.lease_for(self.settings.database_url, self.settings.instance_name)
        try:
            if lease is not None and not await self._become_active(lease):
                return 0  # stopped while waiting as a standby
            return await self._run_active(lease)
        finally:
            if lease is not None:
                await lease.release()

    async def _run_active(self, lease: standby.Lease | None) -> int:
        starting = asyncio.create_task(self.start(), name="copbot-start")
        stop_requested = asyncio.create_task(self._stopping.wait(), name="copbot-stop-requested")
        lost = asyncio.create_task(lease.lost(), name="copbot-lease") if lease is not None else None
        ending = [stop_requested, *([lost] if lost is not None else [])]
        lease_lost = False
        try:
            await asyncio.wait((starting, *ending), return_when=asyncio.FIRST_COMPLETED)
            if starting.done() and not (lost is not None and lost.done()):
                starting.result()
                await self._until_done(ending)
        finally:
            stop_requested.cancel()
            if lost is not None and not lost.done():
                lost.cancel()
            if not starting.done():
                log.info("stop requested while starting; stopping what was started")
                await cancel_and_wait(starting, what="the interrupted start")
            if lost is not None and lost.done() and not lost.cancelled():
                assert lease is not None
                lease_lost = True
                log.error(
                    "standby: lost %s: %s; another process may be active now, so this one stops serving "
                    "and exits with code %d (its supervisor should start it again)",
                    lease.description,
                    lost.result(),
                    standby.EXIT_LEASE_LOST,
                )
            await self.stop()
        return standby.EXIT_LEASE_LOST if lease_lost else 0

    async def _become_active(self, lease: standby.Lease) -> bool:
        """Take the lease, or wait for it as a standby; False if a stop was requested while waiting."""
        try:
            acquired = await lease.try_acquire()
        except Exception as error:
            raise StartupError(
                f"cannot take {lease.description} ({type(error).__name__}: {error}); check database_url"
            ) from None
        if acquired:
            log.info("active: holding %s", lease.description)
            self.services.role = "active"
            return True
        holder = await lease.holder()
        if not self.settings.instance.standby:
            raise StartupError(
                f"another copbot process is active for this instance ({holder} holds {lease.description}); "
                "stop it, give this process other [instance] communities, or set [instance] standby = true "
                "to wait as its standby"
            )
        self.services.role = "standby"
        log.log(
            logging.WARNING if self.settings.console_enabled else logging.INFO,  # a terminal waits: say why
            "standby: %s holds %s; waiting to take over (trying every %.0f s)",
            holder,
            lease.description,
            standby.POLL_SECONDS,
        )
        waited = time.monotonic()
        web = await standby.serve_health(self.settings.web, holder) if self.settings.web.enabled else None
        trouble = Trouble("standby", log)
        try:
            while not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), standby.POLL_SECONDS)
                if self._stopping.is_set():
                    return False
                try:
                    if await lease.try_acquire():
                        break
                    trouble.recovered("the database answers again")
                except Exception as error:
                    trouble.failed(f"cannot try {lease.description} ({type(error).__name__}: {error})")
            else:
                return False
        finally:
            if web is not None:
                await web.cleanup()
        log.info(
            "standby: took over %s after %.1f s as a standby; starting",
            lease.description,
            time.monotonic() - waited,
        )
        self.services.role = "active"
        return True

    def _stop_on_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, self.request_stop)
            except (NotImplementedError, RuntimeError):
                pass

    async def _until_done(self, ending: Sequence[asyncio.Task[Any]]) -> None:
        """Until a stop is requested (or the lease is lost) or, on the console, input ends."""
        console = sys.modules.get("bot.adapters.console")  # not loaded: no console adapter can exist
        waiters = [
            asyncio.create_task(adapter.finished.wait())
            for adapter in self.adapters
            if console is not None and isinstance(adapter, console.ConsoleAdapter)
        ]
        await asyncio.wait([*ending, *waiters], return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()


def _collect_and_freeze() -> None:
    gc.collect()
    gc.freeze()
    gc.enable()


async def _quietly(awaitable: Awaitable[object], what: str) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("error while %s", what)
