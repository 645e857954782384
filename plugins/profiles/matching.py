"""Who should meet whom: pure rules, so they are tested without a database or a chat platform.

A CoP is worth joining for the people one would not otherwise meet, so a match needs something in common
(shared interests or expertise) and values difference (another organisation type or country).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from plugins.profiles.fields import ORG_TYPES, country_name


@dataclass(frozen=True)
class Person:
    member_id: int
    name: str
    org_type: str | None = None
    country: str | None = None
    expertise: frozenset[str] = field(default_factory=frozenset)
    interests: frozenset[str] = field(default_factory=frozenset)
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    """Tag key → the tag as this person wrote it (topics are compared by key, shown as written)."""

    @property
    def topics(self) -> frozenset[str]:
        return self.expertise | self.interests


@dataclass(frozen=True)
class Suggestion:
    person: Person
    score: float
    reason: str


def suggest(
    me: Person,
    others: Iterable[Person],
    *,
    introduced: set[int],
) -> Suggestion | None:
    """The one member to meet among ``others`` (those recently active: the caller's query picks them):
    something in common, something different, not met before."""
    best: Suggestion | None = None
    for other in others:
        if other.member_id == me.member_id or other.member_id in introduced:
            continue
        # their expertise meeting my interests counts most: that is someone to learn from
        learn = me.interests & other.expertise
        teach = me.expertise & other.interests
        shared = (me.interests & other.interests) | (me.expertise & other.expertise)
        common = learn | teach | shared
        if not common:
            continue
        different_org = bool(me.org_type and other.org_type and me.org_type != other.org_type)
        different_country = bool(me.country and other.country and me.country != other.country)
        score = 3 * len(learn) + 2 * len(teach) + len(shared) + 1.5 * different_org + 1.0 * different_country
        if best is None or (score, -other.member_id) > (best.score, -best.person.member_id):
            best = Suggestion(
                other, score, _reason(me, other, learn, teach, shared, different_org, different_country)
            )
    return best


def _reason(
    me: Person,
    other: Person,
    learn: frozenset[str],
    teach: frozenset[str],
    shared: frozenset[str],
    different_org: bool,
    different_country: bool,
) -> str:
    parts = []
    labels = {**me.labels, **other.labels}
    if learn:
        parts.append(f"they know about {_list(learn, labels)}, which interests you")
    if teach:
        parts.append(f"they are interested in {_list(teach, labels)}, where you have expertise")
    if shared - learn - teach:
        parts.append(f"you share {_list(shared - learn - teach, labels)}")
    where = []
    if different_org and other.org_type:
        where.append(f"a {ORG_TYPES.get(other.org_type, other.org_type).lower()} view")
    if different_country and other.country:
        where.append(f"experience from {country_name(other.country)}")
    text = "; ".join(parts)
    if where:
        text += f" — and they bring {' and '.join(where)}"
    return text[0].upper() + text[1:] + "."


def _list(values: Iterable[str], labels: dict[str, str] | None = None) -> str:
    ordered = [(labels or {}).get(value, value) for value in sorted(values)]
    return ordered[0] if len(ordered) == 1 else ", ".join(ordered[:-1]) + " and " + ordered[-1]


def pair_round(
    people: Sequence[int],
    last_round: set[frozenset[int]],
    *,
    rng: random.Random | None = None,
    attempts: int = 50,
) -> list[tuple[int, ...]]:
    """Pair everyone who opted in, never with the same person as in the last round.

    With an odd number, one group of three. Random shuffles are tried until no pair repeats last round's;
    with two people who were paired last time there is no other choice, so nobody is paired.
    """
    rng = rng or random.Random()
    members = list(dict.fromkeys(people))
    if len(members) < 2:
        return []
    for _ in range(attempts):
        rng.shuffle(members)
        groups = [tuple(members[i : i + 2]) for i in range(0, len(members) - len(members) % 2, 2)]
        if len(members) % 2:
            groups[-1] = (*groups[-1], members[-1])
        if not any(frozenset(pair) in last_round for group in groups for pair in _pairs(group)):
            return groups
    return []


def _pairs(group: tuple[int, ...]) -> list[tuple[int, int]]:
    return [(a, b) for index, a in enumerate(group) for b in group[index + 1 :]]


def pairs_of(groups: Iterable[tuple[int, ...]]) -> set[frozenset[int]]:
    return {frozenset(pair) for group in groups for pair in _pairs(group)}
