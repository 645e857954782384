"""Who is active (bot/standby.py): the lease on SQLite (a lock file) and PostgreSQL (an advisory lock), a
process waiting as a standby with /healthz saying so, taking over when the lease is free, refusing to wait
with ``standby = false``, and stopping (exit code 3) when an active process loses its lease."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot import standby
from bot.app import CopBot
from bot.config import Settings
from bot.db import Database
from bot.errors import StartupError

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def health(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:
        return dict(json.loads(error.read()))
    except OSError:
        return None


async def until(check: Any, what: str, timeout: float = 15.0) -> Any:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(check) if not asyncio.iscoroutinefunction(check) else await check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "web": {"enabled": False},
        "console": {"enabled": False},
    }
    values.update(overrides)
    return Settings(**values)


# --- the leases ---------------------------------------------------------------------------------------


def test_the_lock_key_is_a_stable_signed_64_bit_number_per_instance() -> None:
    assert standby.lock_key("water") == standby.lock_key("water") != standby.lock_key("waste")
    assert -(2**63) <= standby.lock_key("") < 2**63


async def test_a_lock_file_next_to_an_sqlite_database_admits_one_holder(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'copbot.db'}"
    first, second = standby.lease_for(url, ""), standby.lease_for(url, "")
    assert isinstance(first, standby.FileLease) and isinstance(second, standby.FileLease)
    assert first.path == tmp_path / "copbot.db.lock"
    assert await first.try_acquire() is True
    assert await second.try_acquire() is False
    assert f"pid {os.getpid()}" in await second.holder()
    await first.release()
    assert await second.try_acquire() is True
    await second.release()
    assert standby.lease_for("sqlite+aiosqlite:///:memory:", "") is None


async def test_a_postgresql_advisory_lock_admits_one_holder_and_is_lost_with_its_connection(
    postgres_url: str,
) -> None:
    first, second = standby.PostgresLease(postgres_url, "t1"), standby.PostgresLease(postgres_url, "t1")
    other = standby.PostgresLease(postgres_url, "t2")  # another instance: its own lock
    try:
        assert await first.try_acquire() is True
        assert await second.try_acquire() is False
        assert await other.try_acquire() is True
        assert "copbot t1" in await second.holder()
        # The holder's connection ends (a server restart, a network cut): the lock goes with it.
        database = Database(postgres_url)
        async with database.engine.begin() as connection:
            await connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE :n"),
                {"n": "copbot t1 %"},
            )
        await database.close()
        reason = await asyncio.wait_for(first.lost(), timeout=10)
        assert "the connection holding it ended" in reason
        assert await second.try_acquire() is True
    finally:
        for lease in (first, second, other):
            await lease.release()


# --- a whole process ----------------------------------------------------------------------------------


async def test_a_second_bot_waits_as_a_standby_and_takes_over_when_the_lease_is_free(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'copbot.db'}"
    holder = standby.lease_for(url, "")
    assert holder is not None and await holder.try_acquire()
    port = free_port()
    bot = CopBot(settings(url, web={"enabled": True, "port": port}))
    running = asyncio.create_task(bot.run())
    try:
        waiting = await until(lambda: health(port), "the standby's /healthz")
        assert waiting["role"] == "standby" and waiting["status"] == "standby"
        assert f"pid {os.getpid()}" in waiting["active"]
        assert bot.services.role == "standby" and not bot.adapters
        await holder.release()  # the active process is gone
        seen: list[str] = []

        def taken_over() -> dict[str, Any] | None:
            answer = health(port)
            if answer is None or answer.get("role") != "active":
                return None
            seen.append(answer["status"])
            return answer if answer["status"] == "ok" else None

        await until(taken_over, "the takeover")
        # Between the standby's answers and "ok" the new active process may say it is starting (its web
        # part runs before its platforms and scheduler), never that it is unhealthy.
        assert set(seen) <= {"starting", "ok"}, seen
    finally:
        bot.request_stop()
        assert await asyncio.wait_for(running, 20) == 0


async def test_with_standby_off_a_second_process_exits_with_one_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'copbot.db'}"
    config = tmp_path / "config.toml"
    config.write_text(
        f'database_url = "{url}"\n[web]\nenabled = false\n[console]\nenabled = false\n'
        "[instance]\nstandby = false\n"
    )
    holder = standby.lease_for(url, "")
    assert holder is not None and await holder.try_acquire()
    try:
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "bot", "run", "--config", str(config)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
    finally:
        await holder.release()
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("copbot:")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("copbot: another copbot process is active for this instance (")
    assert "set [instance] standby = true" in lines[0]


async def test_the_same_refusal_in_process(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'copbot.db'}"
    holder = standby.lease_for(url, "")
    assert holder is not None and await holder.try_acquire()
    try:
        with pytest.raises(StartupError, match="another copbot process is active"):
            await CopBot(settings(url, instance={"standby": False})).run()
    finally:
        await holder.release()


async def test_an_active_bot_that_loses_its_lock_stops_with_exit_code_3(
    fresh_postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    bot = CopBot(settings(fresh_postgres_url, instance={"name": "lost"}))
    running = asyncio.create_task(bot.run())
    try:
        await until(lambda: bot._started, "the start")
        database = Database(fresh_postgres_url)
        async with database.engine.begin() as connection:
            await connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE :n"),
                {"n": "copbot lost %"},
            )
        await database.close()
        assert await asyncio.wait_for(running, 20) == standby.EXIT_LEASE_LOST
    finally:
        bot.request_stop()
        if not running.done():
            await asyncio.wait_for(running, 20)
    lost = [r.getMessage() for r in caplog.records if "standby: lost" in r.getMessage()]
    assert len(lost) == 1 and "exits with code 3" in lost[0], lost
