"""A real Synapse homeserver for copbot's Matrix tests.

Mocks of the Matrix client-server API drift from what a homeserver really does (sync tokens, ``limited``
timelines, restarts, membership races), so the Matrix end-to-end tests run against a real Synapse started
as a child process. Synapse lives in its own virtual environment (``.venv-synapse``, created by
``scripts/install-synapse.sh``) so that its pins never fight copbot's; tests run in the project's ``.venv``
and only talk HTTP to it.

Use it as a pytest plugin (``-p tests.harness.synapse`` or ``pytest_plugins = ["tests.harness.synapse"]`` in
the root conftest) to get the session-scoped :func:`synapse` fixture, then :func:`member_client` and
:func:`wait_for_event` from the tests. See ``/work/shared/MATRIX_TESTING.md`` for the measured facts behind
the choices here (rate limits, bcrypt rounds, background updates).

Every wait in this module is bounded, so a broken homeserver fails a test instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import os
import secrets
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
import uuid
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nio import AsyncClient, AsyncClientConfig, Event, SyncError, SyncResponse

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The copbot checkout; ``.venv-synapse`` sits here, next to ``.venv``."""

SYNAPSE_PYTHON_ENV = "COPBOT_SYNAPSE_PYTHON"
"""Env var naming the interpreter that has ``matrix-synapse`` installed (overrides the default venv)."""

REQUIRE_SYNAPSE_ENV = "COPBOT_REQUIRE_SYNAPSE"
"""Env var: when set to ``1``, a missing Synapse fails the session instead of skipping (for CI, where a
silent skip would turn the Matrix tests green without running them)."""

SERVER_NAME = "localhost"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
HTTP_TIMEOUT = 10.0
DEFAULT_PASSWORD = "copbot-test-password"

# Every client-facing rate limiter Synapse 1.163 reads (synapse/config/ratelimiting.py). Tests create rooms,
# users and messages far faster than a person, and M_LIMIT_EXCEEDED makes nio sleep for seconds, so all of
# them are opened wide. Nested keys are written as sections below.
_LOOSE = {"per_second": 10000, "burst_count": 10000}
_RATE_LIMITS: dict[str, Any] = {
    "rc_message": _LOOSE,
    "rc_registration": _LOOSE,
    "rc_registration_token_validity": _LOOSE,
    "rc_login": {"address": _LOOSE, "account": _LOOSE, "failed_attempts": _LOOSE},
    "rc_admin_redaction": _LOOSE,
    "rc_joins": {"local": _LOOSE, "remote": _LOOSE},
    "rc_joins_per_room": _LOOSE,
    "rc_key_requests": _LOOSE,
    "rc_3pid_validation": _LOOSE,
    "rc_invites": {"per_room": _LOOSE, "per_user": _LOOSE, "per_issuer": _LOOSE},
    "rc_third_party_invite": _LOOSE,
    "rc_media_create": _LOOSE,
    "rc_presence": {"per_user": _LOOSE},
    "rc_delayed_event_mgmt": _LOOSE,
    "rc_room_creation": _LOOSE,
    "rc_reports": _LOOSE,
    "rc_user_directory": _LOOSE,
    "rc_profile": _LOOSE,
    "rc_federation": {"window_size": 1000, "sleep_limit": 10000, "reject_limit": 10000, "concurrent": 100},
}


def default_synapse_python() -> Path:
    """Return the interpreter Synapse runs under: ``$COPBOT_SYNAPSE_PYTHON`` or ``.venv-synapse``'s."""
    override = os.environ.get(SYNAPSE_PYTHON_ENV)
    if override:
        return Path(override)
    return REPO_ROOT / ".venv-synapse" / "bin" / "python"


def synapse_unavailable_reason(python: Path) -> str | None:
    """Explain why Synapse cannot run under ``python``, or return ``None`` if it can.

    Checked with ``find_spec`` (about 30 ms) rather than importing Synapse (seconds), so that a venv whose
    install was interrupted is reported as "not installed" instead of as a confusing start-up crash.
    """
    hint = "run `make test` or `scripts/install-synapse.sh` to install it"
    if not python.exists():
        return f"Synapse python {python} does not exist; {hint} (or set {SYNAPSE_PYTHON_ENV})"
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util, sys; sys.exit(importlib.util.find_spec('synapse') is None)",
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        return f"matrix-synapse is not installed in {python}; {hint}"
    return None


def _free_port() -> int:
    """Pick a free loopback port; Synapse cannot be told to choose one and report it back."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Runs in the Synapse interpreter: a thread reads a pipe whose only write end the test process holds, and
# SIGTERMs Synapse when it reads EOF, i.e. when the test process is gone, however it died (even SIGKILL).
# Without it an interrupted pytest leaves a 130 MB homeserver running. prctl(PR_SET_PDEATHSIG) would be
# simpler but fires when the forking *thread* exits, and restart() is often called via asyncio.to_thread
# whose worker threads end with each test's event loop.
#
# Its SQLite connections commit with ``synchronous = NORMAL``, as copbot's own database does (bot/db.py): in
# WAL mode a commit then appends to the log without waiting for the disk, and is still safe against the
# process being killed (only a power cut could lose the last commits). Synapse's default waits for the disk
# at every commit — 13 fdatasync calls per message sent (strace; 0.18 with NORMAL) — and with SQLite all its
# database work goes through one connection, so a test disk's sync time became the homeserver's ceiling: on
# a machine whose disk syncs slowly, the load test timed Synapse's queue, not copbot (CI: members' sends
# took 0.4 s, copbot's replies p50 2.1 s).
# Then Synapse runs as ``-m synapse.app.homeserver`` would (it parses sys.argv[1:]).
_WATCHDOG = """
import os, runpy, signal, sqlite3, sys, threading, time
fd = int(sys.argv.pop(1))
def watch():
    while os.read(fd, 64):
        pass
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)
    os._exit(1)
threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()
_connect = sqlite3.connect
def connect(*args, **kwargs):
    connection = _connect(*args, **kwargs)
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection
sqlite3.connect = connect
sys.argv[0] = "synapse.app.homeserver"
runpy.run_module("synapse.app.homeserver", run_name="__main__", alter_sys=True)
"""


@dataclass(frozen=True)
class RegisteredUser:
    """A user created through the shared-secret admin API, with the session that registration opened."""

    user_id: str
    access_token: str
    device_id: str
    password: str


class Synapse:
    """One Synapse homeserver in ``directory``, run as a child process on a fixed loopback port.

    The port and the data (SQLite database, signing key, media) stay the same across :meth:`restart`, so a
    test can check that a client or bot survives the homeserver going away and coming back.
    """

    def __init__(self, directory: Path, python: Path | None = None, port: int | None = None) -> None:
        """Write the config (and generate the signing key once) under ``directory``; does not start."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.python = python or default_synapse_python()
        self.port = port or _free_port()
        self.config_path = self.directory / "homeserver.yaml"
        self.log_path = self.directory / "homeserver.log"
        self.output_path = self.directory / "stdout.log"
        self.database_path = self.directory / "homeserver.db"
        self.signing_key_path = self.directory / f"{SERVER_NAME}.signing.key"
        self.registration_shared_secret = secrets.token_hex(16)
        self._process: subprocess.Popen[bytes] | None = None
        self._watchdog_fd: int | None = None
        self._admin_token: str | None = None
        self._write_config()

    @property
    def base_url(self) -> str:
        """The homeserver URL for clients, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the child process is alive (not whether it answers yet)."""
        return self._process is not None and self._process.poll() is None

    def _write_config(self) -> None:
        """Write homeserver.yaml and its logging config.

        JSON is valid YAML, so no YAML library is needed in the test venv.
        """
        d = self.directory
        log_config = {
            "version": 1,
            "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "plain",
                    "filename": str(self.log_path),
                    "encoding": "utf8",
                }
            },
            "root": {"level": "WARNING", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }
        (d / "log.config").write_text(json.dumps(log_config, indent=2))
        config: dict[str, Any] = {
            "server_name": SERVER_NAME,
            "public_baseurl": self.base_url + "/",
            "pid_file": str(d / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(self.database_path)}},
            "log_config": str(d / "log.config"),
            "media_store_path": str(d / "media_store"),
            "signing_key_path": str(self.signing_key_path),
            "enable_registration": False,
            "registration_shared_secret": self.registration_shared_secret,
            "macaroon_secret_key": secrets.token_hex(16),
            "form_secret": secrets.token_hex(16),
            "report_stats": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "presence": {"enabled": False},
            # No push rules: Synapse would otherwise evaluate every member's rules for every message (half
            # its CPU with 50 members in a room, measured), and no test reads notification counts.
            "push": {"enabled": False},
            "bcrypt_rounds": 4,
            "enable_metrics": False,
            "url_preview_enabled": False,
            # A new database queues ~55 schema updates that run one a second and slow whatever test comes
            # first; running them back to back gets them out of the way in the first seconds.
            "background_updates": {"sleep_enabled": False},
            # As README advises for copbot (at least 10,000; Synapse's default is 100): a bot back from
            # downtime gets its backlog in one sync instead of paging /messages, which costs Synapse ~2 ms
            # an event (measured: 10,000 events in 1.1 s against 21 s). Twice that here, so the catch-up
            # bench can time Synapse serving the same backlog in one sync once copbot's replies are added.
            "filter_timeline_limit": 20_000,
            **_RATE_LIMITS,
        }
        self.config_path.write_text(json.dumps(config, indent=2))

    def _generate_keys(self) -> None:
        """Create the server signing key, once: it must survive restarts, or events Synapse signed before
        would no longer verify.

        Written directly in the format ``synapse.app.homeserver --generate-keys`` produces (``ed25519
        <key id> <unpadded base64 of a 32-byte seed>``; any 32 random bytes are a valid Ed25519 seed): that
        command is a second interpreter start-up importing all of Synapse, ~1.4 s of a ~2.8 s session set-up.
        """
        if self.signing_key_path.exists():
            return
        key_id = "a_" + secrets.token_hex(2)
        seed = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        self.signing_key_path.write_text(f"ed25519 {key_id} {seed}\n")
        self.signing_key_path.chmod(0o600)

    def log_tail(self, lines: int = 40) -> str:
        """The end of Synapse's log and console output, to put into failure messages."""
        parts = []
        for path in (self.log_path, self.output_path):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path.name} (last {len(text)} lines) ---\n" + "\n".join(text))
        return "\n".join(parts) or "(no Synapse output)"

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start Synapse and block until ``/_matrix/client/versions`` answers.

        Raises ``RuntimeError`` with the log tail if the process exits or is not up within ``timeout``.
        Synchronous on purpose: the session fixture runs outside any event loop (pytest-asyncio 1.x gives
        each test its own loop), and start-up is a one-off ~1.5 s.
        """
        if self.running:
            return
        self._generate_keys()
        read_fd, self._watchdog_fd = os.pipe()
        try:
            with self.output_path.open("ab") as output:
                self._process = subprocess.Popen(
                    [str(self.python), "-c", _WATCHDOG, str(read_fd), "-c", str(self.config_path)],
                    cwd=self.directory,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    pass_fds=(read_fd,),
                )
        except BaseException:
            self._close_watchdog()
            raise
        finally:
            os.close(read_fd)
        deadline = time.monotonic() + timeout
        while True:
            code = self._process.poll()
            if code is not None:
                self.stop()
                raise RuntimeError(f"Synapse exited with code {code} during start-up\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/_matrix/client/versions", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Synapse did not answer within {timeout:.0f} s\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop Synapse with SIGTERM (a clean shutdown that flushes the database), SIGKILL if it hangs."""
        process, self._process = self._process, None
        try:
            if process is None or process.poll() is not None:
                return
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        finally:
            self._close_watchdog()

    def _close_watchdog(self) -> None:
        """Close our end of the watchdog pipe (only once the child is gone: closing it stops Synapse)."""
        fd, self._watchdog_fd = self._watchdog_fd, None
        if fd is not None:
            os.close(fd)

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        """Stop and start again on the same port with the same data, as an operator's restart would."""
        self.stop()
        self.start(timeout=timeout)

    def __enter__(self) -> Synapse:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """A blocking JSON request to the homeserver (e.g. an admin API call with :meth:`admin_token`).

        Raises ``RuntimeError`` carrying the response body on HTTP errors, since Synapse's ``errcode`` is
        what explains a failure.
        """
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as resp:
                return dict(json.load(resp))
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")
            raise RuntimeError(f"{method} {path} -> HTTP {err.code}: {detail}") from err

    def register(
        self, localpart: str, password: str = DEFAULT_PASSWORD, admin: bool = False
    ) -> RegisteredUser:
        """Create a user with the shared-secret admin API, which works with public registration off.

        Blocking (~10 ms with ``bcrypt_rounds: 4``); call it via ``asyncio.to_thread`` from a test that has
        a bot running in its event loop.
        """
        path = "/_synapse/admin/v1/register"
        nonce = self.request("GET", path)["nonce"]
        mac = hmac.new(self.registration_shared_secret.encode(), digestmod=hashlib.sha1)
        for part in (nonce, localpart, password):
            mac.update(part.encode())
            mac.update(b"\x00")
        mac.update(b"admin" if admin else b"notadmin")
        body = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        }
        result = self.request("POST", path, body)
        return RegisteredUser(
            user_id=result["user_id"],
            access_token=result["access_token"],
            device_id=result["device_id"],
            password=password,
        )

    def admin_token(self) -> str:
        """An access token of a harness-owned admin user, registered on first use (survives restarts)."""
        if self._admin_token is None:
            self._admin_token = self.register(
                f"harness-admin-{uuid.uuid4().hex[:8]}", admin=True
            ).access_token
        return self._admin_token

    def _pending_background_updates(self) -> int:
        """Rows left in Synapse's ``background_updates`` table: the only source that is right between two
        updates and before the updater has started, when the admin API shows nothing running."""
        uri = f"file:{self.database_path}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
            return int(db.execute("SELECT count(*) FROM background_updates").fetchone()[0])

    def wait_background_updates(self, timeout: float = 120.0) -> None:
        """Block until Synapse's background schema updates are done, so a benchmark measures copbot and
        not a database migration running in the same two cores.

        Polls ``/_synapse/admin/v1/background_updates/status`` and confirms with the database's queue.
        """
        token = self.admin_token()
        deadline = time.monotonic() + timeout
        while True:
            status = self.request("GET", "/_synapse/admin/v1/background_updates/status", token=token)
            if not status.get("enabled", True):
                raise RuntimeError("Synapse background updates are disabled; they would never finish")
            if not status.get("current_updates") and self._pending_background_updates() == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"background updates still running after {timeout:.0f} s: {status}")
            time.sleep(0.2)


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    """One Synapse for the whole test session (start-up costs ~2 s; a server per test would dominate).

    Tests share it, so each must use its own users and rooms (:func:`member_client` makes unique ones).
    Skips, naming the fix, when Synapse is not installed, unless ``COPBOT_REQUIRE_SYNAPSE=1``.
    """
    python = default_synapse_python()
    reason = synapse_unavailable_reason(python)
    if reason is not None:
        if os.environ.get(REQUIRE_SYNAPSE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_SYNAPSE_ENV}=1)", pytrace=False)
        pytest.skip(reason)
    server = Synapse(tmp_path_factory.mktemp("synapse"), python=python)
    server.start()
    try:
        yield server
    finally:
        server.stop()


_client_counter = itertools.count(1)


def client_config() -> AsyncClientConfig:
    """nio settings for test clients.

    Connection errors (a homeserver restart) are retried quickly and a bounded number of times, instead of
    nio's default of forever with back-off up to a minute. A 429 is returned at once as an error response
    rather than slept on: with the harness's loosened limits it means a misconfiguration, not load.
    """
    return AsyncClientConfig(
        max_timeouts=200,
        backoff_factor=0.05,
        max_timeout_retry_wait_time=0.5,
        max_limit_exceeded=0,
        request_timeout=30,
        encryption_enabled=False,
        store_sync_tokens=False,
    )


async def member_client(synapse: Synapse, localpart: str = "member") -> AsyncClient:
    """Register a fresh user and return a nio client logged in as it (no extra /login round trip).

    ``localpart`` is a prefix: a counter and random suffix make it unique, because all tests share one
    homeserver and its users outlive each test. The caller must ``await client.close()``.
    """
    unique = f"{localpart}-{next(_client_counter)}-{uuid.uuid4().hex[:6]}".lower()
    user = await asyncio.to_thread(synapse.register, unique)
    client = AsyncClient(synapse.base_url, user.user_id, device_id=user.device_id, config=client_config())
    client.restore_login(user.user_id, user.device_id, user.access_token)
    return client


# Events a sync delivered but no wait_for_event call has returned yet, per client. A sync often brings
# several events at once (a bot's two replies, a join and a message); keeping the rest here means a second
# wait finds them instead of their being lost with the sync token that moved past them.
_unclaimed: weakref.WeakKeyDictionary[AsyncClient, list[tuple[str, Event]]] = weakref.WeakKeyDictionary()


def _claim(client: AsyncClient, predicate: Callable[[Event], bool]) -> tuple[str, Event] | None:
    """Remove and return the first-synced unclaimed event of ``client`` that matches ``predicate``."""
    pending = _unclaimed.setdefault(client, [])
    for index, (_room_id, event) in enumerate(pending):
        if predicate(event):
            return pending.pop(index)
    return None


async def wait_for_event(
    client: AsyncClient,
    predicate: Callable[[Event], bool],
    timeout: float = 10.0,  # noqa: ASYNC109 - a plain deadline reads better in tests than a context manager
) -> tuple[str, Event]:
    """Sync until a timeline event in a joined room matches ``predicate``; return ``(room_id, event)``.

    Every timeline event the client has synced but no earlier call returned is a candidate, in the order
    synced: a test can send first and wait after without a race, and can wait for two replies one after
    the other, in either order, even when one sync brought both. (A client's first sync also brings recent
    room history.)
    Connection errors (e.g. during :meth:`Synapse.restart`) are retried by nio with the short back-off of
    :func:`client_config`; error responses are retried here. Raises ``TimeoutError`` after ``timeout`` s.
    """
    last_error: SyncError | None = None
    try:
        async with asyncio.timeout(timeout):
            while (found := _claim(client, predicate)) is None:
                response = await client.sync(timeout=1000)
                if isinstance(response, SyncResponse):
                    _unclaimed.setdefault(client, []).extend(
                        (room_id, event)
                        for room_id, room in response.rooms.join.items()
                        for event in room.timeline.events
                    )
                else:
                    last_error = response
                    await asyncio.sleep(0.1)
            return found
    except TimeoutError:
        detail = f"; last sync error: {last_error}" if last_error else ""
        raise TimeoutError(f"{client.user_id}: no matching event within {timeout} s{detail}") from None
