"""Self-test of the PostgreSQL harness (tests/harness/postgres.py).

Run with ``pytest tests/harness/test_postgres_selftest.py -p tests.harness.postgres``. It proves
the fixtures hand out working, isolated asyncpg databases, and that a missing PostgreSQL shows up
as a visible skip (or a failure when required) rather than an error or a silent pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.harness.postgres import ENV_BINDIR, ENV_REQUIRED, ENV_URL, PostgresServer

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Names of the databases handed out by fresh_postgres_url in this module, to prove they differ
# and are dropped afterwards.
_seen_fresh_databases: list[str] = []


async def _user_tables(url: str) -> list[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
            )
            return [row[0] for row in rows]
    finally:
        await engine.dispose()


async def test_roundtrip_through_async_engine(fresh_postgres_url: str) -> None:
    """The URL works with the driver the application uses: create a table, insert, select."""
    assert make_url(fresh_postgres_url).drivername == "postgresql+asyncpg"
    engine = create_async_engine(fresh_postgres_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE note (id serial PRIMARY KEY, body text NOT NULL)"))
            await conn.execute(
                text("INSERT INTO note (body) VALUES (:b1), (:b2)"), {"b1": "hello", "b2": "wörld"}
            )
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, body FROM note ORDER BY id"))).all()
            server_tz = (await conn.execute(text("SHOW TimeZone"))).scalar_one()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in rows] == [(1, "hello"), (2, "wörld")]
    assert server_tz == "UTC"


@pytest.mark.parametrize("run", ["first", "second"])
async def test_fresh_databases_are_independent(fresh_postgres_url: str, run: str) -> None:
    """Each run must find an empty database, whatever the other run left: isolation in any order."""
    name = make_url(fresh_postgres_url).database
    assert name is not None
    assert name not in _seen_fresh_databases, "fresh_postgres_url reused a database name"
    _seen_fresh_databases.append(name)

    assert await _user_tables(fresh_postgres_url) == []
    engine = create_async_engine(fresh_postgres_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE shared_name (run text)"))
            await conn.execute(text("INSERT INTO shared_name VALUES (:run)"), {"run": run})
        # Leave the engine's pooled connection open on purpose: teardown must drop the database anyway.
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT run FROM shared_name"))).scalars().all() == [run]
    finally:
        await engine.dispose()


async def test_fresh_database_is_not_the_session_database(fresh_postgres_url: str, postgres_url: str) -> None:
    """Work in a fresh database must not leak into the shared session database."""
    assert make_url(fresh_postgres_url).database != make_url(postgres_url).database
    engine = create_async_engine(fresh_postgres_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE only_in_fresh (x int)"))
    finally:
        await engine.dispose()
    assert "only_in_fresh" not in await _user_tables(postgres_url)


def test_fresh_databases_are_dropped(postgres_server: PostgresServer) -> None:
    """Databases from earlier tests in this module are gone (runs after them in file order)."""
    with postgres_server.connect() as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    assert existing.isdisjoint(_seen_fresh_databases)


def test_drop_database_survives_open_connections(postgres_server: PostgresServer) -> None:
    """A test that leaks a connection must not make teardown fail."""
    name = postgres_server.create_database(hint="leaky")
    leaked = postgres_server.connect(name)
    try:
        postgres_server.drop_database(name)
    finally:
        leaked.close()
    with postgres_server.connect() as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None


def _run_selftest_without_postgres(extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one harness-using test in a child pytest whose PostgreSQL binaries cannot be found."""
    env = {k: v for k, v in os.environ.items() if k not in {ENV_URL, ENV_REQUIRED}}
    env.update({ENV_BINDIR: "/nonexistent/pg/bin", **extra_env})
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            __file__,
            "-p",
            "tests.harness.postgres",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "-k",
            "test_roundtrip_through_async_engine",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_missing_postgres_is_a_visible_skip() -> None:
    result = _run_selftest_without_postgres({})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "PostgreSQL not available: COPBOT_PG_BINDIR=/nonexistent/pg/bin" in result.stdout
    assert ".ci/run installs it" in result.stdout


def test_missing_postgres_fails_when_required() -> None:
    result = _run_selftest_without_postgres({ENV_REQUIRED: "1"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "PostgreSQL not available" in result.stdout
