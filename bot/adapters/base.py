"""The Adapter protocol: what the core needs from a chat platform, and nothing platform-specific."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from bot.commands import CommandSpec
from bot.model import (
    Capability,
    Content,
    Event,
    Invocation,
    Member,
    Message,
    ReactionAdded,
    Responder,
    Room,
)
from bot.timeparse import format_when

if TYPE_CHECKING:
    from bot.suggest import Suggestion


class Dispatch(Protocol):
    """Where an adapter delivers: the core's pipeline, bound to that adapter (see registry.Dispatcher)."""

    async def __call__(self, event: Event, *, responder: Responder | None = None) -> None: ...

    async def invoke(self, invocation: Invocation) -> None: ...

    def has_command(self, name: str) -> bool: ...

    def community_id(self, slug: str) -> int: ...

    def community_of(self, room: Room) -> str | None:
        """The slug of the community ``room`` belongs to (configured, or attached), if any."""
        ...

    async def attach_room(self, room_id: str, slug: str) -> None: ...

    def serves(self, room: Room) -> bool:
        """Whether this process handles ``room``: with several processes on one database, each serves
        some communities (and one answers direct messages); another process's rooms are left alone."""
        ...

    def rooms_of(self, slug: str) -> list[str]:
        """The rooms of this platform that belong to the community (configured, or attached by an invite)."""
        ...

    async def suggest(
        self, room: Room, author: Member, command: str, option: str, typed: str
    ) -> list[Suggestion]:
        """Values for an option being typed (autocomplete), by the plugin that offers them; none if none."""
        ...

    async def members_present(self, room_id: str, members: list[Member]) -> int:
        """Members the platform lists in a room (at start-up): recorded quietly, never welcomed."""
        ...

    async def checkpoint(self, position: tuple[str, str] | None = None, *, wait: bool = True) -> None:
        """Make what was handled so far durable, with the adapter's position (key, value: a sync token)
        in the same transaction; ``wait=False`` queues it for the journal's next batch."""
        ...


@runtime_checkable
class Adapter(Protocol):
    platform: str
    capabilities: frozenset[Capability]

    @property
    def connected(self) -> bool:
        """Whether the platform connection is up right now (reported by /healthz)."""
        ...

    async def start(self, dispatch: Dispatch) -> None:
        """Connect and begin delivering events to ``dispatch``; returns once connected."""
        ...

    async def install_commands(self, specs: Sequence[CommandSpec]) -> None:
        """Offer the commands natively where the platform can (Discord slash commands)."""
        ...

    async def send(self, room: Room, content: Content, *, reply_to: str | None = None) -> str:
        """Send to a room; returns the platform's message id."""
        ...

    async def send_direct(self, member: Member, content: Content) -> str:
        """Send a direct message, opening or reusing the direct room."""
        ...

    async def is_moderator(self, member: Member, room: Room) -> bool:
        """What the platform itself says (Manage Server, a power level); the config can add more."""
        ...

    def mention(self, member: Member) -> str:
        """How a mention of ``member`` is written in this platform's text."""
        ...

    def parse_mention(self, text: str) -> Member | None:
        """The member a typed mention (``@ana``, ``<@123>``, ``@ana:example.org``) refers to."""
        ...

    async def stop(self) -> None: ...


@runtime_checkable
class RoleAdapter(Protocol):
    """Adapters with ``Capability.ROLES`` mirror participation levels onto the platform's roles."""

    async def set_level_role(
        self, community: str, member: Member, level: str, *, reason: str = "", repair: bool = False
    ) -> bool:
        """Give ``member`` the role configured for ``level`` and take the other levels' roles away (a level
        without a role takes them away too); False when the community configures no role for that level.

        Nothing is sent when the platform already shows the level, so calling it again is harmless.
        ``repair``: only bring the platform in line with what is stored (the walk at start-up), without
        what a promotion brings besides the role (an invite to the level's room). Raises
        :class:`~bot.errors.RoleRefused` when the platform does not let copbot manage the role.
        """
        ...


@runtime_checkable
class EventAdapter(Protocol):
    """Adapters with ``Capability.SCHEDULED_EVENTS`` publish meetings as the platform's own events.

    Members marking such an event as interesting arrive as :class:`~bot.model.EventInterest` events.
    """

    async def create_event(
        self, room: Room, *, title: str, start: datetime, end: datetime, where: str, description: str = ""
    ) -> str:
        """Create the platform's event for a meeting; returns its id."""
        ...

    async def update_event(
        self,
        room: Room,
        event_id: str,
        *,
        title: str,
        start: datetime,
        end: datetime,
        where: str,
        description: str = "",
    ) -> None:
        """Change the event (a meeting moved, or rolled on to its next occurrence)."""
        ...

    async def cancel_event(self, room: Room, event_id: str) -> None:
        """Take the event away (the meeting was cancelled); an event already gone is not an error."""
        ...


@runtime_checkable
class MessageSource(Protocol):
    """Adapters that can look a message up again (to save it to the repertoire) and link to it."""

    async def fetch_message(self, room: Room, message_id: str) -> Message | None:
        """The message as it is now (its author and text), or None if it is gone or unreadable."""
        ...

    def permalink(self, room: Room, message_id: str) -> str:
        """A link that opens the message in the platform's clients; "" where there is none."""
        ...


@runtime_checkable
class ReactionMemory(Protocol):
    """Adapters whose platform names only the reaction when one is taken back (a Matrix redaction names
    the reaction's event, and the homeserver strips its content) keep what the reactions plugins acted on
    stand for, so that one taken back after a restart is still understood."""

    async def reaction_acted_on(self, event: ReactionAdded) -> None:
        """A plugin acted on ``event`` (an RSVP, a 📌 save): keep who gave which emoji on what; never
        raises."""
        ...


@runtime_checkable
class EditAdapter(Protocol):
    """Adapters with ``Capability.EDITS`` can change a message they sent, in place."""

    async def edit(self, room: Room, message_id: str, content: Content) -> None:
        """Replace the message's content (text, card and buttons); a message gone is not an error."""
        ...


@runtime_checkable
class DeleteAdapter(Protocol):
    """Adapters with ``Capability.DELETES`` can take back a message they sent (a thanks for a saved
    message that was deleted since)."""

    async def delete(self, room: Room, message_id: str) -> None:
        """Delete (Discord) or redact (Matrix) a message copbot sent; one gone already is not an error."""
        ...


@runtime_checkable
class TimestampAdapter(Protocol):
    """Adapters with ``Capability.TIMESTAMPS`` write a moment so each reader sees it in their own zone;
    elsewhere a plugin writes the time itself, in the community's or the member's zone."""

    def timestamp(self, moment: datetime) -> str:
        """The platform's markup for ``moment`` (an aware datetime; naive ones are read as UTC)."""
        ...


def shown_when(adapter: object, moment: datetime, tz: str) -> str:
    """A time as its readers on ``adapter`` should see it: the platform's markup where its clients show it
    in each reader's own zone (Discord's ``<t:…>``: a message in a room is read by everyone, not only by the
    one it answers), elsewhere in ``tz``, labelled with the zone."""
    capabilities: frozenset[Capability] = getattr(adapter, "capabilities", frozenset())
    if Capability.TIMESTAMPS in capabilities and isinstance(adapter, TimestampAdapter):
        return adapter.timestamp(moment)
    return format_when(moment, tz)
