"""A new SQLite database gets its schema from one SQL script instead of running every migration.

Running all the migrations on a new SQLite file takes a second or more (Alembic, Mako, and each
revision's table copies): most of copbot's first start. Like Rails' ``schema.rb`` or Django's squashed
migrations, the schema the migrations produce at the head revision is kept as SQL
(``migrations/schema-sqlite.sql``, written by ``copbot db snapshot``), and an empty SQLite database is
created from it in milliseconds. ``tests/core/test_schema_snapshot.py`` migrates a database the long way
and fails if the snapshot differs, so the two paths cannot drift apart; a snapshot older than the newest
migration is never used, and a database that is not empty always goes through the migrations.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.migrate import MIGRATIONS, head_from_files

SNAPSHOT = MIGRATIONS / "schema-sqlite.sql"
_REVISION = re.compile(r"^-- revision: (\S+)$", re.MULTILINE)
_SHADOW_SUFFIXES = ("_data", "_idx", "_content", "_docsize", "_config")
"""The tables SQLite's FTS5 creates itself for a virtual table: recreated by its CREATE VIRTUAL TABLE."""


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for another database or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def dump(database: Path) -> str:
    """The SQL that recreates ``database`` (schema and rows), in the order SQLite created it."""
    connection = sqlite3.connect(database)
    try:
        objects = connection.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
        ).fetchall()
        virtual = [name for kind, name, sql in objects if kind == "table" and sql.startswith("CREATE VIRT")]
        shadows = {f"{table}{suffix}" for table in virtual for suffix in _SHADOW_SUFFIXES}
        revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        lines = [
            "-- copbot's schema at the newest migration, for a new SQLite database (bot/schema_snapshot.py).",
            "-- Written by `copbot db snapshot`; tests/core/test_schema_snapshot.py checks it. Do not edit.",
            f"-- revision: {revision}",
        ]
        for _kind, name, sql in objects:
            if name not in shadows and not name.startswith("sqlite_"):
                lines.append(f"{_foreign_keys_sorted(sql)};")
        for kind, name, _sql in objects:
            if kind != "table" or name in shadows or name in virtual or name.startswith("sqlite_"):
                continue
            quoted = name.replace('"', '""')
            columns = [row[1] for row in connection.execute(f'PRAGMA table_info("{quoted}")')]
            values = " || ',' || ".join(f'quote("{column}")' for column in columns)
            for (row,) in connection.execute(f'SELECT {values} FROM "{quoted}" ORDER BY rowid'):
                lines.append(f'INSERT INTO "{quoted}" VALUES({row});')
        return "\n".join(lines) + "\n"
    finally:
        connection.close()


def _foreign_keys_sorted(sql: str) -> str:
    """``sql`` with a table's FOREIGN KEY clauses in sorted order, each where one of them stood.

    Alembic's batch migrations (SQLite rebuilds a table to change it) copy the table's constraints from a
    set ordered by the objects' ids, so the same schema came out of ``copbot db snapshot`` with its foreign
    keys in a different order from one run to the next: a diff in a file nobody changed. Their order means
    nothing to SQLite."""
    lines = sql.split("\n")
    if not sql.startswith("CREATE TABLE") or len(lines) < 3:
        return sql
    body = lines[1:-1]
    places = [index for index, line in enumerate(body) if line.startswith("\tFOREIGN KEY")]
    clauses = sorted(body[index].removesuffix(", ") for index in places)
    for index, clause in zip(places, clauses, strict=True):
        body[index] = clause + (", " if body[index].endswith(", ") else "")
    return "\n".join([lines[0], *body, lines[-1]])


def snapshot_revision(script: str) -> str | None:
    found = _REVISION.search(script)
    return found.group(1) if found else None


def create_from_snapshot(url: str) -> bool:
    """Create a new SQLite database from the snapshot; False (nothing done) when the database already
    has tables, is not SQLite, or the snapshot is not at the newest migration."""
    path = sqlite_file(url)
    if path is None or not SNAPSHOT.exists():
        return False
    script = SNAPSHOT.read_text(encoding="utf-8")
    if snapshot_revision(script) != head_from_files():
        return False
    if path.exists():
        with sqlite3.connect(path) as probe:
            if probe.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                return False
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN")
        for statement in _statements(script):
            connection.execute(statement)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    finally:
        connection.close()
    return True


def _statements(script: str) -> list[str]:
    """The script's statements, split where SQLite says one is complete (a ';' inside a string or a
    trigger body does not end one)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        if not current and line.startswith("--"):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements
