"""Loads plugins, builds the command table, and handles every event and command in one pipeline.

The pipeline for an event: wait for the member's previous event to finish (one member's events are
handled in order) → skip it if it was handled before → find the community and the member → for a command:
resolve, check permission, parse, run the handler in its own unit of work, commit → then queue the
activity (see journal.py), run the jobs and deliver the events the handler asked for. Other events go to
the listeners, each in a unit of work of its own.

Errors members cause end as one line with a correct example; other errors are logged with the event's
context and the member gets a short apology. Either way nothing the command wrote is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import difflib
import importlib
import importlib.metadata
import inspect
import logging
import pkgutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.adapters.base import Adapter
from bot.commands import (
    CommandSpec,
    ParseEnv,
    SpecError,
    Token,
    convert_options,
    derive_spec,
    parse_arguments,
    tokenize,
)
from bot.config import Settings, dotted
from bot.context import Context, JobContext
from bot.errors import CopbotError, Refused, UsageError
from bot.journal import Journal
from bot.model import (
    ButtonClicked,
    Community,
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
from bot.permissions import is_moderator
from bot.plugin import CommandMeta, ListenMeta, Plugin, ScheduleMeta
from bot.services import Services
from bot.tables import MemberRow

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "copbot.plugins"
APOLOGY = "Sorry, something went wrong on my side while handling that. The team can see it in the logs."
ACTIVITY_KINDS: dict[type[Event], str] = {ReactionAdded: "reaction", PollVoted: "poll_vote"}


# --- discovery ----------------------------------------------------------------------------------------


def discover_plugins() -> dict[str, type[Plugin]]:
    """Bundled plugins (``plugins/<name>/plugin.py``) and third-party ones from entry points."""
    import plugins
    from bot.core_commands import Core

    found: dict[str, type[Plugin]] = {Core.name: Core}
    for info in sorted(pkgutil.iter_modules(plugins.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"plugins.{info.name}.plugin")
        for cls in _plugin_classes(module):
            found[cls.name] = cls
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        cls = entry.load()
        if not (isinstance(cls, type) and issubclass(cls, Plugin)):
            raise TypeError(f"entry point {entry.name!r} in {ENTRY_POINT_GROUP} is not a Plugin class")
        found[cls.name] = cls
    return found


def _plugin_classes(module: Any) -> Iterable[type[Plugin]]:
    for _, value in inspect.getmembers(module, inspect.isclass):
        if issubclass(value, Plugin) and value is not Plugin and value.__module__ == module.__name__:
            if not value.name:
                raise TypeError(f"{value.__qualname__} in {module.__name__} must set a name")
            yield value


def validate_plugin_configs(
    settings: Settings, available: dict[str, type[Plugin]] | None = None
) -> list[str]:
    """Problems with ``[plugins.<name>]`` tables, as dotted paths, for check-config and start-up."""
    available = discover_plugins() if available is None else available
    problems = []
    for name, table in settings.plugins.items():
        cls = available.get(name)
        if cls is None:
            known = ", ".join(sorted(available)) or "none"
            problems.append(f"plugins.{name}: no such plugin (available: {known})")
            continue
        try:
            cls.Config.model_validate(table)
        except ValidationError as error:
            for item in error.errors():
                location = ("plugins", name, *item["loc"])
                reason = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
                problems.append(f"{dotted(location)}: {reason}")
    return problems


# --- the registry -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BoundCommand:
    spec: CommandSpec
    plugin: Plugin
    handler: Callable[..., Awaitable[None]]


class Registry:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.plugins: dict[str, Plugin] = {}
        self.commands: dict[str, BoundCommand] = {}
        self.listeners: list[tuple[type[Event], Plugin, Callable[..., Awaitable[None]]]] = []
        self.targets: dict[str, Callable[..., Awaitable[None]]] = {}
        self.recurring: list[tuple[str, ScheduleMeta]] = []
        self.community_ids: dict[str, int] = {}
        self.communities: dict[int, Community] = {}
        self.room_map: dict[tuple[str, str], int] = {}
        self.journal = Journal(services.db)
        self._turns: dict[str, tuple[asyncio.Lock, int]] = {}
        services.registry = self

    # --- loading ----------------------------------------------------------------------------------------

    def load(self, classes: Iterable[type[Plugin]]) -> None:
        """Instantiate enabled plugins and read their declarations; spec errors surface here, not later."""
        tables = self.services.settings.plugins
        for cls in classes:
            config = cls.Config.model_validate(tables.get(cls.name, {}))
            if not config.enabled:
                log.info("plugin %s is disabled in the config", cls.name)
                continue
            if cls.name in self.plugins:
                raise TypeError(f"two plugins are named {cls.name!r}")
            plugin = cls(self.services, config)
            self.plugins[cls.name] = plugin
            self._read_declarations(plugin)

    def _read_declarations(self, plugin: Plugin) -> None:
        for attribute in dir(type(plugin)):
            function = getattr(type(plugin), attribute, None)
            if function is None or not callable(function):
                continue
            bound = getattr(plugin, attribute)
            meta: CommandMeta | None = getattr(function, "__copbot_command__", None)
            if meta is not None:
                if meta.name in self.commands:
                    raise SpecError(f"command {meta.name!r} is declared by two plugins")
                spec = derive_spec(
                    function,
                    name=meta.name,
                    help=meta.help,
                    mod_only=meta.mod_only,
                    examples=meta.examples,
                    plugin=plugin.name,
                )
                self.commands[meta.name] = BoundCommand(spec, plugin, bound)
            listen: ListenMeta | None = getattr(function, "__copbot_listen__", None)
            if listen is not None:
                self.listeners.append((listen.event_type, plugin, bound))
            scheduled: ScheduleMeta | None = getattr(function, "__copbot_schedule__", None)
            if scheduled is not None:
                target = f"{plugin.name}.{scheduled.id}"
                self.targets[target] = bound
                if scheduled.interval is not None or scheduled.cron is not None:
                    self.recurring.append((target, scheduled))

    @property
    def specs(self) -> list[CommandSpec]:
        return [bound.spec for bound in self.commands.values()]

    def groups(self) -> set[str]:
        return {name.split()[0] for name in self.commands if " " in name}

    async def setup(self) -> None:
        for plugin in self.plugins.values():
            await plugin.setup()

    async def teardown(self) -> None:
        for plugin in reversed(list(self.plugins.values())):
            try:
                await plugin.teardown()
            except Exception:
                log.exception("plugin %s failed to tear down", plugin.name)

    async def load_communities(self, session: AsyncSession) -> None:
        settings = self.services.settings
        self.community_ids = await store.sync_communities(session, settings.community_list(), self.now())
        self.communities = {
            self.community_ids[c.slug]: Community(c.slug, c.name, c.domain, c.timezone, c.rules)
            for c in settings.community_list()
        }
        self.room_map = await store.room_communities(session)

    def dispatcher(self, adapter: Adapter) -> Dispatcher:
        """What an adapter delivers to: events, slash-command invocations, and community lookups."""
        return Dispatcher(self, adapter)

    async def attach_room(self, platform: str, room_id: str, slug: str) -> None:
        """Bind a platform room to a community (an invite accepted, a configured room joined)."""
        community_id = self.community_ids[slug]
        async with self.services.db.session() as session:
            await store.attach_room(session, platform, room_id, community_id, self.now())
        self.room_map[(platform, room_id)] = community_id

    def now(self) -> datetime:
        return self.services.clock.now()

    # --- resolving commands -----------------------------------------------------------------------------

    def resolve(self, body: str) -> tuple[BoundCommand, list[Token], str]:
        """The longest command name at the start of ``body``, its argument tokens, and the body."""
        tokens = tokenize(body)
        if not tokens:
            raise UsageError(f"a command is missing; type {self.services.settings.prefix}help")
        words = [token.text.lower() for token in tokens[:3]]
        for length in (3, 2, 1):
            if len(words) < length or any(token.quoted for token in tokens[:length]):
                continue
            name = " ".join(words[:length])
            bound = self.commands.get(name)
            if bound is not None:
                return bound, tokens[length:], body
        raise self._unknown(words)

    def _unknown(self, words: list[str]) -> UsageError:
        prefix = self.services.settings.prefix
        if words[0] in self.groups():
            subs = sorted(
                name.split(maxsplit=1)[1] for name in self.commands if name.startswith(words[0] + " ")
            )
            typed = f" {words[1]}" if len(words) > 1 else ""
            return UsageError(
                f"{prefix}{words[0]}{typed} is not a command; {prefix}{words[0]} has: {', '.join(subs)} "
                f"— try {prefix}help {words[0]}"
            )
        typed = (
            " ".join(words[:2]) if len(words) > 1 and f"{words[0]} {words[1]}" in self._names() else words[0]
        )
        closest = _closest(typed, self._names())
        return UsageError(
            f"Unknown command {prefix}{typed} — did you mean {prefix}{closest}? "
            f"Type {prefix}help for the list."
        )

    def _names(self) -> list[str]:
        return sorted(set(self.commands) | self.groups())

    # --- the pipeline -----------------------------------------------------------------------------------

    async def handle(self, adapter: Adapter, event: Event, *, responder: Responder | None = None) -> None:
        """Entry point for every platform event; never raises, so one bad event can't stop an adapter.

        ``responder`` answers the member where the platform wants it (a Discord interaction's response).
        """
        started = time.perf_counter()
        kind = type(event).__name__
        author = _author_of(event)
        try:
            async with self.in_turn(author):
                kind = await self._route(adapter, event, responder)
        except Exception:
            log.exception("failed to handle %s %s in %s", kind, event.event_id, event.room)
        finally:
            metrics = self.services.metrics
            metrics.events.labels(adapter.platform, kind).inc()
            if kind != "command":  # invoke() times commands itself, whichever way they arrive
                metrics.latency.labels(kind).observe(time.perf_counter() - started)

    @contextlib.asynccontextmanager
    async def in_turn(self, member: Member | None) -> AsyncIterator[None]:
        """One member's events are handled one at a time, in order: an answer typed (or clicked) right
        after a question never races the unit of work that asked it. Different members run concurrently."""
        if member is None:
            yield
            return
        key = member.key
        lock, users = self._turns.get(key, (asyncio.Lock(), 0))
        self._turns[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._turns[key]
            if users <= 1:
                del self._turns[key]
            else:
                self._turns[key] = (lock, users - 1)

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
        prefix = self.services.settings.prefix
        stripped = text.lstrip()
        if (
            stripped.startswith(prefix)
            and len(stripped) > len(prefix)
            and not stripped[len(prefix)].isspace()
        ):
            return stripped[len(prefix) :]
        return None

    async def _handle_event(self, adapter: Adapter, event: Event, responder: Responder | None = None) -> None:
        if not self._first_delivery(adapter, event.event_id, event.at):
            return
        author = _author_of(event)
        ctx = await self._context(adapter, event.room, author, responder=responder)
        if isinstance(event, MemberJoined | MemberLeft) and ctx.community_id and ctx.author_id:
            event = await self._track_membership(ctx, event)
        if author is not None and not author.is_bot and ctx.author_id is not None:
            activity = "message" if isinstance(event, MessageCreated) else ACTIVITY_KINDS.get(type(event))
            if activity is not None:
                self.record(ctx, activity, event.at)
        await self._run_listeners(ctx, event)

    async def _track_membership(self, ctx: Context, event: MemberJoined | MemberLeft) -> Event:
        assert ctx.community_id is not None and ctx.author_id is not None
        async with self.services.db.session() as session:
            if isinstance(event, MemberLeft):
                await store.leave_community(session, ctx.community_id, ctx.author_id, event.at)
                return event
            returning = await store.join_community(session, ctx.community_id, ctx.author_id, event.at)
        return dataclasses.replace(event, returning=returning)

    async def invoke(self, adapter: Adapter, invocation: Invocation) -> None:
        """Run one command as one unit of work; see the module docstring for the rules."""
        metrics = self.services.metrics
        started = time.perf_counter()
        command_name = invocation.name or "?"
        if not self._first_delivery(adapter, invocation.event_id, invocation.at):
            return
        ctx = await self._context(
            adapter, invocation.room, None, message_id=invocation.message_id, responder=invocation.responder
        )
        ctx.command_prefix = invocation.prefix
        new_member = None
        try:
            new_member = await self._identify_for_command(ctx, invocation.author)
            if invocation.text is not None:
                bound, tokens, body = self.resolve(invocation.text)
            else:
                bound, tokens, body = self.commands[invocation.name or ""], [], ""
            command_name = bound.spec.name
            ctx.command = bound.spec
            ctx.is_moderator = await is_moderator(
                self.services.settings,
                adapter,
                invocation.author,
                invocation.room,
                ctx.community.slug if ctx.community else None,
            )
            if bound.spec.mod_only and not ctx.is_moderator:
                raise Refused(f"{ctx.prefix}{bound.spec.name} is for moderators only; nothing was changed.")
            arguments = self._arguments(ctx, bound.spec, invocation, body, tokens)
            await bound.handler(ctx, **arguments)
            await _finish(ctx, commit=True)
            outcome = "ok"
        except CopbotError as error:
            await _finish(ctx, commit=False)
            outcome = "refused" if isinstance(error, Refused) else "error"
            await self._reply_safely(ctx, self.render_error(error, ctx.command, ctx.prefix))
        except Exception:
            await _finish(ctx, commit=False)
            outcome = "failed"
            log.exception(
                "command %r failed (event %s, member %s, room %s)",
                invocation.text or invocation.name,
                invocation.event_id,
                invocation.author.key,
                invocation.room.id,
            )
            await self._reply_safely(ctx, Content(APOLOGY, ephemeral=True))
        if outcome == "ok":
            if new_member is not None:
                self.journal.remember(invocation.author, new_member)
            self.record(ctx, "command", invocation.at, detail=command_name)
        metrics.commands.labels(command_name, outcome).inc()
        metrics.latency.labels("command").observe(time.perf_counter() - started)

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
                if spec is not None and usage != example:
                    text = f"{text}. Usage: {usage} — e.g. {example}"
                else:
                    text = f"{text}. Usage: {example}"
        return Content(text=text.replace("\n", " "), ephemeral=True)

    async def _reply_safely(self, ctx: Context, content: str | Content) -> None:
        try:
            await ctx.reply(content)
        except Exception:
            log.exception("could not send a reply in %s", ctx.room)

    def _first_delivery(self, adapter: Adapter, event_id: str, at: datetime) -> bool:
        first = self.journal.first_delivery(adapter.platform, event_id, at)
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
    ) -> Context:
        community_id = self.community_for(room)
        community = self.communities.get(community_id) if community_id is not None else None
        ctx = Context(
            services=self.services,
            adapter=adapter,
            room=room,
            community=community,
            community_id=community_id,
            timezone=community.timezone if community else self.services.settings.timezone,
            message_id=message_id,
            responder=responder,
        )
        if author is not None:
            known = await self.journal.member(author, self.now())
            self._identified(ctx, author, known.id, known.timezone)
        return ctx

    async def _identify_for_command(self, ctx: Context, author: Member) -> MemberRow | None:
        """Known members come from memory; a new one is created in the command's own unit of work,
        so that a refused first command leaves no trace."""
        known = self.journal.known(author)
        if known is not None:
            self._identified(ctx, author, known.id, known.timezone)
            return None
        row = await store.ensure_member(ctx.session, author, self.now())
        self._identified(ctx, author, row.id, row.timezone)
        return row

    @staticmethod
    def _identified(ctx: Context, author: Member, member_id: int | None, timezone: str | None) -> None:
        ctx.author, ctx.author_id = author, member_id
        if timezone:
            ctx.timezone = timezone

    def community_for(self, room: Room) -> int | None:
        if room.community_id is not None and room.community_id in self.community_ids:
            return self.community_ids[room.community_id]
        return self.room_map.get((room.platform, room.id))

    def record(self, ctx: Context, kind: str, at: datetime, detail: str = "") -> None:
        if ctx.author_id is None:
            return
        self.journal.record(
            member_id=ctx.author_id,
            community_id=ctx.community_id,
            kind=kind,
            platform=ctx.room.platform,
            room_id=ctx.room.id,
            at=at,
            detail=detail,
        )

    async def _run_listeners(self, ctx: Context, event: Event) -> None:
        """Each listener is its own unit of work: one that fails is rolled back and logged, the rest run."""
        owner = event.custom_id.split(":", 1)[0] if isinstance(event, ButtonClicked) else None
        for event_type, plugin, handler in self.listeners:
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
            except Exception:
                await _finish(ctx, commit=False)
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
        ctx = await self._context(adapter, event.room, _author_of(event))
        await self._run_listeners(ctx, event)

    # --- scheduled jobs ---------------------------------------------------------------------------------

    async def run_job(self, target: str, payload: dict[str, Any]) -> None:
        handler = self.targets.get(target)
        metrics = self.services.metrics
        if handler is None:
            log.warning(
                "scheduled job %s names %s, which no loaded plugin provides; dropped",
                payload.get("job_id"),
                target,
            )
            metrics.job_runs.labels(target, "missing").inc()
            return
        try:
            async with self.services.db.session() as session:
                await handler(
                    JobContext(self.services, session, payload.get("job_id", "")),
                    **{key: value for key, value in payload.items() if key != "job_id"},
                )
        except Exception:
            metrics.job_runs.labels(target, "failed").inc()
            raise
        metrics.job_runs.labels(target, "ok").inc()


class Dispatcher:
    """The one object an adapter talks to (bound to that adapter), so adapters never reach into the core."""

    def __init__(self, registry: Registry, adapter: Adapter) -> None:
        self.registry = registry
        self.adapter = adapter

    async def __call__(self, event: Event, *, responder: Responder | None = None) -> None:
        await self.registry.handle(self.adapter, event, responder=responder)

    async def invoke(self, invocation: Invocation) -> None:
        async with self.registry.in_turn(invocation.author):
            await self.registry.invoke(self.adapter, invocation)

    def has_command(self, name: str) -> bool:
        return name in self.registry.commands

    def community_id(self, slug: str) -> int:
        return self.registry.community_ids[slug]

    async def attach_room(self, room_id: str, slug: str) -> None:
        await self.registry.attach_room(self.adapter.platform, room_id, slug)


async def _finish(ctx: Context, *, commit: bool) -> None:
    """End the handler's unit of work, if it opened one; then deliver the events it emitted."""
    session = ctx.detach_session()
    emitted, ctx.emitted = ctx.emitted, []
    activity, ctx.activity = ctx.activity, []
    follow_ups, ctx.after_commit = ctx.after_commit, []
    if session is not None:
        try:
            if commit:
                await session.commit()
            else:
                await session.rollback()
        finally:
            await session.close()
    if commit:
        for follow_up in follow_ups:
            await follow_up()
    registry = ctx.services.registry
    if commit and registry is not None:
        for kind, detail in activity:
            registry.record(ctx, kind, ctx.now(), detail)
    if commit and emitted and ctx.services.emit is not None:
        for event in emitted:
            await ctx.services.emit(event)


def _author_of(event: Event) -> Member | None:
    if isinstance(event, MessageCreated):
        return event.message.author
    return getattr(event, "member", None)


def _closest(typed: str, names: list[str]) -> str:
    matches = difflib.get_close_matches(typed, names, n=1, cutoff=0.0)
    return matches[0] if matches else "help"
