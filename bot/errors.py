"""Errors a member can cause are values with a message for them, raised once and rendered in one place."""

from __future__ import annotations


class CopbotError(Exception):
    """Base of errors that end a command with a message for the member instead of an apology."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(CopbotError):
    """The member typed something copbot cannot use; the reply adds a correct example."""

    def __init__(self, message: str, *, example: str | None = None) -> None:
        super().__init__(message)
        self.example = example


class Refused(CopbotError):
    """The member may not do this (not a moderator, not the creator): nothing is changed."""


class NotFound(CopbotError):
    """The member named something that does not exist (a poll id, a meeting id)."""


class StartupError(RuntimeError):
    """copbot cannot start, for a reason the operator can fix (an address, a password, a file).

    Raised where the failure is understood, with a message that says what is wrong and what to change;
    ``copbot run`` prints it as one line and exits 1, because a traceback would hide that one line.
    """


class WebStartError(StartupError):
    """The web part's address is taken or not ours: said in one line at start-up, not as a traceback."""


class RoleRefused(Exception):
    """The platform will not let copbot give or take a participation level's role: the role sits above
    copbot's own in Discord's hierarchy, copbot lacks Manage Roles, or its Matrix power level is too low.

    Not a member's error: the message tells the operator what to change on the platform. ``role`` names
    what it is about (a role, a room's power level), so that it is said once per community and role rather
    than once per member.
    """

    def __init__(self, message: str, *, role: str) -> None:
        super().__init__(message)
        self.message = message
        self.role = role


class Undeliverable(Exception):
    """The platform says a message can never reach its room or member: the channel was deleted, copbot
    was removed from the guild or room, the member takes no direct messages. The outbox gives up on it at
    once rather than retrying it twenty times (with a warning each time) for every reminder aimed there."""


class NotPermitted(Undeliverable):
    """The platform refuses copbot posting in a room until someone changes a permission (Discord: Missing
    Permissions or Missing Access in a channel). Unlike the other refusals a moderator can undo it, so the
    outbox tries a few more times, spread over hours, before giving up; elsewhere it is an
    :class:`Undeliverable` like any other (one line, no traceback). ``room`` names the room for people
    ("#general"); the message says what to fix."""

    def __init__(self, message: str, *, room: str) -> None:
        super().__init__(message)
        self.message = message
        self.room = room
