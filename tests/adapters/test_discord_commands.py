"""Discord's limits are checked when plugins load, naming the offending command."""

from __future__ import annotations

import pytest

from bot.adapters.discord_commands import build_payload, focused, invoked, payload_hash, zone_suggestions
from bot.commands import Kind, SpecError, Zone, derive_spec
from bot.zones import complete_zones


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


def test_only_a_time_zone_being_typed_gets_suggestions() -> None:
    async def schedule(ctx: object, title: str, *, tz: Zone | None = None, cap: int | None = None) -> None:
        """h"""

    spec = derive_spec(schedule, name="meeting schedule", help="h")
    specs = {spec.name: spec}

    def typing(option: str, value: object) -> dict[str, object]:
        given = [
            {"name": "title", "type": 3, "value": "Sync"},
            {"name": option, "value": value, "focused": True},
        ]
        return {"name": "meeting", "options": [{"type": 1, "name": "schedule", "options": given}]}

    def offered(data: dict[str, object]) -> list[tuple[str, object]] | None:
        typing = focused(specs, data)
        if typing is None:
            return None
        assert typing[1].kind is Kind.ZONE
        return [(choice.label, choice.value) for choice in zone_suggestions(typing[2])]

    assert offered(typing("tz", "europe/ams")) == [("Europe/Amsterdam", "Europe/Amsterdam")]
    assert offered(typing("tz", "CEST"))[0] == ("CET", "CET")  # type: ignore[index]
    assert offered(typing("cap", "1")) is None  # not completed: Discord shows what is typed
    assert offered(typing("tz", "x" * 5000)) == []  # read as its first 100 characters: no zone
    assert offered({"name": "meeting"}) is None  # nothing focused
    assert focused({}, typing("tz", "europe")) is None  # a command copbot no longer has
    tz = next(
        option for option in build_payload([spec])[0]["options"][0]["options"] if option["name"] == "tz"
    )
    assert tz["autocomplete"] is True


def test_a_zone_is_completed_by_its_start_then_a_city_then_anywhere_in_the_name() -> None:
    assert complete_zones("europe/am") == ["Europe/Amsterdam"]
    assert complete_zones("amst") == ["Europe/Amsterdam"]  # a city's start
    assert complete_zones("york") == ["America/New_York"]  # inside a name
    assert complete_zones("  los ang ") == ["America/Los_Angeles"]  # spaces as typed
    assert complete_zones("utc")[0] == "UTC"
    eur = complete_zones("eur")
    assert len(eur) == 25 and all(name.startswith("Europe/") for name in eur) and eur == sorted(eur)
    assert complete_zones("mars") == []
    assert complete_zones("")[0] == "UTC" and len(complete_zones("")) == 25
    assert complete_zones("", limit=3) == ["UTC", "Europe/London", "Europe/Lisbon"]
