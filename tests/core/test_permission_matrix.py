"""Every moderator-only command, and every creator-or-moderator action, tried by a plain member: refused,
and not one row of any table changed. Generated from the command specs of all bundled plugins, so a new
moderator command is covered the moment it exists — and a new creator-or-moderator command fails this
test until it has a scenario below."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import MetaData, select

from bot.registry import declared_specs, discover_plugins

PLUGINS = [cls for name, cls in discover_plugins().items() if name != "core"]
IGNORED = {"handled_events"}  # which platform events were seen: bookkeeping, not an effect
SETTINGS: dict[str, Any] = {
    "communities": [
        {"slug": "cop", "name": "Water CoP", "share_with": ["sister"]},
        {"slug": "sister", "name": "Wastewater CoP"},
    ]
}

# command → what ana (its creator) does first, then what zed (a plain member) tries
OWNER_SCENARIOS: dict[str, tuple[list[str], str]] = {
    "poll close": (['ana> !poll create "Lunch?" Yes No'], "zed> !poll close 1"),
    "meeting move": (
        ['ana> !meeting schedule "Call" 2026-03-10 15:00'],
        "zed> !meeting move 1 2026-03-11 15:00",
    ),
    "meeting cancel": (['ana> !meeting schedule "Call" 2026-03-10 15:00'], "zed> !meeting cancel 1"),
    "repertoire edit": (['ana> !share tool "Map" https://example.org'], "zed> !repertoire edit 1 hijacked"),
    "repertoire remove": (['ana> !share tool "Map" https://example.org'], "zed> !repertoire remove 1"),
    "repertoire share": (['ana> !share tool "Map" https://example.org'], "zed> !repertoire share 1 sister"),
}


async def snapshot(bot) -> dict[str, list[tuple[Any, ...]]]:  # type: ignore[no-untyped-def]
    """Every row of every table (but the seen-events bookkeeping), in a stable order."""
    await bot.bot.pipeline.journal.flush()
    metadata = MetaData()
    async with bot.services.db.engine.connect() as connection:
        await connection.run_sync(metadata.reflect)
        found = {}
        for name, table in sorted(metadata.tables.items()):
            if name in IGNORED or name.startswith(("profiles_fts", "repertoire_fts")):
                continue
            rows = (await connection.execute(select(table))).all()
            found[name] = sorted((tuple(row) for row in rows), key=repr)
    return found


def specs() -> list[Any]:
    return declared_specs(discover_plugins().values())


MOD_ONLY = sorted(spec.name for spec in specs() if spec.mod_only)
OWNER_ONLY = sorted(spec.name for spec in specs() if spec.owner_only)


def test_every_creator_or_moderator_command_has_a_scenario() -> None:
    assert OWNER_ONLY, "no creator-or-moderator commands found: the spec reading is broken"
    missing = sorted(set(OWNER_ONLY) - set(OWNER_SCENARIOS))
    assert not missing, f"add a scenario to OWNER_SCENARIOS for: {', '.join(missing)}"


@pytest.mark.parametrize("name", MOD_ONLY)
async def test_a_plain_member_is_refused_every_moderator_command(console_bot_factory, name: str) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, **SETTINGS)
    spec = next(spec for spec in bot.bot.registry.specs if spec.name == name)
    await bot.say("zed> hello")  # zed exists and is a member before the attempt
    before = await snapshot(bot)
    example = spec.examples[0] if spec.examples else spec.name
    answer = await bot.say(f"zed> !{example}")
    assert answer[1].endswith(f"!{name} is for moderators only; nothing was changed."), answer
    assert await snapshot(bot) == before


@pytest.mark.parametrize("name", sorted(OWNER_SCENARIOS))
async def test_a_plain_member_is_refused_what_only_its_creator_may_do(console_bot_factory, name: str) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, **SETTINGS)
    setup, attempt = OWNER_SCENARIOS[name]
    for line in setup:
        await bot.say(line)
    await bot.say("zed> hello")
    before = await snapshot(bot)
    answer = " ".join(await bot.say(attempt))
    assert "Only" in answer and "nothing was changed" in answer, answer
    assert await snapshot(bot) == before
