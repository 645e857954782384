"""The participation-level rules, pure: from a member's recent activity to their level, explainably.

The CoP "bulb", from the centre out: core · active · occasional · peripheral · transactional. Activity over
a rolling window is weighted by kind (a repertoire item counts more than a message) into a score; each
automatic level asks for a score, a number of contributions and a number of active days. Moves are
Discourse-style with hysteresis, so nobody flips back and forth at a boundary:

* **up** as soon as every requirement of a higher level is met;
* **down** only when the member has been below that level's (lower) *keep* thresholds for a whole grace
  period — one level at a time;
* **transactional** after a long silence (only from peripheral), and back to peripheral on any activity
  after that move — so a moderator who moves someone out is not undone by what they did before it;
* **core** is never reached or left automatically, and a locked member is never moved by a rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import NamedTuple

from bot.activity import CONTRIBUTION_KINDS

LEVELS = ("core", "active", "occasional", "peripheral", "transactional")  # from the centre out
AUTOMATIC = ("active", "occasional", "peripheral")  # the levels rules move between (transactional apart)
DEFAULT_WEIGHTS: dict[str, float] = {
    "message": 1.0,
    "reaction": 0.2,
    "poll_vote": 0.5,
    "rsvp": 1.0,
    "attendance": 3.0,
    "repertoire_item": 5.0,
    "message_saved": 3.0,
    "upvote_received": 1.0,
    "newcomer_answered": 2.0,
    "meeting_notes": 2.0,
    "repertoire_used": 1.0,
    "command": 0.0,
}
CONTRIBUTIONS = CONTRIBUTION_KINDS  # shared with the digest and the dashboard


@dataclass(frozen=True)
class Requirement:
    """What a level asks over the window: to move up (``score``…) and, lower, to stay (``keep_…``)."""

    score: float
    contributions: int = 0
    active_days: int = 0
    keep_score: float = 0.0
    keep_contributions: int = 0
    keep_active_days: int = 0

    def met(self, stats: Stats) -> bool:
        return (
            stats.score >= self.score
            and stats.contributions >= self.contributions
            and stats.active_days >= self.active_days
        )

    def kept(self, stats: Stats) -> bool:
        return (
            stats.score >= self.keep_score
            and stats.contributions >= self.keep_contributions
            and stats.active_days >= self.keep_active_days
        )


DEFAULT_REQUIREMENTS: dict[str, Requirement] = {
    "occasional": Requirement(score=5, contributions=1, active_days=2, keep_score=3, keep_active_days=1),
    "active": Requirement(
        score=20, contributions=3, active_days=6, keep_score=12, keep_contributions=1, keep_active_days=4
    ),
}


@dataclass(frozen=True)
class Rules:
    window: timedelta = timedelta(days=30)
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    requirements: Mapping[str, Requirement] = field(default_factory=lambda: dict(DEFAULT_REQUIREMENTS))
    grace: timedelta = timedelta(days=14)
    transactional_after: timedelta = timedelta(days=90)
    timezone: str = "UTC"  # the community's: an active day is a day there, not a UTC day

    def weight(self, kind: str) -> float:
        return self.weights.get(kind, 0.0)


# Stats, Standing and Decision are NamedTuples, not frozen dataclasses: the nightly evaluation makes one of
# each per member (100,000 in bench/levels.py), and a frozen dataclass's __init__ sets each field through
# object.__setattr__ — ~1.2 µs a record against ~0.3 µs for a tuple, as immutable.


class Stats(NamedTuple):
    """A member's activity over the window (and when they last did anything at all)."""

    score: float = 0.0
    contributions: int = 0
    active_days: int = 0
    last_active: datetime | None = None
    by_kind: Mapping[str, float] = MappingProxyType({})  # score per kind, for `role show`


class Standing(NamedTuple):
    """What the rules remember about a member besides the level: since when they are below it, and
    whether a moderator locked them."""

    level: str
    locked: bool = False
    below_since: datetime | None = None
    joined_at: datetime | None = None
    level_since: datetime | None = None  # when they came to this level (by a rule or a moderator)


class Decision(NamedTuple):
    level: str  # the level after this evaluation (may be unchanged)
    below_since: datetime | None  # the member's new "below their level since", for the grace period
    rule: str = ""  # which rule moved them, in words; "" when nothing changed

    @property
    def moved(self) -> bool:
        return bool(self.rule)


def _active_since(last: datetime | None, since: datetime | None, rules: Rules, now: datetime) -> bool:
    """Whether a transactional member did anything after they were moved there. Without the moment of the
    move (rows older than it), anything within the silence that moves people out counts."""
    if last is None:
        return False
    return last > since if since is not None else now - last < rules.transactional_after


def decide(standing: Standing, stats: Stats, rules: Rules, now: datetime) -> Decision:
    """The member's level after looking at their activity now. Idempotent: deciding again at the same
    moment with the same numbers gives the same level (and no second move)."""
    level = standing.level
    if standing.locked or level == "core":
        return Decision(level, None)
    quiet_since = stats.last_active or standing.joined_at
    if level == "transactional":
        if _active_since(stats.last_active, standing.level_since, rules, now):
            return Decision("peripheral", None, "active again since the move to transactional → peripheral")
        return Decision(level, None)
    target = _highest_met(stats, rules)
    if LEVELS.index(target) < LEVELS.index(level):  # inward: at once
        requirement = rules.requirements[target]
        return Decision(target, None, f"{_describe(requirement)} in {rules.window.days} days → {target}")
    if level in rules.requirements and not rules.requirements[level].kept(stats):
        below_since = standing.below_since or now
        if now - below_since >= rules.grace:
            lower = LEVELS[LEVELS.index(level) + 1]
            requirement = rules.requirements[level]
            return Decision(
                lower,
                None,
                f"below {_describe_keep(requirement)} for {rules.grace.days} days → {lower}",
            )
        return Decision(level, below_since)
    if level == "peripheral" and quiet_since is not None and now - quiet_since >= rules.transactional_after:
        return Decision(
            "transactional", None, f"no activity in {rules.transactional_after.days} days → transactional"
        )
    return Decision(level, None)


def _highest_met(stats: Stats, rules: Rules) -> str:
    for level in ("active", "occasional"):
        requirement = rules.requirements.get(level)
        if requirement is not None and requirement.met(stats):
            return level
    return "peripheral"


def missing(stats: Stats, level: str, rules: Rules) -> str:
    """What a member lacks for the next level inward, in words: "2 more contributions and 4 more active
    days → active"; "" when there is no automatic level above theirs."""
    if level in ("core", "active"):
        return ""
    if level == "transactional":  # the way back is any activity, not occasional's thresholds (see decide)
        return "any activity here after the move to transactional → peripheral"
    following = "occasional" if level == "peripheral" else "active"
    requirement = rules.requirements.get(following)
    if requirement is None:
        return ""
    gaps: list[str] = []
    if stats.score < requirement.score:
        gaps.append(f"{_number(requirement.score - stats.score)} more points")
    if stats.contributions < requirement.contributions:
        count = requirement.contributions - stats.contributions
        gaps.append(f"{count} more contribution{'s' if count != 1 else ''}")
    if stats.active_days < requirement.active_days:
        count = requirement.active_days - stats.active_days
        gaps.append(f"{count} more active day{'s' if count != 1 else ''}")
    if not gaps:
        return f"everything for {following} — moved there at the next evaluation"
    return (", ".join(gaps[:-1]) + " and " + gaps[-1] if len(gaps) > 1 else gaps[0]) + f" → {following}"


def in_words(rules: Rules) -> list[str]:
    """The rules as a coordinator reads them (``role rules``)."""
    weights = ", ".join(
        f"{kind.replace('_', ' ')} {_number(weight)}" for kind, weight in rules.weights.items() if weight
    )
    lines = [f"Activity over the last {rules.window.days} days counts, weighted: {weights}."]
    for level in ("occasional", "active"):
        requirement = rules.requirements.get(level)
        if requirement is None:
            continue
        lines.append(
            f"→ {level}: {_describe(requirement)}; kept while {_describe_keep(requirement)}, "
            f"with {rules.grace.days} days' grace before moving down one level."
        )
    lines.append(
        "→ transactional: peripheral members with no activity here for "
        f"{rules.transactional_after.days} days; back to peripheral on any activity here after the move "
        "(a moderator's move too)."
    )
    lines.append("core is set by moderators only; a locked member is never moved by these rules.")
    return lines


def _describe(requirement: Requirement) -> str:
    return _criteria(requirement.score, requirement.contributions, requirement.active_days)


def _describe_keep(requirement: Requirement) -> str:
    return _criteria(requirement.keep_score, requirement.keep_contributions, requirement.keep_active_days)


def _criteria(score: float, contributions: int, active_days: int) -> str:
    parts = [f"score ≥ {_number(score)}"]
    if contributions:
        parts.append(f"≥ {contributions} contribution{'s' if contributions != 1 else ''}")
    if active_days:
        parts.append(f"≥ {active_days} active day{'s' if active_days != 1 else ''}")
    return ", ".join(parts)


def _number(value: float) -> str:
    return f"{value:g}"
