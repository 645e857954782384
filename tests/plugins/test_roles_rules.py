"""The level rules as pure functions: weights, the window, thresholds, hysteresis, grace, lock, never-core,
transactional, and the explanation members read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from plugins.roles.config import RolesConfig
from plugins.roles.rules import Requirement, Rules, Standing, Stats, decide, in_words, missing

NOW = datetime(2026, 6, 1, 3, 20, tzinfo=UTC)
DAY = timedelta(days=1)
RULES = Rules()


def stats(score: float, contributions: int = 0, days: int = 0, last: datetime | None = NOW) -> Stats:
    return Stats(score=score, contributions=contributions, active_days=days, last_active=last)


def test_promotion_needs_every_requirement_and_goes_straight_to_the_highest_met() -> None:
    peripheral = Standing("peripheral")
    assert decide(peripheral, stats(5, 1, 2), RULES, NOW).level == "occasional"
    assert decide(peripheral, stats(50, 0, 10), RULES, NOW).level == "peripheral"  # no contribution
    assert decide(peripheral, stats(5, 1, 1), RULES, NOW).level == "peripheral"  # one day only
    leap = decide(peripheral, stats(25, 3, 6), RULES, NOW)
    assert (leap.level, leap.rule) == (
        "active",
        "score ≥ 20, ≥ 3 contributions, ≥ 6 active days in 30 days → active",
    )


def test_no_flip_flop_at_the_boundary_and_demotion_only_after_the_grace_period() -> None:
    occasional = Standing("occasional")
    just_below = stats(4, 0, 1)  # below the promotion line, above the keep line
    assert decide(occasional, just_below, RULES, NOW) == decide(occasional, just_below, RULES, NOW)
    kept = decide(occasional, just_below, RULES, NOW)
    assert (kept.level, kept.moved, kept.below_since) == ("occasional", False, None)
    below = stats(1, 0, 1)
    started = decide(occasional, below, RULES, NOW)
    assert (started.level, started.below_since) == ("occasional", NOW)  # the grace period starts
    waiting = decide(Standing("occasional", below_since=NOW), below, RULES, NOW + 13 * DAY)
    assert (waiting.level, waiting.below_since) == ("occasional", NOW)
    recovered = decide(Standing("occasional", below_since=NOW), stats(3.5, 0, 1), RULES, NOW + 5 * DAY)
    assert (recovered.level, recovered.below_since) == ("occasional", None)  # the clock starts again
    demoted = decide(Standing("occasional", below_since=NOW), below, RULES, NOW + 14 * DAY)
    assert (demoted.level, demoted.rule) == (
        "peripheral",
        "below score ≥ 3, ≥ 1 active day for 14 days → peripheral",
    )


def test_one_level_at_a_time_outward() -> None:
    active = Standing("active", below_since=NOW - 20 * DAY)
    assert decide(active, stats(0, 0, 0), RULES, NOW).level == "occasional"


def test_core_and_locked_members_are_never_moved_by_a_rule() -> None:
    assert not decide(Standing("core"), stats(0, last=NOW - 400 * DAY), RULES, NOW).moved
    assert not decide(Standing("peripheral"), stats(100, 10, 20), RULES, NOW).level == "core"
    locked = decide(Standing("peripheral", locked=True), stats(100, 10, 20), RULES, NOW)
    assert (locked.level, locked.moved) == ("peripheral", False)


def test_a_long_silence_is_transactional_and_any_activity_brings_them_back() -> None:
    quiet = decide(Standing("peripheral"), stats(0, last=NOW - 91 * DAY), RULES, NOW)
    assert (quiet.level, quiet.rule) == ("transactional", "no activity in 90 days → transactional")
    never = Standing("peripheral", joined_at=NOW - 100 * DAY)
    assert decide(never, stats(0, last=None), RULES, NOW).level == "transactional"
    assert (
        decide(Standing("peripheral", joined_at=NOW - 10 * DAY), stats(0, last=None), RULES, NOW).level
        == "peripheral"
    )
    back = decide(Standing("transactional"), stats(1, last=NOW - DAY), RULES, NOW)
    assert (back.level, back.rule) == (
        "peripheral",
        "active again since the move to transactional → peripheral",
    )


def test_a_move_to_transactional_holds_until_activity_after_it() -> None:
    moved = Standing("transactional", level_since=NOW - DAY)  # by a moderator, a day ago
    assert not decide(moved, stats(1, last=NOW - 2 * DAY), RULES, NOW).moved  # active only before the move
    assert decide(moved, stats(1, last=NOW - DAY / 2), RULES, NOW).level == "peripheral"


def test_weights_and_requirements_come_from_the_config() -> None:
    strict = Rules(
        weights={"message": 0.5},
        requirements={"occasional": Requirement(score=10, keep_score=2), "active": Requirement(score=100)},
    )
    assert strict.weight("message") == 0.5 and strict.weight("unknown") == 0.0
    assert decide(Standing("peripheral"), stats(9), strict, NOW).level == "peripheral"
    assert decide(Standing("peripheral"), stats(10), strict, NOW).level == "occasional"


def test_what_is_missing_is_said_in_words() -> None:
    assert missing(stats(2, 0, 1), "peripheral", RULES) == (
        "3 more points, 1 more contribution and 1 more active day → occasional"
    )
    assert missing(stats(18, 1, 2), "occasional", RULES) == (
        "2 more points, 2 more contributions and 4 more active days → active"
    )
    assert (
        missing(stats(20, 3, 6), "occasional", RULES)
        == "everything for active — moved there at the next evaluation"
    )
    assert missing(stats(0), "core", RULES) == ""
    # from transactional the next level is peripheral, and any activity after the move reaches it
    assert missing(stats(2, 0, 1), "transactional", RULES) == (
        "any activity here after the move to transactional → peripheral"
    )
    rules = "\n".join(in_words(RULES))
    assert "→ occasional: score ≥ 5, ≥ 1 contribution, ≥ 2 active days" in rules
    assert "core is set by moderators only" in rules


@pytest.mark.parametrize("level", ["occasional", "active"])
@pytest.mark.parametrize(
    ("asks", "keeps"),
    [("score", "keep_score"), ("contributions", "keep_contributions"), ("active_days", "keep_active_days")],
)
def test_a_level_that_keeps_more_than_it_asks_is_refused(level: str, asks: str, keeps: str) -> None:
    """Asking 5 points and keeping 6, a member with 5 came in, fell below after the grace period, and came
    straight back in: a flip every grace period. Only the active level's score was checked."""
    with pytest.raises(ValidationError, match=f"{keeps} must not be above {asks}"):
        RolesConfig.model_validate({level: {"score": 5, asks: 2, keeps: 3}})
    assert RolesConfig.model_validate({level: {"score": 5, asks: 3, keeps: 3}}).rules()  # equal is fine
