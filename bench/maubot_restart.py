"""maubot 0.6's restart → first reply beside the floor of bench/matrix_latency.py, on one Synapse, one run.

Not part of ``make bench``: it needs maubot in its own virtual environment (``MAUBOT_PYTHON``, default
``/tmp/maubot-venv/bin/python``; ``python3.11 -m venv /tmp/maubot-venv && /tmp/maubot-venv/bin/pip install
'maubot>=0.6,<0.7'``). It measures the figure copbot's restart target is defined against: maubot's process
start → first reply on its existing database, the same way ``matrix_latency`` measures the floor and copbot
(``measure_startup``: ``!about`` probes every ``STARTUP_PROBE_INTERVAL``, the median of ``RESTARTS``
alternating restarts, or ``BENCH_MAUBOT_RESTARTS``), as a ratio to the floor's restart measured in the
same run.

maubot is set up once, as an admin would: a config (SQLite in the temp dir, the management server on a free
loopback port, the example config's defaults otherwise, logging included), a client for a Matrix account
registered on the throwaway Synapse (added through the management API with the access token and device id
that registration opened; sync on, autojoin off, displayname and avatar left alone), and one instance of a
minimal echo plugin written here (answers every text message with its body, as a reply, like the floor).
Then maubot is restarted once unmeasured-for-the-figure (its first start on the configured database) and
warmed up, and the restarts alternate with the floor's.

Run: ``.venv/bin/python bench/maubot_restart.py``.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import secrets
import socket
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))


from bench.matrix_latency import (  # noqa: E402
    RESTARTS,
    STARTUP_PROBE_INTERVAL,
    WARMUP_COMMANDS,
    BenchError,
    BotProcess,
    Member,
    accounts,
    alternating_restarts,
    bench_synapse,
    child_env,
    floor_bot,
    measure_startup,
    run_script,
    site_dir,
    start_synapse,
    stop_bots,
    warm_up_synapse,
)

MAUBOT_PYTHON = Path(os.environ.get("MAUBOT_PYTHON", "/tmp/maubot-venv/bin/python"))
PLUGIN_ID = "bench.echo"
INSTANCE_ID = "echo"
API_TIMEOUT = 60.0
TOTAL_TIMEOUT = 900.0
RESTART_COUNT = max(1, int(os.environ.get("BENCH_MAUBOT_RESTARTS", str(RESTARTS))))
"""Alternating restarts per bot (default matrix_latency's ``RESTARTS``); more for a steadier median."""

PLUGIN_META = f"""maubot: 0.1.0
id: {PLUGIN_ID}
version: 1.0.0
license: MIT
modules:
- benchecho
main_class: EchoPlugin
"""

# The maubot counterpart of the floor's on_message: every text message from someone else is answered with
# its body, as a reply (plain text, no markdown rendering, as the floor sends).
PLUGIN_MODULE = """
from maubot import MessageEvent, Plugin
from maubot.handlers import event
from mautrix.types import EventType, MessageType


class EchoPlugin(Plugin):
    @event.on(EventType.ROOM_MESSAGE)
    async def on_message(self, evt: MessageEvent) -> None:
        if evt.sender == self.client.mxid or evt.content.msgtype != MessageType.TEXT:
            return
        await evt.reply(evt.content.body, markdown=False)
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def plugin_archive() -> bytes:
    """The echo plugin as a .mbp (a zip of maubot.yaml and the module)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("maubot.yaml", PLUGIN_META)
        archive.writestr("benchecho.py", PLUGIN_MODULE)
    return buffer.getvalue()


def maubot_config(directory: Path, port: int, secret: str) -> Path:
    """The example config's settings (maubot fills in what is not given from it), with paths in the temp dir.

    JSON is valid YAML; maubot rewrites the file as YAML at each start (its default, ``--no-update`` off).
    """
    for name in ("plugins", "trash", "plugin-dbs"):
        (directory / name).mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "database": f"sqlite:{directory / 'maubot.db'}",
        "crypto_database": "default",
        "plugin_directories": {
            "upload": str(directory / "plugins"),
            "load": [str(directory / "plugins")],
            "trash": str(directory / "trash"),
        },
        "plugin_databases": {"sqlite": str(directory / "plugin-dbs"), "postgres": None},
        "server": {
            "hostname": "127.0.0.1",
            "port": port,
            "public_url": f"http://127.0.0.1:{port}",
            "unshared_secret": secret,
        },
        "homeservers": {},
        "admins": {"root": ""},
        "logging": {
            "version": 1,
            "formatters": {
                "colored": {
                    "()": "maubot.lib.color_log.ColorFormatter",
                    "format": "[%(asctime)s] [%(levelname)s@%(name)s] %(message)s",
                },
                "normal": {"format": "[%(asctime)s] [%(levelname)s@%(name)s] %(message)s"},
            },
            "handlers": {
                "file": {
                    "class": "logging.handlers.RotatingFileHandler",
                    "formatter": "normal",
                    "filename": str(directory / "maubot-own.log"),
                    "maxBytes": 10485760,
                    "backupCount": 10,
                },
                "console": {"class": "logging.StreamHandler", "formatter": "colored"},
            },
            "loggers": {
                "maubot": {"level": "DEBUG"},
                "mau": {"level": "DEBUG"},
                "aiohttp": {"level": "INFO"},
            },
            "root": {"level": "DEBUG", "handlers": ["file", "console"]},
        },
    }
    path = directory / "config.yaml"
    path.write_text(json.dumps(config, indent=2))
    return path


def api(port: int, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    """One management API call; raw bytes are sent as they are, anything else as JSON."""
    data = body if isinstance(body, bytes) else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/_matrix/maubot/v1{path}", data=data, method=method
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        ctype = "application/zip" if isinstance(body, bytes) else "application/json"
        request.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raise BenchError(f"maubot API {method} {path}: {error.code} {error.read()[:500]!r}") from error


def api_login(port: int, secret: str, bot: BotProcess) -> str:
    """Wait for the management server, then log in with the shared secret (as root)."""
    deadline = time.monotonic() + API_TIMEOUT
    while True:
        bot.check_alive()
        try:
            return str(api(port, "POST", "/auth/login", {"secret": secret})["token"])
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise BenchError(f"maubot's management API never came up\n{bot.log_tail()}") from None
            time.sleep(0.1)


def setup_maubot(port: int, secret: str, bot: BotProcess, homeserver: str) -> None:
    """Client, plugin and instance, through the management API of the running maubot."""
    token = api_login(port, secret, bot)
    user = bot.user
    client = api(
        port,
        "PUT",
        f"/client/{user.user_id}",
        {
            "homeserver": homeserver,
            "access_token": user.access_token,
            "device_id": user.device_id,
            "enabled": True,
            "started": True,
            "sync": True,
            "autojoin": False,
            "online": True,
        },
        token,
    )
    print(f"maubot_restart: client {client.get('id')} added")
    plugin = api(port, "POST", "/plugins/upload", plugin_archive(), token)
    print(f"maubot_restart: plugin {plugin.get('id')} v{plugin.get('version')} uploaded")
    instance = api(
        port,
        "PUT",
        f"/instance/{INSTANCE_ID}",
        {"primary_user": user.user_id, "type": PLUGIN_ID, "enabled": True, "started": True},
        token,
    )
    print(f"maubot_restart: instance {instance.get('id')} started={instance.get('started')}")


async def run(workdir: Path) -> None:
    if not MAUBOT_PYTHON.exists():  # noqa: ASYNC240 - one stat, before anything starts
        raise BenchError(f"no maubot interpreter at {MAUBOT_PYTHON} (set MAUBOT_PYTHON)")
    synapse = bench_synapse(workdir)
    bots: list[BotProcess] = []
    member: Member | None = None
    try:
        await start_synapse(synapse)
        _, member, [(maubot_user, maubot_room), (echo_user, echo_room)] = await accounts(
            synapse, ["maubot", "echo"]
        )
        await warm_up_synapse(member.client, member)

        sitecustomize = site_dir(workdir)
        port, secret = _free_port(), secrets.token_hex(16)
        config = maubot_config(workdir / "maubot", port, secret)
        maubot = BotProcess(
            "maubot",
            maubot_user,
            maubot_room,
            [str(MAUBOT_PYTHON), "-m", "maubot", "-c", str(config)],
            workdir / "maubot",
            child_env(workdir, "maubot", sitecustomize),
        )
        floor = floor_bot(workdir, synapse, echo_user, echo_room, sitecustomize)
        bots += [floor, maubot]

        # Set-up: maubot's first start (database created), client + plugin + instance through its API.
        maubot.start()
        await asyncio.to_thread(setup_maubot, port, secret, maubot, synapse.base_url)
        maubot.stop()
        # First starts on the configured data, then warm-up commands (not part of the figure).
        for bot in bots:
            await measure_startup(member, bot)
            for _ in range(WARMUP_COMMANDS):
                await member.ask(bot)
            print(f"maubot_restart: {bot.name} first start → first reply {bot.startup_seconds:.2f} s")

        measured = await alternating_restarts(member, bots, RESTART_COUNT)
        restarts = {name: [taken for taken, _ in pairs] for name, pairs in measured.items()}
        cpu = {name: [used for _, used in pairs] for name, pairs in measured.items()}

        print()
        print(f"restart → first reply, {STARTUP_PROBE_INTERVAL * 1000:.0f} ms probes, alternating:")
        for bot in bots:
            figures = ", ".join(f"{seconds:.2f}" for seconds in restarts[bot.name])
            cpus = ", ".join(f"{seconds:.2f}" for seconds in cpu[bot.name])
            print(
                f"  {bot.name:<7} {figures} s; median {statistics.median(restarts[bot.name]):.3f} s "
                f"(CPU at first reply: {cpus} s; RSS {bot.rss_after_start_mb:.1f} MB)"
            )
        ratio = statistics.median(restarts["maubot"]) / statistics.median(restarts["floor"])
        cpu_ratio = statistics.median(cpu["maubot"]) / statistics.median(cpu["floor"])
        print(f"maubot_restart: maubot / floor CPU at first reply, median ratio = {cpu_ratio:.2f}×")
        print(f"maubot_restart: maubot / floor restart median ratio = {ratio:.2f}×")
    finally:
        if member is not None:
            await member.stop()
        stop_bots(bots, "maubot_restart")
        await asyncio.to_thread(synapse.stop)


async def main() -> None:
    keep = os.environ.get("BENCH_KEEP_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before anything starts
        async with asyncio.timeout(TOTAL_TIMEOUT):
            await run(Path(tempfile.mkdtemp(prefix="maubot-restart-", dir=keep)))
        return
    with tempfile.TemporaryDirectory(prefix="copbot-bench-maubot-") as directory:
        async with asyncio.timeout(TOTAL_TIMEOUT):
            await run(Path(directory))


if __name__ == "__main__":
    run_script("maubot_restart", main)
