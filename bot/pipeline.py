"""Every event and command goes through one pipeline.

For an event: wait for the member's previous event to finish (one member's events are handled in order) →
skip it if it was handled before → find the community and the member → for a command: resolve, check
permission, parse, run the handler in its own unit of work, commit → then send what it queued in the outbox,
queue the activity (see journal.py; none for members who turned tracking off), run the jobs and deliver
the events the handler asked for. Other events go to the listeners, each in a unit of work of its own.
Whoever acts in a community's room is a member of it, whether or not copbot saw them join.

Errors members cause end as one line with a correct example; other errors are logged with the event's
context and the member gets a short apology. Either way nothing the command wrote is kept.

Crash safety (README "Reliability"): a command that wrote commits its handled id with its effect (a
redelivery finds it and is rolled back); one that wrote nothing is recorded as handled only after it
answered. Either way an id is never durable before the work it stands for, so a SIGKILL at any moment
leaves the command to be run again, and its reply — keyed by the event (:meth:`Context.reply`) — is sent
again under the same key, which Matrix deduplicates (the transaction id).

Scheduled jobs run here too (:meth:`Pipeline.run_job`), in a unit of work of their own whose messages go
through the outbox, so the scheduler can settle a job only once its work is committed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from datetime import datetime
from typing import Any

from bot import failpoints, store
from bot.adapters.base import Adapter, ReactionMemory
from bot.arguments import ParseEnv, convert_options, parse_arguments
from bot.commands import CommandSpec, command_body
from bot.context import Context, JobContext
from bot.errors import CopbotError, Refused, UsageError
from bot.journal import Journal
from bot.model import (
    ActivityCounted,
    ButtonClicked,
    CommandAnswered,
    Content,
    Event,
    Invocation,
    Member,
    MemberJoined,
    MemberLeft,
    MessageCreated,
    PollVoted,
    ReactionAdded,
    Responder,
    Room,
)
from bot.outbox import Outbox
from bot.permissions import is_moderator
from bot.registry import Registry, UnknownCommand
from bot.services import Services
from bot.suggest import MAX_SUGGESTIONS, Suggestion
from bot.tables import MemberRow
from bot.tokens import Token
from bot.turns import Turns

log = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong on my side while handling that. The team can see it in the logs."
CANNOT_SAVE = "Sorry, I cannot save anything right now (my database is unavailable); please try again later."
ACTIVITY_KINDS: dict[type[Event], str] = {
    MessageCreated: "message",
    ReactionAdded: "reaction",
}
"""What every such event counts as. A poll vote is counted by the polls plugin instead, which alone knows
whether a response is a member's first vote in the poll or a changed one (which adds nothing)."""
PRESENCE_ONLY: tuple[type[Event], ...] = (PollVoted,)
"""Events that show their author is in the community's room, though the core counts no activity for them."""


class Pipeline:
    def __init__(self, services: Services, registry: Registry) -> None:
        self.services = services
        self.registry = registry
        self.journal = Journal(services.db)
        self.outbox = Outbox(services)
        self.in_turn = Turns()
        """One member's events are handled one at a time, in order: an answer typed (or clicked) right
        after a question never races the unit of work that asked it. Different members run concurrently."""
        services.pipeline = self

    def now(self) -> datetime:
        return self.services.clock.now()

    # --- events -----------------------------------------------------------------------------------------

    async def handle(self, adapter: Adapter, event: Event, *, responder: Responder | None = None) -> None:
        """Entry point for every platform event; never raises, so one bad event can't stop an adapter.

        ``responder`` answers the member where the platform wants it (a Discord interaction's response).
        An event in a room this process does not serve (another process's community) is ignored at once:
        not handled, not counted, not recorded (see :meth:`Registry.serves`).
        """
        if not self.registry.serves(event.room):
            return
        started = time.perf_counter()
        kind = type(event).__name__
        author = _author_of(event)
        try:
            async with self.in_turn(author):
                kind = await self._route(adapter, event, responder)
        except Exception as error:
            if not self.services.db.unavailable(error):  # that one is said once, not per event
                log.exception("failed to handle %s %s in %s", kind, event.event_id, event.room)
        finally:
            metrics = self.services.metrics
            metrics.child(metrics.events, adapter.platform, kind).inc()
            if kind != "command":  # invoke() times commands itself, whichever way they arrive
                metrics.child(metrics.latency, kind).observe(time.perf_counter() - started)

    async def _route(self, adapter: Adapter, event: Event, responder: Responder | None) -> str:
        """Commands to invoke(), everything else to the listeners; returns the metrics label."""
        if isinstance(event, MessageCreated) and not event.message.author.is_bot:
            body = self.command_body(event.message.text)
            if body is not None:
                await self.invoke(
                    adapter,
                    Invocation(
                        event_id=event.event_id,
                        room=event.room,
                        author=event.message.author,
                        at=event.at,
                        message_id=event.message.id,
                        text=body,
                        responder=responder,
                    ),
                )
                return "command"
        await self._handle_event(adapter, event, responder)
        return type(event).__name__

    def command_body(self, text: str) -> str | None:
        return command_body(text, self.services.settings.prefix)

    async def _handle_event(self, adapter: Adapter, event: Event, responder: Responder | None = None) -> None:
        if not self._first_delivery(adapter, event.event_id, event.at):
            return
        author = _author_of(event)
        ctx = await self._context(adapter, event.room, author, responder=responder, event_id=event.event_id)
        if isinstance(event, MemberJoined | MemberLeft) and ctx.community_id and ctx.author_id:
            tracked = await self._track_membership(ctx, event)
            if tracked is None:
                return  # joined again while present (a profile change, a repeated event): nothing new
            event = tracked
        acting = author is not None and not author.is_bot and ctx.author_id is not None
        if acting:
            activity = ACTIVITY_KINDS.get(type(event))
            # A direct chat with copbot (onboarding answers, a value story) is no message in the community:
            # it neither raises its figures nor moves anyone's level. Commands there count as commands.
            if activity is not None and not event.room.is_direct:
                self.record(ctx, activity, event.at)
            if (activity is not None or isinstance(event, PRESENCE_ONLY)) and not event.room.is_direct:
                await self._present(ctx, event.at)
        await self._run_listeners(ctx, event)
        if ctx.consumed and isinstance(event, ReactionAdded) and isinstance(adapter, ReactionMemory):
            await adapter.reaction_acted_on(event)  # taken back after a restart, it is still understood
        if acting and isinstance(event, MessageCreated) and event.room.is_direct and not ctx.consumed:
            await self._hint_in_direct_chat(ctx, event)
        elif acting and isinstance(event, MessageCreated):
            hint = self.registry.hint_for(event.message.text)
            if hint is not None:
                await self._reply_safely(ctx, Content(hint, ephemeral=True))

    async def _hint_in_direct_chat(self, ctx: Context, event: MessageCreated) -> None:
        """A direct message that is no command and no answer to a question: say how to talk to copbot."""
        prefix = self.services.settings.prefix
        hint = self.registry.hint_for(event.message.text) or (
            f"Hello! I answer commands here, like {prefix}help to see them all."
        )
        await self._reply_safely(ctx, Content(hint, ephemeral=True))

    async def _track_membership(self, ctx: Context, event: MemberJoined | MemberLeft) -> Event | None:
        assert ctx.community_id is not None and ctx.author_id is not None
        async with self.services.db.session() as session:
            if isinstance(event, MemberLeft):
                await store.leave_community(session, ctx.community_id, ctx.author_id, event.at)
                self.journal.left(ctx.community_id, ctx.author_id)
                return event
            status = await store.join_community(session, ctx.community_id, ctx.author_id, event.at)
        self.journal.present(ctx.community_id, ctx.author_id)
        if status is store.Joined.PRESENT:
            return None
        return dataclasses.replace(event, returning=status is store.Joined.RETURNING)

    async def _present(self, ctx: Context, at: datetime) -> None:
        """Someone acting in a community's room is its member, even if copbot never saw them join."""
        if ctx.community_id is not None and ctx.author_id is not None and not ctx.room.is_direct:
            await self.journal.ensure_membership(ctx.community_id, ctx.author_id, at)

    async def suggest(
        self, adapter: Adapter, room: Room, author: Member, command: str, option: str, typed: str
    ) -> list[Suggestion]:
        """What the plugin suggests for ``option`` of ``command`` while ``author`` types it: read in a unit
        of work that is rolled back, never counted as activity; none for a moderators' command asked by
        someone else, and none (logged) when the plugin fails — typing must go on."""
        suggester = self.registry.suggester(command, option)
        if suggester is None:
            return []
        ctx = await self._context(adapter, room, None)
        known = self.journal.known(author)  # a stranger is not written down for typing
        _identified(ctx, author, known.id if known else None, known.timezone if known else None)
        ctx.command = self.registry.commands[command].spec
        try:
            if ctx.command.mod_only or ctx.command.owner_only:  # the owner's own things, or a moderator's
                slug = ctx.community.slug if ctx.community else None
                ctx.is_moderator = await is_moderator(self.services.settings, adapter, author, room, slug)
                if ctx.command.mod_only and not ctx.is_moderator:
                    return []
            return (await suggester(ctx, typed[:100]))[:MAX_SUGGESTIONS]
        except Exception:
            log.exception("suggestions for %s %s failed (room %s)", command, option, room.id)
            return []
        finally:
            await _finish(ctx, commit=False)

    async def members_present(self, room: Room, members: list[Member]) -> int:
        """Members a platform lists in a community's room (at start-up): recorded quietly, not welcomed."""
        community_id = self.registry.community_for(room)
        if community_id is None or room.is_direct or not self.registry.serves(room):
            return 0
        listed = [member for member in members if not member.is_bot]
        if not listed:
            return 0
        now = self.now()
        async with self.services.db.session() as session:  # a few statements for the whole list
            member_ids = await store.ensure_listed_members(session, listed, now)
            added = await store.ensure_listed_memberships(session, community_id, member_ids, now)
        for member_id in member_ids:  # known present, as if each had acted (the journal bounds how many)
            self.journal.present(community_id, member_id)
        return added

    # --- commands ---------------------------------------------------------------------------------------

    async def invoke(self, adapter: Adapter, invocation: Invocation) -> None:
        """Run one command as one unit of work; see the module docstring for the rules."""
        metrics = self.services.metrics
        started = time.perf_counter()
        command_name = invocation.name or "?"
        if not self._first_delivery(adapter, invocation.event_id, invocation.at, queue=False):
            return
        ctx = await self._context(
            adapter,
            invocation.room,
            None,
            message_id=invocation.message_id,
            responder=invocation.responder,
            event_id=invocation.event_id,
        )
        ctx.command_prefix = invocation.prefix
        new_member = None
        marked = False  # the handled id committed with the effect
        try:
            flushed = self.journal.known(invocation.author) is None and self._reads_activity(invocation)
            if flushed:  # before the new member's row is written in this unit of work: see activity_written
                await self.activity_written()
            new_member = await self._identify_for_command(ctx, invocation.author)
            ctx.is_moderator = await is_moderator(
                self.services.settings,
                adapter,
                invocation.author,
                invocation.room,
                ctx.community.slug if ctx.community else None,
            )
            if invocation.text is not None:
                try:
                    bound, tokens, body = self.registry.resolve(invocation.text)
                except UnknownCommand as unknown:
                    raise UsageError(
                        self.registry.unknown_message(unknown.words, ctx.prefix, moderator=ctx.is_moderator),
                        example="",
                    ) from None
            else:
                bound, tokens, body = self.registry.commands[invocation.name or ""], [], ""
            command_name = bound.spec.name
            ctx.command = bound.spec
            if bound.spec.mod_only and not ctx.is_moderator:
                raise Refused(f"{ctx.prefix}{bound.spec.name} is for moderators only; nothing was changed.")
            arguments = self._arguments(ctx, bound.spec, invocation, body, tokens)
            if bound.spec.reads_activity and not flushed and not ctx.has_session:
                await self.activity_written()
            await bound.handler(ctx, **arguments)
            failpoints.hit("command.replied")
            if ctx.has_session:  # it wrote: "handled" commits with the effect, so a redelivery skips it
                marked = await store.commit_handled(
                    ctx.session, adapter.platform, invocation.event_id, invocation.at
                )
                ctx.detach_session()  # committed (or rolled back) and closed: _finish has what follows
                if not marked:  # an earlier run committed it (redelivered after a crash): keep that one
                    raise _AlreadyHandled
            await _finish(ctx, commit=True)
            failpoints.hit("command.committed")
            outcome = "ok"
        except _AlreadyHandled:
            await _finish(ctx, commit=False)
            self.services.metrics.duplicates.labels(adapter.platform).inc()
            return
        except CopbotError as error:
            await _finish(ctx, commit=False)
            outcome = "refused" if isinstance(error, Refused) else "error"
            await self._reply_safely(ctx, self.render_error(error, ctx.command, ctx.prefix))
        except Exception as error:
            await _finish(ctx, commit=False)
            outcome = "failed"
            if self.services.db.unavailable(error):  # said once per streak, not per command
                await self._reply_safely(ctx, Content(CANNOT_SAVE, ephemeral=True))
            else:
                log.exception(
                    "command %r failed (event %s, member %s, room %s)",
                    invocation.text or invocation.name,
                    invocation.event_id,
                    invocation.author.key,
                    invocation.room.id,
                )
                await self._reply_safely(ctx, Content(APOLOGY, ephemeral=True))
        except BaseException:  # cancelled by a stop: nothing is committed, and the command comes again
            await _finish(ctx, commit=False)
            raise
        if not marked:  # "handled" only now that it is answered: a crash before re-runs it (same reply key)
            self.journal.handled(adapter.platform, invocation.event_id, invocation.at)
        if outcome == "ok":
            if new_member is not None:
                self.journal.remember(invocation.author, new_member)
            self.record(ctx, "command", invocation.at, detail=command_name)
            await self._present(ctx, invocation.at)
        metrics.child(metrics.commands, command_name, outcome).inc()
        metrics.child(metrics.latency, "command").observe(time.perf_counter() - started)
        if invocation.room.is_direct and self.journal.known(invocation.author) is not None:
            # below the answer, a conversation waiting in this chat asks its question again (onboarding);
            # a stranger whose first command was refused is not written down for it
            answered = CommandAnswered(
                event_id=f"answered:{invocation.event_id}",
                room=invocation.room,
                at=invocation.at,
                member=invocation.author,
                command=command_name,
            )
            await self.emit(answered, adapter)

    async def activity_written(self) -> None:
        """Write the journal's buffer before activity is reported: without this a member's messages of the
        last half second were missing from their own ``role show``, and a scheduled digest closing its
        period left the period's last ones out of every digest.

        Before a command's unit of work opens only (the caller checks): on SQLite the journal's write would
        wait for that unit's own. A new member's first command writes their row in it, so for them it is
        written before they are identified (:meth:`_reads_activity`): others' last half second counts
        in a moderator's first ``stats`` too. A failed write is not the reader's failure: the journal has
        said so and keeps the rows, and the figures are at most half a second old."""
        with contextlib.suppress(Exception):
            await self.journal.flush()

    def _reads_activity(self, invocation: Invocation) -> bool:
        """Whether the command invoked reports activity, known before its unit of work opens; a text that
        names no command does not (its error is worded later, once the caller is known)."""
        if invocation.text is None:
            bound = self.registry.commands.get(invocation.name or "")
        else:
            try:
                bound = self.registry.resolve(invocation.text)[0]
            except CopbotError:
                return False
        return bound is not None and bound.spec.reads_activity

    def _arguments(
        self, ctx: Context, spec: CommandSpec, invocation: Invocation, body: str, tokens: list[Token]
    ) -> dict[str, Any]:
        env = ParseEnv(now=ctx.now(), timezone=ctx.timezone, resolve_member=ctx.adapter.parse_mention)
        try:
            if invocation.text is not None:
                return parse_arguments(spec, body, env, tokens=tokens)
            return convert_options(spec, invocation.options or {}, env)
        except UsageError as error:
            error.example = error.example or spec.example(ctx.prefix)
            raise

    def render_error(
        self, error: CopbotError, spec: CommandSpec | None, prefix: str | None = None
    ) -> Content:
        """One line: what was wrong, then a correct example — the same on every platform."""
        prefix = prefix or self.services.settings.prefix
        text = error.message
        if isinstance(error, UsageError):
            example = error.example
            if example is None and spec is not None:
                example = spec.example(prefix)
            if example:
                usage = spec.usage(prefix) if spec is not None else ""
                stop = " " if text.endswith((".", "?", "!")) else ". "
                if spec is not None and usage != example:
                    text = f"{text}{stop}Usage: {usage} — e.g. {example}"
                else:
                    text = f"{text}{stop}Usage: {example}"
        return Content(text=text.replace("\n", " "), ephemeral=True)

    async def _reply_safely(self, ctx: Context, content: str | Content) -> None:
        try:
            await ctx.reply(content)
        except Exception:
            log.exception("could not send a reply in %s", ctx.room)

    def _first_delivery(self, adapter: Adapter, event_id: str, at: datetime, *, queue: bool = True) -> bool:
        first = self.journal.first_delivery(adapter.platform, event_id, at, queue=queue)
        if not first:
            self.services.metrics.duplicates.labels(adapter.platform).inc()
        return first

    async def _context(
        self,
        adapter: Adapter,
        room: Room,
        author: Member | None,
        *,
        message_id: str | None = None,
        responder: Responder | None = None,
        event_id: str = "",
    ) -> Context:
        community_id = self.registry.community_for(room)
        community = self.registry.communities.get(community_id) if community_id is not None else None
        ctx = Context(
            services=self.services,
            adapter=adapter,
            room=room,
            community=community,
            community_id=community_id,
            timezone=self.registry.zone_of(community_id),
            message_id=message_id,
            responder=responder,
            event_id=event_id,
        )
        if author is not None:
            known = await self.journal.member(author, self.now())
            _identified(ctx, author, known.id, known.timezone)
        return ctx

    async def _identify_for_command(self, ctx: Context, author: Member) -> MemberRow | None:
        """Known members come from memory; a new one is created in the command's own unit of work,
        so that a refused first command leaves no trace."""
        known = self.journal.known(author)
        if known is not None:
            _identified(ctx, author, known.id, known.timezone)
            return None
        row = await store.ensure_member(ctx.session, author, self.now())
        _identified(ctx, author, row.id, row.timezone)
        return row

    def record(
        self,
        ctx: Context,
        kind: str,
        at: datetime,
        detail: str = "",
        *,
        member_id: int | None = None,
        community_id: int | None = None,
    ) -> bool:
        """Queue an activity row (the caller's, or ``member_id``'s); False, and nothing queued, for a
        member who turned tracking off — a set lookup, so the hot path stays cheap."""
        member_id = member_id if member_id is not None else ctx.author_id
        if member_id is None or not self.journal.tracks(member_id):
            return False
        self.journal.record(
            member_id=member_id,
            community_id=community_id if community_id is not None else ctx.community_id,
            kind=kind,
            platform=ctx.room.platform,
            room_id=ctx.room.id,
            at=at,
            detail=detail,
        )
        return True

    async def _run_listeners(self, ctx: Context, event: Event) -> None:
        """Each listener is its own unit of work: one that fails is rolled back and logged, the rest run."""
        owner = event.custom_id.split(":", 1)[0] if isinstance(event, ButtonClicked) else None
        for event_type, plugin, handler in self.registry.listeners:
            if not isinstance(event, event_type):
                continue
            if owner is not None and plugin.name != owner:  # a click goes to the plugin that made the button
                continue
            try:
                await handler(ctx, event)
                await _finish(ctx, commit=True)
            except CopbotError as error:
                await _finish(ctx, commit=False)
                await self._reply_safely(ctx, self.render_error(error, None))
            except Exception as error:
                await _finish(ctx, commit=False)
                if self.services.db.unavailable(error):  # said once per streak, not per listener
                    continue
                log.exception(
                    "listener %s.%s failed on %s %s in %s",
                    plugin.name,
                    getattr(handler, "__name__", handler),
                    type(event).__name__,
                    event.event_id,
                    event.room,
                )

    async def emit(self, event: Event, adapter: Adapter) -> None:
        """Plugins talk to each other through events; listeners run as for a platform event."""
        ctx = await self._context(adapter, event.room, _author_of(event), event_id=event.event_id)
        await self._run_listeners(ctx, event)

    # --- scheduled jobs ---------------------------------------------------------------------------------

    async def run_job(self, target: str, payload: dict[str, Any]) -> None:
        """Run a job's handler in its own unit of work, then send its messages; raise if it failed, so
        the scheduler keeps the job and tries again."""
        handler = self.registry.targets.get(target)
        metrics = self.services.metrics
        job_id = str(payload.pop("job_id", ""))
        due_at = payload.pop("due_at", None)
        if handler is None:
            log.warning("scheduled job %s names %s, which no loaded plugin provides; dropped", job_id, target)
            metrics.job_runs.labels(target, "missing").inc()
            return
        ctx: JobContext | None = None
        try:
            async with self.services.db.session() as session:
                ctx = JobContext(self.services, session, job_id, due_at)
                await handler(ctx, **payload)
                failpoints.hit("job.handled")
        except Exception:
            metrics.job_runs.labels(target, "failed").inc()
            raise
        failpoints.hit("job.committed")
        metrics.job_runs.labels(target, "ok").inc()
        if ctx is not None:
            for follow_up in ctx.after_commit:
                await follow_up()
            if ctx.outbox_keys:
                await self.outbox.deliver(ctx.outbox_keys)


class _AlreadyHandled(Exception):
    """A command's handled id was already committed: this run is a redelivery and is rolled back."""


async def _finish(ctx: Context, *, commit: bool) -> None:
    """End the handler's unit of work, if it opened one; then send what it queued, deliver its events."""
    session = ctx.detach_session()
    emitted, ctx.emitted = ctx.emitted, []
    activity, ctx.activity = ctx.activity, []
    follow_ups, ctx.after_commit = ctx.after_commit, []
    queued, ctx.outbox_keys = ctx.outbox_keys, []
    if session is not None:
        try:
            if commit:
                await session.commit()
            else:
                await session.rollback()
        finally:
            await session.close()
    if not commit:
        return
    pipeline = ctx.services.pipeline
    if queued and pipeline is not None:
        await pipeline.outbox.deliver(queued)
    for follow_up in follow_ups:
        await follow_up()
    if pipeline is not None:
        for kind, detail, member_id, community_id in activity:
            recorded = pipeline.record(
                ctx, kind, ctx.now(), detail, member_id=member_id, community_id=community_id
            )
            counted = member_id if member_id is not None else ctx.author_id
            if recorded and counted is not None:  # what plugins count is news for others (levels move on it)
                emitted.append(
                    ActivityCounted(
                        event_id=f"counted:{ctx.event_id}:{kind}:{counted}",
                        room=ctx.room,
                        at=ctx.now(),
                        member_id=counted,
                        community_id=community_id if community_id is not None else ctx.community_id,
                        kind=kind,
                    )
                )
    if emitted and ctx.services.emit is not None:
        for event in emitted:
            await ctx.services.emit(event)


def _identified(ctx: Context, author: Member, member_id: int | None, timezone: str | None) -> None:
    ctx.author, ctx.author_id = author, member_id
    if timezone:
        ctx.timezone = timezone


def _author_of(event: Event) -> Member | None:
    if isinstance(event, MessageCreated):
        return event.message.author
    return getattr(event, "member", None)
