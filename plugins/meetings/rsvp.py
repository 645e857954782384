"""Who comes: answers per occurrence over answers for the whole series, and the cap's waiting list. Pure.

With a cap of N, the first N "yes" answers (in the order they were given) are in and the rest wait; when
someone who was in changes their answer, the first one waiting moves up. The list is computed from the
answers every time, never stored, so it cannot drift from them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

ANSWERS = ("yes", "no", "maybe")
EMOJI = {"✅": "yes", "❌": "no", "❔": "maybe", "❓": "maybe", "🤔": "maybe"}
"""Reactions on an announcement that count as an answer (Matrix and the console)."""


@dataclass(frozen=True, slots=True)
class Answer:
    member_id: int
    answer: str
    at: datetime
    for_series: bool = False
    person: int | None = None
    """Whose answer it is: the member's person (linked accounts are one), else the member."""

    @property
    def who(self) -> int:
        return self.person if self.person is not None else self.member_id


@dataclass(frozen=True)
class Roster:
    coming: tuple[int, ...] = ()
    waiting: tuple[int, ...] = ()
    maybe: tuple[int, ...] = ()
    declined: tuple[int, ...] = field(default=())

    @property
    def reminded(self) -> tuple[int, ...]:
        """Who a reminder mentions: those coming and those who said maybe — nobody else."""
        return self.coming + self.maybe

    @property
    def told(self) -> tuple[int, ...]:
        """Who hears that the meeting moved or is cancelled: those reminded, and those waiting for a place
        (they were promised word when one frees up)."""
        return self.reminded + self.waiting

    def counts(self) -> str:
        text = f"✅ {len(self.coming)} · ❔ {len(self.maybe)} · ❌ {len(self.declined)}"
        return text + (f" · ⏳ {len(self.waiting)} waiting" if self.waiting else "")


def effective(answers: Iterable[Answer]) -> dict[int, Answer]:
    """Each person's answer for one occurrence: their answer for it, else their answer for the series; of
    a person's linked accounts' answers, the latest (one person comes, or not, once)."""
    chosen: dict[int, Answer] = {}
    for answer in answers:
        current = chosen.get(answer.who)
        if (
            current is None
            or (current.for_series and not answer.for_series)
            or (current.for_series == answer.for_series and answer.at > current.at)
        ):
            chosen[answer.who] = answer
    return chosen


def roster(answers: Iterable[Answer], cap: int | None) -> Roster:
    chosen = sorted(effective(answers).values(), key=lambda a: (a.at, a.member_id))
    yes = [a.member_id for a in chosen if a.answer == "yes"]
    limit = len(yes) if cap is None else cap
    return Roster(
        coming=tuple(yes[:limit]),
        waiting=tuple(yes[limit:]),
        maybe=tuple(a.member_id for a in chosen if a.answer == "maybe"),
        declined=tuple(a.member_id for a in chosen if a.answer == "no"),
    )


def moved_up(before: Roster, after: Roster) -> list[int]:
    """Members who were waiting and now have a place."""
    return [member for member in after.coming if member in before.waiting]
