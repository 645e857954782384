"""The plugin and command table: which plugins are loaded, what they declare, and how typed text finds
its command.

Plugins are discovered (bundled ones and entry points), constructed with their typed config table, and
read once: their commands become :class:`~bot.commands.CommandSpec` entries, their listeners, suggesters
and scheduled targets are listed for the pipeline (bot/pipeline.py) and the scheduler. Resolving
``poll create "Q" A B`` to its command, and suggesting one that is close in spelling when nothing
matches, happens here too.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
import pkgutil
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot import standby, store
from bot.commands import CommandSpec, Kind, OptionSpec, SpecError, derive_spec
from bot.errors import UsageError
from bot.model import Community, Event, Room
from bot.plugin import CommandMeta, ListenMeta, Plugin, PluginConfig, RouteMeta, ScheduleMeta, SuggestMeta
from bot.services import Services
from bot.tokens import Token, tokenize

if TYPE_CHECKING:
    from bot.suggest import Suggestion

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "copbot.plugins"
SUGGESTION_CUTOFF = 0.6
"""How alike a typed name and a command must be (difflib's ratio) before "did you mean" offers it."""


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


def declared_commands(cls: type[Plugin]) -> Iterator[tuple[Callable[..., Any], CommandMeta]]:
    """Each command a plugin class declares (its function and what ``@command`` said), read without
    deriving its spec: a plugin turned off is never checked, only named."""
    for attribute in dir(cls):
        function = getattr(cls, attribute, None)
        meta: CommandMeta | None = getattr(function, "__copbot_command__", None)
        if function is not None and meta is not None:
            yield function, meta


def declared_specs(classes: Iterable[type[Plugin]]) -> list[CommandSpec]:
    """The command specs plugin classes declare, without loading them (for docs and permission tests)."""
    return [
        _spec(function, meta, cls.name, cls.Config)
        for cls in classes
        for function, meta in declared_commands(cls)
    ]


def _spec(
    function: Callable[..., Any], meta: CommandMeta, plugin: str, config: PluginConfig | type[PluginConfig]
) -> CommandSpec:
    """A command's spec from its function and what ``@command`` said of it; a figure its help names as a
    setting of the plugin (``{list_days}``) is the configured one — the default for a class not loaded."""
    spec = derive_spec(
        function,
        name=meta.name,
        help=meta.help,
        mod_only=meta.mod_only,
        examples=meta.examples,
        plugin=plugin,
        owner_only=meta.owner_only,
        reads_activity=meta.reads_activity,
    )
    if "{" in spec.help or "{" in spec.details:
        spec = replace(
            spec, help=_with_settings(spec.help, config), details=_with_settings(spec.details, config)
        )
    return spec


def _with_settings(text: str, config: PluginConfig | type[PluginConfig]) -> str:
    """``{name}`` of one of the plugin's settings filled with its value; other braces left as written
    (``welcome set``'s help shows its own placeholders)."""
    model = config if isinstance(config, type) else type(config)
    for name, field in model.model_fields.items():
        if f"{{{name}}}" in text:
            value = field.get_default(call_default_factory=True) if config is model else getattr(config, name)
            text = text.replace(f"{{{name}}}", str(value))
    return text


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
        self.disabled: dict[str, Plugin] = {}
        """Plugins turned off in the config: never set up, never handed an event, a command or a job. Their
        tables and rows stay, so what one stored while it was on is still a person's (see :meth:`holders`)."""
        self.turned_off: dict[str, str] = {}
        """Command names of the disabled plugins → the plugin: a member who used one last week hears that it
        is off here, not that it never existed (see :meth:`turned_off_for`)."""
        self.commands: dict[str, BoundCommand] = {}
        self.suggesters: dict[tuple[str, str], Callable[..., Awaitable[list[Suggestion]]]] = {}
        """(plugin, option name) → the method suggesting values for that option of the plugin's commands."""
        self.listeners: list[tuple[type[Event], Plugin, Callable[..., Awaitable[None]]]] = []
        self.targets: dict[str, Callable[..., Awaitable[None]]] = {}
        self.recurring: list[tuple[str, ScheduleMeta]] = []
        self.routes: list[tuple[str, Callable[..., Awaitable[Any]]]] = []
        self.community_ids: dict[str, int] = {}
        self.communities: dict[int, Community] = {}
        self.room_map: dict[tuple[str, str], int] = {}
        self.served: dict[str, int] = {}
        """The communities this process serves (slug → id): all, unless ``[instance] communities``
        divides them among several processes (see :meth:`serves`)."""
        settings = services.settings
        self._partitioned = settings.partitioned
        self._served_ids: set[int] = set()
        self._direct_messages = settings.answers_direct_messages
        services.registry = self

    # --- loading ----------------------------------------------------------------------------------------

    def load(self, classes: Iterable[type[Plugin]]) -> None:
        """Instantiate enabled plugins and read their declarations; spec errors surface here, not later."""
        tables = self.services.settings.plugins
        for cls in classes:
            config = cls.Config.model_validate(tables.get(cls.name, {}))
            if cls.name in self.plugins or cls.name in self.disabled:
                raise TypeError(f"two plugins are named {cls.name!r}")
            plugin = cls(self.services, config)
            if not config.enabled:
                log.info("plugin %s is disabled in the config", cls.name)
                self.disabled[cls.name] = plugin
                for _, meta in declared_commands(cls):
                    self.turned_off.setdefault(meta.name, cls.name)
                continue
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
                spec = _spec(function, meta, plugin.name, plugin.config)
                self.commands[meta.name] = BoundCommand(spec, plugin, bound)
            suggests: SuggestMeta | None = getattr(function, "__copbot_suggests__", None)
            if suggests is not None:
                self.suggesters[(plugin.name, suggests.option)] = bound
            listen: ListenMeta | None = getattr(function, "__copbot_listen__", None)
            if listen is not None:
                self.listeners.append((listen.event_type, plugin, bound))
            web: RouteMeta | None = getattr(function, "__copbot_route__", None)
            if web is not None:
                self.routes.append((web.path, bound))
            scheduled: ScheduleMeta | None = getattr(function, "__copbot_schedule__", None)
            if scheduled is not None:
                target = f"{plugin.name}.{scheduled.id}"
                self.targets[target] = bound
                if scheduled.interval is not None or scheduled.cron is not None:
                    self.recurring.append((target, scheduled))
        self._dress_options(plugin)

    def _dress_options(self, plugin: Plugin) -> None:
        """What the plugin says of its commands' options beyond their signatures: the ones it suggests
        values for (platforms offer those as they are typed), and the names its config gives the choices
        of a choice option (``role set @ana stewards``)."""
        offered = {option for name, option in self.suggesters if name == plugin.name}
        renamed = {option: tuple(names.items()) for option, names in plugin.choice_names().items() if names}

        def dressed(option: OptionSpec) -> OptionSpec:
            if option.name in offered:
                option = replace(option, suggested=True)
            if option.kind is Kind.CHOICE and option.name in renamed:
                option = replace(option, choice_names=renamed[option.name])
            return option

        for command_name, bound in list(self.commands.items()):
            if bound.plugin is plugin:
                options = tuple(dressed(option) for option in bound.spec.options)
                self.commands[command_name] = replace(bound, spec=replace(bound.spec, options=options))

    def suggester(self, command: str, option: str) -> Callable[..., Awaitable[list[Suggestion]]] | None:
        bound = self.commands.get(command)
        return None if bound is None else self.suggesters.get((bound.plugin.name, option))

    def holders(self) -> list[Plugin]:
        """Every plugin that may hold someone's data, enabled or not: ``profile export`` and ``forget`` must
        reach what a plugin stored before an operator turned it off."""
        return [*self.plugins.values(), *self.disabled.values()]

    @property
    def specs(self) -> list[CommandSpec]:
        return [bound.spec for bound in self.commands.values()]

    def groups(self) -> set[str]:
        return {name.split()[0] for name in self.commands if " " in name}

    async def setup(self) -> None:
        for plugin in self.plugins.values():
            await plugin.setup()

    async def started(self) -> None:
        for plugin in self.plugins.values():
            try:
                await plugin.started()
            except Exception:
                log.exception("plugin %s failed after start", plugin.name)

    async def teardown(self) -> None:
        for plugin in reversed(list(self.plugins.values())):
            try:
                await plugin.teardown()
            except Exception:
                log.exception("plugin %s failed to tear down", plugin.name)

    async def load_communities(self, session: AsyncSession) -> None:
        settings = self.services.settings
        await standby.serialize(session, "communities")  # processes starting together: one at a time
        self.community_ids = await store.sync_communities(session, settings.community_list(), self.now())
        self.served = {c.slug: self.community_ids[c.slug] for c in settings.served_communities()}
        self._served_ids = set(self.served.values())
        self.communities = {
            self.community_ids[c.slug]: Community(
                c.slug, c.name, c.domain, c.timezone, c.rules, c.public, tuple(c.share_with)
            )
            for c in settings.community_list()
        }
        self.room_map = await store.room_communities(session)

    async def attach_room(self, platform: str, room_id: str, slug: str) -> None:
        """Bind a platform room to a community (an invite accepted, a configured room joined)."""
        community_id = self.community_ids[slug]
        async with self.services.db.session() as session:
            await store.attach_room(session, platform, room_id, community_id, self.now())
        self.room_map[(platform, room_id)] = community_id

    def now(self) -> datetime:
        return self.services.clock.now()

    def community_for(self, room: Room) -> int | None:
        if room.community_id is not None and room.community_id in self.community_ids:
            return self.community_ids[room.community_id]
        return self.room_map.get((room.platform, room.id))

    def zone_of(self, community_id: int | None) -> str:
        """The zone a community's times are read and shown in for a member who set none (the instance's
        for a direct chat outside any community)."""
        community = self.communities.get(community_id) if community_id is not None else None
        return community.timezone if community is not None else self.services.settings.timezone

    def serves(self, room: Room) -> bool:
        """Whether this process handles what happens in ``room``: everything when it serves every
        community; otherwise direct chats if ``answers_direct_messages``, and rooms of its own communities
        — a room of another community, or one not (yet) known to belong to any, is another process's."""
        if not self._partitioned:
            return True
        if room.is_direct:
            return self._direct_messages
        community = self.community_for(room)
        return community is not None and community in self._served_ids

    # --- resolving commands -----------------------------------------------------------------------------

    def resolve(self, body: str) -> tuple[BoundCommand, list[Token], str]:
        """The longest command name at the start of ``body``, its argument tokens, and the body.

        Raises :class:`UnknownCommand` when no command matches; the pipeline words it for the caller.
        """
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
            if name in self.turned_off:  # not the shorter command it starts with (!profile link ≠ !profile)
                break
        raise UnknownCommand(words)

    def names_for(self, *, moderator: bool) -> list[str]:
        """Command names and groups the caller may use: suggestions never point at a refusal."""
        visible = {name for name, bound in self.commands.items() if moderator or not bound.spec.mod_only}
        return sorted(visible | {name.split()[0] for name in visible if " " in name})

    def unknown_message(self, words: list[str], prefix: str, *, moderator: bool) -> str:
        """What to say for a name that is no command: the closest one the caller may use, if any is close."""
        names = self.names_for(moderator=moderator)
        group = words[0]
        off = self.turned_off_for(words)
        if off is not None:
            return f"{self.turned_off_line(prefix, *off)} Type {prefix}help for the list."
        subs = sorted(name.split(maxsplit=1)[1] for name in names if name.startswith(group + " "))
        if subs:
            typed = f"{group} {words[1]}" if len(words) > 1 else group
            guess = _closest(words[1], subs) if len(words) > 1 else None
            if guess is not None:
                return (
                    f"{prefix}{typed} is not a command — did you mean {prefix}{group} {guess}? "
                    f"({prefix}{group} has: {', '.join(subs)})"
                )
            return f"{prefix}{typed} is not a command; {prefix}{group} has: {', '.join(subs)}"
        candidates = [name for name in names if " " not in name]
        guess = _closest(group, candidates)
        if guess is None and len(words) > 1:
            guess = _closest(f"{words[0]} {words[1]}", [name for name in names if " " in name])
        if guess is not None:
            return (
                f"Unknown command {prefix}{group} — did you mean {prefix}{guess}? "
                f"Type {prefix}help for the list."
            )
        return f"Unknown command {prefix}{group}. Type {prefix}help for the list."

    @staticmethod
    def turned_off_line(prefix: str, typed: str, plugin: str) -> str:
        """What a member hears for a command of a plugin disabled in the config."""
        return f"{prefix}{typed} is turned off here (copbot's {plugin} plugin)."

    def turned_off_for(self, words: list[str]) -> tuple[str, str] | None:
        """The name typed and its disabled plugin, when the words start with one of its commands, or are
        one of its groups (``poll``) that no enabled command shares."""
        group = words[0] if words else ""
        shared = any(name == group or name.startswith(group + " ") for name in self.commands)
        for length in (3, 2, 1):
            name = " ".join(words[:length])
            if len(words) >= length and name in self.turned_off:
                if length == 1 and len(words) > 1 and shared:
                    return None  # !profile lnk: the enabled commands of the group are the better answer
                return name, self.turned_off[name]
        owners = sorted(plugin for name, plugin in self.turned_off.items() if name.startswith(group + " "))
        return (group, owners[0]) if owners and not shared else None

    def hint_for(self, text: str) -> str | None:
        """A short hint for a message that almost is a command: ``!`` alone, or ``!  help``."""
        prefix = self.services.settings.prefix
        stripped = text.strip()
        if stripped == prefix:
            return f"Type {prefix}help to see what I can do."
        if stripped.startswith(prefix) and stripped[len(prefix) : len(prefix) + 1].isspace():
            first = stripped[len(prefix) :].split(maxsplit=1)[0].lower()
            if first in self.commands or first in self.groups():
                return f"Write commands without a space after {prefix}, like {prefix}{first}."
        return None


class UnknownCommand(UsageError):
    """No command matches the typed words; the pipeline turns it into a suggestion for this caller."""

    def __init__(self, words: list[str]) -> None:
        super().__init__(f"unknown command {' '.join(words[:2])}")
        self.words = words


def _closest(typed: str, names: list[str]) -> str | None:
    import difflib  # on use: not loaded at start-up (memory)

    matches = difflib.get_close_matches(typed, names, n=1, cutoff=SUGGESTION_CUTOFF)
    return matches[0] if matches else None
