"""Figures the tests measure (kills survived, commands refused, takeover time…), shown at the end of every
run in a "figures measured" section — not only with ``-s`` or when a test fails."""

from __future__ import annotations

FIGURES: list[str] = []


def report(text: str) -> None:
    FIGURES.append(text.strip())
    print(text)
