"""The database: one async engine for copbot's own queries, SQLite (WAL) by default, PostgreSQL by URL.

APScheduler's job store needs a synchronous engine; :func:`sync_url` derives its URL from the same
setting, so both always point at the same database.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.types import DateTime, TypeDecorator

from bot.health import Trouble

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite+aiosqlite:///copbot.db"
WRITES_ADVICE = (
    "copbot keeps what it has not written in memory and retries with back-off; once the database takes "
    "writes again it catches up by itself, no restart needed"
)
_SQLITE_UNAVAILABLE = (
    "SQLITE_READONLY",
    "SQLITE_FULL",
    "SQLITE_IOERR",
    "SQLITE_CANTOPEN",
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_PERM",
)
_POSTGRES_UNAVAILABLE = ("08", "53", "57P", "25006")
"""SQLSTATE classes: connection exception, insufficient resources (disk full), operator intervention
(shut down), read-only transaction."""


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps go in as UTC and come out timezone-aware, on SQLite (which has no zones) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; copbot stores only aware times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def async_url(url: str) -> str:
    """Accept the URLs people write (``sqlite:///x.db``, ``postgresql://…``) and pick the async driver."""
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    parsed = make_url(async_url(url))
    if parsed.drivername == "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite")
    elif parsed.drivername == "postgresql+asyncpg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def backend_name(url: str) -> str:
    return "PostgreSQL" if make_url(async_url(url)).get_backend_name() == "postgresql" else "SQLite"


def install_sqlite_pragmas(engine: Any) -> None:
    """WAL lets the scheduler's synchronous engine read while copbot writes; foreign keys are opt-in."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


class Database:
    """The engine and the session factory; one unit of work per handled event."""

    def __init__(self, url: str = DEFAULT_URL) -> None:
        self.url = async_url(url)
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {}
        if not self.is_sqlite:
            kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=5)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            install_sqlite_pragmas(self.engine.sync_engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.writes = Trouble("database", log)
        """Writes failing right now (disk full, read-only, server gone): said once, shown by /healthz."""

    def unavailable(self, error: BaseException) -> bool:
        """True when ``error`` says the database cannot be used right now — not a bug in a query. Such a
        failure is noted in :attr:`writes` (one log line per streak, what to do) instead of a traceback."""
        if not is_unavailable(error):
            return False
        from bot.db_check import describe_database_error  # db_check builds on this module

        self.writes.failed(describe_database_error(self, error), advice=WRITES_ADVICE, level=logging.ERROR)
        return True

    async def probe_write(self, now: datetime) -> None:
        """The smallest real write (a row of the state table), to learn that writes work again."""
        from bot import store  # store builds on this module

        async with self.engine.begin() as connection:
            await store.put_state(connection, "copbot", "write-probe", now.isoformat(), now)

    @property
    def backend(self) -> str:
        return backend_name(self.url)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A transaction: committed when the block ends normally, rolled back when it raises."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def close(self) -> None:
        await self.engine.dispose()


def is_unavailable(error: BaseException) -> bool:
    """The database itself refuses (full, read-only, locked, unreachable), as opposed to a query's bug."""
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    cause = error.orig
    name = str(getattr(cause, "sqlite_errorname", "") or "")
    if name:
        return name.startswith(_SQLITE_UNAVAILABLE)
    code = str(getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None) or "")
    if code:
        return code.startswith(_POSTGRES_UNAVAILABLE)
    return isinstance(error, OperationalError | InterfaceError)  # no code at all: the connection failed
