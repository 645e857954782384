"""The pure rules of introductions: who to suggest and how rounds pair people."""

from __future__ import annotations

import random

from plugins.profiles.matching import Person, pair_round, pairs_of, suggest


def person(
    member_id: int, *, org: str | None = None, country: str | None = None, knows=(), wants=()
) -> Person:  # type: ignore[no-untyped-def]
    return Person(member_id, f"m{member_id}", org, country, frozenset(knows), frozenset(wants))


ME = person(1, org="utility", country="NL", knows={"asset management"}, wants={"leak detection"})


def test_someone_who_knows_what_i_want_to_learn_beats_someone_who_shares_a_hobby() -> None:
    teacher = person(2, org="research", country="DE", knows={"leak detection"})
    peer = person(3, org="utility", country="NL", wants={"leak detection"})
    found = suggest(ME, [peer, teacher], introduced=set())
    assert found is not None and found.person.member_id == 2
    assert found.reason == (
        "They know about leak detection, which interests you — and they bring a research view "
        "and experience from Germany."
    )


def test_difference_breaks_ties_between_equally_relevant_people() -> None:
    same = person(2, org="utility", country="NL", knows={"leak detection"})
    different = person(3, org="regulator", country="BE", knows={"leak detection"})
    assert suggest(ME, [same, different], introduced=set()).person.member_id == 3  # type: ignore[union-attr]


def test_nobody_in_common_already_met_or_myself_is_never_suggested() -> None:
    """(Who is inactive is left out by the query: tests/plugins/test_welcome_profiles.py.)"""
    stranger = person(2, org="ngo", knows={"birdwatching"})
    met = person(4, knows={"leak detection"})
    candidates = [ME, stranger, met]
    assert suggest(ME, candidates, introduced={4}) is None
    assert suggest(ME, candidates, introduced=set()).person.member_id == 4  # type: ignore[union-attr]


def test_rounds_pair_everyone_and_put_the_odd_one_in_a_trio() -> None:
    groups = pair_round([1, 2, 3, 4, 5], set(), rng=random.Random(1))
    assert sorted(len(group) for group in groups) == [2, 3]
    assert sorted(member for group in groups for member in group) == [1, 2, 3, 4, 5]


def test_never_the_same_pair_twice_in_a_row() -> None:
    rng = random.Random(7)
    previous: set[frozenset[int]] = set()
    for _ in range(30):
        groups = pair_round([1, 2, 3, 4, 5, 6], previous, rng=rng)
        assert groups, "six people always have a pairing that avoids last round's three pairs"
        current = pairs_of(groups)
        assert not current & previous
        previous = current


def test_two_people_who_just_met_are_not_paired_again() -> None:
    assert pair_round([1, 2], {frozenset({1, 2})}) == []
    assert pair_round([1], set()) == []
