"""Who is active: one process per instance at a time, the others wait as standbys.

Several copbot processes started with the same configuration (the same ``[instance] name``, or the same
communities) would each answer every command and run every job. Before starting its platforms and its
scheduler a process therefore takes a **lease**: on PostgreSQL a session-level advisory lock
(``pg_try_advisory_lock`` of a 64-bit hash of ``copbot:<instance>``) held by a connection of its own,
kept open for the life of the process; on SQLite an exclusive ``flock`` on ``<database>.lock`` next to the
database file (one machine only, as SQLite itself).

A process that gets the lease is **active** and starts normally. One that does not is a **standby**: it
serves ``/healthz`` with ``{"role": "standby"}`` (HTTP 200, so an orchestrator keeps it) and tries again
every :data:`POLL_SECONDS`. When the active process dies — ``kill -9``, the OOM killer, a lost host — its
connection ends, PostgreSQL drops the lock and a standby takes it on its next try and starts: migrations
are done, the stored sync token and Matrix session are reused, overdue jobs are run once by the usual
start-up, so nothing is lost and nothing is done twice (README "Running more than one process").

The lock connection asks PostgreSQL for TCP keepalives, so a host that vanishes without closing its
connection (a power cut) is noticed by the server in about :data:`KEEPALIVE_SECONDS` and its lock freed.
The active process checks its lock connection every :data:`POLL_SECONDS`; if the connection is lost, so is
the lock — another process may already be active — and it stops serving at once and exits non-zero (one
log line says so) for its supervisor to start it again, as a standby if need be.

``[instance] standby = false`` turns waiting off: a second process then exits with one line saying which
process holds the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from bot.db import async_url
from bot.errors import StartupError

if TYPE_CHECKING:
    from aiohttp import web

    from bot.config import WebConfig

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0
"""How often a standby tries the lock, and how often the active process checks its lock connection."""
CHECK_TIMEOUT = 10.0
"""Seconds the active process's check of its lock connection may take before the lock counts as lost."""
KEEPALIVE = {"tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2", "tcp_keepalives_count": "3"}
KEEPALIVE_SECONDS = 11
"""About how long PostgreSQL takes to notice that the active process's host is gone (5 + 3 × 2 s)."""
EXIT_LEASE_LOST = 3
"""The exit code of an active process that lost its lock (its supervisor should start it again)."""


def lock_key(name: str) -> int:
    """The advisory lock's key: a signed 64-bit hash of ``copbot:<name>`` (PostgreSQL's bigint)."""
    digest = hashlib.sha256(f"copbot:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def holder() -> str:
    """Who this process is, for the other processes' log lines: host and process id."""
    return f"{socket.gethostname()} pid {os.getpid()}"


async def serialize(session: AsyncSession, name: str) -> None:
    """Let one process at a time through a start-up step (writing the communities table) on PostgreSQL:
    processes started together would otherwise insert the same rows. Held until the transaction ends."""
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})


class Lease(Protocol):
    """The right to be the active process of an instance."""

    description: str
    """What is locked, for log lines: ``the PostgreSQL advisory lock 'copbot:water'``."""

    async def try_acquire(self) -> bool:
        """Take the lease if nobody holds it; True when this process holds it now."""
        ...

    async def lost(self) -> str:
        """Return (with the reason) only when a lease this process held is lost; never while it holds."""
        ...

    async def holder(self) -> str:
        """Who holds the lease now, as far as can be told (for the standby's log line and /healthz)."""
        ...

    async def release(self) -> None: ...


class PostgresLease:
    """A session-level advisory lock on a connection of its own (not from the bot's pool)."""

    def __init__(self, url: str, name: str) -> None:
        self.name = name
        self.key = lock_key(name)
        self.description = f"the PostgreSQL advisory lock 'copbot:{name}' (key {self.key})"
        self._engine: AsyncEngine = create_async_engine(
            async_url(url), poolclass=NullPool, connect_args={"server_settings": dict(KEEPALIVE)}
        )
        self._connection: AsyncConnection | None = None

    async def try_acquire(self) -> bool:
        if self._connection is None:
            self._connection = await self._engine.connect()
        try:
            got = await self._connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})
            await self._connection.commit()  # no transaction left open; the lock is the session's
        except Exception:
            await self._drop()
            raise
        if got:
            await self._say_who()
        return bool(got)

    async def _say_who(self) -> None:
        """Name this process in pg_stat_activity, so an operator (and a standby's log) can tell who holds."""
        assert self._connection is not None
        with contextlib.suppress(Exception):
            await self._connection.execute(
                text("SELECT set_config('application_name', :name, false)"),
                {"name": f"copbot {self.name or '(undivided)'} {holder()}"[:63]},
            )
            await self._connection.commit()

    async def holder(self) -> str:
        """Who holds the lock now, as far as PostgreSQL tells (its application name and client address)."""
        query = text(
            "SELECT a.application_name, a.client_addr FROM pg_locks l JOIN pg_stat_activity a "
            "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.classid = CAST(:high AS oid) AND l.objid = CAST(:low AS oid)"
        )
        unsigned = self.key & 0xFFFF_FFFF_FFFF_FFFF  # a bigint key is shown as two oids, high and low
        halves = {"high": unsigned >> 32, "low": unsigned & 0xFFFF_FFFF}
        try:
            async with self._engine.connect() as connection:
                row = (await connection.execute(query, halves)).first()
        except Exception:
            return "another process"
        if row is None:
            return "another process"
        name, address = row
        return f"{name or 'a process'}" + (f" from {address}" if address else "")

    async def lost(self) -> str:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            connection = self._connection
            if connection is None:
                return "the lock connection was closed"
            try:
                await asyncio.wait_for(connection.execute(text("SELECT 1")), CHECK_TIMEOUT)
                await connection.commit()
            except Exception as error:
                await self._drop()
                return f"the connection holding it ended ({type(error).__name__}: {str(error)[:200]})"

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.invalidate()
            with contextlib.suppress(Exception):
                await connection.close()

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.execute(text("SELECT pg_advisory_unlock_all()"))
                await connection.commit()
            with contextlib.suppress(Exception):
                await connection.close()
        await self._engine.dispose()


class FileLease:
    """An exclusive ``flock`` on a lock file next to the SQLite database: one machine, like SQLite."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"the lock file {path}"
        self._file: Any = None

    async def try_acquire(self) -> bool:
        if self._file is None:
            self._file = self.path.open("a+")
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps({"holder": holder()}) + "\n")
        self._file.flush()
        return True

    async def holder(self) -> str:
        try:
            return str(json.loads(self.path.read_text().splitlines()[0])["holder"])
        except (OSError, ValueError, KeyError, IndexError):
            return "another process"

    async def lost(self) -> str:
        await asyncio.Event().wait()  # a lock on a local file is held until the process ends
        return ""  # pragma: no cover

    async def release(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(file.fileno(), fcntl.LOCK_UN)
            file.close()


async def serve_health(config: WebConfig, active: str) -> web.AppRunner:
    """While waiting: ``/healthz`` answers 200 ``{"status": "standby", "role": "standby"}`` (an
    orchestrator keeps a standby running) and names the active process; nothing else is served."""
    from aiohttp import web

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "standby", "role": "standby", "active": active})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.port).start()
    except OSError as error:
        await runner.cleanup()
        raise StartupError(
            f"the web part cannot listen on {config.host}:{config.port} ({error.strerror}); "
            "set [web] port (or COPBOT_WEB__PORT), or [web] enabled = false"
        ) from None
    log.info("standby: /healthz on http://%s:%s", config.host, config.port)
    return runner


def lease_for(database_url: str, instance: str) -> PostgresLease | FileLease | None:
    """The lease guarding this instance on this database; None for an in-memory SQLite database."""
    url = make_url(async_url(database_url))
    if url.get_backend_name() == "postgresql":
        return PostgresLease(database_url, instance)
    database = url.database or ""
    if not database or database == ":memory:":
        return None
    suffix = f".{instance}.lock" if instance else ".lock"
    return FileLease(Path(database).with_name(Path(database).name + suffix))
