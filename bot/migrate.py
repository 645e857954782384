"""Apply Alembic migrations from ``migrations/`` on the live engine, at start-up or by `copbot db upgrade`.

Alembic (with Mako) costs ~12 MB of memory for the life of the process, so it is imported only when the
database is behind: the usual start-up compares the stored revision with the newest migration file's and
finds nothing to do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection

import migrations
from bot.db import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(migrations.__file__).resolve().parent  # the repository's, or the installed package's
_REVISION = re.compile(r'^revision\s*=\s*["\']([^"\']+)["\']', re.MULTILINE)
_DOWN = re.compile(r'^down_revision\s*=\s*(?:["\']([^"\']+)["\']|None)', re.MULTILINE)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


def head_from_files(directory: Path = MIGRATIONS / "versions") -> str | None:
    """The newest revision, read from the migration files: the one no other revision comes after."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in directory.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN.search(source)
        if revision is None:
            continue
        revisions.add(revision.group(1))
        if down is not None and down.group(1):
            parents.add(down.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


async def upgrade(database: Database, revision: str = "head") -> None:
    if revision == "head":
        head = head_from_files()
        if head is not None and await current_revision(database) == head:
            return  # up to date: no need to load Alembic at all

    from alembic import command

    await _run(database, command.upgrade, revision)


async def downgrade(database: Database, revision: str) -> None:
    """Back to ``revision`` (``-1``: one step; ``base``: empty), running each migration's downgrade."""
    from alembic import command

    await _run(database, command.downgrade, revision)


async def _run(database: Database, step: Callable[[Config, str], None], revision: str) -> None:
    config = alembic_config(database.url)

    def _step(connection: Connection) -> None:
        config.attributes["connection"] = connection
        step(config, revision)

    # Not begun: migrations/env.py begins and commits the migrations' transaction (on SQLite it must switch
    # foreign keys off first, which it cannot do inside one).
    async with database.engine.connect() as connection:
        await connection.run_sync(_step)


async def current_revision(database: Database) -> str | None:
    """The database's revision, or None for a database Alembic never touched."""
    async with database.engine.connect() as connection:
        try:
            revision: str | None = await connection.scalar(text("SELECT version_num FROM alembic_version"))
            return revision
        except Exception:  # no alembic_version table yet
            return None


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
