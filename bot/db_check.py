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

from bot.db import Database, describe_database_error
from bot.errors import StartupError


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
