"""What the permission matrix tries on every platform (console, Matrix, Discord): the moderator-only commands
and the creator-or-moderator actions, read from the command specs of all bundled plugins, and a snapshot
of every table to show that a refused attempt wrote nothing.

A new moderator command is covered everywhere the moment it exists; a new creator-or-moderator command
fails the tests until it has a scenario in :data:`OWNER_SCENARIOS` — and then is tried on all three.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import MetaData, select

from bot.app import CopBot
from bot.commands import CommandSpec
from bot.registry import declared_specs, discover_plugins

PLUGINS = tuple(cls for name, cls in discover_plugins().items() if name != "core")
IGNORED = {"handled_events"}  # which platform events were seen: bookkeeping, not an effect

# command → what ana (its creator, a plain member) does first, then what zed (another plain member) tries.
# Times are relative ("8d": eight days from now) so that they are in the future on every clock.
OWNER_SCENARIOS: dict[str, tuple[list[str], str]] = {
    "poll close": (['ana> !poll create "Lunch?" Yes No'], "zed> !poll close 1"),
    "meeting move": (['ana> !meeting schedule "Call" 8d'], "zed> !meeting move 1 9d"),
    "meeting cancel": (['ana> !meeting schedule "Call" 8d'], "zed> !meeting cancel 1"),
    "repertoire edit": (['ana> !share tool "Map" https://example.org'], "zed> !repertoire edit 1 hijacked"),
    "repertoire remove": (['ana> !share tool "Map" https://example.org'], "zed> !repertoire remove 1"),
    "repertoire share": (['ana> !share tool "Map" https://example.org'], "zed> !repertoire share 1 sister"),
}


def specs() -> list[CommandSpec]:
    return declared_specs(discover_plugins().values())


MOD_ONLY = sorted(spec.name for spec in specs() if spec.mod_only)
OWNER_ONLY = sorted(spec.name for spec in specs() if spec.owner_only)


def spec_named(name: str) -> CommandSpec:
    return next(spec for spec in specs() if spec.name == name)


def refusal(prefix: str, name: str) -> str:
    """What a plain member is told for a moderator-only command (bot/pipeline.py)."""
    return f"{prefix}{name} is for moderators only; nothing was changed."


def is_owner_refusal(text: str) -> bool:
    """What a plain member is told for another's poll, meeting or item: "Only …; nothing was changed."."""
    return text.startswith("Only ") and text.endswith("; nothing was changed.")


def split_line(line: str) -> tuple[str, str]:
    """``"zed> !poll close 1"`` → ``("zed", "!poll close 1")``."""
    who, _, text = line.partition("> ")
    return who, text


Row = tuple[Any, ...]
Snapshot = dict[str, list[Row]]


async def snapshot(bot: CopBot, *, bookkeeping: Callable[[str, Row], bool] | None = None) -> Snapshot:
    """Every row of every table (but the seen-events bookkeeping, and rows ``bookkeeping`` names), in a
    stable order; the journal is flushed first, so buffered activity counts too."""
    await bot.pipeline.journal.flush()
    metadata = MetaData()
    async with bot.services.db.engine.connect() as connection:
        await connection.run_sync(metadata.reflect)
        found = {}
        for name, table in sorted(metadata.tables.items()):
            if name in IGNORED or name.startswith(("profiles_fts", "repertoire_fts")):
                continue
            rows = (await connection.execute(select(table))).all()
            kept = (tuple(row) for row in rows)
            if bookkeeping is not None:
                kept = (row for row in kept if not bookkeeping(name, row))
            found[name] = sorted(kept, key=repr)
    return found


def rows_changed(before: Snapshot, after: Snapshot) -> int:
    """How many rows were added, removed or changed (a changed row counts twice: old and new)."""
    changed = 0
    for name in set(before) | set(after):
        old, new = before.get(name, []), after.get(name, [])
        changed += sum(1 for row in old if row not in new) + sum(1 for row in new if row not in old)
    return changed
