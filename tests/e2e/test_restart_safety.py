"""A poll's close is never lost and never doubled, whatever moment copbot dies at (issue 9, item 1).

copbot runs as a real ``copbot run`` process on the console. A poll is created with ``--closes``; then the
deadline is made to have passed while copbot was down, and copbot is started again — once with a failpoint
that SIGKILLs it at one step of running the close (no clean-up at all, as a power cut would), then once
normally. Whatever the step, after the second start the poll is closed at its deadline, its results were
posted exactly once over both runs, no job is left, and later runs list it as closed and refuse votes.
The same with the close job missing from the job store entirely: the poll's own deadline brings it back.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.failpoints import ENVIRONMENT

RESULTS = "📊 Poll #1 (closed): Workshop date? — 1 voter"


def run(tmp_path: Path, stdin: str, *, failpoint: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COPBOT_WEB__ENABLED": "false", ENVIRONMENT: failpoint}
    return subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        input=stdin,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def let_the_deadline_pass(database: Path, *, lose_the_job: bool) -> datetime:
    """As if copbot had been down past the poll's deadline (the job store's own clock included)."""
    deadline = datetime.now(UTC) - timedelta(minutes=1)
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE polls SET closes_at = ?", (deadline.replace(tzinfo=None).isoformat(" "),))
        if lose_the_job:
            connection.execute("DELETE FROM apscheduler_jobs WHERE id = 'poll:1:close'")
        else:
            connection.execute(
                "UPDATE apscheduler_jobs SET next_run_time = ? WHERE id = 'poll:1:close'",
                (deadline.timestamp(),),
            )
    return deadline


def stored(database: Path, query: str) -> list[tuple]:
    with sqlite3.connect(database) as connection:
        return connection.execute(query).fetchall()


@pytest.mark.parametrize("lose_the_job", [False, True], ids=["job-stored", "job-lost"])
@pytest.mark.parametrize("failpoint", ["", "job.due", "job.handled", "job.committed", "job.delivered"])
def test_a_close_is_done_exactly_once_whenever_copbot_dies(
    tmp_path: Path, failpoint: str, lose_the_job: bool
) -> None:
    created = run(tmp_path, '!poll create "Workshop date?" Mon Tue --closes 2m\nana> !poll vote 1 2\n')
    assert created.returncode == 0, created.stderr
    assert ("poll:1:close",) in stored(tmp_path / "copbot.db", "SELECT id FROM apscheduler_jobs")
    deadline = let_the_deadline_pass(tmp_path / "copbot.db", lose_the_job=lose_the_job)

    # Started for a moment (one command, then the end of its input) — and, with a failpoint, killed.
    first = run(tmp_path, "bo> !poll vote 1 1\n", failpoint=failpoint)
    if failpoint:
        assert first.returncode == -9, first.stderr  # SIGKILL: nothing after that point ran
    else:
        assert first.returncode == 0, first.stderr
    second = run(tmp_path, "bo> !poll vote 1 1\n!poll list\n")
    assert second.returncode == 0, second.stderr

    posted = (first.stdout + second.stdout).count(RESULTS)
    assert posted == 1, first.stdout + "\n----\n" + second.stdout
    assert "copbot> Poll #1 is closed; votes are no longer counted." in second.stdout
    assert "No open polls." in second.stdout
    database = tmp_path / "copbot.db"
    closed_at = datetime.fromisoformat(stored(database, "SELECT closed_at FROM polls")[0][0])
    assert abs(closed_at.replace(tzinfo=UTC) - deadline) < timedelta(seconds=1)  # closed at its deadline
    assert stored(database, "SELECT count(*) FROM polls_votes") == [(1,)]  # bo's late vote never counted
    assert stored(database, "SELECT id FROM apscheduler_jobs WHERE id LIKE 'poll:%'") == []
    assert stored(database, "SELECT count(*), count(sent_at) FROM outbox") == [(1, 1)]
