"""Kinds of activity the core and plugins record, and which of them are contributions to the practice.

Plugins count what members do (``ctx.count_activity("rsvp")``); several plugins read the same kinds (levels
weigh them, the digest and the dashboard sum them), so the shared vocabulary lives here, in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CORE_KINDS = frozenset({"message", "reaction", "command"})
"""What the core itself counts: every message and reaction (:data:`bot.pipeline.ACTIVITY_KINDS`) and every
command. Plugins declare the kinds they count themselves in ``Plugin.activity_kinds``."""

CONTRIBUTION_KINDS = frozenset(
    {"repertoire_item", "message_saved", "attendance", "meeting_notes", "newcomer_answered"}
)
"""Contributions to the practice, beyond taking part in the conversation."""


def recorded_kinds(plugins: Iterable[Any]) -> frozenset[str]:
    """Every kind of activity copbot may record with these plugin classes: the core's and the plugins'
    own — what a weight in ``[plugins.roles] weights`` may name."""
    kinds = set(CORE_KINDS)
    for plugin in plugins:
        kinds.update(getattr(plugin, "activity_kinds", ()))
    return frozenset(kinds)
