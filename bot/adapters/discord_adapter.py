"""The Discord platform, through discord.py.

Translates gateway events into core events and core Content into Discord's native forms: slash commands
derived from the same CommandSpecs as the text parser, interaction responses (deferred automatically
before Discord's 3-second deadline), embeds, native polls, buttons whose ``custom_id`` routes a click to
the plugin that made it (even after a restart), direct messages, and ``allowed_mentions`` limited to the
members a message means to mention, messages edited in place, and guild scheduled events for meetings
(members marking one "Interested" come back as ``EventInterest``), files sent with messages, and messages
looked up again with a link to them (``MessageSource``), and participation levels as roles (a missing
role created once; Discord's role hierarchy checked before asking).

This module is the adapter's life (the gateway connected, lost and back, the commands synced) and what
the core asks of Discord; beside it are what members do as core events (``discord_gateway``), which room
and community a channel is (``discord_rooms``), how Content looks on Discord (``discord_render``), sending
and editing (``discord_sending``), slash commands and clicks delivered and answered in time
(``discord_interactions``), slash-command payloads (``discord_commands``), members and those who came or
went while copbot was down (``discord_members``), level roles (``discord_roles``) and meetings' scheduled
events with who is "Interested" (``discord_events``). Named ``discord_adapter`` so that ``import
discord`` means discord.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import discord
import yarl

from bot import store
from bot.adapters.base import Dispatch
from bot.adapters.discord_commands import build_payload, payload_hash
from bot.adapters.discord_events import InterestWatcher, ScheduledEvents
from bot.adapters.discord_gateway import MemberEvents
from bot.adapters.discord_interactions import Interactions
from bot.adapters.discord_members import PLATFORM, STATE_SCOPE, MemberReconciler, member_of
from bot.adapters.discord_render import message_link
from bot.adapters.discord_render import timestamp as discord_timestamp
from bot.adapters.discord_roles import LevelRoles
from bot.adapters.discord_rooms import Rooms
from bot.adapters.discord_sending import Sender
from bot.clock import Clock
from bot.commands import CommandSpec
from bot.config import DiscordConfig, Settings
from bot.db import Database
from bot.errors import NotPermitted, Undeliverable
from bot.health import Trouble
from bot.model import (
    Capability,
    Content,
    Event,
    Member,
    Message,
    Responder,
    Room,
)
from bot.tasks import cancel_and_wait

log = logging.getLogger(__name__)

OUTAGE_GRACE = 5.0
"""Seconds offline before the outage is logged: Discord asks bots to reconnect now and then (a moment)."""
OUTAGE_ADVICE = (
    "discord.py reconnects with back-off and resumes the session, so events sent meanwhile still arrive; "
    "check the network and https://discordstatus.com"
)


class DiscordAdapter:
    platform = PLATFORM
    command_prefix = "/"  # how members write commands here, in copbot's hints
    capabilities = frozenset(
        {
            Capability.NATIVE_POLLS,
            Capability.BUTTONS,
            Capability.DIRECT_MESSAGES,
            Capability.REACTIONS,
            Capability.ROLES,
            Capability.RICH_TEXT,
            Capability.SCHEDULED_EVENTS,
            Capability.EDITS,
            Capability.DELETES,
            Capability.TIMESTAMPS,
            Capability.FILES,
        }
    )

    def __init__(self, settings: Settings, db: Database, clock: Clock) -> None:
        assert settings.discord is not None
        self.settings = settings
        self.config: DiscordConfig = settings.discord
        self.db = db
        self.clock = clock
        self._specs: list[CommandSpec] = []
        self._commands: dict[str, CommandSpec] = {}
        self._payload: list[dict[str, Any]] = []
        self._dispatch: Dispatch | None = None
        self._connected = False
        self.trouble = Trouble("discord", log)
        """The gateway down: said once if it lasts, shown by /healthz, said again when it is back."""
        self._outage: asyncio.Task[None] | None = None
        self._stopping = False
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        intents = discord.Intents.default()
        intents.message_content = self.config.message_content
        intents.members = self.config.members
        intents.guild_scheduled_events = True  # members marking a meeting's event "Interested"
        options: dict[str, Any] = {
            "intents": intents,
            "guild_ready_timeout": self.config.guild_ready_timeout,
            "allowed_mentions": discord.AllowedMentions.none(),
        }
        if self.config.shard_count is not None:  # Discord's sharding: only these shards' guilds come here
            if self.config.shard_ids:  # else all of them (discord.py's default)
                options["shard_ids"] = self.config.shard_ids
            self.client: discord.Client = discord.AutoShardedClient(
                shard_count=self.config.shard_count, **options
            )
        else:
            self.client = discord.Client(**options)
        self.rooms = Rooms(self.client, settings)
        self.sender = Sender(self.client, clock)
        self.level_roles = LevelRoles(self.client)
        self.events = ScheduledEvents(self.client, self.rooms)
        self.interest = InterestWatcher(
            self.client, clock, guild_room=self.rooms.of_guild, member=member_of, emit=self._emit
        )
        self.interactions = Interactions(clock, room_of=self.rooms.of, answers_guild=self.rooms.answers_guild)
        self.reconciler = MemberReconciler(self.client, db, clock, self.rooms)
        self._register_events()
        MemberEvents(self.client, self.rooms, clock, self._emit).register()
        self.interest.watch()

    # --- lifecycle --------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected and not self.client.is_closed()

    async def install_commands(self, specs: Sequence[CommandSpec]) -> None:
        """Check the specs against Discord's limits now (load time); they are synced once logged in."""
        self._specs = list(specs)
        self._commands = {spec.name: spec for spec in self._specs}
        self._payload = build_payload(self._specs, hide_mod_commands=not self._other_moderators())

    def _other_moderators(self) -> bool:
        """Whether anyone may moderate on Discord without Manage Server: a configured moderator role, or a
        Discord account listed as a moderator (``discord:<id>`` or a bare id; see bot.permissions)."""
        communities = self.settings.community_list()
        listed = [*self.settings.moderators, *(entry for c in communities for entry in c.moderators)]
        return bool(
            self.config.moderator_roles
            or any(entry.startswith(f"{PLATFORM}:") or entry.isdigit() for entry in listed)
            or any(community.discord and community.discord.moderator_roles for community in communities)
        )

    async def start(self, dispatch: Dispatch) -> None:
        self._dispatch = dispatch
        _point_at(self.config)
        await self.client.login(self.config.token)
        await self._sync_commands()
        self._task = asyncio.create_task(self.client.connect(reconnect=True), name="discord-gateway")
        self._task.add_done_callback(self._gateway_ended)
        ready = asyncio.create_task(self._ready.wait())
        await asyncio.wait({ready, self._task}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            ready.cancel()
            self._task.result()  # raises the login/gateway error
        if not self._ready.is_set():
            ready.cancel()
            raise TimeoutError("Discord gateway did not become ready within 60 s")

    async def stop(self) -> None:
        self._stopping = True
        if self._outage is not None:
            self._outage.cancel()
        self._connected = False
        await self.client.close()
        if self._task is not None:  # closing the client ends it; cancelled if it has not in 10 s
            await asyncio.wait({self._task}, timeout=10)
            await cancel_and_wait(self._task, what="discord: the gateway task")
            self._task = None

    # --- gateway outages --------------------------------------------------------------------------------

    def _went_offline(self) -> None:
        """Each failed (re)connection counts; the outage is logged only if it lasts ``OUTAGE_GRACE``."""
        if self._stopping or not self._ready.is_set():
            return  # stopping, or still starting (start() says why it failed)
        self.trouble.failed("the gateway connection is lost", announce=False)
        if self._outage is None or self._outage.done():
            self._outage = asyncio.create_task(self._announce_outage(), name="discord-outage")

    async def _announce_outage(self) -> None:
        await asyncio.sleep(OUTAGE_GRACE)
        if not self.connected:
            self.trouble.announce(advice=OUTAGE_ADVICE)

    def _back_online(self, what: str) -> None:
        if self._outage is not None:
            self._outage.cancel()
            self._outage = None
        self.trouble.recovered(what)

    def _gateway_ended(self, task: asyncio.Task[None]) -> None:
        """discord.py gave up (a refused token, intents no longer allowed): say so once, with what to do."""
        self._connected = False
        if task.cancelled() or self._stopping or not self._ready.is_set():
            return
        error = task.exception()
        if error is None:
            return
        code = getattr(error, "code", None)
        why = f"close code {code}" if code else type(error).__name__
        self.trouble.failed(
            f"the gateway connection ended for good ({why}: {error})",
            advice="check [discord] token and the bot's privileged intents in the developer portal, then "
            "restart copbot",
            level=logging.ERROR,
        )

    async def _sync_commands(self) -> None:
        """Overwrite the command set only when its hash changed since the last sync (rate limits)."""
        application_id = self.config.application_id or str(self.client.application_id or "")
        if not application_id:
            raise RuntimeError("Discord application id unknown: set [discord] application_id")
        digest = payload_hash(self._payload)
        scopes = [f"guild:{guild}" for guild in self.config.command_guilds] or ["global"]
        for scope in scopes:
            key = f"commands:{scope}"
            async with self.db.session() as session:
                if await store.get_state(session, STATE_SCOPE, key) == digest:
                    continue
            if scope == "global":
                await self.client.http.bulk_upsert_global_commands(int(application_id), self._payload)
            else:
                guild = int(scope.removeprefix("guild:"))
                await self.client.http.bulk_upsert_guild_commands(int(application_id), guild, self._payload)
            async with self.db.session() as session:
                await store.put_state(session, STATE_SCOPE, key, digest, self.clock.now())
            log.info("discord: %d commands synced (%s)", len(self._payload), scope)

    # --- the connection's own events (what members do: discord_gateway) --------------------------------

    def _register_events(self) -> None:
        client = self.client

        @client.event
        async def on_ready() -> None:
            self._connected = True
            self._back_online("connected again (a new gateway session)")
            if not self._ready.is_set() and self._dispatch is not None:
                await self.reconciler.reconcile(self._dispatch)
            self._ready.set()

        @client.event
        async def on_resumed() -> None:
            self._connected = True
            self._back_online("connected again (gateway session resumed, missed events replayed)")

        @client.event
        async def on_disconnect() -> None:
            self._connected = False
            self._went_offline()

        @client.event
        async def on_interaction(interaction: discord.Interaction) -> None:
            await self.interactions.handle(interaction, self._dispatch, self._commands)

    async def _emit(self, event: Event, responder: Responder | None = None) -> None:
        if self._dispatch is not None:
            await self._dispatch(event, responder=responder)

    # --- core → Discord ---------------------------------------------------------------------------------

    async def send(self, room: Room, content: Content, *, reply_to: str | None = None) -> str:
        with _undeliverable_as_such(self._channel_name(room.id)):
            return await self.sender.to_channel_id(room.id, content, reply_to=reply_to)

    async def send_direct(self, member: Member, content: Content) -> str:
        with _undeliverable_as_such(f"the direct chat with {member.display_name}"):
            return await self.sender.to_user(member.id, content)

    def _channel_name(self, channel_id: str) -> str:
        """A channel as people know it: "#general in Water CoP's server", else its id."""
        channel = self.client.get_channel(int(channel_id)) if channel_id.isdigit() else None
        name = getattr(channel, "name", None)
        guild = getattr(channel, "guild", None)
        if name is None:
            return f"channel {channel_id}"
        return f"#{name}" + (f" (server {guild.name})" if guild is not None else "")

    async def is_moderator(self, member: Member, room: Room) -> bool:
        channel = self.client.get_channel(int(room.id)) if room.id.isdigit() else None
        guild = getattr(channel, "guild", None)
        if guild is None:
            return False
        discord_member = guild.get_member(int(member.id))
        if discord_member is None:
            return False
        if discord_member.guild_permissions.manage_guild:
            return True
        roles = list(self.config.moderator_roles)
        community = self.rooms.communities.get(str(guild.id))
        if community is not None and community.discord is not None:
            roles += community.discord.moderator_roles
        return any(str(role.id) in roles or role.name in roles for role in discord_member.roles)

    async def set_level_role(
        self, community: str, member: Member, level: str, *, reason: str = "", repair: bool = False
    ) -> bool:
        """The level's role, and none of the other levels' (``discord_roles``)."""
        guild_id = self.rooms.guild_id(community)
        config = self.rooms.communities[guild_id].discord if guild_id is not None else None
        if config is None or not config.level_roles or not member.id.isdigit():
            return False
        return await self.level_roles.set(config.guild_id, config.level_roles, member.id, level, reason)

    async def create_event(
        self, room: Room, *, title: str, start: datetime, end: datetime, where: str, description: str = ""
    ) -> str:
        return await self.events.create(
            room, title=title, start=start, end=end, where=where, description=description
        )

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
        await self.events.update(
            room, event_id, title=title, start=start, end=end, where=where, description=description
        )

    async def cancel_event(self, room: Room, event_id: str) -> None:
        await self.events.cancel(room, event_id)

    async def edit(self, room: Room, message_id: str, content: Content) -> None:
        """Replace a message copbot sent in place (``discord_sending``); one gone meanwhile is no error."""
        await self.sender.edit(room.id, message_id, content)

    async def delete(self, room: Room, message_id: str) -> None:
        """Delete a message copbot sent (``discord_sending``); one gone meanwhile is no error."""
        await self.sender.delete(room.id, message_id)

    async def fetch_message(self, room: Room, message_id: str) -> Message | None:
        """The message as Discord has it now (one REST call), to save it: its author and text as typed.

        Without the message-content intent Discord sends the text empty; the message is returned anyway,
        its author and link being worth having. One gone or out of copbot's sight (404, 403) is None.
        """
        if not (room.id.isdigit() and message_id.isdigit()):
            return None
        found = self.client.get_channel(int(room.id))
        channel = (
            found
            if isinstance(found, discord.abc.Messageable)
            else self.client.get_partial_messageable(int(room.id))  # not cached (a DM, a thread): by id alone
        )
        try:
            message = await channel.fetch_message(int(message_id))
        except (discord.NotFound, discord.Forbidden):
            return None
        author = message.author
        guild = getattr(channel, "guild", None)
        if guild is not None and not isinstance(author, discord.Member):  # REST sends the user only
            author = guild.get_member(author.id) or author
        return Message(str(message.id), room, member_of(author), message.content, raw=message)

    def permalink(self, room: Room, message_id: str) -> str:
        """Discord's link to a message: its guild from the channel (else the room's community), ``@me``
        in a direct message; "" for what is no Discord message id."""
        if not (room.id.isdigit() and message_id.isdigit()):
            return ""
        channel = self.client.get_channel(int(room.id))
        guild = getattr(channel, "guild", None)
        if guild is not None:
            return message_link(str(guild.id), room.id, message_id)
        if room.is_direct or isinstance(channel, discord.DMChannel):
            return message_link(None, room.id, message_id)
        guild_id = self.rooms.guild_id(room.community_id)
        return message_link(guild_id, room.id, message_id) if guild_id else ""

    def timestamp(self, moment: datetime) -> str:
        """Discord shows ``<t:…>`` in each reader's own time zone, so nobody converts a meeting's time."""
        return discord_timestamp(moment)

    def mention(self, member: Member) -> str:
        return f"<@{member.id}>"

    def parse_mention(self, text: str) -> Member | None:
        inner = text.removeprefix("<@").removeprefix("!").removesuffix(">")
        snowflake = inner.isascii() and inner.isdigit() and len(inner) <= 20  # not "²": int() refuses it
        if text.startswith("<@") and text.endswith(">") and snowflake:
            user = self.client.get_user(int(inner))
            return Member(self.platform, inner, user.display_name if user else inner)
        return None


NEVER_DELIVERABLE = {
    10003: "the channel no longer exists",
    10013: "the member's account no longer exists",
    50007: "the member takes no direct messages from copbot",
}
"""Discord's error codes for a message that sending again cannot deliver."""
NOT_PERMITTED = {
    50001: "copbot cannot see {room} (Missing Access)",
    50013: "copbot may not send messages in {room} (Missing Permissions)",
}
"""Discord's refusals a moderator can undo: copbot's role, or the channel's overrides, lack a permission."""
PERMISSION_ADVICE = (
    "a moderator can give copbot's role View Channel and Send Messages there (the channel's settings → "
    "Permissions), or remove the channel from the community's channels"
)


@contextlib.contextmanager
def _undeliverable_as_such(room: str) -> Iterator[None]:
    """Discord's refusal of a message no retry can deliver (:data:`NEVER_DELIVERABLE`) raised as
    :class:`Undeliverable`, for the outbox to give up on it at once, and a refusal for lack of permission
    in ``room`` (:data:`NOT_PERMITTED`) as :class:`NotPermitted`, saying what to fix; any other error as it
    is."""
    try:
        yield
    except discord.HTTPException as error:
        said = f"Discord {error.status} {error.code}: {error.text}"
        if error.code in NOT_PERMITTED:
            reason = NOT_PERMITTED[error.code].format(room=room)
            raise NotPermitted(f"{reason}; {PERMISSION_ADVICE} ({said})", room=room) from error
        final = NEVER_DELIVERABLE.get(error.code)
        if final is None:
            raise
        raise Undeliverable(f"{final} ({said})") from error


class _OneLineReconnects(logging.Filter):
    """discord.py logs every failed reconnect attempt as an error with a traceback; during an outage that
    is a traceback every few seconds saying nothing new. Each becomes one line at INFO (the adapter's own
    warning says what is going on, once)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and str(record.msg).startswith("Attempting a reconnect"):
            error = record.exc_info[1] if record.exc_info else None
            record.msg = "discord: gateway reconnect failed (%s); next attempt in %.1f s"
            record.args = (_one_line(error), *(record.args or (0.0,)))
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


def _one_line(error: BaseException | None) -> str:
    if error is None:
        return "no reason given"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


_RECONNECT_FILTER = _OneLineReconnects()
logging.getLogger("discord.client").addFilter(_RECONNECT_FILTER)


def _point_at(config: DiscordConfig) -> None:
    """discord.py reads these class attributes for every request; self-hosted servers and tests set them."""
    discord.http.Route.BASE = config.api_base_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(config.gateway_url)
