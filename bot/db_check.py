"""Is the configured database one copbot can use? Asked once before start-up, answered in one plain line.

Without this, a database file that is something else, or that copbot may not write, surfaces as a
traceback from deep inside a migration, or worse, later, as every command failing on its first write.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot.db import Database
from bot.errors import StartupError

_SQLITE_REASONS = {
    "SQLITE_NOTADB": "{path} is not an SQLite database; move that file away or point database_url at another",
    "SQLITE_CORRUPT": "{path} is damaged (SQLite reports it corrupt); restore a backup or move it away",
    "SQLITE_CANTOPEN": "cannot open or create {path}: check that copbot may write in its directory",
    "SQLITE_BUSY": "{path} is locked by another program; stop it, or point database_url at another file",
    "SQLITE_FULL": "cannot write to {path}: the disk is full",
}
_CANNOT_WRITE = "cannot write to {path}: check permissions of the file and of its directory"


def open_database(url: str) -> Database:
    """A :class:`Database`; creating the SQLite file's directory is the first thing that can fail."""
    try:
        return Database(url)
    except OSError as error:
        path = make_url(url).database or url
        raise StartupError(f"cannot create the directory for {path}: {error.strerror or error}") from None


@contextlib.asynccontextmanager
async def plain_database_errors(database: Database) -> AsyncIterator[None]:
    """Turn the database's own errors inside the block into a :class:`StartupError` in plain words."""
    try:
        yield
    except (DBAPIError, OSError) as error:
        raise StartupError(describe_database_error(database, error)) from None


async def check_database(database: Database) -> None:
    """Raise :class:`StartupError` saying what is wrong when the database cannot be read and written."""
    if database.is_sqlite:
        # With the standard library's driver, in a thread of asyncio's own: a failed aiosqlite connection
        # leaves a worker thread that may answer after the event loop closed (a traceback on stderr).
        path = make_url(database.url).database or ":memory:"
        try:
            await asyncio.to_thread(_check_sqlite_file, path)
        except (sqlite3.Error, OSError) as error:
            raise StartupError(describe_database_error(database, error)) from None
        return
    async with plain_database_errors(database), database.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def _check_sqlite_file(path: str) -> None:
    """Reads the schema (a file of another kind fails here), then rewrites the header with the value it
    already has: the smallest real write, refused by a read-only file or directory."""
    connection = sqlite3.connect(path, timeout=5)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        connection.execute(f"PRAGMA user_version = {version}")
        connection.commit()
    finally:
        connection.close()


def describe_database_error(database: Database, error: BaseException) -> str:
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
