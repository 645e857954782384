"""The value-creation framework, and every indicator copbot shows for it — defined here, in one place.

Wenger, Trayner & de Laat (2011, *Promoting and assessing value creation in communities and networks*)
describe the value a community creates in cycles, each building on the one before:

1. **immediate value** — the activities and interactions are worth something in themselves (a good
   conversation, help with a problem, the fun of taking part);
2. **potential value** — knowledge capital that may pay off later: ideas, contacts, documents, tools,
   confidence, a reputation;
3. **applied value** — that capital is put to use: practice changes, a tool is used, advice is followed;
4. **realized value** — the change makes a difference that matters: performance improves, time or money is
   saved, a problem is solved;
5. **reframing value** — what counts as success is redefined: strategies, goals or the way things are
   done change, in the member's organisation or beyond it.

Indicators are what copbot's own data can say about each cycle; *stories* are what members tell about
it. The earlier cycles are well covered by counts, the later ones only by stories — which is the point of
asking for them. Every indicator below names where its figure comes from; ``plugins/value/queries.py``
computes the raw figures (``RAW_FIGURES``), and this module turns them into what is shown. It is pure:
no database, no platform, so the definitions can be read (and tested) on their own.
"""

from __future__ import annotations

from dataclasses import dataclass

CYCLES = ("immediate", "potential", "applied", "realized", "reframing")


@dataclass(frozen=True)
class Cycle:
    key: str
    name: str
    question: str
    """The question the cycle answers, as coordinators ask it."""
    statement: str
    """The plain-language statement a member picks when telling a story of this cycle."""


CYCLE_INFO: dict[str, Cycle] = {
    cycle.key: cycle
    for cycle in (
        Cycle(
            "immediate",
            "Immediate value",
            "Was taking part worth it in itself?",
            "It was worthwhile in itself: a good conversation, help with a question, inspiration.",
        ),
        Cycle(
            "potential",
            "Potential value",
            "Did members gain something they may use later?",
            "I picked up something I may use later: an idea, a contact, a tool, a document.",
        ),
        Cycle(
            "applied",
            "Applied value",
            "Was what the community offers put to use?",
            "I used something from the community in my work: I tried a tool, followed advice, changed "
            "how I do something.",
        ),
        Cycle(
            "realized",
            "Realized value",
            "Did it make a difference that matters?",
            "It made a difference I can point to: better results, time or money saved, a problem solved.",
        ),
        Cycle(
            "reframing",
            "Reframing value",
            "Did it change what counts as success?",
            "It changed how I (or my organisation) think about our work, our goals or what success means.",
        ),
    )
}


@dataclass(frozen=True)
class Indicator:
    """One figure in the value-creation matrix.

    A plain indicator shows the raw figure of the same ``key``; a *share* (``share_of`` set) shows
    ``key`` as a percentage of the raw figure named by ``share_of`` (poll turnout: voters of active
    members).
    """

    key: str
    cycle: str
    label: str
    definition: str
    share_of: str | None = None


STORIES_DEFINITION = (
    "value stories members told in the period and placed in the cycle themselves (by picking its "
    "statement), asked for by copbot or told unprompted with `value story`; counted whether or not the "
    "author agreed to show them"
)


def _stories(cycle: str) -> Indicator:
    return Indicator(f"stories_{cycle}", cycle, "Stories", STORIES_DEFINITION)


INDICATORS: tuple[Indicator, ...] = (
    # --- immediate value: taking part ----------------------------------------------------------------
    Indicator(
        "active_members",
        "immediate",
        "Active members",
        "members with any recorded activity in the community in the period (messages, reactions, "
        "commands, votes, RSVPs, contributions); members who turned tracking off are not counted",
    ),
    Indicator(
        "messages",
        "immediate",
        "Messages",
        "messages written in the community's rooms in the period (activity of kind message)",
    ),
    Indicator(
        "attendance",
        "immediate",
        "Meeting attendance",
        "attendances moderators confirmed (`meeting attended`) for meetings held in the period "
        "(the meetings plugin's attendance records, by when the meeting took place: a moved one by its "
        "new date)",
    ),
    Indicator(
        "poll_voters",
        "immediate",
        "Poll turnout",
        "members who voted in a poll in the period (by command, button or the platform's poll), as a "
        "share of the active members",
        share_of="active_members",
    ),
    _stories("immediate"),
    # --- potential value: knowledge capital ----------------------------------------------------------
    Indicator(
        "items_added",
        "potential",
        "Repertoire items added",
        "items shared to the repertoire in the period (`share`, 📌, meeting notes, items passed on "
        "from a sister community), not counting those removed since",
    ),
    Indicator(
        "introductions",
        "potential",
        "Introductions made",
        "pairs of members copbot introduced in the period (`match`, intro rounds: the profiles plugin's "
        "introductions)",
    ),
    Indicator(
        "new_ties",
        "potential",
        "New member-to-member ties",
        "pairs of members whose first recorded interaction falls in the period. An interaction is: "
        "copbot introduced them; both said yes to, or were confirmed at, the same meeting; or one "
        "upvoted or applied an item the other shared. Chat replies are not recorded, so they do not count",
    ),
    Indicator(
        "expert_lookups",
        "potential",
        "Expert look-ups",
        "times members asked who knows about a topic (`experts` commands) in the period",
    ),
    _stories("potential"),
    # --- applied value: put to use -------------------------------------------------------------------
    Indicator(
        "repertoire_uses",
        "applied",
        "Repertoire items applied",
        "“I applied this” marks on the community's repertoire items in the period (`repertoire used`)",
    ),
    _stories("applied"),
    # --- realized and reframing value: only members can tell ----------------------------------------
    _stories("realized"),
    _stories("reframing"),
)

BY_KEY: dict[str, Indicator] = {indicator.key: indicator for indicator in INDICATORS}

RAW_FIGURES: frozenset[str] = frozenset(
    {indicator.key for indicator in INDICATORS}
    | {indicator.share_of for indicator in INDICATORS if indicator.share_of}
)
"""The raw figures the query module computes for a period: exactly these, no more, no fewer."""


def of_cycle(cycle: str) -> tuple[Indicator, ...]:
    return tuple(indicator for indicator in INDICATORS if indicator.cycle == cycle)


def value(indicator: Indicator, raw: dict[str, int]) -> float | int | None:
    """The indicator's figure from a period's raw figures: a count, or a share (None: nothing to divide)."""
    figure = raw.get(indicator.key, 0)
    if indicator.share_of is None:
        return figure
    whole = raw.get(indicator.share_of, 0)
    return figure / whole if whole else None


def shown(indicator: Indicator, raw: dict[str, int]) -> str:
    """The figure as people read it: ``12``, or ``40% (2 of 5)`` for a share, ``—`` with nothing to share."""
    figure = value(indicator, raw)
    if indicator.share_of is None:
        return f"{figure:,}"
    if figure is None:
        return "—"
    return f"{figure:.0%} ({raw.get(indicator.key, 0)} of {raw.get(indicator.share_of, 0)})"


def versus(indicator: Indicator, now: dict[str, int], before: dict[str, int]) -> str:
    """The figure with the previous period's beside it: ``12 (↑ 20% from 10)``, ``40% (2 of 5; was 50%)``."""
    current, previous = value(indicator, now), value(indicator, before)
    if indicator.share_of is not None:
        text = shown(indicator, now)
        if previous is None:
            return text
        return text[:-1] + f"; was {previous:.0%})" if current is not None else f"— (was {previous:.0%})"
    assert isinstance(current, int) and isinstance(previous, int)
    if current == previous:
        return f"{current:,} (= before)"
    if previous == 0:
        return f"{current:,} (↑ from 0)"
    change = round((current - previous) * 100 / previous)
    arrow = "↑" if current > previous else "↓"
    return f"{current:,} ({arrow} {abs(change)}% from {previous:,})"


def first_line(text: str, limit: int = 120) -> str:
    """A story's first line, cut between words at ``limit`` characters."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    if line[limit - 1] != " " and " " in cut:  # the cut falls inside a word: end before it
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:") + "…"


def parse_cycle(text: str) -> str | None:
    """A member's pick: its number in the list (1–5), the cycle's key or its name; None if neither."""
    value = " ".join(text.strip().lower().split()).rstrip(".")
    if value.isdecimal() and len(value) <= 3 and 1 <= int(value) <= len(CYCLES):  # not "²": int() refuses it
        return CYCLES[int(value) - 1]
    value = value.removesuffix(" value")
    aliases = {"realised": "realized", "reframe": "reframing", "apply": "applied"}
    value = aliases.get(value, value)
    return value if value in CYCLES else None
