"""A piped console scenario, run as a real `copbot run` subprocess, exactly as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCENARIO = "\n".join(
    [
        "# a comment line is ignored",
        "!help",
        "!nosuch",
        "ana> !status",
        "ana> !help",
        ":join bo",
        ":react bo 2 👍",
        "bo>> hello copbot",
        "!status",
        "",
    ]
)


def run_copbot(tmp_path: Path, stdin: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COPBOT_WEB__ENABLED": "false"}
    return subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        input=stdin,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_piped_scenario_prints_numbered_replies_and_exits_zero(tmp_path: Path) -> None:
    result = run_copbot(tmp_path, SCENARIO)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "[1] you> !help"
    assert lines[1] == "[2] copbot> Commands you can use (type !help <command> for details):"
    assert "    !status — Version, uptime, platforms, plugins, scheduled jobs and database." in lines
    unknown = lines.index("[3] you> !nosuch")
    assert lines[unknown + 1] == "[4] copbot> Unknown command !nosuch. Type !help for the list."
    refused = lines.index("[5] ana> !status")
    assert lines[refused + 1] == "[6] copbot> !status is for moderators only; nothing was changed."
    member_help = lines.index("[7] ana> !help")
    assert "!status" not in "\n".join(lines[member_help + 1 : lines.index("[9] * bo joined")])
    joined = lines.index("[9] * bo joined")
    assert lines[joined + 1].startswith("[10] copbot> Welcome to Our Community of Practice, @bo!")
    assert lines[joined + 2].startswith("[11] copbot → bo (direct)> Hi bo, welcome!")
    assert "[12] * bo reacted 👍 to [2]" in lines
    assert "[13] bo → copbot (direct)> hello copbot" in lines
    hint = next(line for line in lines if line.startswith("[14] "))
    assert "'hello copbot' is not an organisation type" in hint  # onboarding asks the question again
    assert "[16] copbot> copbot 0.1.0 on Python" in "\n".join(lines)
    assert (tmp_path / "copbot.db").exists()


def test_a_second_run_on_the_same_database_answers_again(tmp_path: Path) -> None:
    """Event ids differ between runs, so the duplicate guard never swallows a new run's messages."""
    first = run_copbot(tmp_path, "!about\n")
    second = run_copbot(tmp_path, "!about\n")
    assert first.returncode == second.returncode == 0
    assert second.stdout.splitlines()[1].startswith("[2] copbot> I am copbot")


def test_sigterm_stops_a_running_bot_cleanly(tmp_path: Path) -> None:
    """With input still open (an interactive session), SIGTERM stops platforms, web, scheduler and DB."""
    import json
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "COPBOT_WEB__PORT": str(port), "COPBOT_LOG_LEVEL": "INFO"}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        health = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    health = json.loads(response.read())
                break
            except OSError:
                time.sleep(0.1)
        assert health == {
            "status": "ok",
            "role": "active",
            "database": True,
            "platforms": {"console": True},
            "scheduler": True,
        }
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)  # with standard input still open, as in a terminal nobody types into
        assert process.stderr is not None
        stderr = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
