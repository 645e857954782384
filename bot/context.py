"""The Context handed to every handler: who, where, how to answer, and the unit of work's session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bot.model import Community, Content, Event, Member, Responder, Room

if TYPE_CHECKING:
    from bot.adapters.base import Adapter
    from bot.commands import CommandSpec
    from bot.services import Services


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
    activity: list[tuple[str, str]] = field(default_factory=list)
    after_commit: list[Callable[[], Awaitable[object]]] = field(default_factory=list)
    _session: AsyncSession | None = field(default=None, repr=False)

    @property
    def session(self) -> AsyncSession:
        """The handler's unit of work, opened on first use: a handler that never touches it costs nothing.

        Whoever runs the handler commits it when the handler returns and rolls it back when it raises.
        """
        if self._session is None:
            self._session = self.services.db.sessions()
        return self._session

    def detach_session(self) -> AsyncSession | None:
        session, self._session = self._session, None
        return session

    @property
    def prefix(self) -> str:
        """How commands are written where this member is: ``!`` in chat, ``/`` in a Discord slash command."""
        return self.command_prefix or self.services.settings.prefix

    def now(self) -> datetime:
        return self.services.clock.now()

    def mention(self, member: Member) -> str:
        return self.adapter.mention(member)

    async def reply(self, content: str | Content) -> str:
        """Answer the member where they asked (a reply in the room, or the interaction's response)."""
        body = Content.of(content)
        if self.responder is not None:
            message_id = await self.responder(body)
        else:
            message_id = await self.adapter.send(self.room, body, reply_to=self.message_id)
        self.sent.append(message_id)
        return message_id

    async def send(self, room: Room, content: str | Content) -> str:
        return await self.adapter.send(room, Content.of(content))

    async def send_direct(self, member: Member, content: str | Content) -> str:
        return await self.adapter.send_direct(member, Content.of(content))

    async def schedule_at(self, job_id: str, when: datetime, target: str, **payload: object) -> None:
        """A one-off job, stored once this unit of work commits (the job store writes on its own connection,
        which must not wait on this transaction — and a rolled-back command schedules nothing)."""
        scheduler = self.services.scheduler
        if scheduler is not None:
            self.after_commit.append(lambda: scheduler.run_at(job_id, when, target, **payload))

    async def cancel_job(self, job_id: str) -> None:
        scheduler = self.services.scheduler
        if scheduler is not None:
            self.after_commit.append(lambda: scheduler.cancel(job_id))

    def count_activity(self, kind: str, detail: str = "") -> None:
        """Count something the member did (a vote, a contribution) once this unit of work commits."""
        self.activity.append((kind, detail))

    def member_changed(self, member: Member) -> None:
        """Call after changing a member's core row (their time zone) so the next event reads it afresh."""
        registry = self.services.registry
        if registry is not None:
            registry.journal.forget(member)

    async def emit(self, event: Event) -> None:
        """Tell other plugins something happened. Their listeners run once this unit of work has
        committed (and not at all if it rolls back), each in a unit of work of its own."""
        self.emitted.append(event)


@dataclass
class JobContext:
    """What a scheduled job gets: the services and its own unit of work; it speaks through adapters."""

    services: Services
    session: AsyncSession
    job_id: str = ""

    def now(self) -> datetime:
        return self.services.clock.now()

    async def send(self, room: Room, content: str | Content) -> str:
        adapter = self.services.adapters[room.platform]
        return await adapter.send(room, Content.of(content))
