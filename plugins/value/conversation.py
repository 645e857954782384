"""The value-story conversation: one question at a time in a direct message, any of them skippable.

Asked in a round (prompted), it has three questions: the story, which of five plain statements fits it
(one per value cycle), and whether it may be shown. A story told with ``value story`` (unprompted) only
gets the questions its command left open. The state lives in the database (``value_prompts``), so it
survives restarts and works the same on every platform; on Discord the choices are select menus.
"""

from __future__ import annotations

from bot.arguments import short_answer
from bot.model import Capability, Content, SelectMenu
from plugins.value.indicators import CYCLE_INFO, CYCLES

SKIP = {"skip", "pass", "-", "next"}
STOP = {"stop", "cancel", "quit", "exit"}
NEVER = {"never", "opt out", "opt-out", "optout", "unsubscribe", "don't ask", "dont ask", "no more"}
YES = {"yes", "y", "yes please", "sure", "ok", "okay", "fine", "ja", "oui", "sí", "si"}
NO = {"no", "n", "nope", "no thanks", "private", "nee", "non"}

STORY_QUESTION = "What did you take from the community lately — and did it change anything in your work?"
INTRO = (
    "Hi {name}! Now and then I ask members of {community} what the community is worth to them — it "
    "helps the coordinators see what works. Three short questions; answer skip to skip one, stop to "
    "end, or never if you would rather not be asked again."
)
STEPS = 3
AGAIN = "Back to my questions (skip skips one, stop ends):"
"""Above a question asked again after a command in the direct chat: short, the intro said the rest."""


def cycle_menu_id(member_id: int) -> str:
    """A custom id that routes the menu choice back to this plugin, for this member, even after a restart."""
    return f"value:cycle:{member_id}"


def public_menu_id(member_id: int) -> str:
    return f"value:public:{member_id}"


def _counter(step: int, prompted: bool) -> str:
    return f"({step + 1}/{STEPS}) " if prompted else ""


def _lead(lead: str) -> str:
    return f"{lead}\n" if lead else ""


def story_question(name: str, community: str) -> Content:
    """The round's opening: who asks and why, then the open question."""
    return Content(f"{INTRO.format(name=name, community=community)}\n{_counter(0, True)}{STORY_QUESTION}")


def again_story_question(lead: str) -> Content:
    return Content(f"{_lead(lead)}{_counter(0, True)}{STORY_QUESTION}")


def cycle_question(
    member_id: int, capabilities: frozenset[Capability], *, prompted: bool, lead: str = ""
) -> Content:
    header = f"{_lead(lead)}{_counter(1, prompted)}Which of these fits best?"
    if Capability.BUTTONS in capabilities:
        options = tuple((key, _short(CYCLE_INFO[key].statement)) for key in CYCLES)
        return Content(header, select=SelectMenu(cycle_menu_id(member_id), options, "What it was like"))
    numbered = "\n".join(f"{index}. {CYCLE_INFO[key].statement}" for index, key in enumerate(CYCLES, start=1))
    return Content(f"{header} Answer with a number (or skip):\n{numbered}")


def public_question(
    member_id: int, capabilities: frozenset[Capability], *, prompted: bool, lead: str = ""
) -> Content:
    header = (
        f"{_lead(lead)}{_counter(2, prompted)}May your story be shown to the community — on its value page "
        "and in the coordinators' report? Your name is shown with it only if you chose to show it "
        "(profile set public on); otherwise it reads 'a member'."
    )
    if Capability.BUTTONS in capabilities:
        options = (("yes", "Yes, it may be shown"), ("no", "No, keep it private"))
        return Content(header, select=SelectMenu(public_menu_id(member_id), options, "Show it?"))
    return Content(f"{header} Answer yes or no.")


def pending_question(
    step: int, member_id: int, capabilities: frozenset[Capability], *, prompted: bool, lead: str = ""
) -> Content:
    """The question a conversation at ``step`` waits on, under ``lead``: asked again when it scrolled away."""
    if step == 0:
        return again_story_question(lead)
    if step == 1:
        return cycle_question(member_id, capabilities, prompted=prompted, lead=lead)
    return public_question(member_id, capabilities, prompted=prompted, lead=lead)


def yes_or_no(text: str) -> bool | None:
    value = short_answer(text)
    if value in YES:
        return True
    if value in NO:
        return False
    return None


def _short(text: str, limit: int = 100) -> str:
    """Discord's select options have at most 100 characters."""
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
