"""SQLite for copbot's async engine: small writes on the event loop, everything else in one trip to aiosqlite.

aiosqlite runs every call on the connection's own thread and waits for the answer: a trip of 20–100 µs
(four thread wake-ups, the GIL changing hands each time, two passes through the event loop), far more than
SQLite needs to insert a row (a few µs) or to commit in WAL mode with ``synchronous=NORMAL`` (~10–30 µs:
the WAL is appended to, not synced). Through SQLAlchemy's aiosqlite dialect a statement took three trips
(create a cursor, execute and fetch, close the cursor) and every checkin one more (a rollback, even after
a commit): a command that wrote one row took nine. Now it takes none.

:func:`install` hooks the engine's ``do_connect`` event (the URL, the dialect, the pool stay SQLAlchemy's)
to hand SQLAlchemy :class:`_Adapted` — its own aiosqlite adapter, with the cursor :class:`_Cursor` — over a
:class:`LinkedConnection`, an :class:`aiosqlite.Connection`. Then:

* A statement that writes (``INSERT``, ``UPDATE``, ``DELETE``, ``REPLACE``), and the ``COMMIT`` after such
  statements, run right here on the loop's thread. SQLite has one writer at a time anyway, so the loop
  loses no concurrency to them. Such a statement never waits for a lock here: it runs with SQLite's busy
  timeout at 0, and if another connection holds the write lock (the journal's batch, another process) it
  goes to the connection's thread, which waits as before while the loop runs on — waiting on the loop
  would stop the very coroutine that holds the lock. The rest of that transaction, commit included, then
  runs there too.
* Everything else — queries, which may scan a lot; ``executemany`` batches, and the commit after one —
  takes one trip to the thread: cursor made, statement run, every row fetched, cursor closed (copbot never
  streams results; SQLAlchemy's aiosqlite cursor read all rows at once anyway).
* A commit or rollback with no transaction open costs nothing (sqlite3 would do nothing either).

Checkpoints: SQLite's automatic checkpoint runs inside whichever commit crosses 1000 WAL pages — copying
them into the database file and syncing both, milliseconds on a disk, which must not happen on the loop.
So these connections do not checkpoint by themselves: a commit on the thread (the journal's batch, every
half second while anything happens; a write that had to wait) is followed by a passive checkpoint there.
After :data:`CHECKPOINT_EVERY` commits of small writes in a row, the engine's :class:`Checkpointer` — a
thread with a connection of its own — is asked for one: the commit that crossed the count stays on the loop
and nobody awaits the checkpoint (its disk syncs took ~50 ms here, which the command that happened to be
the thousandth used to wait for). A passive checkpoint blocks no reader or writer.

A write run here is not bounded in time: a ``DELETE`` of a member's whole history holds the loop for as
long as SQLite needs (milliseconds for thousands of rows). copbot's writes are rows of one event; bulk
deletions are rare (privacy erasure, pruning). Crash safety is SQLite's, unchanged: the same statements
and the same commits, only run from another thread.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator, Sequence
from functools import partial
from typing import Any, cast

import aiosqlite
from sqlalchemy import event
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection
from sqlalchemy.engine import Engine
from sqlalchemy.util import await_only

CHECKPOINT_EVERY = 1000
"""Commits of small writes (on the loop) in a row, over all the engine's connections, after which one goes to
the thread to checkpoint: at a few pages each, a WAL of some thousands of pages at most."""

_WRITES = ("insert", "update", "delete", "replace")

_Outcome = tuple[Any, int, int | None, list[Any]]
"""What a statement leaves: the cursor's description, rowcount, lastrowid, and all its rows."""


def _run(connection: sqlite3.Connection, sql: str, parameters: Any) -> _Outcome:
    """The whole statement, its cursor closed before the answer goes back."""
    cursor = connection.cursor()
    try:
        cursor.execute(sql, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


def _run_many(connection: sqlite3.Connection, sql: str, parameters: Iterable[Any]) -> _Outcome:
    cursor = connection.cursor()
    try:
        cursor.executemany(sql, parameters)
        return cursor.description, cursor.rowcount, cursor.lastrowid, []
    finally:
        cursor.close()


def _checkpointed(function: Callable[[], None], connection: sqlite3.Connection) -> None:
    """``function`` (a commit), then a passive checkpoint: what SQLite's automatic checkpoint would do. The
    commit stands whatever the checkpoint does (it is tried again after the next batch)."""
    function()
    with contextlib.suppress(sqlite3.Error):
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").close()


def _is_write(sql: str) -> bool:
    return sql.lstrip()[:7].lower().startswith(_WRITES)


def _is_busy(error: BaseException) -> bool:
    """The lock was taken (SQLITE_BUSY, or SQLITE_LOCKED): the statement did nothing and may run again."""
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(error, sqlite3.OperationalError) and code is not None and code & 0xFF in (5, 6)


class _Nothing:
    """An awaitable done at once, without a pass through the event loop: for a statement run on the loop,
    as ``AsyncConnection.execute`` raises ``AwaitRequired`` when its statement awaited nothing."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield


_NOTHING = _Nothing()


class Checkpointer:
    """Passive checkpoints of one database file, on a thread of their own, when asked: asking costs the
    loop a flag. Its connection is opened when first needed and closed with the engine's pool (a closed
    checkpointer starts again if asked again: a disposed engine may be used again)."""

    def __init__(self, database: str) -> None:
        self._database = database
        self._wanted = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.done = 0
        """Checkpoints run (tried) so far: for tests, and to see that it works."""

    def request(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name="copbot-checkpoint", daemon=True)
                self._thread.start()
        self._wanted.set()

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopping = True
            self._wanted.set()
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._stopping:
                    return
                with contextlib.suppress(sqlite3.Error):
                    if connection is None:
                        connection = sqlite3.connect(self._database, check_same_thread=False)
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").close()
                self.done += 1
        finally:
            if connection is not None:
                connection.close()


class _Shared:
    """What an engine's connections share: commits of small writes since the last checkpoint, and the
    thread that checkpoints after so many (None for a database in memory, which has no WAL)."""

    __slots__ = ("checkpointer", "commits")

    def __init__(self, checkpointer: Checkpointer | None = None) -> None:
        self.commits = 0
        self.checkpointer = checkpointer


class LinkedConnection(aiosqlite.Connection):
    """aiosqlite's connection, for the statements that do not run on the loop: on its thread, it waits for
    locks as configured; on the loop (:meth:`_here`) it does not wait at all."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], iter_chunk_size: int) -> None:
        super().__init__(connector, iter_chunk_size)
        self._shared = _Shared()
        self._busy_ms = -1
        """The busy timeout configured for this connection (read once); -1 until then."""
        self._waits = True
        """Whether SQLite's busy timeout is at that value (on the thread) or 0 (for a write on the loop)."""
        self._heavy = False
        """The open transaction did something on the thread (a batch, a write that waited): commit there."""
        self._sent = 0
        self._done = 0
        """Trips sent to the thread and trips it finished (each counted on its own thread): while one is under
        way — only if its coroutine was cancelled — nothing runs on the loop, it queues behind."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A trip to the connection's thread, where SQLite waits for locks as configured."""
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        self._sent += 1
        return await super()._execute(self._waiting, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    def _waiting(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            if not self._waits and self._connection is not None:
                self._connection.execute(f"PRAGMA busy_timeout={self._busy_ms}").close()
                self._waits = True
            return fn(*args, **kwargs)
        finally:
            self._done += 1

    def _here(self) -> sqlite3.Connection:
        """The sqlite3 connection, set not to wait for locks, for a statement run on the loop."""
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")  # what aiosqlite says: SQLAlchemy takes it as a disconnect
        connection = self._connection
        if self._waits:
            if self._busy_ms < 0:
                cursor = connection.execute("PRAGMA busy_timeout")
                self._busy_ms = int(cursor.fetchone()[0])
                cursor.close()
            connection.execute("PRAGMA busy_timeout=0").close()
            self._waits = False
        return connection

    def _write_here(self, sql: str, parameters: Any) -> _Outcome | None:
        """A write run on the loop; None if it must go to the thread (the lock is taken: it waits there)."""
        if not self._heavy and self._sent == self._done:
            try:
                return _run(self._here(), sql, parameters)
            except sqlite3.OperationalError as error:
                if not _is_busy(error):
                    raise
        self._heavy = True
        return None

    def _commit_here(self) -> bool:
        """Commit on the loop if the transaction did only small writes; False if it must go to the thread
        (:meth:`_commit_there`): after a batch, a write that waited, or to checkpoint with no
        :class:`Checkpointer` to ask."""
        heavy, self._heavy = self._heavy, False
        if not self._conn.in_transaction:
            return True
        shared = self._shared
        checkpointer = shared.checkpointer
        due = shared.commits >= CHECKPOINT_EVERY
        if not heavy and (checkpointer is not None or not due) and self._sent == self._done:
            try:
                self._here().commit()
            except sqlite3.OperationalError as error:
                if not _is_busy(error):
                    raise
            else:
                if due and checkpointer is not None:
                    shared.commits = 0
                    checkpointer.request()
                else:
                    shared.commits += 1
                return True
        shared.commits = 0
        return False

    def _commit_there(self) -> Awaitable[None]:
        return self._execute(_checkpointed, self._conn.commit, self._conn)

    def _rollback_here(self) -> bool:
        self._heavy = False
        return not self._conn.in_transaction

    async def commit(self) -> None:
        if not self._commit_here():
            await self._commit_there()

    async def rollback(self) -> None:
        if not self._rollback_here():
            await self._execute(self._conn.rollback)


class _Cursor:
    """The DBAPI cursor SQLAlchemy gets: a write runs on the loop, anything else in one trip to the thread
    (cursor made, statement run, rows fetched, cursor closed); the fetches read what it brought. Without
    a trip, nothing is awaited — SQLAlchemy's own adapter awaited three times per statement (to make the
    cursor, to run it, to close it), each a switch of greenlets and a pass through the event loop."""

    __slots__ = ("_adapted", "_link", "_rows", "arraysize", "description", "lastrowid", "rowcount")
    server_side = False

    def __init__(self, adapted: _Adapted) -> None:
        self._adapted = adapted
        self._link = adapted.link
        self.arraysize = 1
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: deque[Any] = deque()

    def _took(self, outcome: _Outcome) -> None:
        self.description, self.rowcount, self.lastrowid, rows = outcome
        self._rows = deque(rows)

    def execute(self, operation: str, parameters: Any = None) -> None:
        link = self._link
        parameters = () if parameters is None else parameters
        try:
            outcome = link._write_here(operation, parameters) if _is_write(operation) else None
            if outcome is None:
                outcome = await_only(link._execute(_run, link._conn, operation, parameters))
            else:
                await_only(_NOTHING)  # SQLAlchemy's AsyncConnection.execute insists on an await
        except Exception as error:
            self._adapted._handle_exception(error)
        self._took(outcome)

    def executemany(self, operation: str, seq_of_parameters: Iterable[Any]) -> None:
        link = self._link
        link._heavy = True  # a batch: it and its commit run on the thread
        try:
            outcome = await_only(link._execute(_run_many, link._conn, operation, seq_of_parameters))
        except Exception as error:
            self._adapted._handle_exception(error)
        self._took(outcome)

    def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        rows = self._rows
        return [rows.popleft() for _ in range(min(self.arraysize if size is None else size, len(rows)))]

    def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    def __iter__(self) -> Iterator[Any]:
        while self._rows:
            yield self._rows.popleft()

    def close(self) -> None:
        self._rows.clear()

    async def _async_soft_close(self) -> None:
        """SQLAlchemy's asyncio layer closes a result's cursor this way; nothing is left open here."""

    def setinputsizes(self, *_sizes: Any) -> None:
        pass

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class _Adapted(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's DBAPI adapter for aiosqlite, with :class:`_Cursor` and a commit and rollback that await
    only when they go to the thread. (Server-side cursors, which copbot does not use, stay SQLAlchemy's.)"""

    __slots__ = ()

    @property
    def link(self) -> LinkedConnection:
        return cast(LinkedConnection, self._connection)

    def cursor(self, server_side: bool = False) -> Any:
        return super().cursor(server_side=True) if server_side else _Cursor(self)

    def commit(self) -> None:
        link = self.link
        if link._connection is None:
            return
        try:
            if not link._commit_here():
                await_only(link._commit_there())
        except Exception as error:
            self._handle_exception(error)

    def rollback(self) -> None:
        link = self.link
        if link._connection is None:
            return
        try:
            if not link._rollback_here():
                await_only(link._execute(link._conn.rollback))
        except Exception as error:
            self._handle_exception(error)


def install(engine: Engine) -> None:
    """Make an aiosqlite engine's connections :class:`LinkedConnection` objects behind :class:`_Adapted`,
    sharing one count of commits since the last checkpoint and, for a database file, one
    :class:`Checkpointer`, stopped when the engine is disposed."""
    database = engine.url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    shared = _Shared(None if in_memory else Checkpointer(database))

    def connect(database: str, *, iter_chunk_size: int = 64, **kwargs: Any) -> LinkedConnection:
        """As :func:`aiosqlite.connect`. The sqlite3 connection is used from the loop's thread too (never
        at the same time as from its own), and checkpoints only when told (see the module's docstring)."""
        kwargs["check_same_thread"] = False
        connection = LinkedConnection(partial(_open, str(database), kwargs), iter_chunk_size)
        connection._shared = shared
        connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite's: never keep the process alive
        return connection

    @event.listens_for(engine, "do_connect")
    def _do_connect(dialect: Any, _record: Any, cargs: Sequence[Any], cparams: dict[str, Any]) -> Any:
        return _Adapted(dialect.dbapi, cast(Any, await_only(connect(*cargs, **cparams))))

    @event.listens_for(engine, "engine_disposed")
    def _disposed(_engine: Engine) -> None:
        if shared.checkpointer is not None:
            shared.checkpointer.close()


def _open(database: str, kwargs: dict[str, Any]) -> sqlite3.Connection:
    connection: sqlite3.Connection = sqlite3.connect(database, **kwargs)
    connection.execute("PRAGMA wal_autocheckpoint=0").close()
    return connection
