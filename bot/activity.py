"""Kinds of activity the core and plugins record, and which of them are contributions to the practice.

Plugins count what members do (``ctx.count_activity("rsvp")``); several plugins read the same kinds (levels
weigh them, the digest and the dashboard sum them), so the shared vocabulary lives here, in one place.
"""

from __future__ import annotations

CONTRIBUTION_KINDS = frozenset(
    {"repertoire_item", "message_saved", "attendance", "meeting_notes", "newcomer_answered"}
)
"""Contributions to the practice, beyond taking part in the conversation."""
