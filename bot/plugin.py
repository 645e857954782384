"""The Plugin base class and its decorators.

Decorators only attach metadata; the registry reads it when plugins load. Services (database, scheduler,
config, clock, logger, a way to emit events and reach members) are handed to the plugin's constructor:
there are no globals, so a test builds a whole bot in a few lines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from bot.model import Event

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.services import Services

F = TypeVar("F", bound=Callable[..., Any])


class PluginConfig(BaseModel):
    """The ``[plugins.<name>]`` table; subclasses add their keys. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True


@dataclass(frozen=True, slots=True)
class CommandMeta:
    name: str
    help: str
    mod_only: bool
    examples: tuple[str, ...]
    owner_only: bool = False
    reads_activity: bool = False


@dataclass(frozen=True, slots=True)
class SuggestMeta:
    option: str


@dataclass(frozen=True, slots=True)
class ListenMeta:
    event_type: type[Event]


@dataclass(frozen=True, slots=True)
class ScheduleMeta:
    """A scheduled target. With neither ``interval`` nor ``cron`` it is a target for one-off jobs."""

    id: str
    interval: timedelta | None = None
    cron: str | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """A one-off job a plugin's own data calls for: ``id`` as stored, ``target`` as ``plugin.schedule_id``;
    ``community_id``: the community it belongs to (it runs in the process serving it), None for none."""

    id: str
    when: datetime
    target: str
    payload: dict[str, Any] = field(default_factory=dict)
    community_id: int | None = None


@dataclass(frozen=True, slots=True)
class Expertise:
    """A member who knows about a topic, by some plugin's evidence, and why in words ("shared 3 items
    tagged #membranes"); ``score`` ranks across plugins (a strong profile match is about 1.0)."""

    member_id: int
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """Whom or what one line of a digest section names, as copbot's web copy writes it (``web_lines``, or
    ``lines`` when they are the same): kept with the copy, so that ``profile forget`` and ``profile set
    public off`` change exactly what was written for the member — a name they had then, an item of theirs
    since deleted — and never a word elsewhere that only looks like their name; and which item a line
    shows, so that one leaving the repertoire leaves the copy too."""

    line: int
    """Which line of the section (0-based)."""
    member_id: int | None = None
    """The member the line names, where it names them (``name`` at ``at``); None: it names nobody."""
    name: str = ""
    at: int = 0
    item_by: int | None = None
    """The line shows a repertoire item credited to this member (its title in it): the whole line goes
    when a forget with ``--remove-items`` deletes their items."""
    item_id: int | None = None
    """The repertoire item the line shows: the whole line goes when the item leaves the repertoire
    otherwise (``repertoire remove``, its message deleted on the platform; see
    :meth:`Plugin.items_removed`)."""


@dataclass(frozen=True, slots=True)
class DigestSection:
    """A plugin's part of a community's digest for a period: a title and plain-text lines (member text
    as written: platforms escape it), placed by ``order`` (new members 10 … activity 90)."""

    title: str
    lines: tuple[str, ...]
    order: int = 50
    web_lines: tuple[str, ...] | None = None
    """The lines as copbot's own copy shows them on the web (the dashboard's latest digest, the Atom feed,
    which outsiders read), when ``lines`` name members who did not choose ``profile set public on``: those
    are ``UNNAMED`` there, as on every other web page. None: the same as ``lines``."""
    entries: tuple[DigestEntry, ...] = ()
    """Who and what the web copy's lines name (see :class:`DigestEntry`)."""


UNNAMED = "a member"
"""How the web names a member who did not choose to show their name there (``members.public``)."""


@dataclass(frozen=True, slots=True)
class Panel:
    """A plugin's box on the community's dashboard page: a title, plain-text lines (escaped when shown),
    and optionally a link to one of the community's pages or feeds (``("Calendar", "meetings.ics")``),
    relative to ``/c/<slug>/``. A link without a query string carries the page's own (a private
    community's key); one with its own (a feed's signed key, ``meetings.ics?key=…``) is used as it is."""

    title: str
    lines: tuple[str, ...]
    order: int = 50
    link: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class RouteMeta:
    """A page or feed on the web part (GET), e.g. ``/c/{slug}/meetings.ics``."""

    path: str


def _marked(func: F, attribute: str, meta: object) -> F:
    """``func`` carrying ``meta`` as ``attribute``, which the registry reads back with getattr. (A function
    takes any attribute; set through setattr because its type declares none.)"""
    setattr(func, attribute, meta)
    return func


def route(path: str) -> Callable[[F], F]:
    """Serve the method at ``path`` on the web part; it takes an aiohttp request and returns a response.

    The web part is optional: a plugin imports aiohttp.web inside such a method, never at module level.
    """

    def mark(func: F) -> F:
        return _marked(func, "__copbot_route__", RouteMeta(path))

    return mark


def command(
    name: str,
    *,
    help: str = "",
    mod: bool = False,
    owner: bool = False,
    examples: Sequence[str] = (),
    reads_activity: bool = False,
) -> Callable[[F], F]:
    """Declare a command; its parameters after ``ctx`` are its typed arguments and options.

    ``mod``: for moderators only (checked by the pipeline). ``owner``: for whoever made the thing it acts
    on (a poll's creator, an item's author) or a moderator — checked by the handler, which knows the
    thing; declared here so help says so and the permission tests cover every such command.
    ``reads_activity``: it reports or weighs recorded activity (messages, contributions, last seen). The
    journal writes activity every half second; for such a command the pipeline writes what it holds
    first, so the member's own last messages count in the answer.
    """

    def mark(func: F) -> F:
        meta = CommandMeta(name, help, mod, tuple(examples), owner, reads_activity)
        return _marked(func, "__copbot_command__", meta)

    return mark


def suggests(option: str) -> Callable[[F], F]:
    """The method suggests values for the option named ``option`` of this plugin's commands while a member
    types it (Discord's autocomplete): ``async (ctx, typed) -> list[Suggestion]`` (see bot/suggest.py),
    at most 25, reading only. ``ctx.command`` says which command is being typed."""

    def mark(func: F) -> F:
        return _marked(func, "__copbot_suggests__", SuggestMeta(option))

    return mark


def listen(event_type: type[Event]) -> Callable[[F], F]:
    """Call the method with ``(ctx, event)`` for every event of that type (and its subclasses)."""

    def mark(func: F) -> F:
        return _marked(func, "__copbot_listen__", ListenMeta(event_type))

    return mark


def schedule(id: str, *, interval: timedelta | None = None, cron: str | None = None) -> Callable[[F], F]:
    """Run the method on a schedule (``interval`` or ``cron``), or mark it as a one-off job target."""
    if interval is not None and cron is not None:
        raise ValueError(f"schedule {id!r}: give interval or cron, not both")

    def mark(func: F) -> F:
        return _marked(func, "__copbot_schedule__", ScheduleMeta(id, interval, cron))

    return mark


class Plugin:
    """Base of every capability. Subclasses set ``name`` and, if they have settings, ``Config``."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Config: ClassVar[type[PluginConfig]] = PluginConfig
    activity_kinds: ClassVar[frozenset[str]] = frozenset()
    """The kinds of activity this plugin counts (``ctx.count_activity(kind)``): weights may name them."""

    def __init__(self, services: Services, config: PluginConfig) -> None:
        self.services = services
        self.config = config
        self.log = logging.getLogger(f"copbot.plugins.{self.name}")

    async def setup(self) -> None:
        """Called once after every plugin is constructed and the database is migrated."""

    async def schedule_per_community(
        self, job_id: Callable[[str], str], target: str, cron: str, overrides: Mapping[str, str]
    ) -> None:
        """A recurring job for each community this process serves, on ``cron`` (or the community's own
        line in ``overrides``; an empty one cancels it), in the community's zone and owned by it."""
        scheduler, registry = self.services.scheduler, self.services.registry
        if scheduler is None or registry is None:
            return
        for slug, community_id in registry.served.items():  # the others' by the processes serving them
            line = overrides.get(slug, cron)
            if not line:
                await scheduler.cancel(job_id(slug))
                continue
            zone = registry.communities[community_id].timezone
            await scheduler.every(job_id(slug), target, cron=line, timezone=zone, community=slug)

    def choice_names(self) -> Mapping[str, Mapping[str, str]]:
        """Choices of this plugin's options that the config renames (option name → choice → the name
        members see): a command then takes the name members see as well as the choice, and Discord lists
        it. Members who read "Stewards" everywhere type it too."""
        return {}

    async def started(self) -> None:
        """Called once copbot has started: the platforms are connected and overdue jobs have run. For work
        that needs the platforms (bringing them in line with the database); long work goes in a task."""

    async def teardown(self) -> None:
        """Called on shutdown, in reverse order of setup."""

    async def expertise(
        self, session: AsyncSession, topic: str, community_ids: Sequence[int]
    ) -> Sequence[Expertise]:
        """Members this plugin's data shows to know about ``topic`` — asked by ``experts``, so that
        evidence from any plugin (a profile, items shared) ranks side by side without imports."""
        return ()

    async def digest(
        self, session: AsyncSession, community_id: int, start: datetime, end: datetime, tz: str
    ) -> Sequence[DigestSection]:
        """This plugin's sections of the digest for ``[start, end)`` (times in ``tz``); none if quiet."""
        return ()

    async def panels(
        self, session: AsyncSession, community_id: int, now: datetime, tz: str
    ) -> Sequence[Panel]:
        """This plugin's boxes on the community's dashboard (upcoming meetings, open polls …)."""
        return ()

    async def jobs(self, session: AsyncSession) -> Sequence[Job]:
        """The one-off jobs this plugin's data implies (each open poll's close), asked at every start.

        Any that the job store lacks is added back, and those already due run before copbot starts
        handling events: work is found from the plugin's own deadlines, not only from the job store.
        """
        return ()

    async def personal_data(self, session: AsyncSession, member_ids: Sequence[int]) -> Mapping[str, Any]:
        """What this plugin stores about these accounts — all accounts of one person — as JSON-able data
        (lists, dicts, strings, numbers; times as ISO text), for ``profile export``. Empty if nothing.

        Never reveal what the plugin keeps from everyone, the member included (an anonymous vote's choice).
        """
        return {}

    async def hide_names(self, session: AsyncSession, member_ids: Sequence[int]) -> None:
        """These accounts no longer want their name on the community's web pages (``profile set public
        off``): take it out of the texts this plugin keeps for the web (a digest's copy names those who
        were public when it was posted), as :data:`UNNAMED`, in the caller's unit of work. What is drawn
        from the member rows at each request follows the choice by itself."""

    async def items_removed(self, session: AsyncSession, item_ids: Sequence[int]) -> None:
        """These repertoire items left the repertoire — removed (``repertoire remove``), or deleted with the
        message they were saved from: take them out of the texts this plugin keeps for the web (a digest's
        copy shows their titles), in the caller's unit of work. Called by the repertoire, which owns them."""

    async def forget(
        self, session: AsyncSession, member_ids: Sequence[int], *, remove_items: bool
    ) -> Sequence[str]:
        """Delete or anonymise what this plugin stores about these accounts (``profile forget``), in the
        caller's unit of work; returns plain sentences of what was deleted and what was kept ("12
        repertoire items kept, credited to 'a former member'"). ``remove_items``: delete what the member
        made for the community (repertoire items, stories) instead of keeping it without their name.

        Runs before the core anonymises the member rows: names and platform ids can still be read (to take
        them out of stored texts, see :func:`bot.privacy.scrub`). Rows that others' figures count (votes,
        RSVPs, upvotes) are best kept pointing at the same member ids, which become "a former member"."""
        return ()
