"""The schema snapshot new SQLite databases are created from is exactly what the migrations build."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from bot import migrate, schema_snapshot
from bot.db import Database

REPO = Path(__file__).resolve().parents[2]


def objects(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name"
        ).fetchall()


def structure(path: Path) -> dict[str, object]:
    """What a schema means, in an order-free form: Alembic's batch rebuilds of a table (SQLite) write its
    constraints in set order, which differs between runs, so the SQL text of two equal schemas may differ."""
    described: dict[str, object] = {}
    with sqlite3.connect(path) as connection:
        for kind, name, sql in connection.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
        ):
            if kind != "table" or sql.startswith("CREATE VIRTUAL"):
                described[name] = (kind, " ".join(sql.split()) if sql else None)
                continue
            quoted = name.replace('"', '""')
            indexes = []
            for _, index, unique, origin, partial in connection.execute(f'PRAGMA index_list("{quoted}")'):
                columns = [row[2] for row in connection.execute(f'PRAGMA index_info("{index}")')]
                indexes.append((unique, origin, partial, tuple(columns)))
            described[name] = (
                "table",
                connection.execute(f'PRAGMA table_info("{quoted}")').fetchall(),
                sorted(row[2:] for row in connection.execute(f'PRAGMA foreign_key_list("{quoted}")')),
                sorted(indexes),
            )
    return described


async def migrated(path: Path) -> Path:
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate.upgrade(database)
    finally:
        await database.close()
    return path


async def test_the_snapshot_is_what_the_migrations_build(tmp_path: Path) -> None:
    long_way = await migrated(tmp_path / "migrated.db")
    snapshot = schema_snapshot.SNAPSHOT.read_text(encoding="utf-8")
    advice = "run `copbot db snapshot` and commit migrations/schema-sqlite.sql"
    assert schema_snapshot.snapshot_revision(snapshot) == migrate.head_from_files(), advice
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    assert schema_snapshot.create_from_snapshot(url)
    assert structure(tmp_path / "fresh.db") == structure(long_way), advice
    with sqlite3.connect(long_way) as connection, sqlite3.connect(tmp_path / "fresh.db") as fresh:
        for table in ("alembic_version",):
            assert (
                fresh.execute(f"SELECT * FROM {table}").fetchall()
                == connection.execute(f"SELECT * FROM {table}").fetchall()
            )
    database = Database(url)
    try:
        assert await migrate.current_revision(database) == migrate.head_from_files()
    finally:
        await database.close()


def test_a_database_with_tables_or_a_stale_snapshot_goes_through_the_migrations(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    used = tmp_path / "used.db"
    with sqlite3.connect(used) as connection:
        connection.execute("CREATE TABLE something (id INTEGER)")
    assert not schema_snapshot.create_from_snapshot(f"sqlite+aiosqlite:///{used}")
    assert [name for _, name, _ in objects(used)] == ["something"]

    monkeypatch.setattr(schema_snapshot, "head_from_files", lambda: "9999")  # a migration newer than it
    assert not schema_snapshot.create_from_snapshot(f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    assert not (tmp_path / "new.db").exists()
    assert not schema_snapshot.create_from_snapshot("postgresql+asyncpg://copbot@localhost/copbot")
    assert not schema_snapshot.create_from_snapshot("sqlite+aiosqlite:///:memory:")


def test_copbot_db_snapshot_writes_the_committed_file_byte_for_byte(tmp_path: Path) -> None:
    """Alembic's batch rebuilds write a table's foreign keys in an order that changed from run to run: the
    snapshot is written with them sorted, so regenerating it after a new migration changes only what the
    migration changed (two runs: each had about even odds of the other order before)."""
    for run in range(2):
        written = tmp_path / f"schema-{run}.sql"
        subprocess.run(
            [sys.executable, "-m", "bot", "db", "snapshot", "--output", str(written)],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        assert written.read_text(encoding="utf-8") == schema_snapshot.SNAPSHOT.read_text(encoding="utf-8")
