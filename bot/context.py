"""The Context handed to every handler: who, where, how to answer, and the unit of work's session."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bot import outbox
from bot.adapters.base import shown_when
from bot.errors import UsageError
from bot.model import Community, Content, Event, Member, Responder, Room

if TYPE_CHECKING:
    from bot.adapters.base import Adapter
    from bot.commands import CommandSpec
    from bot.services import Services


def platform_prefix(adapter: object | None, configured: str) -> str:
    """How commands are written on an adapter's platform, as copbot's replies there write them: ``/`` on
    Discord (slash commands always work there), the configured prefix elsewhere."""
    return getattr(adapter, "command_prefix", None) or configured


@dataclass
class Context:
    services: Services
    adapter: Adapter
    room: Room
    author: Member | None = None
    author_id: int | None = None
    community: Community | None = None
    community_id: int | None = None
    is_moderator: bool = False
    timezone: str = "UTC"
    command: CommandSpec | None = None
    message_id: str | None = None
    responder: Responder | None = None
    command_prefix: str | None = None
    sent: list[str] = field(default_factory=list)
    emitted: list[Event] = field(default_factory=list)
    activity: list[tuple[str, str, int | None, int | None]] = field(default_factory=list)
    after_commit: list[Callable[[], Awaitable[object]]] = field(default_factory=list)
    outbox_keys: list[str] = field(default_factory=list)
    event_id: str = ""
    consumed: bool = False
    """A listener took this message as its own (an onboarding answer): no "that is not a command" hint;
    or this reaction (an RSVP, a 📌 save): the adapter keeps what it stands for (``ReactionMemory``)."""
    _session: AsyncSession | None = field(default=None, repr=False)

    @property
    def session(self) -> AsyncSession:
        """The handler's unit of work, opened on first use: a handler that never touches it costs nothing.

        Whoever runs the handler commits it when the handler returns and rolls it back when it raises.
        """
        if self._session is None:
            self._session = self.services.db.sessions()
        return self._session

    @property
    def has_session(self) -> bool:
        """Whether the handler opened its unit of work (it read or wrote the database)."""
        return self._session is not None

    def detach_session(self) -> AsyncSession | None:
        session, self._session = self._session, None
        return session

    @property
    def prefix(self) -> str:
        """How commands are written where this member is: ``!`` in chat, ``/`` on Discord (slash commands
        always work there; ``!`` only with the message-content intent)."""
        return self.command_prefix or platform_prefix(self.adapter, self.services.settings.prefix)

    def now(self) -> datetime:
        return self.services.clock.now()

    def when(self, moment: datetime) -> str:
        """A time as this answer's readers should see it (:func:`~bot.adapters.base.shown_when`): Discord's
        timestamp, elsewhere in the caller's zone, labelled."""
        return shown_when(self.adapter, moment, self.timezone)

    def require_community(self) -> int:
        """This room's community, for a command that only means something in one. A direct chat of no
        community (Matrix serving several) is refused with the command's example: it is never read as
        "every community", whose members and items may be private."""
        if self.community_id is None:
            raise UsageError("this room belongs to no community")
        return self.community_id

    def mention(self, member: Member) -> str:
        return self.adapter.mention(member)

    async def reply(self, content: str | Content) -> str:
        """Answer the member where they asked (a reply in the room, or the interaction's response).

        The answer carries a key made of the event it answers: a command run again after a crash answers
        with the same key, and platforms that deduplicate by it (Matrix transaction ids) post it once.
        """
        key = f"reply:{self.room.platform}:{self.event_id}#{len(self.sent)}" if self.event_id else None
        if isinstance(content, str):  # most answers: one Content, made with its key
            body = Content(content, delivery_key=key)
        elif content.delivery_key is None and key is not None:
            body = dataclasses.replace(content, delivery_key=key)
        else:
            body = content
        if self.responder is not None:
            message_id = await self.responder(body)
        else:
            message_id = await self.adapter.send(self.room, body, reply_to=self.message_id)
        self.sent.append(message_id)
        return message_id

    async def reply_privately(self, content: str | Content, *, public: str | None = None) -> None:
        """Answer only the caller: ephemerally where the platform can (a Discord interaction), as is in a
        direct chat, else by direct message — with ``public`` (if given) said in the room instead."""
        body = Content.of(content)
        if self.responder is not None or self.room.is_direct:
            await self.reply(dataclasses.replace(body, ephemeral=True))
            return
        assert self.author is not None
        await self.send_direct(self.author, body)
        if public:
            await self.reply(Content(public, ephemeral=True))

    async def send(self, room: Room, content: str | Content) -> str:
        return await self.adapter.send(room, Content.of(content))

    async def send_direct(self, member: Member, content: str | Content) -> str:
        return await self.adapter.send_direct(member, Content.of(content))

    async def post(self, room: Room, content: str | Content) -> None:
        """Post to a room as part of this unit of work: sent once it commits, never if it rolls back,
        and exactly once even if copbot dies in between (see bot/outbox.py)."""

        key = f"{self.room.platform}:{self.event_id or self.now().isoformat()}#{len(self.outbox_keys)}"
        await outbox.put(
            self.session,
            key,
            Content.of(content),
            room=room,
            now=self.now(),
            owner=self.services.settings.instance_name,
        )
        self.outbox_keys.append(key)

    async def schedule_at(
        self, job_id: str, when: datetime, target: str, *, grace: timedelta | None = None, **payload: object
    ) -> None:
        """A one-off job, stored once this unit of work commits (the job store writes on its own connection,
        which must not wait on this transaction — and a rolled-back command schedules nothing)."""
        scheduler = self.services.scheduler
        if scheduler is not None:
            # The job belongs to this room's community: it runs in the process serving it.
            owner = self.community.slug if self.community is not None else scheduler.own
            self.after_commit.append(
                lambda: scheduler.run_at(job_id, when, target, grace=grace, owner=owner, **payload)
            )

    async def cancel_job(self, job_id: str) -> None:
        scheduler = self.services.scheduler
        if scheduler is not None:
            self.after_commit.append(lambda: scheduler.cancel(job_id))

    def count_activity(
        self, kind: str, detail: str = "", *, member_id: int | None = None, community_id: int | None = None
    ) -> None:
        """Count something a member did (a vote, a contribution; by default the caller) once this unit of
        work commits — a moderator confirming someone's attendance counts for that member. In a direct
        chat, ``community_id`` says which community it counts for (a value story told there)."""
        self.activity.append((kind, detail, member_id, community_id))

    def member_changed(self, member: Member) -> None:
        """Call after changing a member's core row (their time zone, tracking) so that what follows reads
        it afresh: forgotten now, and read again once this unit of work commits."""
        pipeline = self.services.pipeline
        if pipeline is not None:
            journal = pipeline.journal
            journal.forget(member)
            self.after_commit.append(lambda: journal.refresh(member))

    async def emit(self, event: Event) -> None:
        """Tell other plugins something happened. Their listeners run once this unit of work has
        committed (and not at all if it rolls back), each in a unit of work of its own."""
        self.emitted.append(event)


@dataclass
class JobContext:
    """What a scheduled job gets: the services and its own unit of work.

    What a job sends is part of its work: it goes through the outbox, keyed by the job and the time it was
    due, so a job run again after a crash neither loses nor repeats its messages.
    """

    services: Services
    session: AsyncSession
    job_id: str = ""
    due_at: datetime | None = None
    outbox_keys: list[str] = field(default_factory=list)
    after_commit: list[Callable[[], Awaitable[object]]] = field(default_factory=list)

    def now(self) -> datetime:
        return self.services.clock.now()

    async def schedule_at(
        self, job_id: str, when: datetime, target: str, *, grace: timedelta | None = None, **payload: object
    ) -> None:
        """Plan a job once this job's work commits (a reminder planning the next one, say); it belongs to
        the same community as this job (the scheduler knows which job is running)."""
        scheduler = self.services.scheduler
        if scheduler is not None:
            self.after_commit.append(
                lambda: scheduler.run_at(job_id, when, target, grace=grace, owner=None, **payload)
            )

    async def send(self, room: Room, content: str | Content) -> None:
        await self._put(Content.of(content), room=room)

    async def post(self, room: Room, content: str | Content) -> None:
        await self._put(Content.of(content), room=room)

    async def send_direct(self, member: Member, content: str | Content) -> None:
        await self._put(Content.of(content), member=member)

    async def _put(self, content: Content, *, room: Room | None = None, member: Member | None = None) -> None:

        due = (self.due_at or self.now()).isoformat()
        key = f"{self.job_id}@{due}#{len(self.outbox_keys)}"
        await outbox.put(
            self.session,
            key,
            content,
            room=room,
            member=member,
            now=self.now(),
            owner=self.services.settings.instance_name,
        )
        self.outbox_keys.append(key)
