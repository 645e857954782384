"""The onboarding conversation: one question at a time in a direct message, any of them skippable.

The conversation's state (which question is next, when it expires) lives in the database, so it survives
restarts and works the same on every platform. Answers are checked with the same field rules as
``profile set``; an invalid answer gets a hint and the same question again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.model import Capability, Content, SelectMenu
from plugins.profiles import fields

SKIP = {"skip", "pass", "-", "next"}
STOP = {"stop", "cancel", "quit", "exit"}


@dataclass(frozen=True)
class Question:
    field: str  # the profile field (or "timezone", stored on the member)
    text: str
    parse: Callable[[str], object]


QUESTIONS: tuple[Question, ...] = (
    Question("org_type", "What kind of organisation do you work for?", fields.org_type),
    Question("org", "What is your organisation called?", fields.organisation),
    Question("country", "Which country do you work in? (a name or a code like NL)", fields.country),
    Question(
        "expertise",
        "What do you know well? A few topics, separated by commas (e.g. leak detection, asset management)",
        fields.tags,
    ),
    Question("interests", "What would you like to learn about or discuss? (comma-separated)", fields.tags),
    Question(
        "timezone",
        "Which time zone are you in? (e.g. Europe/Amsterdam) — I show times in it",
        fields.timezone,
    ),
)

_WHY = (
    "A few quick questions so people in {community} know who you are and who to introduce you to. "
    "Answer skip to skip a question, stop to finish."
)
INTRO = "Hi {name}, welcome! " + _WHY
"""To a newcomer, just welcomed in the community's room."""
INTRO_ASKED = "Hi {name}! " + _WHY
"""To a member who asked (``profile onboarding``) with nothing told yet: no newcomer, so no welcome."""
INTRO_AGAIN = "Hi {name}, here are the questions again. Answer skip to keep what you have, stop to finish."
"""To a member who asked to answer again: skipping a question leaves that field as it is."""

AGAIN = "Back to my questions (skip skips one, stop finishes):"
"""Above a question asked again after a command in the direct chat: short, the intro said the rest."""


def orgtype_menu_id(member_id: int) -> str:
    """A custom id that routes the menu choice back to this plugin, for this member, even after a restart."""
    return f"profiles:orgtype:{member_id}"


def question_content(
    step: int, member_id: int, capabilities: frozenset[Capability], *, lead: str = ""
) -> Content:
    question = QUESTIONS[step]
    prefix = f"{lead}\n" if lead else ""
    header = f"{prefix}({step + 1}/{len(QUESTIONS)}) {question.text}"
    if question.field != "org_type":
        return Content(header)
    options = tuple(fields.ORG_TYPES.items())
    if Capability.BUTTONS in capabilities:
        return Content(header, select=SelectMenu(orgtype_menu_id(member_id), options, "Organisation type"))
    numbered = "\n".join(f"{index}. {label}" for index, (_, label) in enumerate(options, start=1))
    return Content(f"{header} Answer with a number:\n{numbered}")
