"""Alembic environment: copbot passes an open connection (see bot/migrate.py); the CLI path works too.

The connection comes in outside a transaction: the migrations' transaction is begun and committed here.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import bot.tables  # noqa: F401  (registers the core tables on the metadata)
from bot.db import async_url
from bot.plugin_tables import import_plugin_tables
from bot.standby import lock_key

import_plugin_tables()
target_metadata = SQLModel.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _run(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        _run_on_sqlite(connection)
        return
    _configure(connection)
    with context.begin_transaction():
        # Processes started together on one database (README "Running more than one process"): one
        # migrates, the others wait here and then find the revision current (read after this lock).
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key("migrations")})
        context.run_migrations()


def _run_on_sqlite(connection: Connection) -> None:
    """All the migrations in one transaction, DDL included, with foreign keys unenforced while they run.

    * pysqlite opens a transaction only before INSERT, UPDATE and DELETE: without an explicit BEGIN the DDL
      of a migration that fails halfway stays (a half-copied ``_alembic_tmp_members`` that stops every
      retry) while the revision does not move.
    * SQLite alters little in place, so a batch operation that adds a column with an expression default
      (``sa.false()``) or drops one copies the table and drops the old one. With foreign keys enforced, as
      copbot's engine has them, dropping ``members`` while memberships, activity … refer to it fails (and
      would delete rows under ON DELETE CASCADE). Alembic's advice: foreign keys off during the migration,
      then ``PRAGMA foreign_key_check`` before committing, so no reference is left pointing nowhere.

    ``PRAGMA foreign_keys`` does nothing inside a transaction, so whether it took is checked; the setting the
    connection came with is restored afterwards, since the pool hands the connection out again.
    """
    enforced = bool(connection.exec_driver_sql("PRAGMA foreign_keys").scalar())
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    if connection.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("SQLite migrations must start outside a transaction: foreign keys stayed on")
    try:
        connection.exec_driver_sql("BEGIN")
        _configure(connection)
        context.run_migrations()
        dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
        if dangling:
            shown = ", ".join(f"{table} rowid {rowid} → {parent}" for table, rowid, parent, _ in dangling[:5])
            raise RuntimeError(f"the migration left {len(dangling)} references pointing nowhere: {shown}")
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if enforced else 'OFF'}")
        connection.commit()


async def _run_online() -> None:
    engine = create_async_engine(async_url(context.config.get_main_option("sqlalchemy.url") or ""))
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_online())
