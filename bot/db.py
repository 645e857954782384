"""The database: one async engine for copbot's own queries, SQLite (WAL) by default, PostgreSQL by URL.

APScheduler's job store needs a synchronous engine; :func:`sync_url` derives its URL from the same
setting, so both always point at the same database.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import SingletonThreadPool, StaticPool
from sqlalchemy.types import DateTime, TypeDecorator

from bot import greenlets
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

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, the text SQLAlchemy stores (``YYYY-MM-DD HH:MM:SS.ffffff``, in UTC) in one step, not two
        (this type's conversion, then the DATETIME type's formatting through a dict): every event binds two
        times (its handled id, its activity row). Checked against SQLAlchemy's own at creation; any other
        dialect, or another storage format, keeps SQLAlchemy's processor."""
        inner = super().bind_processor(dialect)
        if dialect.name != "sqlite" or inner is None:
            return inner
        convert = self.process_bind_param

        def process(value: datetime | None) -> str | None:
            converted = convert(value, dialect)
            return None if converted is None else converted.isoformat(" ", "microseconds")

        samples = (datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC), datetime(987, 1, 2, 3, 4, 5, 6, tzinfo=UTC))
        return process if all(process(sample) == inner(sample) for sample in samples) else inner

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        """On SQLite, that text read back as an aware time in one C call (``fromisoformat`` with the
        offset appended), not three (the DATETIME type's parsing, then ``replace``, which alone costs ten
        times the parse): a list of a thousand meetings reads thousands of times. Text in any other form
        (written by hand, say) takes SQLAlchemy's way. Checked against SQLAlchemy's own at creation."""
        inner = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or inner is None:
            return inner
        parse = datetime.fromisoformat

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            if value.__class__ is str and len(value) == 26:  # YYYY-MM-DD HH:MM:SS.ffffff, as stored
                return parse(value + "+00:00")
            return inner(value)

        samples = ("2024-02-29 23:59:59.000000", "0987-01-02 03:04:05.000006")
        return process if all(process(sample) == inner(sample) for sample in samples) else inner

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


QUERY_CACHE_SIZE = 200
"""Compiled statements SQLAlchemy keeps (least recently used go first; its default is 500). An entry is up
to ~20 kB (an ORM query of a whole row; measured), and copbot builds a few hundred statement shapes: with
the default, a bot that has run every command for a while would hold up to ~10 MB more than one that just
started. 200 keeps every command's hot statements and bounds that growth to ~4 MB; a statement that fell
out is compiled again (a fraction of a millisecond)."""

SQLITE_CACHE_KIB = 512
"""Each SQLite connection's page cache, in KiB (SQLite's default is ~2 MB per connection). It fills with the
pages the queries touched and stays full for the life of the connection, so it is process memory that grows
with the data up to this bound; the operating system's file cache keeps the rest of the file close at hand."""


def install_sqlite_pragmas(engine: Any) -> None:
    """WAL lets the scheduler's synchronous engine read while copbot writes; foreign keys are opt-in; the
    page cache is bounded (:data:`SQLITE_CACHE_KIB`) and no memory map is used (its pages count as ours).

    ``synchronous=NORMAL`` (with WAL): a commit appends to the WAL without waiting for the disk, which is
    synced at checkpoints — a commit costs microseconds, not a sync. A killed process (``kill -9``, the OOM
    killer) loses nothing: its writes are the operating system's already. A power cut can lose the last
    commits before it — whole transactions, newest first, never a part of one (the WAL is a log) — so what
    README "Reliability" promises holds: an effect and its handled id are lost together, and the command
    runs again when redelivered, its reply deduplicated by its key. ``FULL`` would sync every commit.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute("PRAGMA mmap_size=0")
        cursor.close()


class Database:
    """The engine and the session factory; one unit of work per handled event."""

    def __init__(self, url: str = DEFAULT_URL) -> None:
        self.url = async_url(url)
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        greenlets.install()  # SQLAlchemy's asyncio calls in kept greenlets, not a new one (~10 µs) per call
        kwargs: dict[str, Any] = {"query_cache_size": QUERY_CACHE_SIZE}
        if self.is_sqlite:
            kwargs.update(pool_use_lifo=True)  # the connection used last: its page cache is still warm
        else:
            kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=5)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            from bot import sqlite_link

            sqlite_link.install(self.engine.sync_engine)  # one trip to aiosqlite's thread per statement
            install_sqlite_pragmas(self.engine.sync_engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.writes = Trouble("database", log)
        """Writes failing right now (disk full, read-only, server gone): said once, shown by /healthz."""

    @property
    def concurrent_reads(self) -> bool:
        """Whether a second session gets a connection of its own (and may read while the first writes):
        not with SQLite in memory, whose one connection every session shares."""
        return not isinstance(self.engine.sync_engine.pool, StaticPool | SingletonThreadPool)

    def unavailable(self, error: BaseException) -> bool:
        """True when ``error`` says the database cannot be used right now — not a bug in a query. Such a
        failure is noted in :attr:`writes` (one log line per streak, what to do) instead of a traceback."""
        if not is_unavailable(error):
            return False
        self.writes.failed(describe_database_error(self, error), advice=WRITES_ADVICE, level=logging.ERROR)
        return True

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


_SQLITE_REASONS = {
    "SQLITE_NOTADB": "{path} is not an SQLite database; move that file away or point database_url at another",
    "SQLITE_CORRUPT": "{path} is damaged (SQLite reports it corrupt); restore a backup or move it away",
    "SQLITE_CANTOPEN": "cannot open or create {path}: check that copbot may write in its directory",
    "SQLITE_BUSY": "{path} is locked by another program; stop it, or point database_url at another file",
    "SQLITE_FULL": "cannot write to {path}: the disk is full",
}
_CANNOT_WRITE = "cannot write to {path}: check permissions of the file and of its directory"


def describe_database_error(database: Database, error: BaseException) -> str:
    """What is wrong with the database, in one line that names the file or server and what to change: at
    start-up (``db_check``) and when writes fail while copbot runs (:meth:`Database.unavailable`)."""
    url = make_url(database.url)
    if database.is_sqlite:
        cause = getattr(error, "orig", None) or error
        name = str(getattr(cause, "sqlite_errorname", ""))
        path = url.database or ":memory:"
        if name.startswith("SQLITE_READONLY") or "readonly" in str(cause):
            return _CANNOT_WRITE.format(path=path)
        for prefix, reason in _SQLITE_REASONS.items():
            if name.startswith(prefix):
                return reason.format(path=path)
        return f"cannot use the SQLite database {path}: {_first_line(cause)}"
    where = f"{url.host or 'localhost'}{f':{url.port}' if url.port else ''}/{url.database or ''}"
    cause = getattr(error, "orig", None) or error
    return f"cannot use the PostgreSQL database at {where}: {_first_line(cause)}; check database_url"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
