"""Platform-neutral values shared by the core, the adapters and the plugins.

Everything here is a frozen dataclass with no platform types, so a plugin written against these values
serves Discord, Matrix and the console alike. ``raw`` fields carry the platform's own object for the
adapter that produced it; plugins never look inside them.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal


class Capability(enum.Enum):
    """What an adapter can render natively; plugins ask instead of checking the platform's name."""

    NATIVE_POLLS = "native_polls"
    SCHEDULED_EVENTS = "scheduled_events"
    ROLES = "roles"
    BUTTONS = "buttons"
    DIRECT_MESSAGES = "direct_messages"
    REACTIONS = "reactions"
    RICH_TEXT = "rich_text"
    FILES = "files"  # a message can carry a file (an export)
    EDITS = "edits"  # a sent message can be changed in place (an announcement's RSVP counts)
    DELETES = "deletes"  # a sent message can be taken back (Discord: deleted; Matrix: redacted)
    TIMESTAMPS = "timestamps"  # times render in each reader's own zone (Discord's <t:…> markup)
    LONG_MESSAGES = "long_messages"
    """A message (a card too) of any length can be handed over whole: the adapter splits it only where
    the platform's own limit needs (Matrix: an event's 64 KiB), so plugins need not cut it to Discord's."""


@dataclass(frozen=True, slots=True)
class Member:
    """One identity on one platform; the same person on two platforms is two members."""

    platform: str
    id: str
    display_name: str
    is_bot: bool = False

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.id}"


@dataclass(frozen=True, slots=True)
class Room:
    """A place messages go: a Discord channel, a Matrix room, the console, or a direct chat."""

    platform: str
    id: str
    community_id: str | None = None
    is_direct: bool = False


@dataclass(frozen=True, slots=True)
class Community:
    """A CoP as configured: its slug is the stable key used in the database and in URLs."""

    slug: str
    name: str
    domain: str = ""
    timezone: str = "UTC"
    rules: str = ""
    public: bool = False
    sisters: tuple[str, ...] = ()  # slugs of the communities this one shares its repertoire with


@dataclass(frozen=True, slots=True)
class Mention:
    """A member the text intends to mention; adapters render it natively and allow only these pings."""

    member: Member


@dataclass(frozen=True, slots=True)
class Button:
    """A clickable choice; ``custom_id`` encodes plugin and entity so a click survives a restart."""

    label: str
    custom_id: str


@dataclass(frozen=True, slots=True)
class SelectMenu:
    """A pick-one list (Discord select menu); platforms without one show the options numbered."""

    custom_id: str
    options: tuple[tuple[str, str], ...]  # (value, label)
    placeholder: str = ""


@dataclass(frozen=True, slots=True)
class PollSpec:
    """A poll the adapter may render natively (MSC3381 on Matrix, Discord polls) with a text fallback."""

    question: str
    answers: tuple[str, ...]
    multi: bool = False
    anonymous: bool = False
    closes_at: datetime | None = None
    beside: str = ""
    """The message's text where the poll is shown natively: only what the poll's UI cannot say (its number,
    how to vote by command, when it closes, anonymity), as the UI shows the question and answers itself.
    Empty: the message's text as it is. Where no native poll is posted (the console, a poll Discord's
    limits refuse), the message's own text, with the options, is shown."""


@dataclass(frozen=True, slots=True)
class Card:
    """Structured output (a Discord embed, an HTML block on Matrix, indented text on the console)."""

    title: str
    fields: tuple[tuple[str, str], ...] = ()
    footer: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a message (an export), where the platform takes files (``Capability.FILES``)."""

    filename: str
    data: bytes
    mime: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Content:
    """What a plugin asks an adapter to send.

    ``text`` is plain text written by copbot or a member; ``mentions`` are the only members it may ping.
    Adapters escape text for their markup, so member-written text can never inject HTML or ping everyone.
    """

    text: str
    mentions: tuple[Member, ...] = ()
    card: Card | None = None
    poll: PollSpec | None = None
    buttons: tuple[Button, ...] = ()  # with a poll: the fallback where the platform has no native poll
    select: SelectMenu | None = None
    ends_poll: str | None = None  # the platform id of the poll message this message closes (m.poll.end)
    ephemeral: bool = False
    delivery_key: str | None = None  # set by the outbox: platforms that deduplicate sends use it
    attachment: Attachment | None = None

    @classmethod
    def of(cls, value: str | Content) -> Content:
        return value if isinstance(value, Content) else cls(text=value)


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    room: Room
    author: Member
    text: str
    raw: Any = field(default=None, compare=False, repr=False)


# --- events -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every core event.

    ``event_id`` is the platform's id of the delivery, used to handle an event delivered twice only once;
    ``at`` is when it happened (UTC).
    """

    event_id: str
    room: Room
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageCreated(Event):
    message: Message
    is_command: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDeleted(Event):
    """A message is gone from the platform: deleted (Discord, one by one or in bulk) or redacted (Matrix),
    by its author or a moderator. Who deleted it is not said (Discord does not tell): what copbot keeps of
    the message (a 📌 save) goes with it."""

    message_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberJoined(Event):
    """``returning`` is filled in by the core: the member had been in this community before."""

    member: Member
    returning: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberWelcomed(Event):
    """A newcomer was welcomed (emitted by the welcome plugin) in ``room``; onboarding starts from it."""

    member: Member


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberLeft(Event):
    member: Member


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberRenamed(Event):
    """A member present in the room changed the name the platform shows (``member`` carries the new one).

    No activity and no join: it only keeps the stored name current, so lists, digests and replies show a
    newcomer who set their name after joining by that name before they ever speak.
    """

    member: Member


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandAnswered(Event):
    """A member's command in a direct chat with copbot was answered (``command``: its name, ``?`` if it named
    none). Emitted by the core, so a conversation there (onboarding, the value story; onboarding goes
    first) asks its pending question again below the answer: the member's next message answers a question
    they can see, not one scrolled far up."""

    member: Member
    command: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactionAdded(Event):
    member: Member
    message_id: str
    emoji: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactionRemoved(Event):
    """A member took a reaction back (on Matrix: redacted it, when copbot saw it given since it started or
    a plugin acted on it)."""

    member: Member
    message_id: str
    emoji: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PollVoted(Event):
    """A vote cast with a platform's own poll UI; ``answers`` are 0-based indexes into the poll's answers."""

    member: Member
    poll_message_id: str
    answers: tuple[int, ...]
    mode: Literal["set", "add", "remove"] = "set"  # Matrix: whole responses; Discord: one answer


@dataclass(frozen=True, slots=True, kw_only=True)
class ButtonClicked(Event):
    member: Member
    custom_id: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class EventInterest(Event):
    """A member marked a platform's own event (a Discord scheduled event) as interesting, or unmarked it."""

    member: Member
    platform_event_id: str
    interested: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityCounted(Event):
    """A plugin counted something a member did (a vote, an RSVP, a contribution), now committed."""

    member_id: int
    community_id: int | None
    kind: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LevelChanged(Event):
    """A member's participation level changed: by a moderator (``actor``) or by a rule (``rule``)."""

    member: Member
    community: str
    old_level: str
    new_level: str
    actor: Member | None = None
    rule: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class NotesTaken(Event):
    """Minutes of a meeting were written (emitted by meetings): the community's record, for the repertoire."""

    member: Member
    meeting_id: int
    title: str
    text: str
    occurred_at: datetime
    replaces: bool = False  # the meeting's earlier notes of that day are withdrawn


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomReplaced(Event):
    """A community's room was upgraded (Matrix ``m.room.tombstone``) and copbot has joined its successor,
    ``room``, now attached to the same community: what was to happen in ``previous`` happens there."""

    previous: Room


Responder = Callable[[Content], Awaitable[str]]
"""Answers a member where the platform wants the answer (a Discord interaction's response)."""


@dataclass(frozen=True, slots=True)
class Invocation:
    """A command to run: typed text (``text``) or, from a slash command, a name and raw option values."""

    event_id: str
    room: Room
    author: Member
    at: datetime
    message_id: str | None = None
    text: str | None = None
    name: str | None = None
    options: dict[str, Any] | None = None
    responder: Responder | None = None
    prefix: str | None = None  # how the member writes commands here, if not the configured prefix ("/")
