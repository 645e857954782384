"""Discord's limits are checked when plugins load, naming the offending command."""

from __future__ import annotations

import pytest

from bot.adapters.discord_commands import build_payload, invoked, payload_hash
from bot.commands import SpecError, derive_spec


def spec_of(source: str, name: str, help: str = "h"):  # type: ignore[no-untyped-def]
    namespace: dict[str, object] = {}
    exec(source, {}, namespace)
    return derive_spec(namespace["f"], name=name, help=help)  # type: ignore[arg-type]


def test_too_many_options_names_the_command() -> None:
    params = ", ".join(f"o{n}: int = 0" for n in range(26))
    with pytest.raises(SpecError, match="command 'big' has 26 options; Discord allows 25"):
        build_payload([spec_of(f"async def f(ctx, *, {params}): ...", "big")])


def test_uppercase_option_names_are_refused() -> None:
    with pytest.raises(SpecError, match="command 'x': option 'Bad' must be 1–32 lowercase"):
        build_payload([spec_of("async def f(ctx, Bad: str): ...", "x")])


def test_long_descriptions_are_cut_to_discords_limit_and_groups_nest() -> None:
    specs = [
        spec_of("async def f(ctx, question: str, options: list[str]): ...", "poll create", "x" * 300),
        spec_of("async def f(ctx, id: int): ...", "poll close", "Close"),
    ]
    payload = build_payload(specs)
    assert [c["name"] for c in payload] == ["poll"]
    subs = {o["name"]: o for o in payload[0]["options"]}
    assert set(subs) == {"create", "close"} and all(o["type"] == 1 for o in subs.values())
    assert len(subs["create"]["description"]) == 100
    assert payload_hash(payload) == payload_hash(build_payload(list(reversed(specs))))


def test_interaction_options_map_back_to_the_command() -> None:
    data = {
        "name": "poll",
        "options": [{"type": 1, "name": "close", "options": [{"name": "id", "value": 4}]}],
    }
    assert invoked(data) == ("poll close", {"id": 4})


def test_a_command_that_is_also_a_group_becomes_show() -> None:
    specs = [
        spec_of("async def f(ctx): ...", "profile"),
        spec_of("async def f(ctx, field: str): ...", "profile set"),
    ]
    payload = build_payload(specs)
    assert sorted(o["name"] for o in payload[0]["options"]) == ["set", "show"]
    data = {"name": "profile", "options": [{"type": 1, "name": "show", "options": []}]}
    assert invoked(data, {"profile", "profile set"}) == ("profile", {})
