"""`copbot run` as an operator meets it: failures to start are one line and exit 1, signals always stop it,
the console chat gets nothing but chat, and `copbot` alone shows its usage.

Most tests run the real command in a child process, because what is under test is what reaches the
terminal: the exit code and every byte on stdout and stderr.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.app import CopBot
from bot.cli import CONSOLE_LOG, log_handlers, main
from bot.config import Settings
from bot.errors import StartupError
from bot.model import Capability
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
BOT_ID = "@copbot:localhost"


def environment(**extra: str) -> dict[str, str]:
    """The test's environment without COPBOT_ settings of the developer's shell, plus ``extra``."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("COPBOT_")}
    return {**clean, "PYTHONPATH": str(ROOT), "COPBOT_WEB__ENABLED": "false", **extra}


def copbot(
    cwd: Path, *args: str, stdin: str = "", prefix: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "bot", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment(**env),
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def matrix_config(tmp_path: Path, homeserver: str, *, secret: str, timeout: float = 2) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            [web]
            enabled = false
            [matrix]
            homeserver = "{homeserver}"
            user_id = "{BOT_ID}"
            {secret}
            connect_timeout = {timeout}
            """
        ),
        encoding="utf-8",
    )
    return path


def assert_one_line(stderr: str, expected: str) -> None:
    """The failure is the last line, said once, and no traceback (chained or not) comes with it."""
    assert "Traceback" not in stderr, stderr
    assert stderr.splitlines()[-1] == expected, stderr
    assert [line for line in stderr.splitlines() if line.startswith("copbot:")] == [expected], stderr


# --- the command line -------------------------------------------------------------------------------


def test_copbot_without_a_sub_command_shows_its_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    error = capsys.readouterr().err
    assert error.startswith("usage: copbot") and "check-config" in error and "run" in error


def test_copbot_without_a_sub_command_starts_nothing(tmp_path: Path) -> None:
    result = copbot(tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: copbot")
    assert result.stdout == ""
    assert not (tmp_path / "copbot.db").exists()


def test_make_docker_and_readme_say_run_explicitly() -> None:
    assert "$(BIN)/copbot run" in (ROOT / "Makefile").read_text(encoding="utf-8")
    assert 'CMD ["run",' in (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "copbot run" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_make_builds_the_venv_with_a_cpython_3_11_that_can_make_one(tmp_path: Path) -> None:
    """scripts/pick-python.sh: the interpreter `make` creates .venv with (the fastest 3.11 here)."""
    picked = subprocess.run(
        ["bash", str(ROOT / "scripts" / "pick-python.sh")], capture_output=True, text=True, check=True
    ).stdout.strip()
    version = subprocess.run(
        [picked, "-c", "import sys, venv, ensurepip; print(sys.implementation.name, *sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert version == ["cpython", "3", "11"]
    assert "$(shell bash scripts/pick-python.sh)" in (ROOT / "Makefile").read_text(encoding="utf-8")


# --- the database -----------------------------------------------------------------------------------


def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "copbot.db").write_text("these are my notes, not a database\n" * 100, encoding="utf-8")
    result = copbot(tmp_path, "run")
    assert result.returncode == 1
    assert_one_line(
        result.stderr,
        "copbot: copbot.db is not an SQLite database; move that file away or point database_url at another",
    )
    assert result.stdout == ""


def test_db_upgrade_says_the_same_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "copbot.db").write_bytes(b"\x00garbage" * 512)
    result = copbot(tmp_path, "db", "upgrade")
    assert result.returncode == 1
    assert_one_line(
        result.stderr,
        "copbot: copbot.db is not an SQLite database; move that file away or point database_url at another",
    )


def test_a_database_path_through_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where a directory should be", encoding="utf-8")
    result = copbot(tmp_path, "run", COPBOT_DATABASE_URL="sqlite:///data/copbot.db")
    assert result.returncode == 1
    assert_one_line(result.stderr, "copbot: cannot create the directory for data/copbot.db: File exists")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs a directory nobody may create files in")
def test_a_database_in_a_directory_nobody_may_write_is_one_line(tmp_path: Path) -> None:
    result = copbot(tmp_path, "run", COPBOT_DATABASE_URL="sqlite:////proc/copbot.db")
    assert result.returncode == 1
    assert_one_line(
        result.stderr,
        "copbot: cannot open or create /proc/copbot.db: check that copbot may write in its directory",
    )


def unprivileged() -> tuple[str, ...]:
    """A command prefix under which file permissions apply: nothing for a normal user; for root, setpriv
    without the capabilities that let root write anywhere. Skips the test where neither is possible."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    prefix = (
        setpriv or "setpriv",
        "--bounding-set=-dac_override,-dac_read_search,-fowner",
        "--inh-caps=-all",
    )
    if setpriv is None or subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        pytest.skip("running as root without setpriv: file permissions cannot be made to apply")
    return prefix


@pytest.mark.parametrize("read_only", ["file", "directory"])
def test_a_database_copbot_may_not_write_is_one_line(tmp_path: Path, read_only: str) -> None:
    prefix = unprivileged()
    data = tmp_path / "data"
    data.mkdir()
    assert copbot(data, "db", "upgrade").returncode == 0
    (data / "copbot.db").chmod(0o444)
    if read_only == "directory":
        for leftover in data.glob("copbot.db-*"):
            leftover.unlink()
        data.chmod(0o555)
    try:  # the log file goes elsewhere: in a read-only directory copbot could not write it either
        result = copbot(data, "run", prefix=prefix, COPBOT_LOG_FILE=str(tmp_path / "copbot.log"))
    finally:
        data.chmod(0o755)
        (data / "copbot.db").chmod(0o644)
    assert result.returncode == 1
    assert_one_line(
        result.stderr, "copbot: cannot write to copbot.db: check permissions of the file and of its directory"
    )


def test_export_without_a_database_is_one_line_and_creates_none(tmp_path: Path) -> None:
    result = copbot(tmp_path, "export", "repertoire", "--community", "cop")
    assert result.returncode == 1
    assert_one_line(result.stderr, "copbot: there is no database at copbot.db: nothing to export")
    assert not (tmp_path / "copbot.db").exists()


def test_export_from_a_database_copbot_never_set_up_is_one_line(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "copbot.db").execute("CREATE TABLE notes (text)").connection.commit()
    result = copbot(tmp_path, "export", "repertoire", "--community", "cop")
    assert result.returncode == 1
    assert_one_line(
        result.stderr, "copbot: copbot.db: copbot has stored nothing there yet (no tables): nothing to export"
    )


def test_export_to_a_file_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    assert copbot(tmp_path, "run").returncode == 0  # the console, no input: the database and community
    result = copbot(tmp_path, "export", "repertoire", "--community", "cop", "-o", "missing/out.md")
    assert result.returncode == 1
    assert_one_line(result.stderr, "copbot: cannot write missing/out.md: No such file or directory")
    written = copbot(tmp_path, "export", "repertoire", "--community", "cop", "-o", "out.md")
    assert written.returncode == 0 and (tmp_path / "out.md").read_text(encoding="utf-8").startswith("# ")


def test_db_snapshot_to_a_file_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    result = copbot(tmp_path, "db", "snapshot", "-o", "missing/schema.sql")
    assert result.returncode == 1
    assert_one_line(result.stderr, "copbot: cannot write missing/schema.sql: No such file or directory")


def test_a_directory_given_as_the_config_is_named_as_one(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    for args in (("check-config", "conf"), ("run", "--config", "conf")):
        result = copbot(tmp_path, *args)
        assert result.returncode == 2
        assert result.stderr == "conf: is a directory; give the path of the configuration file in it\n"


# --- Matrix -----------------------------------------------------------------------------------------


def test_an_unreachable_homeserver_gives_up_in_time_with_one_line(tmp_path: Path) -> None:
    homeserver = f"http://127.0.0.1:{free_port()}"
    config = matrix_config(tmp_path, homeserver, secret='password = "secret"', timeout=1)
    started = time.monotonic()
    result = copbot(tmp_path, "run", "--config", str(config))
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    assert_one_line(
        result.stderr,
        f"copbot: matrix: cannot reach {homeserver} (connection refused); check [matrix] homeserver",
    )


class FakeHomeserver:
    """Just enough of a homeserver to refuse copbot: every login and every token is wrong."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path}")
        if request.path.endswith("/login") and request.method == "POST":
            return web.json_response(
                {"errcode": "M_FORBIDDEN", "error": "Invalid username or password"}, status=403
            )
        if request.path.endswith("/account/whoami"):
            return web.json_response(
                {"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token"}, status=401
            )
        return web.Response(status=404, text="<html>not here</html>", content_type="text/html")


@pytest.fixture
async def homeserver() -> AsyncIterator[tuple[str, FakeHomeserver]]:
    fake = FakeHomeserver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield f"http://127.0.0.1:{port}", fake
    await runner.cleanup()


async def run_copbot(cwd: Path, *args: str) -> tuple[int, str]:
    """copbot in a child process while this test's event loop keeps serving the fake homeserver."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=environment(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        (
            'password = "wrong"',
            f"copbot: matrix: the homeserver refused the password for {BOT_ID}; "
            "check [matrix] user_id and password (or COPBOT_MATRIX__PASSWORD)",
        ),
        (
            'access_token = "wrong"',
            f"copbot: matrix: the homeserver refused the access token for {BOT_ID}; set a valid "
            "[matrix] access_token (or COPBOT_MATRIX__ACCESS_TOKEN), or a password instead",
        ),
    ],
)
async def test_a_refused_login_is_one_line_saying_what_to_set(
    tmp_path: Path, homeserver: tuple[str, FakeHomeserver], secret: str, expected: str
) -> None:
    url, fake = homeserver
    config = matrix_config(tmp_path, url, secret=secret)
    code, stderr = await run_copbot(tmp_path, "run", "--config", str(config))
    assert fake.requests, "copbot never asked the homeserver"
    assert code == 1
    assert_one_line(stderr, expected)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_stops_copbot_while_it_is_still_starting(tmp_path: Path, signum: int) -> None:
    """The homeserver is retried for minutes; a signal must not wait for that."""
    config = matrix_config(
        tmp_path, f"http://127.0.0.1:{free_port()}", secret='password = "secret"', timeout=300
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--config",
        str(config),
        cwd=tmp_path,
        env=environment(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    seen = b""
    try:
        while b"retrying" not in seen:  # the adapter is inside start(), retrying the login
            line = await asyncio.wait_for(process.stderr.readline(), 60)
            assert line, f"copbot ended before retrying: {seen.decode()}"
            seen += line
        signalled = time.monotonic()
        process.send_signal(signum)
        _, rest = await asyncio.wait_for(process.communicate(), 10)
        took = time.monotonic() - signalled
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert took < 2.5
    assert process.returncode == 0
    assert "Traceback" not in (seen + rest).decode()


class HangingAdapter:
    """An adapter whose start never finishes, like one retrying a homeserver that is down."""

    platform = "console"
    capabilities: frozenset[Capability] = frozenset()
    connected = False

    def __init__(self) -> None:
        self.starting = asyncio.Event()
        self.stopped = False

    async def install_commands(self, specs: object) -> None:
        pass

    async def start(self, dispatch: object) -> None:
        self.starting.set()
        await asyncio.Event().wait()

    async def stop(self) -> None:
        self.stopped = True


async def test_a_stop_request_cancels_a_start_that_hangs(tmp_path: Path) -> None:
    adapter = HangingAdapter()
    bot = CopBot(make_settings(tmp_path), adapters=[adapter], plugins=[], run_scheduler_loop=False)  # type: ignore[list-item]
    running = asyncio.create_task(bot.run())
    await asyncio.wait_for(adapter.starting.wait(), 10)
    bot.request_stop()
    assert await asyncio.wait_for(running, 5) == 0
    assert adapter.stopped


async def test_a_failing_start_raises_its_error_after_cleaning_up(tmp_path: Path) -> None:
    class Refusing(HangingAdapter):
        async def start(self, dispatch: object) -> None:
            raise StartupError("matrix: the homeserver refused the password")

    adapter = Refusing()
    bot = CopBot(make_settings(tmp_path), adapters=[adapter], plugins=[], run_scheduler_loop=False)  # type: ignore[list-item]
    with pytest.raises(StartupError, match="refused the password"):
        await asyncio.wait_for(bot.run(), 10)
    assert adapter.stopped


# --- logging ----------------------------------------------------------------------------------------


def emit_failure(handlers: list[logging.Handler]) -> None:
    """A handler failing the way the pipeline logs it: an exception with its traceback."""
    logger = logging.getLogger(f"copbot-test-{id(handlers)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    for handler in handlers:
        logger.addHandler(handler)
    try:
        logger.info("copbot started")
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            logger.exception("command %r failed (event %s)", "!x", "e1")
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()


def test_console_logs_go_to_a_file_and_stderr_gets_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    stderr = io.StringIO()
    emit_failure(log_handlers(Settings(), stderr=stderr))
    assert stderr.getvalue() == f"copbot: error: command '!x' failed (event e1) — details in {CONSOLE_LOG}\n"
    logged = (tmp_path / CONSOLE_LOG).read_text(encoding="utf-8")
    assert "copbot started" in logged and "Traceback" in logged and "ZeroDivisionError" in logged


def test_other_platforms_log_everything_to_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    stderr = io.StringIO()
    settings = Settings(matrix={"homeserver": "https://hs", "user_id": BOT_ID, "password": "x"})
    emit_failure(log_handlers(settings, stderr=stderr))
    assert "copbot started" in stderr.getvalue() and "ZeroDivisionError" in stderr.getvalue()
    assert not (tmp_path / CONSOLE_LOG).exists()


def test_log_file_setting_chooses_the_file_or_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    stderr = io.StringIO()
    emit_failure(log_handlers(Settings(log_file="-"), stderr=stderr))
    assert "Traceback" in stderr.getvalue()
    settings = Settings(log_file=str(tmp_path / "bot.log"), discord={"token": "t"})
    emit_failure(log_handlers(settings, stderr=io.StringIO()))
    assert "Traceback" in (tmp_path / "bot.log").read_text(encoding="utf-8")
    with pytest.raises(
        StartupError,
        match=r"cannot write the log file .*dir.log: No such file or directory; check permissions or set",
    ):
        log_handlers(Settings(log_file=str(tmp_path / "no" / "such" / "dir.log")))


PLUGIN = '''
from bot.context import Context
from bot.plugin import Plugin, command

class Broken(Plugin):
    name = "broken"
    description = "fails on purpose"

    @command("boom", examples=("boom",))
    async def boom(self, ctx: Context) -> None:
        """Fail."""
        raise RuntimeError("the handler broke")
'''


def install_failing_plugin(site: Path) -> None:
    site.mkdir()
    (site / "broken_plugin.py").write_text(PLUGIN, encoding="utf-8")
    dist = site / "copbot_broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: copbot-broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[copbot.plugins]\nbroken = broken_plugin:Broken\n")


def test_a_failing_handler_leaves_the_console_chat_clean(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_failing_plugin(site)
    result = copbot(
        tmp_path,
        "run",
        stdin="!boom\n!about\n",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(site)]),
        COPBOT_LOG_LEVEL="DEBUG",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "[1] you> !boom"
    assert lines[1].startswith("[2] copbot> Sorry, something went wrong on my side")
    assert lines[2] == "[3] you> !about"
    assert all(line.startswith(("[", " ")) for line in lines), result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    errors = result.stderr.splitlines()
    assert len(errors) == 1 and errors[0].startswith("copbot: error: command ") and "boom" in errors[0]
    assert errors[0].endswith(f"— details in {CONSOLE_LOG}")
    logged = (tmp_path / CONSOLE_LOG).read_text(encoding="utf-8")
    assert "Traceback" in logged and "RuntimeError: the handler broke" in logged


def test_a_normal_console_run_prints_only_chat(tmp_path: Path) -> None:
    result = copbot(tmp_path, "run", stdin="!help\nana> !about\n", COPBOT_LOG_LEVEL="DEBUG")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("[1] you> !help\n[2] copbot> ")
    assert all(line.startswith(("[", " ")) for line in result.stdout.splitlines()), result.stdout
    assert "copbot started" in (tmp_path / CONSOLE_LOG).read_text(encoding="utf-8")
