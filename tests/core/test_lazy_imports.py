"""What a running bot needs only sometimes is imported only then (memory: each library stays for the life of
the process). Checked in a fresh interpreter that imports what ``copbot run`` imports for a Matrix-only
configuration with the web part off: the core, every bundled plugin and the Matrix adapter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

LAZY = {
    "prometheus_client": "only /metrics renders the metrics (bot/metrics.py)",
    "pydantic_settings": "the environment is read by bot/config_env.py",
    "dateutil": "only a recurrence rule needs it (plugins/meetings/recurrence.py)",
    "alembic": "migrations run in a child process, only when the database is behind",
    "jinja2": "the web part and the dashboard's pages load it",
    "dateparser": "only free-text times need it (bot/timeparse.py)",
    "discord": "only a [discord] configuration loads discord.py",
    "difflib": "only a did-you-mean needs it",
    "html": "bot/escaping.py escapes without the entity table",
    "nio": "copbot speaks Matrix itself (bot/adapters/matrix_client.py); nio is the tests' client",
}

_PERSONAL_DATA = "only exporting or forgetting a member's data needs it"
LAZY_MODULES = {
    "bot.adapters.console": "only a configuration with the console chat starts it (bot/app.py)",
    "bot.privacy": "only profile export / forget and the experts' answer need it",
    "plugins.dashboard.figures": "only the dashboard's pages compute them",
    "plugins.dashboard.drawing": "only a community's dashboard page draws",
    "plugins.digest.figures": "only a digest being built and the stats command count them",
    "plugins.digest.render": "only a digest being built or shown renders",
    **{
        f"plugins.{name}.privacy": _PERSONAL_DATA
        for name in ("digest", "meetings", "polls", "profiles", "repertoire", "roles", "value")
    },
}
"""copbot's own modules that a command or a configuration loads when it first needs them."""

_PROGRAM = """
import json, sys
import bot.cli, bot.app, bot.adapters.matrix
from bot.registry import discover_plugins
discover_plugins()
print(json.dumps(sorted(sys.modules)))
"""


def test_the_run_path_leaves_out_what_only_some_configurations_or_commands_use() -> None:
    found = subprocess.run(
        [sys.executable, "-c", _PROGRAM], cwd=REPO, capture_output=True, text=True, check=True
    )
    modules = set(json.loads(found.stdout))
    loaded = {name.split(".")[0] for name in modules}
    unexpected = {name: why for name, why in LAZY.items() if name in loaded}
    unexpected |= {name: why for name, why in LAZY_MODULES.items() if name in modules}
    assert unexpected == {}, f"imported at start-up although {unexpected}"
