"""copbot on Matrix against a minimal matrix-nio echo bot, on one real Synapse, in one run.

Latency on a 2-core machine is dominated by Synapse's own CPU (~50–80 ms a round trip) and drifts ±25 %
between runs, so an absolute latency target would measure the homeserver, not copbot. Instead the
benchmark runs a minimal matrix-nio echo bot (the floor: the least any nio bot can do per command) next
to copbot, on the same homeserver, in alternating rounds, and compares the two:

* member-send → member-sees-reply latency p50/p95 (target: copbot's p50 ≤ 1.10× the floor's);
* the bot process's CPU time per command (target: ≤ 1.15× the floor's, what maubot measures) — the
  steadiest figure;
* the bot process's RSS when idle after a restart on its existing database (target: copbot with only
  Matrix configured and every plugin enabled ≤ 80 MB, with discord.py and the other unused parts not
  imported — checked in the live process, see ``_SITECUSTOMIZE``);
* start-up, process start → first reply: on a fresh database (migrations included, target ≤ 1.5 s) and
  again on the existing one after the rounds, the median of 5 alternating restarts each, probed every
  50 ms (target: ≤ maubot's, which measured 1.12× the floor's start on this machine: 1.16 s against
  1.04 s — so ≤ 1.12× the floor's restart in the same run). For information beside it: the same restart
  of copbot without any plugin (``CORE_ONLY``), and a process that only imports the agreed libraries
  (``STACK_IMPORTS``) — how much of the restart is the stack's, the core's and the plugins'.

Both bots are separate processes started with this interpreter, so CPU time and RSS are per-process
figures read from ``/proc``. Run with ``make bench``; takes ~1.5 minutes. Exits 0 when a target is
missed (this is a report) and non-zero when the measurement itself fails (no Synapse, a bot crashed, a
reply never came). Environment: ``BENCH_MATRIX_ROUNDS`` (default 20, at least 3),
``BENCH_MATRIX_COMMANDS`` (per round, default 25) and ``BENCH_MATRIX_PROFILE`` (see ``PROFILE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from nio import AsyncClient, RoomCreateResponse, RoomSendResponse, SyncResponse  # noqa: E402

from bench.report import result  # noqa: E402
from tests.harness.synapse import (  # noqa: E402
    RegisteredUser,
    Synapse,
    client_config,
    default_synapse_python,
    synapse_unavailable_reason,
)

ROUNDS = max(3, int(os.environ.get("BENCH_MATRIX_ROUNDS", "20")))
COMMANDS = int(os.environ.get("BENCH_MATRIX_COMMANDS", "25"))
"""500 commands per bot, in rounds short enough that both bots meet the homeserver in the same state.
Synapse's own speed drifts over seconds (its caches, its background jobs, the machine): with 5 rounds of
100 commands, one bot's round p50 went from 54.9 to 69.5 ms and back while the other's stayed at ~53 ms,
and the p50 ratio came out anywhere from 0.95× to 1.12× over runs of the same code. Interleaved in rounds
of 10–25 commands, the same code measured 1.02–1.06× in five runs of 100–500 commands a bot."""
_PROFILE_ENV = os.environ.get("BENCH_MATRIX_PROFILE", "")
PROFILE = os.path.abspath(_PROFILE_ENV) if _PROFILE_ENV else ""
"""A file to write a cProfile of copbot's main thread during its rounds to (slows copbot: its figures are
then not comparable; for finding where its CPU goes)."""
WARMUP_COMMANDS = 20
"""Unmeasured commands per bot after start-up: the first replies pay for cold caches on both sides."""
SYNAPSE_WARMUP_MESSAGES = 40
"""Messages a member sends into a scratch room before any bot starts, so the first bot does not pay for
Synapse's cold caches (event persistence, sync, state resolution)."""

LATENCY_TARGET = 1.10
CPU_TARGET = 1.15
RSS_TARGET_MB = 80.0
FRESH_START_TARGET_S = 1.5
RESTART_TARGET = 1.12
"""maubot 0.6 against the floor, process start → first reply, measured on this machine (see the issue)."""

REPLY_TIMEOUT = 15.0
"""Seconds a reply may take before the run fails; a healthy round trip here is ~0.1 s."""
STARTUP_TIMEOUT = 90.0
STARTUP_PROBE_INTERVAL = float(os.environ.get("BENCH_PROBE_INTERVAL", "0.05"))
"""Seconds between ``!about`` probes while a bot starts: the start-up figure is accurate to about this.
Fine, because the floor skips what was sent before its first sync and copbot (resuming from its stored
position) does not: with a probe every 0.25 s the floor's restart was rounded up to ~0.62 s from its
~0.44 s, and copbot's ratio looked 0.97–1.10× where it is ~1.6×."""
RESTARTS = 5
"""Restarts of each bot on its existing data, alternating; the restart figure is their median."""
STACK_IMPORTS = (
    "from bot.launch import prepare; prepare(); "
    "import asyncio, os, aiohttp, aiosqlite, pydantic, sqlmodel, sqlalchemy.orm, sqlalchemy.ext.asyncio; "
    "os._exit(0)"  # timed to the end of the imports, not through the interpreter's clean-up at exit
)
"""A process that only loads the libraries the design agreed on (aiohttp, SQLAlchemy with its asyncio
extension and ORM, sqlmodel, pydantic, aiosqlite), prepared as ``copbot`` prepares itself (bot/launch.py),
and ends: the least any copbot start can take before its own first line runs. Timed beside the restarts,
it shows how much of copbot's restart is the agreed stack's and how much copbot's own."""
SETTLE = 1.0
"""Quiet seconds after start-up probes (late answers to earlier probes) and before reading idle RSS."""
TOTAL_TIMEOUT = 600.0
STOP_TIMEOUT = 15.0
COMMAND = "!about"

UNUSED_PARTS = (
    "discord",
    "bot.adapters.discord_adapter",
    "bot.web.app",
    "aiohttp.web",
    "alembic",
    "mako",
    "pygments",
)
"""Modules a Matrix-only copbot with the web off has no use for once running (alembic and mako only apply
migrations at start-up; pygments comes in through mako when installed). Listed, not judged: RSS is."""

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1

# Written to a temp file and run with this same interpreter: the floor. It does what any nio bot must —
# log in, skip the history it finds at first start (as copbot does), long-poll /sync, and answer each
# message as a reply — and nothing else.
ECHO_BOT = '''
"""A minimal matrix-nio echo bot (the benchmark's floor)."""
import asyncio
import signal
import sys

from nio import AsyncClient, AsyncClientConfig, LoginResponse, MatrixRoom, RoomMessageText


async def main(homeserver: str, user_id: str, password: str) -> None:
    config = AsyncClientConfig(encryption_enabled=False, store_sync_tokens=False)
    client = AsyncClient(homeserver, user_id, config=config)
    login = await client.login(password, device_name="echo")
    if not isinstance(login, LoginResponse):
        sys.exit(f"echo bot: login failed: {login}")
    await client.sync(timeout=0)  # skip history: only messages after start-up are answered

    async def on_message(room: MatrixRoom, event: RoomMessageText) -> None:
        if event.sender == client.user_id:
            return
        content = {
            "msgtype": "m.text",
            "body": event.body,
            "m.relates_to": {"m.in_reply_to": {"event_id": event.event_id}},
        }
        await client.room_send(room.room_id, "m.room.message", content)

    client.add_event_callback(on_message, RoomMessageText)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    syncing = asyncio.create_task(client.sync_forever(timeout=30000))
    await stop.wait()
    syncing.cancel()
    await client.close()


asyncio.run(main(*sys.argv[1:4]))
'''

# Written to a temp file and run with this same interpreter: `copbot run` without any plugin — not loaded,
# not checked, not set up, no job of theirs — on the same configuration and data as copbot. Its restart is
# the core's own (configuration, database, journal, Matrix), timed for information: what no way of loading
# the plugins (lazily, or fewer of them) could take away.
CORE_ONLY = """
import asyncio
import sys

sys.path.insert(0, {root!r})
from bot.launch import prepare

prepare()
from bot.cli import _configure_logging, _migrate_in_a_child_process
from bot.config import read_settings

settings = read_settings(sys.argv[1]).settings
_configure_logging(settings)
_migrate_in_a_child_process(settings, sys.argv[1])
from bot.app import CopBot

sys.exit(asyncio.run(CopBot(settings, plugins=[]).run()))
"""

# Put first on both bots' PYTHONPATH. On SIGUSR1 it writes the names in sys.modules to the file named by
# COPBOT_BENCH_MODULES: the only reliable way to see what a pure-Python process imported (discord.py has
# no C extension, so /proc/<pid>/maps cannot show it), without changing copbot. It costs one tiny module.
# With COPBOT_BENCH_PROFILE set (only for copbot, by BENCH_MATRIX_PROFILE), SIGUSR2 starts cProfile on the
# main thread (where the event loop runs) and a second SIGUSR2 writes the stats there: a profile of the
# measured rounds only, without start-up, and without a copbot change.
_SITECUSTOMIZE = """
import os, signal, sys

def _dump_modules(signum, frame):
    path = os.environ.get("COPBOT_BENCH_MODULES")
    if path:
        with open(path + ".tmp", "w") as out:
            out.write("\\n".join(sorted(sys.modules)))
        os.replace(path + ".tmp", path)

signal.signal(signal.SIGUSR1, _dump_modules)

_profile_path = os.environ.get("COPBOT_BENCH_PROFILE")
if _profile_path:
    import cProfile, time

    _profiler = cProfile.Profile(time.thread_time)  # CPU, not wall time: idle waits would dominate
    _profiling = [False]

    def _toggle_profile(signum, frame):
        if _profiling[0]:
            _profiler.disable()
            _profiler.dump_stats(_profile_path)
        else:
            _profiler.enable()
        _profiling[0] = not _profiling[0]

    signal.signal(signal.SIGUSR2, _toggle_profile)
"""


class BenchError(Exception):
    """The measurement itself failed (not a missed target): the run exits non-zero."""


# --- the bot processes ----------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the benchmark dies, however it dies, so no bot outlives it.

    Popen is only called from the main thread, which lives as long as the benchmark does (the death
    signal fires when the forking *thread* exits).
    """
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def read_cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU time of the whole process (all threads, e.g. aiosqlite's), from /proc/<pid>/stat;
    with ``tid``, of that one thread (``tid == pid`` is the main thread, where asyncio runs)."""
    source = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    stat = Path(source).read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may contain spaces and parentheses
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def read_rss_mb(pid: int) -> float:
    """Resident set size from /proc/<pid>/status (VmRSS, in kB), in MB (10^6 bytes, as ``ps`` and the
    issue's "60 MB" mean it: 1 MB = 1000 kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise BenchError(f"no VmRSS for pid {pid}")


@dataclass
class BotProcess:
    """One bot under test, as a child process, and everything measured about it."""

    name: str
    user: RegisteredUser
    room_id: str
    argv: list[str]
    workdir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    startup_seconds: float = math.nan
    startup_cpu_seconds: float = math.nan
    restart_seconds: float = math.nan
    """Process start → first reply again, on the data of the first run (a restart)."""
    core_restart_seconds: float = math.nan
    """The same restart without any plugin (``CORE_ONLY``): copbot only."""
    stack_import_seconds: float = math.nan
    """For copbot: a process loading only the agreed libraries, start to exit (``STACK_IMPORTS``)."""
    rss_after_start_mb: float = math.nan
    rss_idle_mb: float = math.nan
    latencies: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0
    main_thread_cpu_seconds: float = 0.0
    log_lines: int = 0
    """Lines the bot logged during the rounds: logging is CPU per command too, and a flood is a finding."""
    commands: int = 0
    rounds: list[tuple[float, float, float]] = field(default_factory=list)
    """Per round: p50 (s), p95 (s), CPU per command (s)."""
    modules: list[str] = field(default_factory=list)

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise BenchError(f"{self.name} is not running")
        return self.process.pid

    def start(self) -> None:
        """Start the process, output to a log file; ``started_at`` is the clock start-up is timed from."""
        with self.log_path.open("ab") as log:
            self.started_at = time.perf_counter()
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # only from the main thread, see there
            )

    def check_alive(self) -> None:
        """Raise with the log tail if the bot has exited: every later figure would be meaningless."""
        if self.process is not None and self.process.poll() is not None:
            raise BenchError(f"{self.name} exited with code {self.process.returncode}\n{self.log_tail()}")

    def cpu(self) -> float:
        self.check_alive()
        return read_cpu_seconds(self.pid)

    def main_thread_cpu(self) -> float:
        self.check_alive()
        return read_cpu_seconds(self.pid, self.pid)

    def rss(self) -> float:
        self.check_alive()
        return read_rss_mb(self.pid)

    async def read_modules(self) -> list[str]:
        """Ask the live process for its sys.modules (see ``_SITECUSTOMIZE``)."""
        path = self.env["COPBOT_BENCH_MODULES"]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while not os.path.exists(path):  # noqa: ASYNC240 - a stat of a local file, while a bot idles
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name} did not write its module list")
            await asyncio.sleep(0.05)
        with open(path) as modules:  # noqa: ASYNC230 - a few kB, once
            return modules.read().split()

    def stop(self) -> int | None:
        """SIGTERM (both bots shut down cleanly on it), SIGKILL if that hangs; returns the exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        return process.returncode

    def count_log_lines(self) -> int:
        if not self.log_path.exists():
            return 0
        with self.log_path.open("rb") as log:
            return sum(1 for _ in log)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no output)"
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.log_path.name} (last {len(text)} lines) ---\n" + "\n".join(text)


# --- the member -----------------------------------------------------------------------------------------


def _in_reply_to(source: dict[str, Any]) -> str | None:
    relates = (source.get("content") or {}).get("m.relates_to") or {}
    return (relates.get("m.in_reply_to") or {}).get("event_id")


class Member:
    """A nio client in this process that sends commands and sees the replies, one command at a time.

    A background task long-polls /sync all the time, as a real client does, so a reply is seen as soon as
    the homeserver has it; replies are matched to their command by sender and ``m.in_reply_to``, and kept
    if they arrive before ``room_send`` has even returned the command's event id.
    """

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.replies: dict[str, tuple[str, float]] = {}
        """Command event id → (sender of the reply, when the member saw it)."""
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    async def start(self) -> None:
        first = await self.client.sync(timeout=0)
        if not isinstance(first, SyncResponse):
            raise BenchError(f"member's first sync failed: {first}")
        self._task = asyncio.create_task(self._sync_loop(), name="member-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.close()

    async def _sync_loop(self) -> None:
        sync_filter = {"room": {"timeline": {"limit": 100}}, "presence": {"types": []}}
        try:
            while True:
                response = await self.client.sync(timeout=30000, sync_filter=sync_filter)
                seen = time.perf_counter()
                if not isinstance(response, SyncResponse):
                    await asyncio.sleep(0.1)
                    continue
                for room in response.rooms.join.values():
                    for event in room.timeline.events:
                        command_id = _in_reply_to(event.source)
                        if command_id is not None and event.sender != self.client.user_id:
                            self.replies.setdefault(command_id, (event.sender, seen))
                arrived, self._arrived = self._arrived, asyncio.Event()
                arrived.set()
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # surfaced by the next wait, instead of a silent hang
            self._error = error
            self._arrived.set()

    async def send(self, room_id: str, body: str) -> str:
        async with asyncio.timeout(REPLY_TIMEOUT):
            content = {"msgtype": "m.text", "body": body}
            response = await self.client.room_send(room_id, "m.room.message", content)
        if not isinstance(response, RoomSendResponse):
            raise BenchError(f"member could not send to {room_id}: {response}")
        return response.event_id

    async def wait_reply(
        self,
        command_ids: set[str],
        sender: str,
        timeout: float,  # noqa: ASYNC109 - a plain deadline, checked between syncs
    ) -> tuple[str, float] | None:
        """The first of ``command_ids`` answered by ``sender`` and when it was seen, or None on timeout."""
        deadline = time.perf_counter() + timeout
        while True:
            if self._error is not None:
                raise BenchError(f"member's sync failed: {self._error!r}")
            answered = [
                (seen, command_id)
                for command_id in command_ids
                if (reply := self.replies.get(command_id)) is not None and reply[0] == sender
                for seen in [reply[1]]
            ]
            if answered:
                seen, command_id = min(answered)
                return command_id, seen
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()

    async def ask(self, bot: BotProcess) -> float:
        """One command, member-send → member-sees-reply, in seconds."""
        started = time.perf_counter()
        command_id = await self.send(bot.room_id, COMMAND)
        found = await self.wait_reply({command_id}, bot.user.user_id, REPLY_TIMEOUT)
        if found is None:
            bot.check_alive()
            raise BenchError(f"{bot.name} did not answer within {REPLY_TIMEOUT} s\n{bot.log_tail()}")
        return found[1] - started

    async def quiet(self, seconds: float) -> None:
        """Wait until no sync has brought anything for ``seconds`` (late answers to start-up probes)."""
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline:
            try:
                async with asyncio.timeout(seconds):
                    await self._arrived.wait()
            except TimeoutError:
                return
        raise BenchError("the rooms never went quiet after start-up")


# --- the run --------------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: with 100+ samples per bot it is what was measured)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def copbot_config(workdir: Path, synapse: Synapse, user: RegisteredUser, room: str) -> Path:
    """copbot with only Matrix: web off, SQLite in the temp dir, one community owning the bot's room."""
    config = workdir / "copbot.toml"
    config.write_text(
        f"""database_url = "sqlite+aiosqlite:///{workdir / "copbot.db"}"

[web]
enabled = false

[matrix]
homeserver = "{synapse.base_url}"
user_id = "{user.user_id}"
password = "{user.password}"

[[communities]]
slug = "water"
name = "Water CoP"
domain = "leak detection"

[communities.matrix]
rooms = ["{room}"]
"""
    )
    return config


def child_env(workdir: Path, name: str, sitecustomize_dir: Path) -> dict[str, str]:
    """The bots' environment: no inherited ``COPBOT_…`` settings (only the generated config counts)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("COPBOT_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(sitecustomize_dir), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env["COPBOT_BENCH_MODULES"] = str(workdir / f"{name}.modules")
    return env


def bench_synapse(workdir: Path) -> Synapse:
    """The benches' throwaway Synapse, not started yet; a BenchError when it is not installed."""
    python = default_synapse_python()
    reason = synapse_unavailable_reason(python)
    if reason is not None:
        raise BenchError(reason)
    return Synapse(workdir / "synapse", python=python)


async def start_synapse(synapse: Synapse) -> None:
    await asyncio.to_thread(synapse.start)
    await asyncio.to_thread(synapse.wait_background_updates)


def client_of(synapse: Synapse, user: RegisteredUser) -> AsyncClient:
    """A nio client logged in as ``user`` with the token its registration opened (one device of it)."""
    client = AsyncClient(synapse.base_url, user.user_id, config=client_config())
    client.restore_login(user.user_id, user.device_id, user.access_token)
    return client


async def accounts(
    synapse: Synapse, bots: list[str]
) -> tuple[RegisteredUser, Member, list[tuple[RegisteredUser, str]]]:
    """The member's account and :class:`Member` (started: syncing), and for each name in ``bots`` a bot
    account with its room (see :func:`make_room`), in order."""
    member_user = await asyncio.to_thread(synapse.register, "member")
    bot_users = [await asyncio.to_thread(synapse.register, name) for name in bots]
    client = client_of(synapse, member_user)
    try:
        rooms = [
            (user, await make_room(synapse, client, user, name))
            for user, name in zip(bot_users, bots, strict=True)
        ]
        member = Member(client)
        await member.start()
    except BaseException:
        await client.close()
        raise
    return member_user, member, rooms


async def make_room(synapse: Synapse, member: AsyncClient, bot: RegisteredUser, name: str) -> str:
    """A room made by the member, with the bot already joined (start-up then measures only start-up).

    It gets the alias ``#<name>-bench:localhost``: copbot's config names its room by that alias, because
    its validator rejects the ids of room version 12 (Synapse 1.163's default), which have no ``:server``.
    """
    async with asyncio.timeout(REPLY_TIMEOUT):
        created = await member.room_create(name=name, alias=f"{name}-bench", invite=[bot.user_id])
    if not isinstance(created, RoomCreateResponse):
        raise BenchError(f"could not create the {name} room: {created}")
    join = f"/_matrix/client/v3/join/{created.room_id}"
    await asyncio.to_thread(synapse.request, "POST", join, {}, bot.access_token)
    return created.room_id


async def measure_startup(member: Member, bot: BotProcess) -> None:
    """Start the bot and probe with ``!about`` until the first reply: process start → first reply.

    A bot ignores what was sent before its first sync (history), so one early probe is not enough; the
    figure is accurate to about ``STARTUP_PROBE_INTERVAL``.
    """
    bot.start()
    probes: set[str] = set()
    deadline = time.perf_counter() + STARTUP_TIMEOUT
    while True:
        bot.check_alive()
        probes.add(await member.send(bot.room_id, COMMAND))
        found = await member.wait_reply(probes, bot.user.user_id, STARTUP_PROBE_INTERVAL)
        if found is not None:
            bot.startup_seconds = found[1] - bot.started_at
            bot.startup_cpu_seconds = bot.cpu()
            break
        if time.perf_counter() > deadline:
            raise BenchError(f"{bot.name} did not answer within {STARTUP_TIMEOUT} s\n{bot.log_tail()}")
    await member.quiet(SETTLE)
    bot.rss_after_start_mb = bot.rss()


async def measure_round(member: Member, bot: BotProcess) -> None:
    """COMMANDS sequential commands; the bot's CPU is read before and after (after a short settle, so the
    work a bot does after replying — storing its sync token, writing activity — is counted too)."""
    profiling = "COPBOT_BENCH_PROFILE" in bot.env
    if profiling:
        os.kill(bot.pid, signal.SIGUSR2)
    cpu_before, main_before, lines_before = bot.cpu(), bot.main_thread_cpu(), bot.count_log_lines()
    latencies = [await member.ask(bot) for _ in range(COMMANDS)]
    await asyncio.sleep(0.3)
    if profiling:
        os.kill(bot.pid, signal.SIGUSR2)
    cpu = bot.cpu() - cpu_before
    bot.main_thread_cpu_seconds += bot.main_thread_cpu() - main_before
    bot.log_lines += bot.count_log_lines() - lines_before
    bot.latencies += latencies
    bot.cpu_seconds += cpu
    bot.commands += COMMANDS
    bot.rounds.append((statistics.median(latencies), percentile(latencies, 0.95), cpu / COMMANDS))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def site_dir(workdir: Path) -> Path:
    """The directory of the bots' ``sitecustomize`` (``_SITECUSTOMIZE``), for :func:`child_env`."""
    site = workdir / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    return site


async def warm_up_synapse(client: AsyncClient, member: Member) -> None:
    """Messages into a scratch room before any bot starts, so the first bot does not pay for Synapse's cold
    caches; ``member`` must be started (it waits for its own messages)."""
    scratch = await client.room_create(name="warm-up")
    if not isinstance(scratch, RoomCreateResponse):
        raise BenchError(f"could not create the warm-up room: {scratch}")
    for n in range(SYNAPSE_WARMUP_MESSAGES):
        await member.send(scratch.room_id, f"warm-up {n}")


def floor_bot(workdir: Path, synapse: Synapse, user: RegisteredUser, room: str, site: Path) -> BotProcess:
    """The floor: ``ECHO_BOT`` as a process of its own, logging in as ``user`` and answering in ``room``."""
    script = workdir / "echo_bot.py"
    script.write_text(ECHO_BOT)
    return BotProcess(
        "floor",
        user,
        room,
        [sys.executable, str(script), synapse.base_url, user.user_id, user.password],
        workdir,
        child_env(workdir, "floor", site),
    )


async def alternating_restarts(
    member: Member, bots: list[BotProcess], count: int
) -> dict[str, list[tuple[float, float]]]:
    """``count`` restarts of each bot on its existing data, alternating which goes first: each bot's
    process start → first reply and its CPU seconds by then, in order. A single start is quantized by the
    probes (a bot that skips what was sent before its first sync, as the floor does, is timed by the next
    probe): take a median. The bots' first-start figures are left as they were."""
    restarts: dict[str, list[tuple[float, float]]] = {bot.name: [] for bot in bots}
    for index in range(count):
        for bot in bots if index % 2 == 0 else bots[::-1]:
            bot.stop()
            first = (bot.startup_seconds, bot.startup_cpu_seconds)
            await measure_startup(member, bot)
            restarts[bot.name].append((bot.startup_seconds, bot.startup_cpu_seconds))
            bot.startup_seconds, bot.startup_cpu_seconds = first
    return restarts


async def core_only_restarts(member: Member, copbot: BotProcess, config: Path) -> float:
    """The median of ``RESTARTS`` restarts of copbot's core alone (``CORE_ONLY``) as copbot's account, on
    its data, in its room; copbot is stopped meanwhile and running again, warmed up, at the end.

    Jobs of the plugins the core finds in the store are dropped (no plugin takes them); the whole copbot
    declares them again when it starts, as after any plugin was turned off and on.
    """
    script = copbot.workdir / "copbot_core_only.py"
    script.write_text(CORE_ONLY.format(root=str(REPO_ROOT)))
    core = BotProcess(
        "copbot-core",
        copbot.user,
        copbot.room_id,
        [sys.executable, str(script), str(config)],
        copbot.workdir,
        copbot.env,
    )
    copbot.stop()
    seconds = []
    try:
        for _ in range(RESTARTS):
            core.stop()
            await measure_startup(member, core)
            seconds.append(core.startup_seconds)
    finally:
        core.stop()
    print(
        f"matrix_latency: copbot without any plugin answered after each of {RESTARTS} restarts in "
        f"{', '.join(f'{taken:.2f}' for taken in seconds)} s; median {statistics.median(seconds):.2f} s"
    )
    first = (copbot.startup_seconds, copbot.startup_cpu_seconds)
    await measure_startup(member, copbot)
    copbot.startup_seconds, copbot.startup_cpu_seconds = first
    for _ in range(WARMUP_COMMANDS):
        await member.ask(copbot)
    return statistics.median(seconds)


def time_stack_imports(env: dict[str, str], count: int = RESTARTS) -> float:
    """Median wall time of ``count`` processes that only import the agreed stack (``STACK_IMPORTS``)."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", STACK_IMPORTS], env=env, check=True, cwd=REPO_ROOT)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def stop_bots(bots: list[BotProcess], bench: str) -> None:
    """Stop every bot; one that did not end cleanly is said with its log's tail."""
    for bot in bots:
        code = bot.stop()
        if code not in (0, None, -signal.SIGTERM):
            print(f"{bench}: {bot.name} exited with code {code}\n{bot.log_tail()}", file=sys.stderr)


def report(copbot: BotProcess, floor: BotProcess) -> None:
    """Print every figure, the ratios and PASS/FAIL per target."""
    ms = 1000.0
    print()
    print(
        f"{'round':<7}{'p50 ms copbot':>14}{'floor':>8}{'p95 ms copbot':>15}{'floor':>8}"
        f"{'CPU ms/cmd copbot':>19}{'floor':>8}"
    )
    for index in range(ROUNDS):
        (c50, c95, ccpu), (f50, f95, fcpu) = copbot.rounds[index], floor.rounds[index]
        print(
            f"{index + 1:<7}{c50 * ms:>14.1f}{f50 * ms:>8.1f}{c95 * ms:>15.1f}{f95 * ms:>8.1f}"
            f"{ccpu * ms:>19.2f}{fcpu * ms:>8.2f}"
        )
    print()
    header = f"{'':<28}{'copbot':>10}{'floor':>10}{'ratio':>8}"
    print(header)
    rows: list[tuple[str, float, float]] = []
    figures: dict[str, tuple[float, float]] = {}
    for bot in (copbot, floor):
        figures[bot.name] = (
            statistics.median(bot.latencies) * ms,
            percentile(bot.latencies, 0.95) * ms,
        )
    rows.append(("latency p50 (ms)", figures["copbot"][0], figures["floor"][0]))
    rows.append(("latency p95 (ms)", figures["copbot"][1], figures["floor"][1]))
    cpu_per_command = [bot.cpu_seconds / bot.commands * ms for bot in (copbot, floor)]
    rows.append(("CPU per command (ms)", cpu_per_command[0], cpu_per_command[1]))
    main_per_command = [bot.main_thread_cpu_seconds / bot.commands * ms for bot in (copbot, floor)]
    rows.append(("  of it main thread (ms)", main_per_command[0], main_per_command[1]))
    rows.append(
        (
            "  of it other threads (ms)",
            *(a - b for a, b in zip(cpu_per_command, main_per_command, strict=True)),
        )
    )
    rows.append(
        ("log lines per command", copbot.log_lines / copbot.commands, floor.log_lines / floor.commands)
    )
    rows.append(("RSS idle (MB)", copbot.rss_idle_mb, floor.rss_idle_mb))
    rows.append(("RSS after start-up (MB)", copbot.rss_after_start_mb, floor.rss_after_start_mb))
    rows.append(("start-up → first reply (s)", copbot.startup_seconds, floor.startup_seconds))
    rows.append(("restart → first reply (s)", copbot.restart_seconds, floor.restart_seconds))
    rows.append(("  without any plugin (s)", copbot.core_restart_seconds, floor.restart_seconds))
    rows.append(("  agreed stack's imports (s)", copbot.stack_import_seconds, floor.restart_seconds))
    rows.append(("CPU during start-up (s)", copbot.startup_cpu_seconds, floor.startup_cpu_seconds))
    for label, mine, theirs in rows:
        ratio = f"{mine / theirs:>7.2f}×" if theirs > 0 else f"{'—':>8}"
        print(f"{label:<28}{mine:>10.2f}{theirs:>10.2f}{ratio}")

    latency_ratio = rows[0][1] / rows[0][2]
    cpu_ratio = rows[2][1] / rows[2][2]
    restart_ratio = copbot.restart_seconds / floor.restart_seconds
    discord = sorted(m for m in copbot.modules if m == "discord" or m.startswith("discord."))
    rss_ok = copbot.rss_idle_mb <= RSS_TARGET_MB
    results = [
        (
            f"latency p50 ≤ {LATENCY_TARGET:.2f}× floor",
            f"{latency_ratio:.2f}×",
            latency_ratio <= LATENCY_TARGET,
        ),
        (f"CPU per command ≤ {CPU_TARGET:.2f}× floor", f"{cpu_ratio:.2f}×", cpu_ratio <= CPU_TARGET),
        (f"RSS idle ≤ {RSS_TARGET_MB:.0f} MB", f"{copbot.rss_idle_mb:.1f} MB", rss_ok),
        (
            f"start-up, fresh database ≤ {FRESH_START_TARGET_S} s",
            f"{copbot.startup_seconds:.2f} s",
            copbot.startup_seconds <= FRESH_START_TARGET_S,
        ),
        (
            f"restart ≤ {RESTART_TARGET:.2f}× floor (maubot)",
            f"{restart_ratio:.2f}×",
            restart_ratio <= RESTART_TARGET,
        ),
        ("discord not imported", f"{len(discord)} discord modules", not discord),
    ]
    name = "matrix_latency"
    result(
        name,
        "latency p50",
        rows[0][1],
        "ms",
        f"≤ {LATENCY_TARGET:.2f}× floor",
        latency_ratio,
        latency_ratio <= LATENCY_TARGET,
        reference="floor",
    )
    result(
        name,
        "CPU per command",
        rows[2][1],
        "ms",
        f"≤ {CPU_TARGET:.2f}× floor",
        cpu_ratio,
        cpu_ratio <= CPU_TARGET,
        reference="floor",
    )
    result(
        name,
        "RSS idle, Matrix only",
        copbot.rss_idle_mb,
        "MB",
        f"≤ {RSS_TARGET_MB:.0f} MB",
        copbot.rss_idle_mb / floor.rss_idle_mb,
        rss_ok,
        reference="floor",
    )
    result(
        name,
        "start-up, fresh database",
        copbot.startup_seconds,
        "s",
        f"≤ {FRESH_START_TARGET_S} s",
        copbot.startup_seconds / floor.startup_seconds,
        copbot.startup_seconds <= FRESH_START_TARGET_S,
        reference="floor",
    )
    result(
        name,
        "restart, existing database",
        copbot.restart_seconds,
        "s",
        f"≤ {RESTART_TARGET:.2f}× floor",
        restart_ratio,
        restart_ratio <= RESTART_TARGET,
        reference="floor",
    )
    result(
        name,
        "restart without any plugin",
        copbot.core_restart_seconds,
        "s",
        "information: the core's own restart",
        copbot.core_restart_seconds / floor.restart_seconds,
        None,
        reference="floor",
    )
    result(
        name,
        "imports of the agreed stack alone",
        copbot.stack_import_seconds,
        "s",
        "information: the least a restart can take",
        copbot.stack_import_seconds / floor.restart_seconds,
        None,
        reference="floor",
    )
    print()
    for label, value, ok in results:
        print(f"matrix_latency: {label:<34} {value:>20} — {verdict(ok)}")
    unused = [name for name in UNUSED_PARTS if name in copbot.modules]
    print(
        f"copbot process: {len(copbot.modules)} modules imported; parts it does not use after start-up with "
        f"only Matrix and web off, imported anyway: {', '.join(unused) or 'none'}"
    )
    passed = sum(ok for _, _, ok in results)
    print(
        f"matrix_latency: {passed}/{len(results)} targets met "
        f"({ROUNDS} rounds × {COMMANDS} commands per bot, alternating; Synapse on 127.0.0.1)"
    )


def print_profile(path: Path) -> None:
    """The functions copbot's main thread spent its time in during the rounds (profiler overhead included)."""
    import pstats

    print(f"\ncopbot profile (main thread's CPU time, {ROUNDS} rounds; also written to {path}):")
    stats = pstats.Stats(str(path), stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(60)


def compile_copbot() -> None:
    """Byte-compile copbot's own modules as its image does (Dockerfile: ``pip install .`` with
    ``PYTHONNODEBUGRANGES=1``): with line numbers but without the column ranges that only draw ``^^^``
    under tracebacks (~0.5 MB of code objects).

    The floor's nio, like every installed package, has its ``.pyc`` files; a checkout run with
    ``PYTHONDONTWRITEBYTECODE`` (this machine sets it) would compile copbot's ~110 modules from source at
    every start — ~0.3 s measured against the floor's start that is not copbot's, but the checkout's."""
    packages = [str(REPO_ROOT / name) for name in ("bot", "plugins", "migrations")]
    subprocess.run(
        [sys.executable, "-X", "no_debug_ranges", "-m", "compileall", "-q", "-f", *packages],
        check=True,
        stdout=subprocess.DEVNULL,
    )


async def run(workdir: Path) -> None:
    """Synapse → users and rooms → warm-up → both bots started → alternating rounds → idle RSS → report."""
    compile_copbot()
    synapse = bench_synapse(workdir)
    bots: list[BotProcess] = []
    member: Member | None = None
    try:
        await start_synapse(synapse)
        _, member, [(copbot_user, copbot_room), (echo_user, echo_room)] = await accounts(
            synapse, ["copbot", "echo"]
        )
        warmup_started = time.perf_counter()
        await warm_up_synapse(member.client, member)
        print(
            f"matrix_latency: Synapse up, background updates done, warmed up in "
            f"{time.perf_counter() - warmup_started:.1f} s"
        )

        sitecustomize = site_dir(workdir)
        config = copbot_config(workdir, synapse, copbot_user, "#copbot-bench:localhost")
        copbot_env = child_env(workdir, "copbot", sitecustomize)
        if PROFILE:
            copbot_env["COPBOT_BENCH_PROFILE"] = PROFILE
        copbot = BotProcess(
            "copbot",
            copbot_user,
            copbot_room,
            [sys.executable, "-m", "bot", "run", "--config", str(config)],
            workdir,
            copbot_env,
        )
        floor = floor_bot(workdir, synapse, echo_user, echo_room, sitecustomize)
        bots += [floor, copbot]
        for bot in bots:
            await measure_startup(member, bot)
            for _ in range(WARMUP_COMMANDS):
                await member.ask(bot)
            print(
                f"matrix_latency: {bot.name} answered its first command {bot.startup_seconds:.2f} s "
                f"after its process started"
            )

        for index in range(ROUNDS):
            order = (copbot, floor) if index % 2 == 0 else (floor, copbot)
            for bot in order:
                await measure_round(member, bot)
            if (index + 1) % 5 == 0 or index + 1 == ROUNDS:
                print(f"matrix_latency: {index + 1} of {ROUNDS} rounds done")

        # Restarts on the data just written: the usual start of a bot's life, and its idle figure (a
        # fresh database also loads Alembic for the migrations, once, which a restart does not).
        restarts = await alternating_restarts(member, bots, RESTARTS)
        for bot in bots:
            seconds = [taken for taken, _ in restarts[bot.name]]
            bot.restart_seconds = statistics.median(seconds)
            for _ in range(WARMUP_COMMANDS):
                await member.ask(bot)
            print(
                f"matrix_latency: {bot.name} answered again after each of {RESTARTS} restarts in "
                f"{', '.join(f'{taken:.2f}' for taken in seconds)} s; median {bot.restart_seconds:.2f} s"
            )
        copbot.core_restart_seconds = await core_only_restarts(member, copbot, config)
        copbot.stack_import_seconds = await asyncio.to_thread(time_stack_imports, copbot.env)
        print(
            f"matrix_latency: a process importing only the agreed stack took "
            f"{copbot.stack_import_seconds:.2f} s (median of {RESTARTS}); the floor's whole restart "
            f"{floor.restart_seconds:.2f} s, copbot's {copbot.restart_seconds:.2f} s, without any plugin "
            f"{copbot.core_restart_seconds:.2f} s"
        )
        await asyncio.sleep(SETTLE * 2)
        for bot in bots:
            bot.rss_idle_mb = bot.rss()
            bot.modules = await bot.read_modules()
        report(copbot, floor)
        if PROFILE:
            print_profile(Path(PROFILE))
    finally:
        if member is not None:
            await member.stop()
        stop_bots(bots, "matrix_latency")
        await asyncio.to_thread(synapse.stop)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt, so the ``finally`` blocks stop the bots and Synapse."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


async def main() -> None:
    print(
        f"matrix_latency: copbot vs a minimal matrix-nio echo bot, {ROUNDS} alternating rounds of {COMMANDS} "
        f"sequential {COMMAND!r} commands each, on a throwaway Synapse"
    )
    with tempfile.TemporaryDirectory(prefix="copbot-bench-matrix-") as directory:
        async with asyncio.timeout(TOTAL_TIMEOUT):
            await run(Path(directory))


def run_script(name: str, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """A bench run as a script: SIGTERM stops it cleanly (Synapse and the bots too), a measurement that
    failed ends it with its reason and exit code 1, and the time it took is said at the end."""
    started = time.perf_counter()
    try:
        with sigterm_as_interrupt():
            asyncio.run(main())
    except BenchError as error:
        print(f"{name}: ERROR: {error}", file=sys.stderr)
        sys.exit(1)
    except TimeoutError:
        print(f"{name}: ERROR: the run took longer than bench/{name}.py allows", file=sys.stderr)
        sys.exit(1)
    print(f"{name}: finished in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    run_script("matrix_latency", main)
