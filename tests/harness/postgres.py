"""Throwaway PostgreSQL server for the storage tests (a pytest plugin).

The storage layer must behave the same on SQLite and PostgreSQL, so tests need a real PostgreSQL
server, but neither developers nor CI should have to configure one. This plugin starts a private,
disposable cluster once per test session and hands out databases on it:

* ``postgres_server`` (session): a :class:`PostgresServer`, for tests that need to create or drop
  databases themselves.
* ``postgres_url`` (session): an SQLAlchemy async URL
  (``postgresql+asyncpg://USER@127.0.0.1:PORT/DBNAME``) of a database shared by the whole session;
  tests using it must clean up after themselves.
* ``fresh_postgres_url`` (function): a new, empty database per test, dropped afterwards, so that
  migration tests start from nothing and tests cannot see each other's rows.

Load it with ``-p tests.harness.postgres`` or ``pytest_plugins = ["tests.harness.postgres"]``.

Environment:

* ``COPBOT_TEST_POSTGRES_URL``: use this existing server (any ``postgresql[+driver]://`` URL; its
  user needs CREATEDB) instead of starting one.
* ``COPBOT_PG_BINDIR``: directory holding ``initdb``, ``pg_ctl`` and ``postgres``; otherwise the
  newest ``/usr/lib/postgresql/*/bin`` (Debian's layout) or ``pg_config --bindir`` is used.
* ``COPBOT_TEST_POSTGRES_REQUIRED=1``: turn "PostgreSQL not available" skips into failures, for CI
  runs where the server was installed and a skip would hide a broken setup.

When the binaries are missing or the cluster cannot start, every test using these fixtures is
skipped with the reason, so a missing PostgreSQL is visible in the ``-ra`` summary but does not
break a developer's run.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow
from sqlalchemy.engine import URL, make_url

ENV_URL = "COPBOT_TEST_POSTGRES_URL"
ENV_BINDIR = "COPBOT_PG_BINDIR"
ENV_REQUIRED = "COPBOT_TEST_POSTGRES_REQUIRED"

ASYNC_DRIVER = "postgresql+asyncpg"
SUPERUSER = "postgres"
SESSION_DATABASE = "copbot_test"
SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")

# Every external step is bounded so that a wedged server fails the run instead of hanging CI.
INITDB_TIMEOUT_S = 60
PG_CTL_TIMEOUT_S = 30  # passed to pg_ctl -t; the subprocess itself gets a little more
CONNECT_TIMEOUT_S = 10
READY_TIMEOUT_S = 15
STATEMENT_TIMEOUT_MS = 30_000
START_ATTEMPTS = 3  # a free port can be taken between probing and binding; retry on a new one
PG_CTL_WAIT = ("-w", "-t", str(PG_CTL_TIMEOUT_S))
MAX_SOCKET_DIR_LEN = 90

# Trust auth: anyone on this machine could connect via 127.0.0.1, acceptable for a throwaway
# cluster holding only test data; the unix socket lives in a private (0700) dir.
# C locale avoids depending on the host's installed locales; --no-sync because durability is moot.
INITDB_OPTIONS = ("-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")

# Speed over durability: the cluster lives for one test session and is thrown away, so crash
# safety buys nothing. TimeZone is pinned so results do not depend on the host's zone.
SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "1GB",
    "checkpoint_timeout": "1h",
    "autovacuum": "off",
    "jit": "off",
    "TimeZone": "UTC",
    "log_min_messages": "warning",
}


class PostgresUnavailable(Exception):
    """No usable PostgreSQL: the tests that need it are skipped (or failed, if required)."""


def _unavailable(reason: str) -> NoReturn:
    """Skip with a reason that says what is missing and how CI gets it."""
    message = f"PostgreSQL not available: {reason}; .ci/run installs it"
    if os.environ.get(ENV_REQUIRED, "").strip().lower() in {"1", "true", "yes", "on"}:
        pytest.fail(f"{message} ({ENV_REQUIRED} is set)", pytrace=False)
    pytest.skip(message)


# --------------------------------------------------------------------------- locating binaries


def _has_server_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in SERVER_BINARIES)


def _version_key(directory: Path) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/<version>/bin`` so that 15 beats 9.6 (not lexically)."""
    return tuple(int(part) for part in re.findall(r"\d+", directory.parent.name)) or (0,)


def find_pg_bindir() -> Path:
    """Return the directory with ``initdb``, ``pg_ctl`` and ``postgres``.

    Debian does not put the server binaries on PATH (only client wrappers), hence the search.
    """
    override = os.environ.get(ENV_BINDIR)
    if override:
        directory = Path(override)
        if _has_server_binaries(directory):
            return directory
        raise PostgresUnavailable(f"{ENV_BINDIR}={override} does not contain {', '.join(SERVER_BINARIES)}")

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    for directory in candidates:
        if _has_server_binaries(directory):
            return directory

    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out and _has_server_binaries(Path(out)):
                return Path(out)

    raise PostgresUnavailable(
        f"no {', '.join(SERVER_BINARIES)} under /usr/lib/postgresql/*/bin, pg_config --bindir or {ENV_BINDIR}"
    )


# --------------------------------------------------------------------------- server handle


@dataclass(frozen=True)
class PostgresServer:
    """A reachable server plus the database the session uses; creates and drops test databases.

    Admin work goes through psycopg's synchronous driver so the fixtures stay synchronous and do
    not depend on pytest-asyncio's event-loop scoping; the tests themselves use asyncpg.
    """

    url: URL  # SQLAlchemy URL (asyncpg driver) of the session database

    @property
    def session_url(self) -> str:
        """The session database's URL as a string, password included."""
        return self.url.render_as_string(hide_password=False)

    def url_for(self, database: str) -> str:
        """URL of another database on the same server."""
        return self.url.set(database=database).render_as_string(hide_password=False)

    def connect(self, database: str | None = None) -> psycopg.Connection[TupleRow]:
        """Autocommit connection (CREATE/DROP DATABASE refuse to run inside a transaction)."""
        host = self.url.host or _query_value(self.url, "host")
        return psycopg.connect(
            host=host,
            port=self.url.port,
            user=self.url.username,
            password=self.url.password,
            dbname=database or self.url.database,
            connect_timeout=CONNECT_TIMEOUT_S,
            options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={STATEMENT_TIMEOUT_MS}",
            autocommit=True,
        )

    def create_database(self, hint: str = "") -> str:
        """Create an empty database with a unique name (``hint`` helps spot leftovers) and return it."""
        slug = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_")[:30]
        name = "_".join(part for part in ("copbot", slug, uuid.uuid4().hex[:10]) if part)
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database even if a test leaked connections to it."""
        with self.connect() as conn:
            if conn.info.server_version >= 130000:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            else:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
                )
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))

    def wait_ready(self, database: str | None = None, timeout: float = READY_TIMEOUT_S) -> None:
        """Poll until a connection succeeds; pg_ctl -w already waits, this covers external servers."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.connect(database) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() >= deadline:
                    raise PostgresUnavailable(
                        f"server at {self.url.host}:{self.url.port} not ready: {exc}"
                    ) from exc
                time.sleep(0.1)


def _query_value(url: URL, key: str) -> str | None:
    value = url.query.get(key)
    if isinstance(value, tuple):
        return value[0] if value else None
    return value


def external_server(raw_url: str) -> PostgresServer:
    """Wrap a user-supplied URL, switching its driver to asyncpg so tests get a uniform URL."""
    url = make_url(raw_url)
    if url.get_backend_name() not in {"postgresql", "postgres"}:
        raise ValueError(f"{ENV_URL} must be a postgresql:// URL, got {url.render_as_string()}")
    if not url.database:
        raise ValueError(f"{ENV_URL} must name a database, got {url.render_as_string()}")
    return PostgresServer(url.set(drivername=ASYNC_DRIVER))


# --------------------------------------------------------------------------- throwaway cluster


def _unprivileged_account() -> pwd.struct_passwd | None:
    """Account to run the server as, or None to run as ourselves.

    PostgreSQL refuses to run as root, and CI runs as root; Debian's package creates the
    ``postgres`` system user, and ``nobody`` is the fallback elsewhere.
    """
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailable("running as root and neither a 'postgres' nor a 'nobody' user exists")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _conf_line(key: str, value: str) -> str:
    return f"{key} = '{value.replace(chr(39), chr(39) * 2)}'\n"


def _one_line(text: str, limit: int = 400) -> str:
    """Squash command output into a skip reason that fits on one summary line."""
    squashed = " | ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return squashed if len(squashed) <= limit else "..." + squashed[-limit:]


class ThrowawayCluster:
    """A private cluster in a temp dir: initdb, pg_ctl start on a free port, pg_ctl stop, rm -rf."""

    def __init__(self, bindir: Path, base: Path, account: pwd.struct_passwd | None) -> None:
        self.bindir = bindir
        self.base = base
        self.account = account
        self.data = base / "data"
        self.sockets = base / "sock"
        self.logfile = base / "postgres.log"
        self.running = False

    def _run(self, args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """Run a server binary as the unprivileged account with a clean, bounded environment.

        PG* variables are dropped so a developer's PGPORT/PGDATA cannot redirect the cluster.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"  # stable English messages in skip reasons
        account = self.account
        if account is not None:
            env.update(HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name)
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            cwd=self.base,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            # Python drops privileges in the child itself: no dependency on runuser/setpriv or PAM.
            user=account.pw_uid if account else None,
            group=account.pw_gid if account else None,
            extra_groups=[] if account else None,
        )

    def _log_size(self) -> int:
        try:
            return self.logfile.stat().st_size
        except OSError:
            return 0

    def _log_since(self, offset: int) -> str:
        """Server log written since ``offset``, i.e. by the latest start attempt only."""
        with contextlib.suppress(OSError), self.logfile.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")
        return ""

    def start(self) -> PostgresServer:
        """Create and start the cluster; raise PostgresUnavailable with the reason if that fails."""
        self.sockets.mkdir()
        if self.account is not None:
            for path in (self.base, self.sockets):
                os.chown(path, self.account.pw_uid, self.account.pw_gid)
        try:
            initdb = self._run(
                ["initdb", "-D", str(self.data), "-U", SUPERUSER, *INITDB_OPTIONS],
                timeout=INITDB_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as exc:
            raise PostgresUnavailable(f"initdb timed out after {INITDB_TIMEOUT_S}s") from exc
        except OSError as exc:  # e.g. no permission to switch users
            raise PostgresUnavailable(f"cannot run initdb: {exc}") from exc
        if initdb.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {_one_line(initdb.stderr or initdb.stdout)}")

        # A unix socket path must fit in sun_path (107 bytes incl. "/.s.PGSQL.NNNNN"); under a long
        # --basetemp go TCP-only rather than fail: the fixtures only use TCP anyway.
        socket_dir = str(self.sockets) if len(str(self.sockets)) <= MAX_SOCKET_DIR_LEN else ""
        settings = {**SERVER_SETTINGS, "unix_socket_directories": socket_dir}
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# copbot test harness\n")
            conf.writelines(_conf_line(key, value) for key, value in settings.items())

        failure = ""
        start = ["pg_ctl", "start", "-D", str(self.data), "-l", str(self.logfile), *PG_CTL_WAIT]
        for _ in range(START_ATTEMPTS):
            port = _free_port()
            log_offset = self._log_size()
            try:
                result = self._run([*start, "-o", f"-p {port}"], timeout=PG_CTL_TIMEOUT_S + 15)
            except subprocess.TimeoutExpired:
                result = None
            if result is not None and result.returncode == 0:
                self.running = True
                atexit.register(self.stop)  # if pytest dies before fixture teardown
                server = PostgresServer(
                    URL.create(
                        ASYNC_DRIVER,
                        username=SUPERUSER,
                        host="127.0.0.1",
                        port=port,
                        database=SESSION_DATABASE,
                    )
                )
                server.wait_ready(database="postgres")  # the session database does not exist yet
                with server.connect("postgres") as conn:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SESSION_DATABASE)))
                return server
            self._kill_postmaster()  # a timed-out start may have left one behind
            log = self._log_since(log_offset)
            # The last few messages, minus timestamps and the uninformative final "shut down" line.
            lines = [
                re.sub(r"^\d{4}-\d\d-\d\d [\d:.]+ \S+ \[\d+\] ", "", line)
                for line in log.splitlines()
                if "database system is shut down" not in line
            ]
            outcome = _one_line(result.stderr) if result else f"no answer within {PG_CTL_TIMEOUT_S}s"
            failure = f"{outcome}; server log: {_one_line(chr(10).join(lines[-3:])) or '(empty)'}"
            if "could not bind" not in log:  # only a lost port race is worth another attempt
                break
        raise PostgresUnavailable(f"pg_ctl start failed: {failure}")

    def _kill_postmaster(self) -> None:
        """Last resort when pg_ctl cannot stop the server: SIGKILL the PID from postmaster.pid."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """Stop immediately (no checkpoint: the data is about to be deleted) and remove the dir."""
        atexit.unregister(self.stop)
        if self.running:
            self.running = False
            try:
                result = self._run(
                    ["pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", *PG_CTL_WAIT],
                    timeout=PG_CTL_TIMEOUT_S + 15,
                )
                if result.returncode != 0:
                    self._kill_postmaster()
            except (OSError, subprocess.TimeoutExpired):
                self._kill_postmaster()
        shutil.rmtree(self.base, ignore_errors=True)


def _cluster_base_dir(tmp_path_factory: pytest.TempPathFactory, account: pwd.struct_passwd | None) -> Path:
    """Directory for the cluster.

    Normally pytest's temp dir. As root it cannot be: pytest makes /tmp/pytest-of-root mode 0700,
    so the unprivileged server user could not even reach its data dir. Then a private mkdtemp
    dir under the system temp dir is used and handed to that user.
    """
    if account is None:
        return tmp_path_factory.mktemp("postgres")
    return Path(tempfile.mkdtemp(prefix="copbot-pg-"))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """The session's PostgreSQL server: external (COPBOT_TEST_POSTGRES_URL) or a throwaway cluster.

    Skips (once; pytest caches the outcome for the session) when PostgreSQL is unavailable.
    """
    raw_url = os.environ.get(ENV_URL)
    if raw_url:
        # An explicitly configured server that does not work is an error, not a reason to skip.
        server = external_server(raw_url)
        try:
            server.wait_ready(timeout=CONNECT_TIMEOUT_S)
        except PostgresUnavailable as exc:
            pytest.fail(f"{ENV_URL}: {exc}", pytrace=False)
        yield server
        return

    try:
        bindir = find_pg_bindir()
        account = _unprivileged_account()
    except PostgresUnavailable as exc:
        _unavailable(str(exc))
    cluster = ThrowawayCluster(bindir, _cluster_base_dir(tmp_path_factory, account), account)
    try:
        server = cluster.start()
    except (PostgresUnavailable, psycopg.Error, OSError) as exc:
        cluster.stop()
        _unavailable(str(exc))
    try:
        yield server
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """``postgresql+asyncpg://`` URL of a database shared by the whole session."""
    return postgres_server.session_url


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a new, empty database for this test only; dropped (even with open connections) afterwards."""
    name = postgres_server.create_database(hint=request.node.name)
    try:
        yield postgres_server.url_for(name)
    finally:
        postgres_server.drop_database(name)
