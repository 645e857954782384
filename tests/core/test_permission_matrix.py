"""Every moderator-only command, and every creator-or-moderator action, tried by a plain member: refused,
and not one row of any table changed. Generated from the command specs of all bundled plugins, so a new
moderator command is covered the moment it exists — and a new creator-or-moderator command fails this
test until it has a scenario in tests/permission_cases.py (which Matrix and Discord try too, in
tests/e2e/test_permissions_platforms.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.permission_cases import MOD_ONLY, OWNER_ONLY, OWNER_SCENARIOS, PLUGINS, refusal, snapshot

SETTINGS: dict[str, Any] = {
    "communities": [
        {"slug": "cop", "name": "Water CoP", "share_with": ["sister"]},
        {"slug": "sister", "name": "Wastewater CoP"},
    ]
}


def test_every_creator_or_moderator_command_has_a_scenario() -> None:
    assert OWNER_ONLY, "no creator-or-moderator commands found: the spec reading is broken"
    missing = sorted(set(OWNER_ONLY) - set(OWNER_SCENARIOS))
    assert not missing, (
        f"add a scenario to OWNER_SCENARIOS in tests/permission_cases.py for: {', '.join(missing)}"
    )


@pytest.mark.parametrize("name", MOD_ONLY)
async def test_a_plain_member_is_refused_every_moderator_command(console_bot_factory, name: str) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(list(PLUGINS), **SETTINGS)
    spec = next(spec for spec in bot.bot.registry.specs if spec.name == name)
    await bot.say("zed> hello")  # zed exists and is a member before the attempt
    before = await snapshot(bot.bot)
    example = spec.examples[0] if spec.examples else spec.name
    answer = await bot.say(f"zed> !{example}")
    assert answer[1].endswith(refusal("!", name)), answer
    assert await snapshot(bot.bot) == before


@pytest.mark.parametrize("name", sorted(OWNER_SCENARIOS))
async def test_a_plain_member_is_refused_what_only_its_creator_may_do(console_bot_factory, name: str) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(list(PLUGINS), **SETTINGS)
    setup, attempt = OWNER_SCENARIOS[name]
    for line in setup:
        await bot.say(line)
    await bot.say("zed> hello")
    before = await snapshot(bot.bot)
    answer = " ".join(await bot.say(attempt))
    assert "Only" in answer and "nothing was changed" in answer, answer
    assert await snapshot(bot.bot) == before
