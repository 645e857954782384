# ruff: noqa: ASYNC109  -- the wait helpers take `timeout=` on purpose: tests read better than wrapping each.
"""A Discord-compatible server on 127.0.0.1, owned by the tests.

Why this exists
---------------
Mocking discord.py skips exactly the parts that break in production: option parsing, the command
registration payload, view dispatch by ``custom_id``, serialisation of messages, intents, and the
interaction callback / webhook follow-up routes. ``FakeDiscord`` is a small aiohttp app that speaks the REST
API (v10) and the JSON gateway websocket well enough that an *unmodified* ``discord.Client`` /
``commands.Bot`` connects to it, receives the events the test dispatches, and has every REST call it makes
recorded so the test can assert method, path and JSON body. See ``/work/shared/DISCORD_TESTING.md`` for the
facts this is built on (content type, intents, interaction callback shape, follow-up routes, error codes).

What it models faithfully (because bugs hide there)
    * Intents: events are filtered by the intents sent in IDENTIFY; message ``content``/``embeds``/
      ``attachments``/``components``/``poll`` are stripped without MESSAGE_CONTENT (except DMs, the bot's
      own messages and messages mentioning the bot); member events need GUILD_MEMBERS; privileged intents
      not enabled on the "application" close the gateway with 4014.
    * Interactions: one acknowledgement per token (a second one answers 400/40060), follow-ups before the
      acknowledgement answer 404/10015, the first follow-up after a "thinking" defer completes the deferred
      message, callback replies use the ``with_response`` shape, ephemeral messages are never dispatched.
    * Own messages: messages the bot creates through REST are echoed as MESSAGE_CREATE/UPDATE/DELETE like
      Discord does, so "bot answers itself" loops show up.
    * Validation that catches real bugs: empty messages (50006), content > 2000, bad command names or
      descriptions in ``tree.sync`` (50035), slash options that the synced command does not declare.
    * Gateway: HELLO, IDENTIFY, READY (with ``resume_gateway_url``), GUILD_CREATE, heartbeats, op 7
      reconnect, RESUME replaying missed events by sequence number, op 8 member chunks echoing the nonce.
    * Duplicates, as a bot must survive them: a RESUME that replays events the client already had
      (``send_reconnect(replay=n)``), an event delivered again to a new session (``redeliver_message``,
      ``redeliver_interaction``), and ``enforce_nonce``: a message whose nonce the bot used in the last
      few minutes is not created again — the earlier one is returned (``NONCE_WINDOW``).
    * Roles: Discord's hierarchy for the bot's role changes — giving or taking a member's role, or creating
      a role, needs Manage Roles, and a role at or above the bot's highest role (or a managed one) answers
      403/50013; a created role goes to the bottom (position 1) with GUILD_ROLE_CREATE, the others moving up.
    * Direct messages closed (``close_dms``): the DM channel opens, a message posted in it answers
      403/50007 "Cannot send messages to this user".
    * Channel permissions for the bot's messages (``channel_overwrite``): without View Channel a post
      answers 403/50001 "Missing Access", without Send Messages 403/50013 "Missing Permissions".

Not modelled: other permission checks, rate limits, REST-side content stripping,
threads, voice. Unknown routes are recorded, logged and answered
``404 {"message": "404: Not Found", "code": 0}``; the ``discord_server`` fixture fails the test at teardown
if any were hit (set ``server.fail_on_unhandled_routes = False`` when a test hits one on purpose).

Usage
-----
Load the fixtures as a pytest plugin (``-p tests.harness.discord_server`` or
``pytest_plugins = ["tests.harness.discord_server"]`` in a test module), then::

    async def test_ping(discord_server, discord_connect):
        client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)
        tree = discord.app_commands.CommandTree(client)

        @tree.command(description="Ping")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pong", ephemeral=True)

        await discord_connect(client)                 # login + gateway + on_ready, errors hooked
        await tree.sync()                             # unregistered commands cannot be invoked
        record = await discord_server.interaction_slash("ping", user="alice")
        call = await discord_server.wait_for_request("POST", rf"/interactions/{record.id}/.+/callback")
        assert call.json["data"]["flags"] == 64

Fixtures: ``discord_server`` (a started :class:`FakeDiscord`, stopped at teardown, fails on unhandled
routes or internal errors), ``discord_errors`` (a :class:`HandlerErrors` that fails the test if discord.py
swallowed an exception in an event handler, app command or view), ``discord_connect`` (connects clients to
the server, pointing discord.py at it, and closes them at teardown). Outside pytest use
:func:`running_client` and :func:`point_discord_py_at`.

Always pass ``guild_ready_timeout=0.05`` (or similar) to the client: discord.py otherwise waits 2 s after
the last GUILD_CREATE before ``on_ready``.

API at a glance (all on :class:`FakeDiscord`)
    * lifecycle/addresses: ``start()``, ``stop()``, ``url``, ``api_base_url``, ``gateway_url``, ``token``,
      ``application_id``, ``bot_user``, ``guild_id``, ``intents`` (last IDENTIFY)
    * world (sync, before connecting): ``add_user``, ``add_guild``, ``add_channel``, ``add_role``,
      ``move_role``, ``add_member``, ``dm_channel``, ``close_dms``; lookups ``user_id``, ``channel_id``,
      ``role_id``, ``member``, ``member_roles``, ``roles_by_position``
    * events (async, dispatched with sequence numbers): ``dispatch(event, data)``, ``message_create``,
      ``message_update``, ``message_delete``, ``member_add``, ``member_remove``, ``reaction_add``,
      ``reaction_remove``, ``poll_vote_add``, ``poll_vote_remove``, ``scheduled_event_user_add``,
      ``scheduled_event_user_remove``, ``interaction_slash``,
      ``interaction_component``, ``interaction_modal_submit``; gateway control ``send_reconnect``,
      ``drop_connection``, ``gateway_outage`` (and ``gateway_down``); duplicates ``redeliver_message``,
      ``redeliver_interaction``, ``send_reconnect(replay=n)``
    * assertions: ``requests`` (:class:`Request`), ``find``, ``last``, ``wait_for_request``,
      ``gateway_log`` / ``gateway_sent`` (:class:`GatewayFrame`), ``wait_for_gateway_op``,
      ``interactions`` (token -> :class:`InteractionRecord`), ``wait_for_ack``, ``messages``,
      ``bot_messages``, ``global_commands`` / ``guild_commands``, ``unhandled``, ``describe_requests``

Request bodies are recorded exactly as discord.py sent them; note that it sends some snowflakes as
integers (``allowed_mentions.users``, ``recipient_id``, ``message_reference.message_id``).

The default world: a bot user ``copbot`` (its id is also the application id), users ``alice`` (guild
owner), ``bob`` and ``carol``; one guild ``Test Guild`` with roles ``@everyone``, ``Moderator``,
``Member`` and the managed ``copbot`` role at the top (so the bot may give the others), a category
``Text Channels`` with text channels ``general``, ``announcements`` and ``bot-log``, and a voice channel
``Lounge``. Everything that takes a user, channel, role or guild accepts an id (str or int) or a name.
Snowflakes are strings everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import re
import secrets
import socket
import sys
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import EllipsisType
from typing import Any, ClassVar, TypeVar

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
import pytest_asyncio
import yarl
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

log = logging.getLogger(__name__)

JSON = dict[str, Any]
Ref = str | int | Mapping[str, Any]
"""A user/channel/role/guild reference: an id (str or int), a name, or a payload dict with an ``id``."""

ClientT = TypeVar("ClientT", bound=discord.Client)

DISCORD_EPOCH_MS = 1420070400000
API_PREFIX = "/api/v10"
ATTACHMENT_SIZE_LIMIT = 25 * 1024 * 1024
NONCE_WINDOW = 300.0
"""Seconds a nonce sent with ``enforce_nonce`` is remembered ("the past few minutes", Discord says)."""


class Intent:
    """Gateway intent bits (https://discord.com/developers/docs/events/gateway#gateway-intents)."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_MODERATION = 1 << 2
    GUILD_EXPRESSIONS = 1 << 3
    GUILD_INTEGRATIONS = 1 << 4
    GUILD_WEBHOOKS = 1 << 5
    GUILD_INVITES = 1 << 6
    GUILD_VOICE_STATES = 1 << 7
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    GUILD_MESSAGE_TYPING = 1 << 11
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    DIRECT_MESSAGE_TYPING = 1 << 14
    MESSAGE_CONTENT = 1 << 15
    GUILD_SCHEDULED_EVENTS = 1 << 16
    AUTO_MODERATION_CONFIGURATION = 1 << 20
    AUTO_MODERATION_EXECUTION = 1 << 21
    GUILD_MESSAGE_POLLS = 1 << 24
    DIRECT_MESSAGE_POLLS = 1 << 25

    PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT


# Which intent a dispatch needs. A tuple means (intent for guild events, intent for DM events).
_EVENT_INTENTS: dict[str, int | tuple[int, int]] = {
    **dict.fromkeys(
        [
            "GUILD_CREATE",
            "GUILD_UPDATE",
            "GUILD_DELETE",
            "GUILD_ROLE_CREATE",
            "GUILD_ROLE_UPDATE",
            "GUILD_ROLE_DELETE",
            "CHANNEL_CREATE",
            "CHANNEL_UPDATE",
            "CHANNEL_DELETE",
            "THREAD_CREATE",
            "THREAD_UPDATE",
            "THREAD_DELETE",
            "THREAD_LIST_SYNC",
            "THREAD_MEMBER_UPDATE",
            "STAGE_INSTANCE_CREATE",
            "STAGE_INSTANCE_UPDATE",
            "STAGE_INSTANCE_DELETE",
        ],
        Intent.GUILDS,
    ),
    **dict.fromkeys(
        ["GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE", "GUILD_MEMBER_REMOVE", "THREAD_MEMBERS_UPDATE"],
        Intent.GUILD_MEMBERS,
    ),
    **dict.fromkeys(
        ["GUILD_AUDIT_LOG_ENTRY_CREATE", "GUILD_BAN_ADD", "GUILD_BAN_REMOVE"], Intent.GUILD_MODERATION
    ),
    **dict.fromkeys(["GUILD_EMOJIS_UPDATE", "GUILD_STICKERS_UPDATE"], Intent.GUILD_EXPRESSIONS),
    **dict.fromkeys(
        ["GUILD_INTEGRATIONS_UPDATE", "INTEGRATION_CREATE", "INTEGRATION_UPDATE", "INTEGRATION_DELETE"],
        Intent.GUILD_INTEGRATIONS,
    ),
    "WEBHOOKS_UPDATE": Intent.GUILD_WEBHOOKS,
    **dict.fromkeys(["INVITE_CREATE", "INVITE_DELETE"], Intent.GUILD_INVITES),
    "VOICE_STATE_UPDATE": Intent.GUILD_VOICE_STATES,
    "PRESENCE_UPDATE": Intent.GUILD_PRESENCES,
    **dict.fromkeys(
        ["MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE", "MESSAGE_DELETE_BULK"],
        (Intent.GUILD_MESSAGES, Intent.DIRECT_MESSAGES),
    ),
    **dict.fromkeys(
        [
            "MESSAGE_REACTION_ADD",
            "MESSAGE_REACTION_REMOVE",
            "MESSAGE_REACTION_REMOVE_ALL",
            "MESSAGE_REACTION_REMOVE_EMOJI",
        ],
        (Intent.GUILD_MESSAGE_REACTIONS, Intent.DIRECT_MESSAGE_REACTIONS),
    ),
    "TYPING_START": (Intent.GUILD_MESSAGE_TYPING, Intent.DIRECT_MESSAGE_TYPING),
    **dict.fromkeys(
        [
            "GUILD_SCHEDULED_EVENT_CREATE",
            "GUILD_SCHEDULED_EVENT_UPDATE",
            "GUILD_SCHEDULED_EVENT_DELETE",
            "GUILD_SCHEDULED_EVENT_USER_ADD",
            "GUILD_SCHEDULED_EVENT_USER_REMOVE",
        ],
        Intent.GUILD_SCHEDULED_EVENTS,
    ),
    **dict.fromkeys(
        ["AUTO_MODERATION_RULE_CREATE", "AUTO_MODERATION_RULE_UPDATE", "AUTO_MODERATION_RULE_DELETE"],
        Intent.AUTO_MODERATION_CONFIGURATION,
    ),
    "AUTO_MODERATION_ACTION_EXECUTION": Intent.AUTO_MODERATION_EXECUTION,
    **dict.fromkeys(
        ["MESSAGE_POLL_VOTE_ADD", "MESSAGE_POLL_VOTE_REMOVE"],
        (Intent.GUILD_MESSAGE_POLLS, Intent.DIRECT_MESSAGE_POLLS),
    ),
}


class Perm:
    """The permission bits the default world uses (the fake enforces MANAGE_ROLES for role changes, and
    View Channel / Send Messages, with channel overwrites, for the bot's messages)."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    CHANGE_NICKNAME = 1 << 26
    MANAGE_ROLES = 1 << 28
    USE_APPLICATION_COMMANDS = 1 << 31
    MANAGE_EVENTS = 1 << 33
    CREATE_PUBLIC_THREADS = 1 << 35
    SEND_MESSAGES_IN_THREADS = 1 << 38
    MODERATE_MEMBERS = 1 << 40
    SEND_POLLS = 1 << 49
    ALL = (1 << 51) - 1

    EVERYONE = (
        CREATE_INSTANT_INVITE
        | ADD_REACTIONS
        | VIEW_CHANNEL
        | SEND_MESSAGES
        | EMBED_LINKS
        | ATTACH_FILES
        | READ_MESSAGE_HISTORY
        | USE_EXTERNAL_EMOJIS
        | CONNECT
        | SPEAK
        | CHANGE_NICKNAME
        | USE_APPLICATION_COMMANDS
        | CREATE_PUBLIC_THREADS
        | SEND_MESSAGES_IN_THREADS
        | SEND_POLLS
    )
    MODERATOR = KICK_MEMBERS | BAN_MEMBERS | MANAGE_MESSAGES | MANAGE_ROLES | MANAGE_EVENTS | MODERATE_MEMBERS
    BOT = EVERYONE | MANAGE_MESSAGES | MANAGE_ROLES | MANAGE_EVENTS | MENTION_EVERYONE


class MessageFlag:
    """Message flag bits the fake interprets."""

    SUPPRESS_EMBEDS = 1 << 2
    EPHEMERAL = 1 << 6
    LOADING = 1 << 7
    SUPPRESS_NOTIFICATIONS = 1 << 12
    IS_COMPONENTS_V2 = 1 << 15


# --------------------------------------------------------------------------------------------------
# Records the tests assert on
# --------------------------------------------------------------------------------------------------


@dataclass
class UploadedFile:
    """A file part of a multipart request (``files[n]``)."""

    field_name: str
    filename: str
    content_type: str | None
    data: bytes


@dataclass
class Request:
    """One REST call as the server received it, plus what it answered.

    ``path`` is decoded and has no ``/api/v10`` prefix (e.g. ``/channels/1/messages/2/reactions/👍/@me``);
    ``json`` is the JSON body, or ``payload_json`` for multipart requests (files are in ``files``);
    ``headers`` is case-insensitive.
    """

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: CIMultiDictProxy[str]
    files: list[UploadedFile] = field(default_factory=list)
    status: int = 0
    response: Any = None


@dataclass
class GatewayFrame:
    """A gateway payload, as received from (``gateway_log``) or sent to (``gateway_sent``) a client."""

    op: int
    d: Any
    t: str | None = None
    s: int | None = None
    session_id: str | None = None


@dataclass
class InteractionRecord:
    """Server-side state of one interaction the test dispatched: what the bot answered, and when."""

    id: str
    token: str
    type: int
    payload: JSON
    channel_id: str
    guild_id: str | None
    user_id: str
    message_id: str | None = None
    response_type: int | None = None
    response: JSON | None = None
    original_message_id: str | None = None
    deferred_pending: bool = False
    followup_message_ids: list[str] = field(default_factory=list)
    modal: JSON | None = None
    autocomplete_choices: list[JSON] | None = None

    @property
    def acked(self) -> bool:
        """Whether the bot has acknowledged the interaction (any callback type)."""
        return self.response_type is not None


@dataclass
class _Reply:
    status: int
    data: Any = None


@dataclass
class _Connection:
    ws: web.WebSocketResponse
    query: dict[str, str]
    session: _Session | None = None
    closed_by_server: bool = False


@dataclass
class _Session:
    id: str
    intents: int
    identify: JSON
    conn: _Connection | None
    seq: int = 0
    history: list[JSON] = field(default_factory=list)
    ended: bool = False
    resume_count: int = 0
    replay: int = 0  # the next RESUME also replays this many events the client already had
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _Guild:
    id: str
    name: str
    owner_id: str
    created: str
    roles: dict[str, JSON] = field(default_factory=dict)
    channels: dict[str, JSON] = field(default_factory=dict)
    members: dict[str, JSON] = field(default_factory=dict)
    scheduled_events: dict[str, JSON] = field(default_factory=dict)
    system_channel_id: str | None = None


def shard_of(guild_id: str, shard_count: int) -> int:
    """The shard Discord sends a guild's events on."""
    return (int(guild_id) >> 22) % shard_count


def _on_shard(session: _Session, guild_id: Any) -> bool:
    """Whether a session gets a guild's events: a session that identified with ``shard`` [id, count]
    gets only the guilds of its shard, and direct messages (no guild) only on shard 0, as Discord does."""
    shard = session.identify.get("shard")
    if not isinstance(shard, list) or len(shard) != 2:
        return True
    shard_id, count = int(shard[0]), int(shard[1])
    return shard_id == 0 if guild_id is None else shard_of(str(guild_id), count) == shard_id


def _ok(data: Any, status: int = 200) -> _Reply:
    return _Reply(status, data)


def _no_content() -> _Reply:
    return _Reply(204)


def _err(status: int, code: int, message: str, errors: JSON | None = None) -> _Reply:
    body: JSON = {"message": message, "code": code}
    if errors is not None:
        body["errors"] = errors
    return _Reply(status, body)


def _invalid_form(path: Sequence[str | int], code: str, message: str) -> _Reply:
    """Discord's 50035 "Invalid Form Body" with the nested ``errors`` shape discord.py flattens."""
    errors: JSON = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path):
        errors = {str(key): errors}
    return _err(400, 50035, "Invalid Form Body", errors)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(when: datetime | None = None) -> str:
    return (when or _now()).isoformat()


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _json_response(status: int, data: Any) -> web.Response:
    """A JSON response whose Content-Type is exactly ``application/json``.

    Why: discord.py compares the header verbatim; aiohttp's ``json_response`` appends ``; charset=utf-8``
    and discord.py then treats the body as text and login fails with a ``TypeError``.
    """
    return web.Response(
        status=status, body=_dumps(data).encode(), headers={"Content-Type": "application/json"}
    )


# --------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------

_Handler = Callable[..., Awaitable[_Reply]]


class FakeDiscord:
    """A Discord-compatible REST + gateway server for tests (see the module docstring).

    Create it, optionally add users/guilds/channels/roles with the ``add_*`` methods, ``await start()``,
    connect a discord.py client (``discord_connect`` fixture or :func:`running_client`), dispatch events
    with the async builders (``message_create``, ``interaction_slash``, ...) and assert on ``requests``.
    """

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        bot_name: str = "copbot",
        guild_name: str = "Test Guild",
        heartbeat_interval_ms: int = 41250,
        privileged_intents: int = Intent.PRIVILEGED,
        full_member_list: bool = True,
        echo_own_messages: bool = True,
    ) -> None:
        """Build the default world.

        ``privileged_intents`` are the privileged intents "enabled in the developer portal"; asking for
        others in IDENTIFY closes the gateway with 4014 like Discord. ``full_member_list``: with the
        GUILD_MEMBERS intent, send every member in GUILD_CREATE (True) or only the bot so discord.py
        chunks the guild through op 8 (False). ``echo_own_messages``: dispatch MESSAGE_CREATE/UPDATE/DELETE
        for messages the bot creates through REST, as Discord does.
        """
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.gateway_down = False
        """While True the gateway refuses new connections (HTTP 503), an outage: see ``gateway_outage``."""
        self.privileged_intents = privileged_intents
        self.full_member_list = full_member_list
        self.echo_own_messages = echo_own_messages
        self.fail_on_unhandled_routes = True
        self.command_permissions = False
        """True: a member without a command's ``default_member_permissions`` cannot run it (Discord's client
        neither lists nor sends it; ``interaction_slash`` raises PermissionError), as when no override is
        set in Server Settings → Integrations. False: as if an override let everyone run every command."""

        self.requests: list[Request] = []
        self.unhandled: list[Request] = []
        self.internal_errors: list[str] = []
        self.gateway_log: list[GatewayFrame] = []
        self.gateway_sent: list[GatewayFrame] = []
        self.identify_payloads: list[JSON] = []
        self.sessions: list[_Session] = []

        self.users: dict[str, JSON] = {}
        self.guilds: dict[str, _Guild] = {}
        self.channels: dict[str, JSON] = {}
        self.messages: dict[str, JSON] = {}
        self.global_commands: list[JSON] = []
        self.guild_commands: dict[str, list[JSON]] = {}
        self.interactions: dict[str, InteractionRecord] = {}
        self.open_modals: dict[str, InteractionRecord] = {}

        self._last_snowflake = 0
        self._dm_by_user: dict[str, str] = {}
        self.closed_dms: set[str] = set()
        """Users who take no direct messages from the bot (see ``close_dms``)."""
        self._reactors: dict[tuple[str, str], list[str]] = {}
        self._poll_votes: dict[str, dict[int, list[str]]] = {}
        self._event_users: dict[str, list[str]] = {}  # scheduled event id -> users marked "Interested"
        self._nonces: dict[tuple[str, str], tuple[str, float]] = {}  # (author, nonce) -> (message, when)
        self._waiters: list[asyncio.Future[None]] = []
        self._connections: list[_Connection] = []
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._routes = self._build_routes()

        bot = self.add_user(bot_name, bot=True)
        self._bot_id: str = bot["id"]
        self._application_id: str = bot["id"]
        self.application_flags = self._flags_for_privileged(privileged_intents)
        for name in ("alice", "bob", "carol"):
            self.add_user(name)
        self.app_owner_id = self.user_id("alice")

        self._default_guild_id = self.add_guild(guild_name, owner="alice", channels=())
        category = self.add_channel("Text Channels", type=4)
        for name in ("general", "announcements", "bot-log"):
            self.add_channel(name, parent=category["id"], topic=f"The {name} channel")
        self.add_channel("Lounge", type=2)
        self.guilds[self._default_guild_id].system_channel_id = self.channel_id("general")
        self.add_role("Moderator", permissions=Perm.MODERATOR, color=0x3498DB, hoist=True, mentionable=True)
        self.add_role("Member", permissions=0, color=0x2ECC71)
        self.move_role(bot_name, len(self.guilds[self._default_guild_id].roles) - 1)  # an admin moved it up
        self.add_member("alice", roles=["Member"])
        self.add_member("bob", roles=["Member"])
        self.add_member("carol", roles=["Moderator", "Member"])

    # ------------------------------------------------------------------ lifecycle and addresses

    async def start(self) -> None:
        """Serve on a free 127.0.0.1 port (bound before serving, so there is no port race)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self._gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        log.debug("FakeDiscord serving on %s", self.url)

    async def stop(self) -> None:
        """Close open gateway connections (1001, "going away") and stop serving."""
        for conn in list(self._connections):
            if not conn.ws.closed:
                with contextlib.suppress(Exception):
                    await self._close(conn, code=1001, message=b"server stopping")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        """The TCP port; only valid after :meth:`start`."""
        if self._port is None:
            raise RuntimeError("FakeDiscord is not started")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:{port}``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base_url(self) -> str:
        """What ``discord.http.Route.BASE`` must be: ``{url}/api/v10``."""
        return self.url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """``ws://127.0.0.1:{port}/`` (also sent as ``resume_gateway_url``)."""
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def application_id(self) -> str:
        """The application id (equal to the bot user id, as for real bots)."""
        return self._application_id

    @property
    def bot_user(self) -> JSON:
        """The bot user payload (``id``, ``username``, ``bot=True``...)."""
        return self.users[self._bot_id]

    @property
    def guild_id(self) -> str:
        """The default guild's id."""
        return self._default_guild_id

    @property
    def intents(self) -> int | None:
        """The intents of the most recent IDENTIFY, or None if no client identified yet."""
        return self.identify_payloads[-1].get("intents") if self.identify_payloads else None

    # ------------------------------------------------------------------ world building

    def _snowflake(self) -> str:
        """A time-based, strictly increasing snowflake, so ``created_at`` and ordering are realistic."""
        value = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        value = max(value, self._last_snowflake + 1)
        self._last_snowflake = value
        return str(value)

    def ids_from(self, moment: datetime) -> None:
        """Make the ids (and so the times: Discord dates a message by its id) of what comes next no earlier
        than ``moment``: a test whose bot runs on a fake clock moved ahead sends messages of that time."""
        later = (int(moment.timestamp() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last_snowflake = max(self._last_snowflake, later)

    def add_user(self, username: str, *, bot: bool = False, global_name: str | None = None) -> JSON:
        """Create a user (not a guild member; see :meth:`add_member`) and return its payload."""
        uid = self._snowflake()
        user: JSON = {
            "id": uid,
            "username": username,
            "discriminator": "0",
            "global_name": global_name if global_name is not None else (None if bot else username.title()),
            "avatar": None,
            "banner": None,
            "accent_color": None,
            "public_flags": 0,
            "avatar_decoration_data": None,
            "collectibles": None,
            "primary_guild": None,
        }
        if bot:
            user["bot"] = True
        self.users[uid] = user
        return user

    def add_guild(
        self,
        name: str,
        *,
        owner: Ref | None = None,
        channels: Iterable[str] = ("general",),
        with_bot: bool = True,
        shard: tuple[int, int] | None = None,
    ) -> str:
        """Create a guild with an @everyone role, the given text channels and (by default) the bot as a
        member holding a managed bot role; return its id. ``shard`` = (shard id, shard count): an id that
        Discord's sharding puts on that shard."""
        gid = self._snowflake()
        while shard is not None and shard_of(gid, shard[1]) != shard[0]:
            self._last_snowflake = (((int(gid) >> 22) + 1) << 22) - 1  # the next millisecond
            gid = self._snowflake()
        owner_id = self._resolve_user(owner)["id"] if owner is not None else self._bot_id
        guild = _Guild(id=gid, name=name, owner_id=owner_id, created=_iso())
        self.guilds[gid] = guild
        self.guild_commands.setdefault(gid, [])
        guild.roles[gid] = self._role_payload(gid, "@everyone", Perm.EVERYONE, position=0)
        for channel in channels:
            self.add_channel(channel, guild=gid)
        if with_bot:
            bot_name = self.bot_user["username"]
            role = self.add_role(bot_name, guild=gid, permissions=Perm.BOT, managed=True)
            role["tags"] = {"bot_id": self._bot_id}
            self.add_member(self._bot_id, guild=gid, roles=[role["id"]])
        return gid

    def add_channel(
        self,
        name: str,
        guild: Ref | None = None,
        *,
        type: int = 0,
        parent: Ref | None = None,
        topic: str | None = None,
        position: int | None = None,
    ) -> JSON:
        """Create a guild channel (0 text, 2 voice, 4 category, 5 announcement...) and return it."""
        g = self._resolve_guild(guild)
        cid = self._snowflake()
        channel: JSON = {
            "id": cid,
            "type": type,
            "guild_id": g.id,
            "name": name,
            "position": position if position is not None else len(g.channels),
            "permission_overwrites": [],
            "parent_id": self._resolve_channel(parent, g.id)["id"] if parent is not None else None,
            "nsfw": False,
            "flags": 0,
        }
        if type in (0, 5):
            channel.update(
                topic=topic, last_message_id=None, rate_limit_per_user=0, default_auto_archive_duration=1440
            )
        elif type in (2, 13):
            channel.update(
                bitrate=64000, user_limit=0, rtc_region=None, last_message_id=None, rate_limit_per_user=0
            )
        g.channels[cid] = channel
        self.channels[cid] = channel
        return channel

    def _role_payload(
        self,
        rid: str,
        name: str,
        permissions: int,
        *,
        position: int,
        color: int = 0,
        hoist: bool = False,
        mentionable: bool = False,
        managed: bool = False,
    ) -> JSON:
        return {
            "id": rid,
            "name": name,
            "color": color,
            "colors": {"primary_color": color, "secondary_color": None, "tertiary_color": None},
            "hoist": hoist,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": managed,
            "mentionable": mentionable,
            "flags": 0,
        }

    def add_role(
        self,
        name: str,
        guild: Ref | None = None,
        *,
        permissions: int = 0,
        color: int = 0,
        hoist: bool = False,
        mentionable: bool = False,
        managed: bool = False,
        position: int | None = None,
    ) -> JSON:
        """Create a role above the existing ones (or at ``position``, the roles from there moving up one)
        and return it."""
        g = self._resolve_guild(guild)
        top = len(g.roles)
        at = top if position is None else max(1, min(position, top))
        for other in g.roles.values():
            if other["position"] >= at and other["id"] != g.id:
                other["position"] += 1
        role = self._role_payload(
            self._snowflake(),
            name,
            permissions,
            position=at,
            color=color,
            hoist=hoist,
            mentionable=mentionable,
            managed=managed,
        )
        g.roles[role["id"]] = role
        return role

    def move_role(self, role: Ref, position: int, guild: Ref | None = None) -> JSON:
        """Put a role at ``position`` (1 = just above @everyone), the roles in between moving one step, as
        dragging it in Server Settings → Roles does; returns it. World building: nothing is dispatched."""
        g = self._resolve_guild(guild)
        moved = self._resolve_role(role, g)
        order = [r for r in self.roles_by_position(g.id) if r["id"] not in (g.id, moved["id"])]
        order.insert(max(0, min(position, len(order) + 1) - 1), moved)
        for index, each in enumerate(order, start=1):
            each["position"] = index
        return moved

    def roles_by_position(self, guild: Ref | None = None) -> list[JSON]:
        """The guild's roles from the bottom (@everyone) up."""
        g = self._resolve_guild(guild)
        return sorted(g.roles.values(), key=lambda r: (r["position"], int(r["id"])))

    def member_roles(self, user: Ref, guild: Ref | None = None) -> list[str]:
        """The names of the roles ``user`` holds in ``guild`` (default guild), as the server has them now."""
        g = self._resolve_guild(guild)
        uid = self._resolve_user(user)["id"]
        return [g.roles[rid]["name"] for rid in g.members[uid]["roles"] if rid in g.roles]

    def add_member(
        self, user: Ref, guild: Ref | None = None, *, roles: Iterable[Ref] = (), nick: str | None = None
    ) -> JSON:
        """Make a user a guild member (creating the user if ``user`` is an unknown name).

        Does not dispatch anything: use :meth:`member_add` once a client is connected.
        """
        g = self._resolve_guild(guild)
        if isinstance(user, str) and user not in self.users and self._find_user(user) is None:
            user = self.add_user(user)
        u = self._resolve_user(user)
        g.members[u["id"]] = {
            "roles": [self._resolve_role(r, g)["id"] for r in roles],
            "nick": nick,
            "avatar": None,
            "banner": None,
            "joined_at": _iso(),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        return self._member_payload(g, u["id"])

    def dm_channel(self, user: Ref) -> str:
        """The id of the DM channel between the bot and ``user`` (created on first use)."""
        uid = self._resolve_user(user)["id"]
        if uid not in self._dm_by_user:
            cid = self._snowflake()
            self.channels[cid] = {
                "id": cid,
                "type": 1,
                "last_message_id": None,
                "flags": 0,
                "recipients": [self.users[uid]],
            }
            self._dm_by_user[uid] = cid
        return self._dm_by_user[uid]

    def close_dms(self, user: Ref) -> None:
        """``user`` takes no direct messages from the bot (privacy settings, or no shared server): the DM
        channel is still opened, as Discord does, but a message posted in it answers 403/50007."""
        self.closed_dms.add(self._resolve_user(user)["id"])

    async def channel_overwrite(
        self, channel: Ref, target: Ref, *, allow: int = 0, deny: int = 0, guild: Ref | None = None
    ) -> JSON:
        """Set a channel's permission overwrite for a role or a member (``target``: a role's or a user's
        name or id; the bot by its name), replacing one it had, as Channel settings → Permissions does, and
        dispatch CHANNEL_UPDATE. ``allow=deny=0`` removes it. Posting in the channel then follows Discord's
        rules: without View Channel 403/50001 "Missing Access", without Send Messages 403/50013 "Missing
        Permissions". Returns the channel."""
        g = self._resolve_guild(guild)
        chan = self._resolve_channel(channel, g.id)
        key = self._ref_key(target)
        role = g.roles.get(key) or next((r for r in g.roles.values() if r["name"] == key), None)
        kind, tid = (0, role["id"]) if role is not None else (1, self._resolve_user(target)["id"])
        overwrites = [o for o in chan["permission_overwrites"] if o["id"] != tid]
        if allow or deny:
            overwrites.append({"id": tid, "type": kind, "allow": str(allow), "deny": str(deny)})
        chan["permission_overwrites"] = overwrites
        await self._broadcast("CHANNEL_UPDATE", copy.deepcopy(chan))
        return chan

    def channel_permissions(self, channel: JSON, uid: str) -> int:
        """A member's permissions in a guild channel, as Discord computes them: the roles', then the
        channel's overwrites for @everyone, for the member's roles, for the member (a thread: its
        parent's)."""
        g = self._guild_of_channel(channel)
        if g is None:
            return Perm.ALL
        perms = self._permissions(g, uid)
        if perms == Perm.ALL:
            return perms
        parent = (
            self.channels.get(channel.get("parent_id") or "") if channel["type"] in (10, 11, 12) else None
        )
        overwrites = {o["id"]: o for o in (parent or channel)["permission_overwrites"]}
        member_roles = g.members.get(uid, {}).get("roles", [])
        layers = [
            [overwrites.get(g.id)],
            [overwrites.get(rid) for rid in member_roles],
            [overwrites.get(uid)],
        ]
        for layer in layers:
            found = [o for o in layer if o is not None]
            deny = 0
            allow = 0
            for o in found:
                deny |= int(o["deny"])
                allow |= int(o["allow"])
            perms = (perms & ~deny) | allow
        return perms

    # ------------------------------------------------------------------ lookups

    def _find_user(self, name: str) -> JSON | None:
        return next((u for u in self.users.values() if u["username"] == name), None)

    def user_id(self, username: str) -> str:
        """The id of the user called ``username``."""
        return self._resolve_user(username)["id"]

    def channel_id(self, name: str, guild: Ref | None = None) -> str:
        """The id of the channel called ``name`` in ``guild`` (default guild if omitted)."""
        return self._resolve_channel(name, guild)["id"]

    def role_id(self, name: str, guild: Ref | None = None) -> str:
        """The id of the role called ``name`` in ``guild`` (default guild if omitted)."""
        return self._resolve_role(name, self._resolve_guild(guild))["id"]

    def member(self, user: Ref, guild: Ref | None = None) -> JSON:
        """The member payload (with ``user``) of ``user`` in ``guild``."""
        g = self._resolve_guild(guild)
        return self._member_payload(g, self._resolve_user(user)["id"])

    @staticmethod
    def _ref_key(ref: Ref) -> str:
        if isinstance(ref, Mapping):
            return str(ref["id"])
        return str(ref)

    def _resolve_user(self, ref: Ref | None) -> JSON:
        if ref is None:
            raise ValueError("a user is required")
        key = self._ref_key(ref)
        user = self.users.get(key) or self._find_user(key)
        if user is None:
            raise KeyError(
                f"unknown user {ref!r}; known: {sorted(u['username'] for u in self.users.values())}"
            )
        return user

    def _resolve_guild(self, ref: Ref | None) -> _Guild:
        if ref is None:
            return self.guilds[self._default_guild_id]
        key = self._ref_key(ref)
        guild = self.guilds.get(key) or next((g for g in self.guilds.values() if g.name == key), None)
        if guild is None:
            raise KeyError(f"unknown guild {ref!r}")
        return guild

    def _resolve_channel(self, ref: Ref | None, guild: Ref | None = None) -> JSON:
        if ref is None:
            g = self._resolve_guild(guild)
            text = [c for c in g.channels.values() if c["type"] in (0, 5)]
            if not text:
                raise KeyError(f"guild {g.name!r} has no text channel")
            return text[0]
        key = self._ref_key(ref)
        if key in self.channels:
            return self.channels[key]
        g = self._resolve_guild(guild)
        channel = next((c for c in g.channels.values() if c["name"] == key), None)
        if channel is None:
            raise KeyError(
                f"unknown channel {ref!r}; known in {g.name!r}: {[c['name'] for c in g.channels.values()]}"
            )
        return channel

    def _resolve_role(self, ref: Ref, guild: _Guild) -> JSON:
        key = self._ref_key(ref)
        role = guild.roles.get(key) or next((r for r in guild.roles.values() if r["name"] == key), None)
        if role is None:
            raise KeyError(f"unknown role {ref!r}; known: {[r['name'] for r in guild.roles.values()]}")
        return role

    def _guild_of_channel(self, channel: JSON) -> _Guild | None:
        gid = channel.get("guild_id")
        return self.guilds.get(gid) if gid else None

    def _member_payload(self, guild: _Guild, uid: str, *, with_user: bool = True) -> JSON:
        if uid not in guild.members:
            raise KeyError(f"user {uid} is not a member of guild {guild.name!r}")
        member = copy.deepcopy(guild.members[uid])
        if with_user:
            member["user"] = copy.deepcopy(self.users[uid])
        return member

    def _permissions(self, guild: _Guild, uid: str) -> int:
        """Guild-level permissions (roles only, no channel overwrites): what interactions report."""
        if uid == guild.owner_id:
            return Perm.ALL
        perms = int(guild.roles[guild.id]["permissions"])
        for rid in guild.members.get(uid, {}).get("roles", []):
            perms |= int(guild.roles[rid]["permissions"])
        return Perm.ALL if perms & Perm.ADMINISTRATOR else perms

    def _guild_base(self, guild: _Guild) -> JSON:
        return {
            "id": guild.id,
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": guild.owner_id,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": guild.system_channel_id,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "features": [],
            "roles": [copy.deepcopy(r) for r in guild.roles.values()],
            "emojis": [],
            "stickers": [],
            "max_members": 500000,
            "max_video_channel_users": 25,
        }

    def _guild_create_payload(self, guild: _Guild, session: _Session) -> JSON:
        if session.intents & Intent.GUILD_MEMBERS and self.full_member_list:
            member_ids = list(guild.members)
        else:
            # Without GUILD_MEMBERS (and presences), Discord only sends the bot itself.
            member_ids = [self._bot_id] if self._bot_id in guild.members else []
        payload = self._guild_base(guild)
        payload.update(
            joined_at=guild.members.get(self._bot_id, {}).get("joined_at", guild.created),
            large=len(guild.members) >= 250,
            unavailable=False,
            member_count=len(guild.members),
            channels=[copy.deepcopy(c) for c in guild.channels.values()],
            threads=[],
            members=[self._member_payload(guild, uid) for uid in member_ids],
            presences=[],
            voice_states=[],
            stage_instances=[],
            guild_scheduled_events=[copy.deepcopy(e) for e in guild.scheduled_events.values()],
            soundboard_sounds=[],
        )
        return payload

    # ------------------------------------------------------------------ waiting

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def _wait_until(
        self, predicate: Callable[[], Any], timeout: float, describe: Callable[[], str]
    ) -> Any:
        """Wait until ``predicate()`` is truthy, woken by every recorded request or gateway frame."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(describe())
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, remaining)

    def find(self, method: str | None, path_regex: str) -> list[Request]:
        """Recorded requests whose method matches (None = any) and whose path fully matches the regex."""
        pattern = re.compile(path_regex)
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper()) and pattern.fullmatch(r.path)
        ]

    def last(self, method: str | None, path_regex: str) -> Request:
        """The most recent matching request; AssertionError listing the recorded ones if there is none."""
        found = self.find(method, path_regex)
        if not found:
            raise AssertionError(f"no {method} {path_regex} request; recorded:\n{self.describe_requests()}")
        return found[-1]

    async def wait_for_request(
        self,
        method: str | None,
        path_regex: str,
        timeout: float = 5.0,
        *,
        predicate: Callable[[Request], bool] | None = None,
        start: int = 0,
    ) -> Request:
        """Wait for the first matching request recorded at index ``start`` or later (already recorded ones
        count), e.g. ``start=len(server.requests)`` to only accept new calls."""
        pattern = re.compile(path_regex)

        def match() -> Request | None:
            for r in self.requests[start:]:
                if (method is None or r.method == method.upper()) and pattern.fullmatch(r.path):
                    if predicate is None or predicate(r):
                        return r
            return None

        return await self._wait_until(
            match,
            timeout,
            lambda: (
                f"timed out after {timeout}s waiting for {method} {path_regex}; recorded:\n"
                f"{self.describe_requests()}"
            ),
        )

    async def wait_for_gateway_op(self, op: int, timeout: float = 5.0, *, start: int = 0) -> GatewayFrame:
        """Wait until a client sent a gateway payload with this opcode (index ``start`` or later)."""
        return await self._wait_until(
            lambda: next((f for f in self.gateway_log[start:] if f.op == op), None),
            timeout,
            lambda: (
                f"timed out waiting for gateway op {op}; received ops: {[f.op for f in self.gateway_log]}"
            ),
        )

    async def wait_for_ack(self, interaction: InteractionRecord, timeout: float = 5.0) -> InteractionRecord:
        """Wait until the bot acknowledged ``interaction`` (any callback type)."""
        await self._wait_until(
            lambda: interaction.acked,
            timeout,
            lambda: f"interaction {interaction.id} was not acknowledged within {timeout}s",
        )
        return interaction

    def describe_requests(self) -> str:
        """A readable list of recorded requests, for assertion messages."""
        lines = [f"  {r.method} {r.path} -> {r.status}" for r in self.requests]
        return "\n".join(lines) or "  (none)"

    def assert_healthy(self) -> None:
        """Fail if the fake hit an internal error or (unless disabled) a route it does not implement."""
        problems = list(self.internal_errors)
        if self.fail_on_unhandled_routes:
            problems += [f"unhandled route {r.method} {r.path} (answered 404)" for r in self.unhandled]
        if problems:
            raise AssertionError("FakeDiscord problems:\n" + "\n".join(problems))

    # ------------------------------------------------------------------ gateway

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        if self.gateway_down:
            return web.Response(status=503, text="gateway unavailable (FakeDiscord.gateway_down)")
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn = _Connection(ws=ws, query=dict(request.query))
        self._connections.append(conn)
        try:
            if conn.query.get("encoding", "json") != "json":
                await self._close(conn, code=4002, message=b"only encoding=json is supported by FakeDiscord")
                return ws
            await self._send(
                conn,
                {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None, "t": None},
            )
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op, d = frame.get("op"), frame.get("d")
                self.gateway_log.append(
                    GatewayFrame(op=op, d=d, session_id=conn.session.id if conn.session else None)
                )
                self._notify()
                try:
                    await self._gateway_op(conn, op, d)
                except Exception:
                    self._internal_error(f"gateway op {op}")
        finally:
            self._connections.remove(conn)
            session = conn.session
            if session is not None and session.conn is conn:
                session.conn = None
                if ws.close_code in (1000, 1001) and not conn.closed_by_server:
                    session.ended = True  # a clean close invalidates the session, as on Discord
            self._notify()
        return ws

    async def _gateway_op(self, conn: _Connection, op: int, d: Any) -> None:
        if op == 1:
            await self._send(conn, {"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            await self._identify(conn, d)
        elif op == 6:
            await self._resume(conn, d)
        elif op == 8:
            await self._request_members(conn, d)
        elif op in (3, 4):
            pass  # presence / voice state updates: recorded in gateway_log only
        else:
            log.warning("FakeDiscord: unhandled gateway op %s: %r", op, d)

    async def _close(self, conn: _Connection, *, code: int, message: bytes) -> None:
        """Close from the server side. Recorded because aiohttp then reports the close code the client
        echoed (often 1000), which must not end the session the way a client's own 1000 close does."""
        conn.closed_by_server = True
        if not conn.ws.closed:
            await conn.ws.close(code=code, message=message)

    async def _send(self, conn: _Connection, frame: JSON) -> bool:
        self.gateway_sent.append(
            GatewayFrame(
                op=frame["op"],
                d=frame.get("d"),
                t=frame.get("t"),
                s=frame.get("s"),
                session_id=conn.session.id if conn.session else None,
            )
        )
        if conn.ws.closed:
            return False
        try:
            await conn.ws.send_str(_dumps(frame))
        except (ConnectionError, RuntimeError):
            return False
        return True

    @staticmethod
    def _flags_for_privileged(privileged: int) -> int:
        flags = 0
        if privileged & Intent.GUILD_PRESENCES:
            flags |= 1 << 12
        if privileged & Intent.GUILD_MEMBERS:
            flags |= 1 << 14
        if privileged & Intent.MESSAGE_CONTENT:
            flags |= 1 << 18
        return flags

    async def _identify(self, conn: _Connection, d: JSON) -> None:
        self.identify_payloads.append(d)
        if d.get("token") != self.token:
            await self._close(conn, code=4004, message=b"Authentication failed.")
            return
        intents = int(d.get("intents", Intent.PRIVILEGED ^ ((1 << 26) - 1)))
        if intents & Intent.PRIVILEGED & ~self.privileged_intents:
            await self._close(conn, code=4014, message=b"Disallowed intent(s).")
            return
        session = _Session(id=secrets.token_hex(16), intents=intents, identify=d, conn=conn)
        conn.session = session
        self.sessions.append(session)
        bot_guilds = [
            g for g in self.guilds.values() if self._bot_id in g.members and _on_shard(session, g.id)
        ]
        ready: JSON = {
            "v": 10,
            "user": {**self.bot_user, "verified": True, "mfa_enabled": False, "flags": 0, "email": None},
            "guilds": [{"id": g.id, "unavailable": True} for g in bot_guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": self._application_id, "flags": self.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["local"],
            "user_settings": {},
            "auth": {},
        }
        if "shard" in d:
            ready["shard"] = d["shard"]
        await self._deliver(session, "READY", ready)
        for guild in bot_guilds:
            await self._deliver(session, "GUILD_CREATE", self._guild_create_payload(guild, session))

    async def _resume(self, conn: _Connection, d: JSON) -> None:
        session = next((s for s in self.sessions if s.id == d.get("session_id")), None)
        if d.get("token") != self.token:
            await self._close(conn, code=4004, message=b"Authentication failed.")
            return
        if session is None or session.ended:
            await self._send(conn, {"op": 9, "d": False, "s": None, "t": None})
            return
        seq = d.get("seq") or 0
        async with session.lock:
            if session.replay:  # as if the client's acknowledged sequence number were behind
                sent = [frame["s"] for frame in session.history if frame["s"] <= seq]
                seq = sent[-session.replay - 1] if len(sent) > session.replay else 0
                session.replay = 0
            old = session.conn
            session.conn = conn
            conn.session = session
            for frame in session.history:
                if frame["s"] > seq:
                    await self._send(conn, frame)
            session.seq += 1
            resumed = {"op": 0, "t": "RESUMED", "s": session.seq, "d": {}}
            session.history.append(resumed)
            await self._send(conn, resumed)
            session.resume_count += 1
        self._notify()
        if old is not None and old is not conn and not old.ws.closed:
            await self._close(old, code=4000, message=b"session resumed elsewhere")

    async def _request_members(self, conn: _Connection, d: JSON) -> None:
        session = conn.session
        if session is None:
            await self._close(conn, code=4003, message=b"Not authenticated.")
            return
        guild = self.guilds.get(str(d.get("guild_id")))
        if guild is None:
            return
        raw_ids = d.get("user_ids")
        query = d.get("query")
        limit = int(d.get("limit") or 0)
        not_found: list[str] = []
        if raw_ids:
            ids = [str(x) for x in (raw_ids if isinstance(raw_ids, list) else [raw_ids])]
            member_ids = [i for i in ids if i in guild.members]
            not_found = [i for i in ids if i not in guild.members]
        elif not session.intents & Intent.GUILD_MEMBERS and not query and limit == 0:
            log.warning("FakeDiscord: op 8 for the full member list without the GUILD_MEMBERS intent")
            member_ids = []
        else:
            prefix = (query or "").lower()
            member_ids = [
                uid
                for uid, m in guild.members.items()
                if self.users[uid]["username"].lower().startswith(prefix)
                or (m.get("nick") or "").lower().startswith(prefix)
            ]
            if limit:
                member_ids = member_ids[:limit]
        chunk: JSON = {
            "guild_id": guild.id,
            "members": [self._member_payload(guild, uid) for uid in member_ids],
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if not_found:
            chunk["not_found"] = not_found
        if d.get("nonce") is not None:
            chunk["nonce"] = d["nonce"]
        await self._deliver(session, "GUILD_MEMBERS_CHUNK", chunk)

    def _wants(self, session: _Session, event: str, data: JSON) -> bool:
        required = _EVENT_INTENTS.get(event)
        if required is None:
            return True
        if isinstance(required, tuple):
            required = required[0] if data.get("guild_id") else required[1]
        return bool(session.intents & required)

    def _content_withheld(self, msg: JSON) -> bool:
        """Discord withholds content without MESSAGE_CONTENT except in DMs, own messages and mentions."""
        if not msg.get("guild_id"):
            return False
        if msg.get("author", {}).get("id") == self._bot_id:
            return False
        return not any(m.get("id") == self._bot_id for m in msg.get("mentions", []))

    @staticmethod
    def _withhold_content(payload: JSON) -> None:
        """Empty what Discord withholds from an app without the message-content intent."""
        if "content" in payload:
            payload["content"] = ""
        for key in ("embeds", "attachments", "components"):
            if key in payload:
                payload[key] = []
        payload.pop("poll", None)

    def _rest_message(self, msg: JSON) -> JSON:
        """A stored message as REST returns it: over REST Discord withholds content by the app's intent
        setting (``privileged_intents``, the developer portal), not by what a gateway session asked for."""
        out = copy.deepcopy(msg)
        if not self.privileged_intents & Intent.MESSAGE_CONTENT and self._content_withheld(
            self._gateway_message(msg)
        ):
            self._withhold_content(out)
        return out

    async def _deliver(self, session: _Session, event: str, data: JSON) -> bool:
        if not self._wants(session, event, data):
            return False
        payload = copy.deepcopy(data)
        if (
            event in ("MESSAGE_CREATE", "MESSAGE_UPDATE")
            and not session.intents & Intent.MESSAGE_CONTENT
            and self._content_withheld(payload)
        ):
            self._withhold_content(payload)
        async with session.lock:
            session.seq += 1
            frame = {"op": 0, "t": event, "s": session.seq, "d": payload}
            session.history.append(frame)
            if session.conn is not None:
                await self._send(session.conn, frame)
        return True

    def _live_sessions(self) -> list[_Session]:
        return [s for s in self.sessions if not s.ended]

    async def dispatch(self, event: str, data: JSON) -> int:
        """Send a DISPATCH (op 0) with the next sequence number to every live session whose intents allow
        it; return how many sessions got it (0 = filtered by intents). Sessions that are momentarily
        disconnected get it on RESUME. Raises if no client ever identified, since that is a test bug."""
        sessions = self._live_sessions()
        if not sessions:
            raise RuntimeError(f"no gateway session to dispatch {event} to: connect a client first")
        delivered = 0
        for session in sessions:
            if _on_shard(session, data.get("guild_id")):
                delivered += await self._deliver(session, event, data)
        return delivered

    async def _broadcast(self, event: str, data: JSON) -> None:
        for session in self._live_sessions():
            if _on_shard(session, data.get("guild_id")):
                await self._deliver(session, event, data)

    async def send_reconnect(
        self, *, wait_resumed: bool = True, timeout: float = 5.0, replay: int = 0
    ) -> None:
        """Send op 7 RECONNECT to every connected session; by default wait until each RESUMEd.

        ``replay``: the RESUME also replays the last ``replay`` events each session had already received
        (Discord replays from the sequence number the client sends, which may be behind what it handled)."""
        sessions = [s for s in self._live_sessions() if s.conn is not None]
        if not sessions:
            raise RuntimeError("no connected gateway session")
        before = {s.id: s.resume_count for s in sessions}
        for session in sessions:
            session.replay = replay
        for session in sessions:
            if session.conn is not None:
                await self._send(session.conn, {"op": 7, "d": None, "s": None, "t": None})
        if wait_resumed:
            await self._wait_until(
                lambda: all(s.resume_count > before[s.id] and s.conn is not None for s in sessions),
                timeout,
                lambda: f"client did not RESUME within {timeout}s; ops: {[f.op for f in self.gateway_log]}",
            )

    async def drop_connection(
        self, code: int = 4000, *, wait_resumed: bool = True, timeout: float = 5.0
    ) -> None:
        """Close every gateway connection from the server side (a resumable close code by default), like a
        network drop; by default wait until each session RESUMEd."""
        sessions = [s for s in self._live_sessions() if s.conn is not None]
        before = {s.id: s.resume_count for s in sessions}
        for session in sessions:
            if session.conn is not None:
                await self._close(session.conn, code=code, message=b"dropped by test")
        if wait_resumed:
            await self._wait_until(
                lambda: all(s.resume_count > before[s.id] and s.conn is not None for s in sessions),
                timeout,
                lambda: f"client did not RESUME within {timeout}s; ops: {[f.op for f in self.gateway_log]}",
            )

    async def gateway_outage(self) -> None:
        """Start a gateway outage: open connections are dropped (resumable, like a network failure) and
        new ones are refused with 503 until ``gateway_down`` is set back to False. Events dispatched
        meanwhile are kept for each session and replayed when its client RESUMEs."""
        self.gateway_down = True
        await self.drop_connection(wait_resumed=False)

    async def redeliver_message(self, message_id: Ref) -> int:
        """Dispatch a stored message's MESSAGE_CREATE again, same id, to the live sessions (a new one after a
        bot restart included): a bot must not handle it twice. Returns how many sessions got it."""
        return await self.dispatch("MESSAGE_CREATE", self._gateway_message(self._message(message_id)))

    async def redeliver_interaction(self, record: InteractionRecord) -> int:
        """Dispatch an interaction's INTERACTION_CREATE again, same id and token: acknowledging it a second
        time answers 400/40060, as for any second acknowledgement."""
        return await self.dispatch("INTERACTION_CREATE", record.payload)

    # ------------------------------------------------------------------ messages

    def _attachment(
        self,
        channel_id: str,
        filename: str,
        size: int = 0,
        content_type: str | None = None,
        description: str | None = None,
    ) -> JSON:
        aid = self._snowflake()
        url = f"{self.url}/attachments/{channel_id}/{aid}/{filename}"
        return {
            "id": aid,
            "filename": filename,
            "size": size,
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
            "description": description,
        }

    def _mentions(self, content: str, guild: _Guild | None) -> tuple[list[JSON], list[str]]:
        users: list[JSON] = []
        for uid in dict.fromkeys(re.findall(r"<@!?(\d+)>", content or "")):
            if uid in self.users:
                user = copy.deepcopy(self.users[uid])
                if guild is not None and uid in guild.members:
                    user["member"] = self._member_payload(guild, uid, with_user=False)
                users.append(user)
        roles = [
            r for r in dict.fromkeys(re.findall(r"<@&(\d+)>", content or "")) if guild and r in guild.roles
        ]
        return users, roles

    def _build_message(
        self,
        channel: JSON,
        author: JSON,
        payload: Mapping[str, Any],
        *,
        files: Sequence[UploadedFile] = (),
        message_type: int = 0,
        webhook_id: str | None = None,
        interaction: InteractionRecord | None = None,
        flags: int = 0,
    ) -> JSON:
        guild = self._guild_of_channel(channel)
        content = payload.get("content") or ""
        mentions, mention_roles = self._mentions(content, guild)
        mid = self._snowflake()
        attachments = [
            self._attachment(channel["id"], f.filename, len(f.data), f.content_type) for f in files
        ]
        for meta, att in zip(payload.get("attachments") or [], attachments, strict=False):
            if isinstance(meta, Mapping) and meta.get("description"):
                att["description"] = meta["description"]
        msg: JSON = {
            "id": mid,
            "channel_id": channel["id"],
            "type": message_type,
            "author": copy.deepcopy(author),
            "content": content,
            "timestamp": _iso(),
            "edited_timestamp": None,
            "tts": bool(payload.get("tts", False)),
            "mention_everyone": "@everyone" in content or "@here" in content,
            "mentions": mentions,
            "mention_roles": mention_roles,
            "attachments": attachments,
            "embeds": [self._embed(e) for e in payload.get("embeds") or []],
            "components": copy.deepcopy(payload.get("components") or []),
            "reactions": [],
            "pinned": False,
            "flags": flags,
        }
        if payload.get("nonce") is not None:
            msg["nonce"] = payload["nonce"]
        if webhook_id is not None:
            msg["webhook_id"] = webhook_id
            msg["application_id"] = self._application_id
        if payload.get("poll"):
            msg["poll"] = self._poll(payload["poll"])
        reference = payload.get("message_reference")
        if reference:
            ref_id = str(reference.get("message_id"))
            msg["message_reference"] = {
                "type": reference.get("type", 0),
                "message_id": ref_id,
                "channel_id": str(reference.get("channel_id") or channel["id"]),
                **({"guild_id": guild.id} if guild else {}),
            }
            msg["referenced_message"] = copy.deepcopy(self.messages.get(ref_id))
            if msg["type"] == 0 and reference.get("type", 0) == 0:
                msg["type"] = 19
        if interaction is not None:
            user = copy.deepcopy(self.users[interaction.user_id])
            name = (interaction.payload.get("data") or {}).get("name")
            owners = interaction.payload.get("authorizing_integration_owners", {})
            msg["interaction_metadata"] = {
                "id": interaction.id,
                "type": interaction.type,
                "user": user,
                "authorizing_integration_owners": owners,
            }
            if name:
                msg["interaction_metadata"]["name"] = name
                msg["interaction"] = {
                    "id": interaction.id,
                    "type": interaction.type,
                    "name": name,
                    "user": user,
                }
            if interaction.message_id:
                msg["interaction_metadata"]["interacted_message_id"] = interaction.message_id
        return msg

    @staticmethod
    def _embed(embed: Mapping[str, Any]) -> JSON:
        out = dict(copy.deepcopy(embed))
        out.setdefault("type", "rich")
        return out

    def _poll(self, poll: Mapping[str, Any]) -> JSON:
        hours = float(poll.get("duration", 24))
        return {
            "question": copy.deepcopy(poll.get("question", {})),
            "answers": [
                {"answer_id": i + 1, "poll_media": copy.deepcopy(a.get("poll_media", {}))}
                for i, a in enumerate(poll.get("answers", []))
            ],
            "expiry": _iso(_now() + timedelta(hours=hours)),
            "allow_multiselect": bool(poll.get("allow_multiselect", False)),
            "layout_type": poll.get("layout_type", 1),
            "results": {"is_finalized": False, "answer_counts": []},
        }

    def _validate_message(
        self, payload: Mapping[str, Any] | None, files: Sequence[UploadedFile], *, creating: bool
    ) -> _Reply | None:
        """The checks Discord does that catch real bot bugs (empty or oversized messages, bad polls)."""
        if payload is None:
            payload = {}
        if not isinstance(payload, Mapping):
            return _err(400, 50109, "The request body contains invalid JSON.")
        content = payload.get("content")
        if content is not None and len(content) > 2000:
            return _invalid_form(["content"], "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        if len(payload.get("embeds") or []) > 10:
            return _invalid_form(["embeds"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        if (
            len(payload.get("components") or []) > 5
            and not int(payload.get("flags") or 0) & MessageFlag.IS_COMPONENTS_V2
        ):
            return _invalid_form(["components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
        poll = payload.get("poll")
        if poll:
            answers = poll.get("answers") or []
            if not 1 <= len(answers) <= 10:
                return _invalid_form(["poll", "answers"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 10.")
            if len((poll.get("question") or {}).get("text") or "") > 300:
                return _invalid_form(
                    ["poll", "question", "text"], "BASE_TYPE_MAX_LENGTH", "Must be 300 or fewer."
                )
            if not 1 <= float(poll.get("duration", 24)) <= 768:
                return _invalid_form(["poll", "duration"], "NUMBER_TYPE_MAX", "Must be between 1 and 768.")
        if creating and not (
            content
            or payload.get("embeds")
            or payload.get("components")
            or poll
            or files
            or payload.get("sticker_ids")
        ):
            return _err(400, 50006, "Cannot send an empty message")
        return None

    def _gateway_message(self, msg: JSON) -> JSON:
        """A stored (REST-shaped) message plus the ``guild_id``/``member`` the gateway adds."""
        out = copy.deepcopy(msg)
        channel = self.channels.get(msg["channel_id"])
        guild = self._guild_of_channel(channel) if channel else None
        if guild is not None:
            out["guild_id"] = guild.id
            author_id = msg["author"]["id"]
            if author_id in guild.members and "webhook_id" not in msg:
                out["member"] = self._member_payload(guild, author_id, with_user=False)
        return out

    async def _store_and_echo(self, msg: JSON) -> None:
        self.messages[msg["id"]] = msg
        channel = self.channels.get(msg["channel_id"])
        if channel is not None and "last_message_id" in channel:
            channel["last_message_id"] = msg["id"]
        if self.echo_own_messages and not msg["flags"] & MessageFlag.EPHEMERAL:
            await self._broadcast("MESSAGE_CREATE", self._gateway_message(msg))

    async def _echo_update(self, msg: JSON) -> None:
        if self.echo_own_messages and not msg["flags"] & MessageFlag.EPHEMERAL:
            await self._broadcast("MESSAGE_UPDATE", self._gateway_message(msg))

    async def _echo_delete(self, msg: JSON) -> None:
        if self.echo_own_messages and not msg["flags"] & MessageFlag.EPHEMERAL:
            data: JSON = {"id": msg["id"], "channel_id": msg["channel_id"]}
            guild = self._guild_of_channel(self.channels.get(msg["channel_id"], {}))
            if guild is not None:
                data["guild_id"] = guild.id
            await self._broadcast("MESSAGE_DELETE", data)

    def _apply_edit(self, msg: JSON, payload: Mapping[str, Any], files: Sequence[UploadedFile]) -> None:
        if "content" in payload:
            msg["content"] = payload["content"] or ""
            guild = self._guild_of_channel(self.channels.get(msg["channel_id"], {}))
            msg["mentions"], msg["mention_roles"] = self._mentions(msg["content"], guild)
        if "embeds" in payload:
            msg["embeds"] = [self._embed(e) for e in payload["embeds"] or []]
        if "components" in payload:
            msg["components"] = copy.deepcopy(payload["components"] or [])
        if "flags" in payload and payload["flags"] is not None:
            keep = msg["flags"] & (MessageFlag.EPHEMERAL | MessageFlag.LOADING)
            msg["flags"] = keep | (int(payload["flags"]) & ~(MessageFlag.EPHEMERAL | MessageFlag.LOADING))
        if "attachments" in payload or files:
            keep_ids = {str(a.get("id")) for a in payload.get("attachments") or [] if isinstance(a, Mapping)}
            kept = (
                [a for a in msg["attachments"] if a["id"] in keep_ids]
                if "attachments" in payload
                else list(msg["attachments"])
            )
            kept += [
                self._attachment(msg["channel_id"], f.filename, len(f.data), f.content_type) for f in files
            ]
            msg["attachments"] = kept
        msg["edited_timestamp"] = _iso()

    async def message_create(
        self,
        channel: Ref,
        author: Ref,
        content: str = "",
        *,
        embeds: Sequence[Mapping[str, Any]] = (),
        attachments: Sequence[str | Mapping[str, Any]] = (),
        components: Sequence[Mapping[str, Any]] = (),
        reply_to: Ref | None = None,
        poll: Mapping[str, Any] | None = None,
        flags: int = 0,
        nonce: str | None = None,
    ) -> JSON:
        """A user posts a message: store it and dispatch MESSAGE_CREATE (mentions parsed from content,
        ``member`` added in guilds). ``attachments`` are filenames or attachment payloads. Returns the
        stored message."""
        ch = self._resolve_channel(channel)
        user = self._resolve_user(author)
        payload: JSON = {
            "content": content,
            "embeds": list(embeds),
            "components": list(components),
            "nonce": nonce,
        }
        if poll:
            payload["poll"] = poll
        if reply_to is not None:
            payload["message_reference"] = {"message_id": self._ref_key(reply_to), "channel_id": ch["id"]}
        msg = self._build_message(ch, user, payload, flags=flags)
        for att in attachments:
            msg["attachments"].append(
                self._attachment(ch["id"], att) if isinstance(att, str) else dict(copy.deepcopy(att))
            )
        self.messages[msg["id"]] = msg
        if "last_message_id" in ch:
            ch["last_message_id"] = msg["id"]
        await self.dispatch("MESSAGE_CREATE", self._gateway_message(msg))
        return msg

    async def message_update(self, message_id: Ref, content: str) -> JSON:
        """A user edits their message: update it and dispatch MESSAGE_UPDATE."""
        msg = self._message(message_id)
        self._apply_edit(msg, {"content": content}, ())
        await self.dispatch("MESSAGE_UPDATE", self._gateway_message(msg))
        return msg

    async def message_delete(self, message_id: Ref) -> int:
        """A message is deleted: drop it and dispatch MESSAGE_DELETE."""
        msg = self.messages.pop(self._ref_key(message_id))
        data: JSON = {"id": msg["id"], "channel_id": msg["channel_id"]}
        guild = self._guild_of_channel(self.channels.get(msg["channel_id"], {}))
        if guild is not None:
            data["guild_id"] = guild.id
        return await self.dispatch("MESSAGE_DELETE", data)

    async def message_delete_bulk(self, message_ids: Sequence[Ref]) -> int:
        """A moderator deletes several messages of one channel at once: drop them and dispatch
        MESSAGE_DELETE_BULK."""
        msgs = [self.messages.pop(self._ref_key(ref)) for ref in message_ids]
        channels = {msg["channel_id"] for msg in msgs}
        if len(channels) != 1:
            raise ValueError("a bulk delete is of one channel's messages")
        data: JSON = {"ids": [msg["id"] for msg in msgs], "channel_id": channels.pop()}
        guild = self._guild_of_channel(self.channels.get(data["channel_id"], {}))
        if guild is not None:
            data["guild_id"] = guild.id
        return await self.dispatch("MESSAGE_DELETE_BULK", data)

    def _message(self, ref: Ref) -> JSON:
        key = self._ref_key(ref)
        if key not in self.messages:
            raise KeyError(f"unknown message {key}")
        return self.messages[key]

    def bot_messages(self, channel: Ref | None = None) -> list[JSON]:
        """Messages the bot created (REST or interaction responses), oldest first, optionally per channel."""
        cid = self._resolve_channel(channel)["id"] if channel is not None else None
        return [
            m
            for m in self.messages.values()
            if m["author"]["id"] == self._bot_id and (cid is None or m["channel_id"] == cid)
        ]

    # ------------------------------------------------------------------ members, reactions, polls

    async def member_add(
        self, guild: Ref | None, user: Ref, *, roles: Iterable[Ref] = (), nick: str | None = None
    ) -> JSON:
        """A user joins ``guild`` (None = default guild): add the member and dispatch GUILD_MEMBER_ADD (only
        sessions with GUILD_MEMBERS get it). Creates the user if ``user`` is an unknown name. Returns the
        member payload."""
        g = self._resolve_guild(guild)
        member = self.add_member(user, g.id, roles=roles, nick=nick)
        await self.dispatch("GUILD_MEMBER_ADD", {**member, "guild_id": g.id})
        return member

    async def member_remove(self, guild: Ref | None, user: Ref) -> int:
        """A member leaves ``guild`` (None = default guild): remove it and dispatch GUILD_MEMBER_REMOVE."""
        g = self._resolve_guild(guild)
        u = self._resolve_user(user)
        g.members.pop(u["id"], None)
        return await self.dispatch("GUILD_MEMBER_REMOVE", {"guild_id": g.id, "user": copy.deepcopy(u)})

    async def member_update(
        self,
        guild: Ref | None,
        user: Ref,
        *,
        nick: str | EllipsisType | None = ...,
        global_name: str | EllipsisType | None = ...,
        username: str | None = None,
    ) -> int:
        """A member changes their server nickname (``nick``, None = cleared) or their account's display
        name (``global_name``) or ``username``: the server stores it and dispatches GUILD_MEMBER_UPDATE with
        the whole member and its user, as Discord does for both (only sessions with GUILD_MEMBERS get it;
        USER_UPDATE is for the bot's own account). Returns how many sessions got it."""
        g = self._resolve_guild(guild)
        u = self._resolve_user(user)
        if nick is not ...:
            g.members[u["id"]]["nick"] = nick
        if global_name is not ...:
            u["global_name"] = global_name
        if username is not None:
            u["username"] = username
        return await self.dispatch(
            "GUILD_MEMBER_UPDATE", {**self._member_payload(g, u["id"]), "guild_id": g.id}
        )

    async def _member_update(self, guild: _Guild, uid: str) -> None:
        await self._broadcast(
            "GUILD_MEMBER_UPDATE", {**self._member_payload(guild, uid), "guild_id": guild.id}
        )

    @staticmethod
    def _emoji(emoji: str | Mapping[str, Any]) -> JSON:
        if isinstance(emoji, Mapping):
            return {
                "id": emoji.get("id"),
                "name": emoji.get("name"),
                **({"animated": True} if emoji.get("animated") else {}),
            }
        match = re.fullmatch(r"<?(a)?:?(\w+):(\d+)>?", emoji)
        if match:
            out: JSON = {"id": match.group(3), "name": match.group(2)}
            if match.group(1):
                out["animated"] = True
            return out
        return {"id": None, "name": emoji}

    @staticmethod
    def _emoji_key(emoji: JSON) -> str:
        return f"{emoji['name']}:{emoji['id']}" if emoji.get("id") else str(emoji["name"])

    def _record_reaction(self, msg: JSON, emoji: JSON, uid: str, *, add: bool) -> bool:
        key = (msg["id"], self._emoji_key(emoji))
        reactors = self._reactors.setdefault(key, [])
        if add == (uid in reactors):
            return False
        if add:
            reactors.append(uid)
        else:
            reactors.remove(uid)
        reactions = [r for r in msg["reactions"] if self._emoji_key(r["emoji"]) != key[1]]
        if reactors:
            reactions.append(
                {
                    "emoji": emoji,
                    "count": len(reactors),
                    "count_details": {"burst": 0, "normal": len(reactors)},
                    "me": self._bot_id in reactors,
                    "me_burst": False,
                    "burst_colors": [],
                }
            )
        msg["reactions"] = reactions
        return True

    def _reaction_event(self, msg: JSON, uid: str, emoji: JSON, *, add: bool) -> JSON:
        data: JSON = {
            "user_id": uid,
            "channel_id": msg["channel_id"],
            "message_id": msg["id"],
            "emoji": emoji,
            "burst": False,
            "type": 0,
        }
        guild = self._guild_of_channel(self.channels.get(msg["channel_id"], {}))
        if guild is not None:
            data["guild_id"] = guild.id
            if add and uid in guild.members:
                data["member"] = self._member_payload(guild, uid)
        if add:
            data["message_author_id"] = msg["author"]["id"]
            data["burst_colors"] = []
        return data

    async def reaction_add(self, message_id: Ref, user: Ref, emoji: str | Mapping[str, Any] = "👍") -> int:
        """A user reacts (unicode emoji, ``name:id`` or a partial emoji dict): dispatch
        MESSAGE_REACTION_ADD with ``member`` in guilds. Returns how many sessions got it."""
        msg = self._message(message_id)
        uid = self._resolve_user(user)["id"]
        em = self._emoji(emoji)
        self._record_reaction(msg, em, uid, add=True)
        return await self.dispatch("MESSAGE_REACTION_ADD", self._reaction_event(msg, uid, em, add=True))

    async def reaction_remove(self, message_id: Ref, user: Ref, emoji: str | Mapping[str, Any] = "👍") -> int:
        """A user removes a reaction: dispatch MESSAGE_REACTION_REMOVE."""
        msg = self._message(message_id)
        uid = self._resolve_user(user)["id"]
        em = self._emoji(emoji)
        self._record_reaction(msg, em, uid, add=False)
        return await self.dispatch("MESSAGE_REACTION_REMOVE", self._reaction_event(msg, uid, em, add=False))

    def _update_poll_counts(self, msg: JSON) -> None:
        votes = self._poll_votes.get(msg["id"], {})
        msg["poll"]["results"]["answer_counts"] = [
            {"id": aid, "count": len(voters), "me_voted": self._bot_id in voters}
            for aid, voters in sorted(votes.items())
            if voters
        ]

    async def _poll_vote(self, message_id: Ref, user: Ref, answer_id: int, *, add: bool) -> int:
        msg = self._message(message_id)
        poll = msg.get("poll")
        if not poll:
            raise ValueError(f"message {msg['id']} has no poll")
        if poll["results"]["is_finalized"]:
            raise ValueError(f"the poll on message {msg['id']} has ended")
        if answer_id not in {a["answer_id"] for a in poll["answers"]}:
            raise ValueError(
                f"poll has no answer {answer_id}; answers: {[a['answer_id'] for a in poll['answers']]}"
            )
        uid = self._resolve_user(user)["id"]
        votes = self._poll_votes.setdefault(msg["id"], {})
        voters = votes.setdefault(answer_id, [])
        if add:
            if not poll["allow_multiselect"] and any(uid in v for v in votes.values()):
                raise ValueError("user already voted on a single-choice poll")
            voters.append(uid)
        elif uid in voters:
            voters.remove(uid)
        self._update_poll_counts(msg)
        data: JSON = {
            "user_id": uid,
            "channel_id": msg["channel_id"],
            "message_id": msg["id"],
            "answer_id": answer_id,
        }
        guild = self._guild_of_channel(self.channels.get(msg["channel_id"], {}))
        if guild is not None:
            data["guild_id"] = guild.id
        return await self.dispatch("MESSAGE_POLL_VOTE_ADD" if add else "MESSAGE_POLL_VOTE_REMOVE", data)

    async def poll_vote_add(self, message_id: Ref, user: Ref, answer_id: int) -> int:
        """A user votes for ``answer_id`` (1-based) of the poll on a message: dispatch
        MESSAGE_POLL_VOTE_ADD and update the stored results."""
        return await self._poll_vote(message_id, user, answer_id, add=True)

    async def poll_vote_remove(self, message_id: Ref, user: Ref, answer_id: int) -> int:
        """A user removes their vote: dispatch MESSAGE_POLL_VOTE_REMOVE."""
        return await self._poll_vote(message_id, user, answer_id, add=False)

    async def _scheduled_event_user(self, event_id: Ref, user: Ref, *, add: bool) -> int:
        key = self._ref_key(event_id)
        guild = next((g for g in self.guilds.values() if key in g.scheduled_events), None)
        if guild is None:
            raise KeyError(f"unknown scheduled event {key}")
        uid = self._resolve_user(user)["id"]
        if uid not in guild.members:
            raise ValueError(f"user {uid} is not a member of guild {guild.name!r}")
        users = self._event_users.setdefault(key, [])
        if add == (uid in users):
            raise ValueError(f"user {uid} is {'already' if add else 'not'} interested in event {key}")
        if add:
            users.append(uid)
        else:
            users.remove(uid)
        guild.scheduled_events[key]["user_count"] = len(users)
        data: JSON = {"guild_scheduled_event_id": key, "user_id": uid, "guild_id": guild.id}
        event = "GUILD_SCHEDULED_EVENT_USER_ADD" if add else "GUILD_SCHEDULED_EVENT_USER_REMOVE"
        return await self.dispatch(event, data)

    async def scheduled_event_user_add(self, event_id: Ref, user: Ref) -> int:
        """A member marks a scheduled event "Interested": dispatch GUILD_SCHEDULED_EVENT_USER_ADD (only
        sessions with GUILD_SCHEDULED_EVENTS get it; like Discord, the payload has ids only). Returns how
        many sessions got it."""
        return await self._scheduled_event_user(event_id, user, add=True)

    async def scheduled_event_user_remove(self, event_id: Ref, user: Ref) -> int:
        """A member un-marks "Interested": dispatch GUILD_SCHEDULED_EVENT_USER_REMOVE."""
        return await self._scheduled_event_user(event_id, user, add=False)

    # ------------------------------------------------------------------ interactions (dispatch side)

    def _interaction_channel(self, channel: JSON, uid: str) -> JSON:
        out = copy.deepcopy(channel)
        guild = self._guild_of_channel(channel)
        if guild is not None:
            out["permissions"] = str(self._permissions(guild, uid))
        return out

    def _new_interaction(
        self, itype: int, data: JSON, user: Ref, channel: JSON, *, message: JSON | None = None
    ) -> InteractionRecord:
        u = self._resolve_user(user)
        guild = self._guild_of_channel(channel)
        iid, token = self._snowflake(), f"itk-{secrets.token_urlsafe(32)}"
        payload: JSON = {
            "id": iid,
            "application_id": self._application_id,
            "type": itype,
            "token": token,
            "version": 1,
            "data": data,
            "channel_id": channel["id"],
            "channel": self._interaction_channel(channel, u["id"]),
            "locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        if guild is not None:
            if u["id"] not in guild.members:
                raise ValueError(f"{u['username']} is not a member of {guild.name!r}")
            member = self._member_payload(guild, u["id"])
            member["permissions"] = str(self._permissions(guild, u["id"]))
            payload.update(
                guild_id=guild.id,
                guild={"id": guild.id, "locale": "en-US", "features": []},
                guild_locale="en-US",
                member=member,
                app_permissions=str(self._permissions(guild, self._bot_id)),
                authorizing_integration_owners={"0": guild.id},
                context=0,
            )
        else:
            payload.update(
                user=copy.deepcopy(u),
                app_permissions=str(Perm.EVERYONE),
                authorizing_integration_owners={"1": u["id"]},
                context=1,
            )
        if message is not None:
            payload["message"] = copy.deepcopy(message)
        record = InteractionRecord(
            id=iid,
            token=token,
            type=itype,
            payload=payload,
            channel_id=channel["id"],
            guild_id=guild.id if guild else None,
            user_id=u["id"],
            message_id=message["id"] if message is not None else None,
        )
        self.interactions[token] = record
        return record

    def _find_command(self, name: str, guild_id: str | None, ctype: int) -> tuple[JSON | None, str | None]:
        if guild_id is not None:
            for cmd in self.guild_commands.get(guild_id, []):
                if cmd["name"] == name and cmd.get("type", 1) == ctype:
                    return cmd, guild_id
        for cmd in self.global_commands:
            if cmd["name"] == name and cmd.get("type", 1) == ctype:
                return cmd, None
        return None, None

    def _add_resolved(
        self, resolved: JSON, otype: int, value: Any, guild: _Guild | None, invoker: str
    ) -> str:
        """Turn a user/channel/role/mentionable/attachment option value into its id + ``resolved`` entry."""
        if otype == 11:
            att = (
                dict(value)
                if isinstance(value, Mapping)
                else self._attachment("0", str(value), 0, "application/octet-stream")
            )
            resolved.setdefault("attachments", {})[att["id"]] = att
            return att["id"]
        if otype in (6, 9):
            try:
                user = self._resolve_user(value)
            except KeyError:
                if otype == 6 or guild is None:
                    raise
            else:
                resolved.setdefault("users", {})[user["id"]] = copy.deepcopy(user)
                if guild is not None and user["id"] in guild.members:
                    member = self._member_payload(guild, user["id"], with_user=False)
                    member["permissions"] = str(self._permissions(guild, user["id"]))
                    resolved.setdefault("members", {})[user["id"]] = member
                return user["id"]
        if otype in (8, 9):
            if guild is None:
                raise ValueError("role options need a guild")
            role = self._resolve_role(value, guild)
            resolved.setdefault("roles", {})[role["id"]] = copy.deepcopy(role)
            return role["id"]
        if otype == 7:
            channel = self._resolve_channel(value, guild.id if guild else None)
            entry = copy.deepcopy(channel)
            entry["permissions"] = str(self._permissions(guild, invoker) if guild else Perm.EVERYONE)
            resolved.setdefault("channels", {})[channel["id"]] = entry
            return channel["id"]
        raise ValueError(f"option type {otype} is not resolvable")

    def _build_options(
        self,
        values: Mapping[str, Any],
        spec: list[JSON] | None,
        guild: _Guild | None,
        resolved: JSON,
        invoker: str,
        focused: str | None,
    ) -> list[JSON]:
        options: list[JSON] = []
        if spec is None:
            for name, value in values.items():
                if isinstance(value, bool):
                    otype = 5
                elif isinstance(value, int):
                    otype = 4
                elif isinstance(value, float):
                    otype = 10
                else:
                    otype, value = 3, str(value)
                options.append({"name": name, "type": otype, "value": value})
        else:
            by_name = {o["name"]: o for o in spec}
            unknown = [n for n in values if n not in by_name]
            if unknown:
                raise ValueError(
                    f"options {unknown} are not declared by the synced command; declared: {list(by_name)}"
                )
            if focused is None:
                missing = [o["name"] for o in spec if o.get("required") and o["name"] not in values]
                if missing:
                    raise ValueError(f"required options {missing} missing (Discord would not send this)")
            for name, value in values.items():
                opt = by_name[name]
                otype = opt["type"]
                if name == focused:
                    options.append({"name": name, "type": otype, "value": str(value), "focused": True})
                    continue
                if otype in (6, 7, 8, 9, 11):
                    value = self._add_resolved(resolved, otype, value, guild, invoker)
                elif otype == 4:
                    value = int(value)
                elif otype == 10:
                    value = float(value)
                elif otype == 5:
                    value = bool(value)
                elif otype == 3:
                    value = str(value)
                choices = opt.get("choices")
                if choices and value not in [c["value"] for c in choices]:
                    raise ValueError(
                        f"{value!r} is not a choice of option {name!r}: {[c['value'] for c in choices]}"
                    )
                options.append({"name": name, "type": otype, "value": value})
        return options

    async def interaction_slash(
        self,
        name: str,
        options: Mapping[str, Any] | Sequence[JSON] | None = None,
        user: Ref | None = None,
        channel: Ref | None = None,
        guild: Ref | None = None,
        *,
        subcommand: str | None = None,
        group: str | None = None,
        command_guild: Ref | None = None,
        resolved: JSON | None = None,
        focused: str | None = None,
        registered_only: bool = True,
    ) -> InteractionRecord:
        """``user`` runs ``/name [group] [subcommand] options...`` in ``channel`` (default: the first text
        channel of ``guild``, default guild if omitted; pass ``server.dm_channel(user)`` for a DM):
        dispatch INTERACTION_CREATE (type 2, or 4 autocomplete when ``focused`` names the option being
        typed) and return its :class:`InteractionRecord`.

        The command must have been registered (``tree.sync()`` globally, or for the interaction's guild):
        Discord never sends interactions for unknown commands, and forgetting to sync is a real bug. Option
        types come from the registered definition; values may be names (users, channels, roles) and are
        converted and ``resolved``; the command id and ``guild_id`` are the registered ones; undeclared
        or missing required options, unknown choices and missing subcommands raise ``ValueError``. With
        ``command_permissions`` on, a member lacking the command's ``default_member_permissions`` raises
        ``PermissionError``: Discord would not let them run it.

        ``registered_only=False`` allows unregistered commands: types are inferred from Python values
        (str/int/float/bool only) and ``data.guild_id`` is ``command_guild`` (default: the interaction's
        guild, which discord.py's tree also resolves for global commands via ``fallback_to_global``).
        A sequence of raw option dicts is always sent as is.
        """
        if user is None:
            raise TypeError("interaction_slash() needs the invoking user")
        ch = self._resolve_channel(channel, guild)
        g = self._guild_of_channel(ch)
        invoker = self._resolve_user(user)["id"]
        cmd, cmd_guild = self._find_command(name, g.id if g else None, 1)
        if cmd is None and registered_only:
            known = [c["name"] for c in self.global_commands]
            if g is not None:
                known += [c["name"] for c in self.guild_commands.get(g.id, [])]
            raise ValueError(
                f"/{name} is not registered for this guild or globally (registered: {known}); "
                "sync the command tree first, or pass registered_only=False"
            )
        needed = int((cmd or {}).get("default_member_permissions") or 0)
        if self.command_permissions and g is not None and self._permissions(g, invoker) & needed != needed:
            raise PermissionError(
                f"Discord does not let {self.users[invoker]['username']} run /{name}: it needs the "
                f"permissions {needed} (default_member_permissions) and no override allows it"
            )
        data: JSON = {"id": cmd["id"] if cmd else self._snowflake(), "name": name, "type": 1}
        if cmd is not None:
            if cmd_guild is not None:
                data["guild_id"] = cmd_guild
        elif command_guild is not None:
            data["guild_id"] = self._resolve_guild(command_guild).id
        elif g is not None:
            data["guild_id"] = g.id
        res: JSON = copy.deepcopy(resolved) if resolved else {}
        spec: list[JSON] | None = cmd.get("options", []) if cmd else None
        path: list[tuple[int, str]] = []
        if group is not None:
            path.append((2, group))
        if subcommand is not None:
            path.append((1, subcommand))
        for otype, oname in path:
            if spec is not None:
                node = next((o for o in spec if o["name"] == oname and o["type"] == otype), None)
                if node is None:
                    raise ValueError(f"/{name} has no {'group' if otype == 2 else 'subcommand'} {oname!r}")
                spec = node.get("options", [])
        if spec is not None and not path and any(o["type"] in (1, 2) for o in spec):
            raise ValueError(f"/{name} has subcommands; pass subcommand= (and group=)")
        if options is None:
            options = {}
        if isinstance(options, Mapping):
            leaf: list[JSON] = self._build_options(options, spec, g, res, invoker, focused)
        else:
            leaf = [dict(o) for o in options]
        for otype, oname in reversed(path):
            leaf = [{"name": oname, "type": otype, "options": leaf}]
        if leaf:
            data["options"] = leaf
        if res:
            data["resolved"] = res
        record = self._new_interaction(4 if focused else 2, data, user, ch)
        await self.dispatch("INTERACTION_CREATE", record.payload)
        return record

    @staticmethod
    def _walk_components(components: Any) -> Iterator[JSON]:
        if isinstance(components, Mapping):
            yield dict(components)
            for key in ("components", "component", "accessory"):
                if key in components:
                    yield from FakeDiscord._walk_components(components[key])
        elif isinstance(components, list):
            for item in components:
                yield from FakeDiscord._walk_components(item)

    async def interaction_component(
        self,
        custom_id: str,
        message_id: Ref,
        user: Ref,
        component_type: int | None = None,
        values: Sequence[Any] | None = None,
    ) -> InteractionRecord:
        """A user clicks a button / picks in a select on a stored message: dispatch INTERACTION_CREATE
        (type 3) carrying the full message, so discord.py's view store finds the View by message id and
        ``custom_id``. The component must exist on the message (``ValueError`` otherwise); its type is
        taken from the message unless given. Select values are validated against string-select options;
        user/role/channel select values may be names and are resolved."""
        msg = self._message(message_id)
        found = [
            c for c in self._walk_components(msg.get("components", [])) if c.get("custom_id") == custom_id
        ]
        if not found:
            ids = [
                c["custom_id"] for c in self._walk_components(msg.get("components", [])) if "custom_id" in c
            ]
            raise ValueError(f"message {msg['id']} has no component {custom_id!r}; custom_ids: {ids}")
        comp = found[0]
        ctype = component_type if component_type is not None else comp["type"]
        channel = self.channels[msg["channel_id"]]
        guild = self._guild_of_channel(channel)
        data: JSON = {"custom_id": custom_id, "component_type": ctype}
        if ctype in (3, 5, 6, 7, 8) or values is not None:
            vals = list(values or [])
            resolved: JSON = {}
            invoker = self._resolve_user(user)["id"]
            if ctype == 3:
                allowed = [o["value"] for o in comp.get("options", [])]
                bad = [v for v in vals if allowed and v not in allowed]
                if bad:
                    raise ValueError(f"{bad} are not options of select {custom_id!r}: {allowed}")
                vals = [str(v) for v in vals]
            elif ctype in (5, 6, 7, 8):
                otype = {5: 6, 6: 8, 7: 9, 8: 7}[ctype]
                vals = [self._add_resolved(resolved, otype, v, guild, invoker) for v in vals]
                data["resolved"] = resolved
            data["values"] = vals
        record = self._new_interaction(3, data, user, channel, message=msg)
        await self.dispatch("INTERACTION_CREATE", record.payload)
        return record

    async def interaction_modal_submit(
        self, custom_id: str, values: Mapping[str, str | Sequence[str]], *, user: Ref
    ) -> InteractionRecord:
        """A user submits a modal the bot opened (callback type 9): dispatch INTERACTION_CREATE (type 5)
        mirroring the modal's structure with ``values`` keyed by input ``custom_id``. Required text
        inputs left out raise ``ValueError``."""
        opener = self.open_modals.get(custom_id)
        if opener is None or opener.modal is None:
            raise ValueError(f"no modal {custom_id!r} was opened; opened: {list(self.open_modals)}")

        def submit(component: Mapping[str, Any]) -> JSON | None:
            ctype = component.get("type")
            if ctype == 1:
                inner = [s for s in (submit(c) for c in component.get("components", [])) if s is not None]
                return {"type": 1, "components": inner}
            if ctype == 18:
                inner_one = submit(component["component"])
                return {"type": 18, "component": inner_one} if inner_one is not None else None
            cid = component.get("custom_id")
            if cid is None:
                return None
            if ctype == 4:
                value = values.get(cid)
                if value is None and component.get("required", True):
                    raise ValueError(f"required text input {cid!r} has no value")
                return {"type": 4, "custom_id": cid, "value": value or ""}
            return {"type": ctype, "custom_id": cid, "values": list(values.get(cid) or [])}

        components = [s for s in (submit(c) for c in opener.modal.get("components", [])) if s is not None]
        channel = self.channels[opener.channel_id]
        message = self.messages.get(opener.message_id) if opener.message_id else None
        record = self._new_interaction(
            5, {"custom_id": custom_id, "components": components}, user, channel, message=message
        )
        await self.dispatch("INTERACTION_CREATE", record.payload)
        return record

    # ------------------------------------------------------------------ REST plumbing

    async def _read_body(self, request: web.Request) -> tuple[Any, list[UploadedFile]]:
        if request.content_type.startswith("multipart/"):
            payload: Any = None
            files: list[UploadedFile] = []
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, aiohttp.BodyPartReader):
                    continue
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                elif part.filename:
                    files.append(
                        UploadedFile(
                            part.name or "",
                            part.filename,
                            part.headers.get("Content-Type"),
                            bytes(await part.read(decode=True)),
                        )
                    )
            return payload, files
        raw = await request.read()
        if not raw:
            return None, []
        try:
            return json.loads(raw), []
        except ValueError:
            return raw.decode(errors="replace"), []

    def _internal_error(self, where: str) -> str:
        text = f"FakeDiscord internal error in {where}:\n{traceback.format_exc()}"
        self.internal_errors.append(text)
        log.error("%s", text)
        return text

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body, files = await self._read_body(request)
        record = Request(
            method=request.method,
            path=path,
            query=dict(request.query),
            json=body,
            headers=CIMultiDictProxy(CIMultiDict(request.headers)),
            files=files,
        )
        try:
            reply = await self._route(record)
        except Exception:
            # 400 rather than 500: discord.py retries 5xx with multi-second sleeps.
            text = self._internal_error(f"{record.method} {path}")
            reply = _err(400, 0, text.splitlines()[-1])
        record.status = reply.status
        record.response = copy.deepcopy(reply.data)
        self.requests.append(record)
        self._notify()
        if reply.status == 204:
            return web.Response(status=204)
        return _json_response(reply.status, reply.data)

    async def _route(self, record: Request) -> _Reply:
        for method, pattern, handler, auth in self._routes:
            match = pattern.fullmatch(record.path)
            if match is None or method != record.method:
                continue
            if auth and record.headers.get("Authorization") != f"Bot {self.token}":
                return _err(401, 0, "401: Unauthorized")
            return await handler(record, **match.groupdict())
        self.unhandled.append(record)
        log.warning(
            "FakeDiscord: UNHANDLED ROUTE %s %s (answered 404) body=%r",
            record.method,
            record.path,
            record.json,
        )
        return _err(404, 0, "404: Not Found")

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], _Handler, bool]]:
        table: list[tuple[str, str, _Handler, bool]] = [
            ("GET", "/gateway", self._get_gateway, False),
            ("GET", "/gateway/bot", self._get_gateway_bot, True),
            ("GET", "/users/@me", self._get_me, True),
            ("GET", r"/users/(?P<user_id>\d+)", self._get_user, True),
            ("POST", "/users/@me/channels", self._create_dm, True),
            ("GET", "/oauth2/applications/@me", self._get_application, True),
            ("GET", "/applications/@me", self._get_application, True),
            ("GET", r"/applications/(?P<app_id>\d+)/commands", self._get_commands, True),
            ("PUT", r"/applications/(?P<app_id>\d+)/commands", self._put_commands, True),
            ("POST", r"/applications/(?P<app_id>\d+)/commands", self._post_command, True),
            ("GET", r"/applications/(?P<app_id>\d+)/commands/(?P<command_id>\d+)", self._get_command, True),
            (
                "PATCH",
                r"/applications/(?P<app_id>\d+)/commands/(?P<command_id>\d+)",
                self._patch_command,
                True,
            ),
            (
                "DELETE",
                r"/applications/(?P<app_id>\d+)/commands/(?P<command_id>\d+)",
                self._delete_command,
                True,
            ),
            (
                "GET",
                r"/applications/(?P<app_id>\d+)/guilds/(?P<guild_id>\d+)/commands",
                self._get_commands,
                True,
            ),
            (
                "PUT",
                r"/applications/(?P<app_id>\d+)/guilds/(?P<guild_id>\d+)/commands",
                self._put_commands,
                True,
            ),
            (
                "POST",
                r"/applications/(?P<app_id>\d+)/guilds/(?P<guild_id>\d+)/commands",
                self._post_command,
                True,
            ),
            (
                "GET",
                r"/applications/(?P<app_id>\d+)/guilds/(?P<guild_id>\d+)/commands/(?P<command_id>\d+)",
                self._get_command,
                True,
            ),
            (
                "PATCH",
                r"/applications/(?P<app_id>\d+)/guilds/(?P<guild_id>\d+)/commands/(?P<command_id>\d+)",
                self._patch_command,
                True,
            ),
            (
                "DELETE",
                r"/applications/(?P<app_id>\d+)/guilds/(?P<guild_id>\d+)/commands/(?P<command_id>\d+)",
                self._delete_command,
                True,
            ),
            ("GET", r"/channels/(?P<channel_id>\d+)", self._get_channel, True),
            ("GET", r"/channels/(?P<channel_id>\d+)/messages", self._get_messages, True),
            ("POST", r"/channels/(?P<channel_id>\d+)/messages", self._post_message, True),
            ("GET", r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)", self._get_message, True),
            (
                "PATCH",
                r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)",
                self._patch_message,
                True,
            ),
            (
                "DELETE",
                r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)",
                self._delete_message,
                True,
            ),
            (
                "PUT",
                r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)/reactions/(?P<emoji>[^/]+)/@me",
                self._put_reaction,
                True,
            ),
            (
                "DELETE",
                r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)/reactions/(?P<emoji>[^/]+)/(?P<user>@me|\d+)",
                self._delete_reaction,
                True,
            ),
            (
                "GET",
                r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)/reactions/(?P<emoji>[^/]+)",
                self._get_reactions,
                True,
            ),
            ("POST", r"/channels/(?P<channel_id>\d+)/typing", self._typing, True),
            (
                "POST",
                r"/channels/(?P<channel_id>\d+)/polls/(?P<message_id>\d+)/expire",
                self._expire_poll,
                True,
            ),
            (
                "GET",
                r"/channels/(?P<channel_id>\d+)/polls/(?P<message_id>\d+)/answers/(?P<answer_id>\d+)",
                self._get_poll_voters,
                True,
            ),
            ("GET", r"/guilds/(?P<guild_id>\d+)", self._get_guild, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/channels", self._get_guild_channels, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/roles", self._get_roles, True),
            ("POST", r"/guilds/(?P<guild_id>\d+)/roles", self._post_role, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/members", self._get_members, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/members/search", self._search_members, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)", self._get_member, True),
            ("PATCH", r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)", self._patch_member, True),
            (
                "PUT",
                r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)/roles/(?P<role_id>\d+)",
                self._put_member_role,
                True,
            ),
            (
                "DELETE",
                r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)/roles/(?P<role_id>\d+)",
                self._delete_member_role,
                True,
            ),
            ("GET", r"/guilds/(?P<guild_id>\d+)/scheduled-events", self._get_events, True),
            ("POST", r"/guilds/(?P<guild_id>\d+)/scheduled-events", self._post_event, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/scheduled-events/(?P<event_id>\d+)", self._get_event, True),
            (
                "PATCH",
                r"/guilds/(?P<guild_id>\d+)/scheduled-events/(?P<event_id>\d+)",
                self._patch_event,
                True,
            ),
            (
                "DELETE",
                r"/guilds/(?P<guild_id>\d+)/scheduled-events/(?P<event_id>\d+)",
                self._delete_event,
                True,
            ),
            (
                "POST",
                r"/interactions/(?P<interaction_id>\d+)/(?P<token>[^/]+)/callback",
                self._interaction_callback,
                False,
            ),
            ("POST", r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)", self._post_followup, False),
            (
                "GET",
                r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._get_webhook_message,
                False,
            ),
            (
                "PATCH",
                r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._patch_webhook_message,
                False,
            ),
            (
                "DELETE",
                r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._delete_webhook_message,
                False,
            ),
        ]
        return [(m, re.compile(p), h, a) for m, p, h, a in table]

    # ------------------------------------------------------------------ REST: users, app, gateway

    async def _get_gateway(self, call: Request) -> _Reply:
        return _ok({"url": self.gateway_url.rstrip("/")})

    async def _get_gateway_bot(self, call: Request) -> _Reply:
        return _ok(
            {
                "url": self.gateway_url.rstrip("/"),
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            }
        )

    async def _get_me(self, call: Request) -> _Reply:
        return _ok(
            {
                **self.bot_user,
                "verified": True,
                "mfa_enabled": False,
                "flags": 0,
                "email": None,
                "locale": "en-US",
            }
        )

    async def _get_user(self, call: Request, user_id: str) -> _Reply:
        user = self.users.get(user_id)
        return _ok(user) if user else _err(404, 10013, "Unknown User")

    async def _create_dm(self, call: Request) -> _Reply:
        rid = str((call.json or {}).get("recipient_id"))
        if rid not in self.users:
            return _err(400, 50007, "Cannot send messages to this user")
        return _ok(copy.deepcopy(self.channels[self.dm_channel(rid)]))

    async def _get_application(self, call: Request) -> _Reply:
        return _ok(
            {
                "id": self._application_id,
                "name": self.bot_user["username"],
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": self.application_flags,
                "owner": copy.deepcopy(self.users[self.app_owner_id]),
                "team": None,
                "bot": copy.deepcopy(self.bot_user),
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "approximate_guild_count": len(self.guilds),
                "integration_types_config": {"0": {}},
            }
        )

    # ------------------------------------------------------------------ REST: application commands

    def _command_store(self, app_id: str, guild_id: str | None) -> list[JSON] | _Reply:
        if app_id != self._application_id:
            return _err(404, 10002, "Unknown Application")
        if guild_id is None:
            return self.global_commands
        if guild_id not in self.guilds:
            return _err(404, 10004, "Unknown Guild")
        return self.guild_commands.setdefault(guild_id, [])

    def _validate_command(self, spec: Any, index: list[str | int]) -> _Reply | None:
        if not isinstance(spec, Mapping):
            return _invalid_form(index, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        ctype = spec.get("type", 1)
        name = spec.get("name") or ""
        if ctype == 1:
            if not re.fullmatch(r"[-_\w]{1,32}", name) or name != name.lower():
                return _invalid_form(
                    [*index, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
                )
            if not 1 <= len(spec.get("description") or "") <= 100:
                return _invalid_form(
                    [*index, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                )
            return self._validate_options(spec.get("options") or [], [*index, "options"])
        if not 1 <= len(name) <= 32:
            return _invalid_form(
                [*index, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length."
            )
        if spec.get("description"):
            return _invalid_form(
                [*index, "description"],
                "APPLICATION_COMMAND_INVALID_DESCRIPTION",
                "Context menu commands cannot have descriptions",
            )
        return None

    def _validate_options(self, options: list[JSON], path: list[str | int]) -> _Reply | None:
        if len(options) > 25:
            return _invalid_form(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        seen_optional = False
        names: set[str] = set()
        for i, opt in enumerate(options):
            name = opt.get("name") or ""
            if not re.fullmatch(r"[-_\w]{1,32}", name) or name != name.lower():
                return _invalid_form(
                    [*path, i, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Option name is invalid"
                )
            if name in names:
                return _invalid_form(
                    [*path, i, "name"],
                    "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                    "Option names must be unique",
                )
            names.add(name)
            if not 1 <= len(opt.get("description") or "") <= 100:
                return _invalid_form(
                    [*path, i, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                )
            if len(opt.get("choices") or []) > 25:
                return _invalid_form(
                    [*path, i, "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                )
            if opt.get("type") in (1, 2):
                err = self._validate_options(opt.get("options") or [], [*path, i, "options"])
                if err:
                    return err
                continue
            if opt.get("required"):
                if seen_optional:
                    return _invalid_form(
                        [*path, i, "required"],
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                seen_optional = True
        return None

    def _command_object(self, spec: Mapping[str, Any], command_id: str, guild_id: str | None) -> JSON:
        cmd: JSON = {
            "id": command_id,
            "application_id": self._application_id,
            "version": self._snowflake(),
            "type": spec.get("type", 1),
            "name": spec["name"],
            "name_localizations": spec.get("name_localizations"),
            "description": spec.get("description", ""),
            "description_localizations": spec.get("description_localizations"),
            "default_member_permissions": spec.get("default_member_permissions"),
            "nsfw": spec.get("nsfw", False),
            "contexts": spec.get("contexts"),
            "integration_types": spec.get("integration_types", [0]),
        }
        if spec.get("options"):
            cmd["options"] = copy.deepcopy(spec["options"])
        if guild_id is not None:
            cmd["guild_id"] = guild_id
        else:
            cmd["dm_permission"] = spec.get("dm_permission", True)
        return cmd

    async def _get_commands(self, call: Request, app_id: str, guild_id: str | None = None) -> _Reply:
        store = self._command_store(app_id, guild_id)
        return store if isinstance(store, _Reply) else _ok(copy.deepcopy(store))

    async def _put_commands(self, call: Request, app_id: str, guild_id: str | None = None) -> _Reply:
        """Bulk overwrite: validate everything first, keep ids of commands with the same name and type."""
        store = self._command_store(app_id, guild_id)
        if isinstance(store, _Reply):
            return store
        specs = call.json
        if not isinstance(specs, list):
            return _err(400, 50109, "The request body contains invalid JSON.")
        if len(specs) > 100:
            return _invalid_form([], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        seen: set[tuple[str, int]] = set()
        for i, spec in enumerate(specs):
            err = self._validate_command(spec, [i])
            if err:
                return err
            key = (spec["name"], spec.get("type", 1))
            if key in seen:
                return _invalid_form(
                    [i, "name"],
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    f"Application command names must be unique: {spec['name']}",
                )
            seen.add(key)
        existing = {(c["name"], c.get("type", 1)): c["id"] for c in store}
        new = [
            self._command_object(
                spec, existing.get((spec["name"], spec.get("type", 1))) or self._snowflake(), guild_id
            )
            for spec in specs
        ]
        store[:] = new
        return _ok(copy.deepcopy(new))

    async def _post_command(self, call: Request, app_id: str, guild_id: str | None = None) -> _Reply:
        store = self._command_store(app_id, guild_id)
        if isinstance(store, _Reply):
            return store
        err = self._validate_command(call.json, [])
        if err:
            return err
        spec = call.json
        key = (spec["name"], spec.get("type", 1))
        old = next((c for c in store if (c["name"], c.get("type", 1)) == key), None)
        cmd = self._command_object(spec, old["id"] if old else self._snowflake(), guild_id)
        if old:
            store[store.index(old)] = cmd
        else:
            store.append(cmd)
        return _ok(copy.deepcopy(cmd), 200 if old else 201)

    def _command_by_id(self, store: list[JSON], command_id: str) -> JSON | None:
        return next((c for c in store if c["id"] == command_id), None)

    async def _get_command(
        self, call: Request, app_id: str, command_id: str, guild_id: str | None = None
    ) -> _Reply:
        store = self._command_store(app_id, guild_id)
        if isinstance(store, _Reply):
            return store
        cmd = self._command_by_id(store, command_id)
        return _ok(copy.deepcopy(cmd)) if cmd else _err(404, 10063, "Unknown application command")

    async def _patch_command(
        self, call: Request, app_id: str, command_id: str, guild_id: str | None = None
    ) -> _Reply:
        store = self._command_store(app_id, guild_id)
        if isinstance(store, _Reply):
            return store
        cmd = self._command_by_id(store, command_id)
        if cmd is None:
            return _err(404, 10063, "Unknown application command")
        merged = {**cmd, **(call.json or {})}
        err = self._validate_command(merged, [])
        if err:
            return err
        new = self._command_object(merged, command_id, guild_id)
        store[store.index(cmd)] = new
        return _ok(copy.deepcopy(new))

    async def _delete_command(
        self, call: Request, app_id: str, command_id: str, guild_id: str | None = None
    ) -> _Reply:
        store = self._command_store(app_id, guild_id)
        if isinstance(store, _Reply):
            return store
        cmd = self._command_by_id(store, command_id)
        if cmd is None:
            return _err(404, 10063, "Unknown application command")
        store.remove(cmd)
        return _no_content()

    # ------------------------------------------------------------------ REST: channels and messages

    async def _get_channel(self, call: Request, channel_id: str) -> _Reply:
        channel = self.channels.get(channel_id)
        return _ok(copy.deepcopy(channel)) if channel else _err(404, 10003, "Unknown Channel")

    async def _get_messages(self, call: Request, channel_id: str) -> _Reply:
        if channel_id not in self.channels:
            return _err(404, 10003, "Unknown Channel")
        msgs = [m for m in self.messages.values() if m["channel_id"] == channel_id]
        msgs.sort(key=lambda m: int(m["id"]), reverse=True)
        limit = int(call.query.get("limit", 50))
        if "before" in call.query:
            msgs = [m for m in msgs if int(m["id"]) < int(call.query["before"])]
        if "after" in call.query:
            msgs = [m for m in msgs if int(m["id"]) > int(call.query["after"])]
            msgs = sorted(msgs, key=lambda m: int(m["id"]))[:limit]
            msgs.reverse()
        return _ok([self._rest_message(m) for m in msgs[:limit]])

    async def _post_message(self, call: Request, channel_id: str) -> _Reply:
        channel = self.channels.get(channel_id)
        if channel is None:
            return _err(404, 10003, "Unknown Channel")
        if channel["type"] in (4, 13, 15, 16):
            return _err(400, 50008, "Cannot send messages in a non-text channel")
        if channel["type"] == 1 and {u["id"] for u in channel["recipients"]} & self.closed_dms:
            return _err(403, 50007, "Cannot send messages to this user")
        perms = self.channel_permissions(channel, self._bot_id)
        if not perms & Perm.VIEW_CHANNEL:
            return _err(403, 50001, "Missing Access")
        sending = Perm.SEND_MESSAGES_IN_THREADS if channel["type"] in (10, 11, 12) else Perm.SEND_MESSAGES
        if not perms & sending:
            return _err(403, 50013, "Missing Permissions")
        err = self._validate_message(call.json, call.files, creating=True)
        if err:
            return err
        payload = call.json or {}
        ref = payload.get("message_reference")
        if ref and str(ref.get("message_id")) not in self.messages and ref.get("fail_if_not_exists", True):
            return _invalid_form(["message_reference"], "REPLIES_UNKNOWN_MESSAGE", "Unknown message")
        flags = int(payload.get("flags") or 0) & (
            MessageFlag.SUPPRESS_EMBEDS | MessageFlag.SUPPRESS_NOTIFICATIONS | MessageFlag.IS_COMPONENTS_V2
        )
        nonce = (self._bot_id, str(payload["nonce"])) if payload.get("nonce") is not None else None
        if nonce is not None and payload.get("enforce_nonce"):
            earlier, when = self._nonces.get(nonce, ("", 0.0))
            if earlier in self.messages and time.monotonic() - when < NONCE_WINDOW:
                return _ok(copy.deepcopy(self.messages[earlier]))  # not created again, not echoed
        msg = self._build_message(channel, self.bot_user, payload, files=call.files, flags=flags)
        if nonce is not None:
            self._nonces[nonce] = (msg["id"], time.monotonic())
        await self._store_and_echo(msg)
        return _ok(copy.deepcopy(msg))

    def _channel_message(self, channel_id: str, message_id: str) -> JSON | _Reply:
        if channel_id not in self.channels:
            return _err(404, 10003, "Unknown Channel")
        msg = self.messages.get(message_id)
        if msg is None or msg["channel_id"] != channel_id:
            return _err(404, 10008, "Unknown Message")
        return msg

    async def _get_message(self, call: Request, channel_id: str, message_id: str) -> _Reply:
        msg = self._channel_message(channel_id, message_id)
        return msg if isinstance(msg, _Reply) else _ok(self._rest_message(msg))

    async def _patch_message(self, call: Request, channel_id: str, message_id: str) -> _Reply:
        msg = self._channel_message(channel_id, message_id)
        if isinstance(msg, _Reply):
            return msg
        payload = call.json or {}
        if msg["author"]["id"] != self._bot_id and set(payload) - {"flags"}:
            return _err(403, 50005, "Cannot edit a message authored by another user")
        if "poll" in payload:
            return _invalid_form(["poll"], "POLL_EDIT_NOT_ALLOWED", "Polls cannot be edited")
        err = self._validate_message(payload, call.files, creating=False)
        if err:
            return err
        self._apply_edit(msg, payload, call.files)
        await self._echo_update(msg)
        return _ok(copy.deepcopy(msg))

    async def _delete_message(self, call: Request, channel_id: str, message_id: str) -> _Reply:
        msg = self._channel_message(channel_id, message_id)
        if isinstance(msg, _Reply):
            return msg
        del self.messages[message_id]
        await self._echo_delete(msg)
        return _no_content()

    async def _put_reaction(self, call: Request, channel_id: str, message_id: str, emoji: str) -> _Reply:
        msg = self._channel_message(channel_id, message_id)
        if isinstance(msg, _Reply):
            return msg
        em = self._emoji(emoji)
        if self._record_reaction(msg, em, self._bot_id, add=True):
            await self._broadcast(
                "MESSAGE_REACTION_ADD", self._reaction_event(msg, self._bot_id, em, add=True)
            )
        return _no_content()

    async def _delete_reaction(
        self, call: Request, channel_id: str, message_id: str, emoji: str, user: str
    ) -> _Reply:
        msg = self._channel_message(channel_id, message_id)
        if isinstance(msg, _Reply):
            return msg
        uid = self._bot_id if user == "@me" else user
        em = self._emoji(emoji)
        if self._record_reaction(msg, em, uid, add=False):
            await self._broadcast("MESSAGE_REACTION_REMOVE", self._reaction_event(msg, uid, em, add=False))
        return _no_content()

    async def _get_reactions(self, call: Request, channel_id: str, message_id: str, emoji: str) -> _Reply:
        msg = self._channel_message(channel_id, message_id)
        if isinstance(msg, _Reply):
            return msg
        reactors = self._reactors.get((message_id, self._emoji_key(self._emoji(emoji))), [])
        return _ok([copy.deepcopy(self.users[u]) for u in reactors])

    async def _typing(self, call: Request, channel_id: str) -> _Reply:
        return _no_content() if channel_id in self.channels else _err(404, 10003, "Unknown Channel")

    async def _expire_poll(self, call: Request, channel_id: str, message_id: str) -> _Reply:
        msg = self._channel_message(channel_id, message_id)
        if isinstance(msg, _Reply):
            return msg
        if "poll" not in msg:
            return _err(400, 520001, "This message does not have a poll")
        if msg["author"]["id"] != self._bot_id:
            return _err(403, 50013, "Missing Permissions")
        if msg["poll"]["results"]["is_finalized"]:
            return _err(400, 520002, "This poll has already expired")
        msg["poll"]["results"]["is_finalized"] = True
        msg["poll"]["expiry"] = _iso()
        await self._echo_update(msg)
        return _ok(copy.deepcopy(msg))

    async def _get_poll_voters(
        self, call: Request, channel_id: str, message_id: str, answer_id: str
    ) -> _Reply:
        msg = self._channel_message(channel_id, message_id)
        if isinstance(msg, _Reply):
            return msg
        voters = self._poll_votes.get(message_id, {}).get(int(answer_id), [])
        return _ok({"users": [copy.deepcopy(self.users[u]) for u in voters]})

    # ------------------------------------------------------------------ REST: guilds

    def _guild(self, guild_id: str) -> _Guild | _Reply:
        return self.guilds.get(guild_id) or _err(404, 10004, "Unknown Guild")

    async def _get_guild(self, call: Request, guild_id: str) -> _Reply:
        g = self._guild(guild_id)
        if isinstance(g, _Reply):
            return g
        data = self._guild_base(g)
        if call.query.get("with_counts") in ("true", "1", "True"):
            data.update(approximate_member_count=len(g.members), approximate_presence_count=0)
        return _ok(data)

    async def _get_guild_channels(self, call: Request, guild_id: str) -> _Reply:
        g = self._guild(guild_id)
        return g if isinstance(g, _Reply) else _ok([copy.deepcopy(c) for c in g.channels.values()])

    async def _get_roles(self, call: Request, guild_id: str) -> _Reply:
        g = self._guild(guild_id)
        return g if isinstance(g, _Reply) else _ok([copy.deepcopy(r) for r in g.roles.values()])

    def _bot_top_position(self, g: _Guild) -> int:
        roles = g.members.get(self._bot_id, {}).get("roles", [])
        return max((g.roles[rid]["position"] for rid in roles if rid in g.roles), default=0)

    def _refuse_role_change(self, g: _Guild, role_ids: Iterable[str]) -> _Reply | None:
        """Discord's hierarchy: the bot needs Manage Roles, and may only give or take roles strictly below
        its own highest role that no integration manages (the guild's owner may do anything)."""
        if g.owner_id == self._bot_id:
            return None
        if not self._permissions(g, self._bot_id) & Perm.MANAGE_ROLES:
            return _err(403, 50013, "Missing Permissions")
        top = self._bot_top_position(g)
        for rid in role_ids:
            role = g.roles.get(str(rid))
            if role is not None and (role["managed"] or role["id"] == g.id or role["position"] >= top):
                return _err(403, 50013, "Missing Permissions")
        return None

    async def _post_role(self, call: Request, guild_id: str) -> _Reply:
        """Create a role at the bottom (position 1), like Discord: the others move up one."""
        g = self._guild(guild_id)
        if isinstance(g, _Reply):
            return g
        refused = self._refuse_role_change(g, ())
        if refused is not None:
            return refused
        body = call.json or {}
        moved = [r for r in g.roles.values() if r["id"] != g.id and r["position"] >= 1]
        role = self.add_role(
            str(body.get("name") or "new role")[:100],
            g.id,
            permissions=int(body.get("permissions") or 0),
            color=int(body.get("color") or 0),
            hoist=bool(body.get("hoist")),
            mentionable=bool(body.get("mentionable")),
            position=1,
        )
        await self._broadcast("GUILD_ROLE_CREATE", {"guild_id": g.id, "role": copy.deepcopy(role)})
        for other in moved:
            await self._broadcast("GUILD_ROLE_UPDATE", {"guild_id": g.id, "role": copy.deepcopy(other)})
        return _ok(copy.deepcopy(role))

    async def _get_members(self, call: Request, guild_id: str) -> _Reply:
        g = self._guild(guild_id)
        if isinstance(g, _Reply):
            return g
        after = int(call.query.get("after", 0))
        limit = int(call.query.get("limit", 1))
        ids = sorted((uid for uid in g.members if int(uid) > after), key=int)[:limit]
        return _ok([self._member_payload(g, uid) for uid in ids])

    async def _search_members(self, call: Request, guild_id: str) -> _Reply:
        g = self._guild(guild_id)
        if isinstance(g, _Reply):
            return g
        query = call.query.get("query", "").lower()
        limit = int(call.query.get("limit", 1))
        ids = [
            uid
            for uid, m in g.members.items()
            if self.users[uid]["username"].lower().startswith(query)
            or (m.get("nick") or "").lower().startswith(query)
        ][:limit]
        return _ok([self._member_payload(g, uid) for uid in ids])

    async def _get_member(self, call: Request, guild_id: str, user_id: str) -> _Reply:
        g = self._guild(guild_id)
        if isinstance(g, _Reply):
            return g
        if user_id not in g.members:
            return _err(404, 10007, "Unknown Member")
        return _ok(self._member_payload(g, user_id))

    async def _patch_member(self, call: Request, guild_id: str, user_id: str) -> _Reply:
        g = self._guild(guild_id)
        if isinstance(g, _Reply):
            return g
        if user_id not in g.members:
            return _err(404, 10007, "Unknown Member")
        body = call.json or {}
        member = g.members[user_id]
        if "nick" in body:
            member["nick"] = body["nick"]
        if "roles" in body:
            unknown = [r for r in body["roles"] if str(r) not in g.roles]
            if unknown:
                return _invalid_form(["roles"], "GUILD_MEMBER_ROLE_INVALID", f"Unknown roles {unknown}")
            wanted = [str(r) for r in body["roles"]]
            refused = self._refuse_role_change(g, set(wanted).symmetric_difference(member["roles"]))
            if refused is not None:
                return refused
            member["roles"] = wanted
        if "communication_disabled_until" in body:
            member["communication_disabled_until"] = body["communication_disabled_until"]
        await self._member_update(g, user_id)
        return _ok(self._member_payload(g, user_id))

    async def _member_role(self, guild_id: str, user_id: str, role_id: str, *, add: bool) -> _Reply:
        g = self._guild(guild_id)
        if isinstance(g, _Reply):
            return g
        if user_id not in g.members:
            return _err(404, 10007, "Unknown Member")
        if role_id not in g.roles:
            return _err(404, 10011, "Unknown Role")
        roles: list[str] = g.members[user_id]["roles"]
        changed = (role_id not in roles) if add else (role_id in roles)
        refused = self._refuse_role_change(g, [role_id])
        if refused is not None:
            return refused
        if changed:
            if add:
                roles.append(role_id)
            else:
                roles.remove(role_id)
            await self._member_update(g, user_id)
        return _no_content()

    async def _put_member_role(self, call: Request, guild_id: str, user_id: str, role_id: str) -> _Reply:
        return await self._member_role(guild_id, user_id, role_id, add=True)

    async def _delete_member_role(self, call: Request, guild_id: str, user_id: str, role_id: str) -> _Reply:
        return await self._member_role(guild_id, user_id, role_id, add=False)

    # ------------------------------------------------------------------ REST: scheduled events

    def _validate_event(self, g: _Guild, body: Mapping[str, Any]) -> _Reply | None:
        for key in ("name", "privacy_level", "scheduled_start_time", "entity_type"):
            if body.get(key) in (None, ""):
                return _invalid_form([key], "BASE_TYPE_REQUIRED", "This field is required")
        if body["entity_type"] == 3:
            if not (body.get("entity_metadata") or {}).get("location"):
                return _invalid_form(
                    ["entity_metadata", "location"], "BASE_TYPE_REQUIRED", "This field is required"
                )
            if not body.get("scheduled_end_time"):
                return _invalid_form(["scheduled_end_time"], "BASE_TYPE_REQUIRED", "This field is required")
        elif str(body.get("channel_id")) not in g.channels:
            return _invalid_form(["channel_id"], "BASE_TYPE_REQUIRED", "A voice or stage channel is required")
        return None

    async def _get_events(self, call: Request, guild_id: str) -> _Reply:
        g = self._guild(guild_id)
        if isinstance(g, _Reply):
            return g
        return _ok([copy.deepcopy(e) for e in g.scheduled_events.values()])

    async def _post_event(self, call: Request, guild_id: str) -> _Reply:
        g = self._guild(guild_id)
        if isinstance(g, _Reply):
            return g
        body = call.json or {}
        err = self._validate_event(g, body)
        if err:
            return err
        eid = self._snowflake()
        event: JSON = {
            "id": eid,
            "guild_id": g.id,
            "channel_id": str(body["channel_id"]) if body.get("channel_id") else None,
            "creator_id": self._bot_id,
            "creator": copy.deepcopy(self.bot_user),
            "name": body["name"],
            "description": body.get("description"),
            "scheduled_start_time": body["scheduled_start_time"],
            "scheduled_end_time": body.get("scheduled_end_time"),
            "privacy_level": body["privacy_level"],
            "status": 1,
            "entity_type": body["entity_type"],
            "entity_id": None,
            "entity_metadata": copy.deepcopy(body.get("entity_metadata")),
            "user_count": 0,
            "image": None,
            "recurrence_rule": copy.deepcopy(body.get("recurrence_rule")),
        }
        g.scheduled_events[eid] = event
        await self._broadcast("GUILD_SCHEDULED_EVENT_CREATE", event)
        return _ok(copy.deepcopy(event))

    async def _get_event(self, call: Request, guild_id: str, event_id: str) -> _Reply:
        g = self._guild(guild_id)
        if isinstance(g, _Reply):
            return g
        event = g.scheduled_events.get(event_id)
        return _ok(copy.deepcopy(event)) if event else _err(404, 10070, "Unknown Guild Scheduled Event")

    async def _patch_event(self, call: Request, guild_id: str, event_id: str) -> _Reply:
        g = self._guild(guild_id)
        if isinstance(g, _Reply):
            return g
        event = g.scheduled_events.get(event_id)
        if event is None:
            return _err(404, 10070, "Unknown Guild Scheduled Event")
        body = call.json or {}
        merged = {**event, **body}
        err = self._validate_event(g, merged)
        if err:
            return err
        event.update(copy.deepcopy(body))
        await self._broadcast("GUILD_SCHEDULED_EVENT_UPDATE", event)
        return _ok(copy.deepcopy(event))

    async def _delete_event(self, call: Request, guild_id: str, event_id: str) -> _Reply:
        g = self._guild(guild_id)
        if isinstance(g, _Reply):
            return g
        event = g.scheduled_events.pop(event_id, None)
        if event is None:
            return _err(404, 10070, "Unknown Guild Scheduled Event")
        self._event_users.pop(event_id, None)
        await self._broadcast("GUILD_SCHEDULED_EVENT_DELETE", event)
        return _no_content()

    # ------------------------------------------------------------------ REST: interaction responses

    _ALLOWED_CALLBACKS: ClassVar[dict[int, set[int]]] = {
        2: {4, 5, 9},
        3: {4, 5, 6, 7, 9},
        4: {8},
        5: {4, 5, 6, 7},
    }

    async def _interaction_callback(self, call: Request, interaction_id: str, token: str) -> _Reply:
        rec = self.interactions.get(token)
        if rec is None or rec.id != interaction_id:
            return _err(404, 10062, "Unknown interaction")
        if rec.acked:
            return _err(400, 40060, "Interaction has already been acknowledged.")
        body = call.json if isinstance(call.json, Mapping) else {}
        rtype = body.get("type")
        data = body.get("data") or {}
        if rtype not in self._ALLOWED_CALLBACKS[rec.type]:
            return _invalid_form(
                ["type"],
                "INTERACTION_RESPONSE_TYPE_INVALID",
                f"Response type {rtype} is not valid for interaction type {rec.type}",
            )
        channel = self.channels[rec.channel_id]
        message: JSON | None = None
        response_message_id: str | None = None
        mtype = 20 if rec.type == 2 else 0
        if rtype == 4:
            err = self._validate_message(data, call.files, creating=True)
            if err:
                return err
            flags = int(data.get("flags") or 0) & (
                MessageFlag.EPHEMERAL
                | MessageFlag.SUPPRESS_EMBEDS
                | MessageFlag.SUPPRESS_NOTIFICATIONS
                | MessageFlag.IS_COMPONENTS_V2
            )
            message = self._build_message(
                channel,
                self.bot_user,
                data,
                files=call.files,
                message_type=mtype,
                webhook_id=self._application_id,
                interaction=rec,
                flags=flags,
            )
            rec.original_message_id = response_message_id = message["id"]
            await self._store_and_echo(message)
        elif rtype == 5:
            flags = MessageFlag.LOADING | (int(data.get("flags") or 0) & MessageFlag.EPHEMERAL)
            message = self._build_message(
                channel,
                self.bot_user,
                {},
                message_type=mtype,
                webhook_id=self._application_id,
                interaction=rec,
                flags=flags,
            )
            rec.original_message_id = response_message_id = message["id"]
            rec.deferred_pending = True
            await self._store_and_echo(message)
        elif rtype in (6, 7):
            target = self.messages.get(rec.message_id or "")
            if target is None:
                return _err(404, 10008, "Unknown Message")
            response_message_id = target["id"]
            if rtype == 7:
                err = self._validate_message(data, call.files, creating=False)
                if err:
                    return err
                self._apply_edit(target, data, call.files)
                message = target
                await self._echo_update(target)
        elif rtype == 8:
            choices = data.get("choices") or []
            if len(choices) > 25:
                return _invalid_form(
                    ["data", "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                )
            rec.autocomplete_choices = copy.deepcopy(choices)
        elif rtype == 9:
            for key in ("custom_id", "title", "components"):
                if not data.get(key):
                    return _invalid_form(["data", key], "BASE_TYPE_REQUIRED", "This field is required")
            rec.modal = copy.deepcopy(data)
            self.open_modals[data["custom_id"]] = rec
        rec.response_type = rtype
        rec.response = copy.deepcopy(body)
        self._notify()
        if call.query.get("with_response") not in ("1", "true", "True"):
            return _no_content()
        interaction: JSON = {"id": rec.id, "type": rec.type, "activity_instance_id": None}
        if response_message_id is not None:
            flags = message["flags"] if message else 0
            interaction.update(
                response_message_id=response_message_id,
                response_message_loading=bool(flags & MessageFlag.LOADING),
                response_message_ephemeral=bool(flags & MessageFlag.EPHEMERAL),
            )
        resource: JSON = {"type": rtype}
        if message is not None:
            resource["message"] = copy.deepcopy(message)
        return _ok({"interaction": interaction, "resource": resource})

    def _webhook_interaction(self, app_id: str, token: str) -> InteractionRecord | _Reply:
        rec = self.interactions.get(token)
        if rec is None or app_id != self._application_id or not rec.acked:
            # Discord answers follow-ups for unknown or not-yet-acknowledged tokens like this.
            return _err(404, 10015, "Unknown Webhook")
        return rec

    async def _post_followup(self, call: Request, app_id: str, token: str) -> _Reply:
        rec = self._webhook_interaction(app_id, token)
        if isinstance(rec, _Reply):
            return rec
        payload = call.json or {}
        err = self._validate_message(payload, call.files, creating=True)
        if err:
            return err
        if rec.deferred_pending and rec.original_message_id in self.messages:
            # The first follow-up after a "thinking" defer completes the deferred message (same id,
            # the defer's ephemeral setting wins).
            msg = self.messages[rec.original_message_id]
            self._apply_edit(msg, payload, call.files)
            msg["flags"] &= ~MessageFlag.LOADING
            rec.deferred_pending = False
            await self._echo_update(msg)
        else:
            flags = int(payload.get("flags") or 0) & (
                MessageFlag.EPHEMERAL
                | MessageFlag.SUPPRESS_EMBEDS
                | MessageFlag.SUPPRESS_NOTIFICATIONS
                | MessageFlag.IS_COMPONENTS_V2
            )
            msg = self._build_message(
                self.channels[rec.channel_id],
                self.bot_user,
                payload,
                files=call.files,
                message_type=20 if rec.type == 2 else 0,
                webhook_id=self._application_id,
                interaction=rec,
                flags=flags,
            )
            rec.followup_message_ids.append(msg["id"])
            await self._store_and_echo(msg)
        if call.query.get("wait") in ("1", "true", "True"):
            return _ok(copy.deepcopy(msg))
        return _no_content()

    def _webhook_message(self, rec: InteractionRecord, message_id: str) -> JSON | _Reply:
        if message_id == "@original":
            mid = rec.original_message_id or (rec.message_id if rec.response_type in (6, 7) else None)
        else:
            allowed = {rec.original_message_id, *rec.followup_message_ids}
            if rec.response_type in (6, 7):
                allowed.add(rec.message_id)
            mid = message_id if message_id in allowed else None
        msg = self.messages.get(mid or "")
        return msg if msg is not None else _err(404, 10008, "Unknown Message")

    async def _get_webhook_message(self, call: Request, app_id: str, token: str, message_id: str) -> _Reply:
        rec = self._webhook_interaction(app_id, token)
        if isinstance(rec, _Reply):
            return rec
        msg = self._webhook_message(rec, message_id)
        return msg if isinstance(msg, _Reply) else _ok(copy.deepcopy(msg))

    async def _patch_webhook_message(self, call: Request, app_id: str, token: str, message_id: str) -> _Reply:
        rec = self._webhook_interaction(app_id, token)
        if isinstance(rec, _Reply):
            return rec
        msg = self._webhook_message(rec, message_id)
        if isinstance(msg, _Reply):
            return msg
        payload = call.json or {}
        err = self._validate_message(payload, call.files, creating=False)
        if err:
            return err
        self._apply_edit(msg, payload, call.files)
        if msg["flags"] & MessageFlag.LOADING:
            msg["flags"] &= ~MessageFlag.LOADING
            rec.deferred_pending = False
        await self._echo_update(msg)
        return _ok(copy.deepcopy(msg))

    async def _delete_webhook_message(
        self, call: Request, app_id: str, token: str, message_id: str
    ) -> _Reply:
        rec = self._webhook_interaction(app_id, token)
        if isinstance(rec, _Reply):
            return rec
        msg = self._webhook_message(rec, message_id)
        if isinstance(msg, _Reply):
            return msg
        del self.messages[msg["id"]]
        rec.deferred_pending = False
        await self._echo_delete(msg)
        return _no_content()


# --------------------------------------------------------------------------------------------------
# Pointing discord.py at the server, running clients, collecting swallowed exceptions
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def point_discord_py_at(
    server: FakeDiscord | None = None, *, api_base_url: str | None = None, gateway_url: str | None = None
) -> Iterator[None]:
    """Set ``discord.http.Route.BASE`` and ``DiscordWebSocket.DEFAULT_GATEWAY`` (class attributes: every REST
    route, interaction callback and webhook follow-up is built from the former; the gateway connect uses
    the latter until READY supplies ``resume_gateway_url``), and restore them on exit.

    This is exactly what copbot's ``api_base_url`` / ``gateway_url`` settings will do; keep the block open
    for the client's whole life, since routes read ``Route.BASE`` when they are built.
    """
    if server is not None:
        api_base_url = api_base_url or server.api_base_url
        gateway_url = gateway_url or server.gateway_url
    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    try:
        if api_base_url is not None:
            discord.http.Route.BASE = api_base_url.rstrip("/")
        if gateway_url is not None:
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
        yield
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


@dataclass
class CollectedError:
    """One exception (or error log) discord.py would otherwise only have logged."""

    source: str
    message: str
    exc: BaseException | None

    def format(self) -> str:
        """Source, message and traceback, for the failure report."""
        text = f"[{self.source}] {self.message}"
        if self.exc is not None:
            text += "\n" + "".join(traceback.format_exception(self.exc))
        return text


class HandlerErrors(logging.Handler):
    """Collects exceptions raised inside discord.py event handlers, app commands and views.

    Why: discord.py catches them and only logs them, so a broken handler makes a test time out or, worse,
    pass. Records at ERROR or above on the ``discord`` logger (default ``on_error``, ``tree.on_error`` and
    ``View.on_error`` all log there) are collected; :meth:`install` additionally wraps ``client.on_error``
    and ``tree.on_error`` so handlers that were overridden without logging are caught too. Duplicates (the
    same exception object) are kept once. :meth:`check` raises with all tracebacks.
    """

    def __init__(self, loggers: Sequence[str] = ("discord",)) -> None:
        super().__init__(level=logging.ERROR)
        self.errors: list[CollectedError] = []
        self._loggers = tuple(loggers)
        self._seen: set[int] = set()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def _add(self, source: str, message: str, exc: BaseException | None) -> None:
        if exc is not None:
            if id(exc) in self._seen:
                return
            self._seen.add(id(exc))
        self.errors.append(CollectedError(source, message, exc))
        waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:  # log records may come from any thread
            loop.call_soon_threadsafe(lambda f=fut: f.done() or f.set_result(None))

    async def wait_for_errors(self, count: int = 1, timeout: float = 5.0) -> list[CollectedError]:
        """Wait until at least ``count`` errors were collected (for tests that expect a failure)."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            while len(self.errors) < count:
                fut: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, fut))
                await fut
        return self.errors

    def emit(self, record: logging.LogRecord) -> None:
        """Collect an ERROR log record from discord.py."""
        exc = record.exc_info[1] if record.exc_info else None
        self._add(record.name, record.getMessage(), exc)

    def attach(self) -> None:
        """Start listening on the loggers."""
        for name in self._loggers:
            logging.getLogger(name).addHandler(self)

    def detach(self) -> None:
        """Stop listening on the loggers."""
        for name in self._loggers:
            logging.getLogger(name).removeHandler(self)

    def install(
        self, client: discord.Client, tree: discord.app_commands.CommandTree[Any] | None = None
    ) -> None:
        """Wrap ``client.on_error`` and ``tree.on_error`` (the given tree, ``client.tree`` or the tree bound
        to the client) so their exceptions are collected; the original handlers still run."""
        original_client = client.on_error

        async def on_error(event_method: str, /, *args: Any, **kwargs: Any) -> None:
            self._add(f"on_error({event_method})", "exception in event handler", sys.exc_info()[1])
            await original_client(event_method, *args, **kwargs)

        client.on_error = on_error  # type: ignore[method-assign]
        if tree is None:
            tree = getattr(client, "tree", None)
        if tree is None:
            tree = client._connection._command_tree
        if tree is not None:
            original_tree = tree.on_error

            async def tree_on_error(interaction: discord.Interaction[Any], error: Exception, /) -> None:
                command = interaction.command.qualified_name if interaction.command else "?"
                self._add(f"tree.on_error(/{command})", "exception in app command", error)
                await original_tree(interaction, error)

            tree.on_error = tree_on_error  # type: ignore[method-assign]

    def clear(self) -> None:
        """Forget what was collected (e.g. after asserting on an expected failure)."""
        self.errors.clear()

    def check(self) -> None:
        """Raise AssertionError listing every collected error, if any."""
        if self.errors:
            raise AssertionError(
                f"{len(self.errors)} exception(s) swallowed by discord.py:\n\n"
                + "\n\n".join(e.format() for e in self.errors)
            )


@contextlib.asynccontextmanager
async def running_client(
    server: FakeDiscord,
    client: ClientT,
    *,
    errors: HandlerErrors | None = None,
    tree: discord.app_commands.CommandTree[Any] | None = None,
    point: bool = True,
    ready_timeout: float = 5.0,
) -> AsyncIterator[ClientT]:
    """Log ``client`` in against ``server``, connect the gateway, wait for ``on_ready``, yield, then close.

    ``point=False`` leaves discord.py's URLs alone (for code that configures them itself, like copbot's
    adapter with ``api_base_url``/``gateway_url``). ``errors`` gets ``client``/``tree`` hooks installed.
    Raises if the connection fails (e.g. 4014 disallowed intents) or ``on_ready`` does not come.
    """
    if errors is not None:
        errors.install(client, tree)
    with point_discord_py_at(server) if point else contextlib.nullcontext():
        task: asyncio.Task[None] | None = None
        try:
            await client.login(server.token)
            task = asyncio.create_task(client.connect(reconnect=True), name="discord-client-connect")
            ready = asyncio.create_task(client.wait_until_ready())
            done, _ = await asyncio.wait(
                {task, ready}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if ready not in done:
                ready.cancel()
                if task in done:
                    task.result()  # re-raise the connection failure
                    raise RuntimeError("client.connect() returned before on_ready")
                raise TimeoutError(
                    f"on_ready did not fire within {ready_timeout}s; gateway ops received: "
                    f"{[f.op for f in server.gateway_log]}"
                )
            expected = {int(g.id) for g in server.guilds.values() if server.bot_user["id"] in g.members}
            if client.intents.guilds and not expected <= {g.id for g in client.guilds}:
                raise RuntimeError(
                    f"on_ready fired before every GUILD_CREATE was processed ({len(client.guilds)} of "
                    f"{len(expected)} guilds); raise guild_ready_timeout a little"
                )
            timeout = client._connection.guild_ready_timeout
            if timeout > 0.5:
                log.warning(
                    "guild_ready_timeout=%s slows every connect; pass guild_ready_timeout=0.05", timeout
                )
            yield client
        finally:
            await client.close()
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, timeout=5.0)


class ClientConnector:
    """What the ``discord_connect`` fixture returns: ``await discord_connect(client)`` connects a client
    to the test's server (errors hooked) and it is closed at teardown."""

    def __init__(self, server: FakeDiscord, errors: HandlerErrors) -> None:
        self._server = server
        self._errors = errors
        self._stack = contextlib.AsyncExitStack()

    async def __call__(
        self,
        client: ClientT,
        *,
        tree: discord.app_commands.CommandTree[Any] | None = None,
        point: bool = True,
        ready_timeout: float = 5.0,
    ) -> ClientT:
        """Connect ``client`` and return it once ``on_ready`` fired."""
        return await self._stack.enter_async_context(
            running_client(
                self._server, client, errors=self._errors, tree=tree, point=point, ready_timeout=ready_timeout
            )
        )

    async def aclose(self) -> None:
        """Close every connected client (newest first)."""
        await self._stack.aclose()


# --------------------------------------------------------------------------------------------------
# pytest fixtures (load with -p tests.harness.discord_server)
# --------------------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def discord_server() -> AsyncIterator[FakeDiscord]:
    """A started :class:`FakeDiscord`; at teardown it is stopped and the test fails if the fake hit an
    unhandled route or an internal error."""
    server = FakeDiscord()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
    server.assert_healthy()


@pytest.fixture
def discord_errors() -> Iterator[HandlerErrors]:
    """Collects exceptions discord.py swallowed during the test and fails the test at teardown."""
    errors = HandlerErrors()
    errors.attach()
    try:
        yield errors
    finally:
        errors.detach()
    errors.check()


@pytest_asyncio.fixture
async def discord_connect(
    discord_server: FakeDiscord, discord_errors: HandlerErrors
) -> AsyncIterator[ClientConnector]:
    """``await discord_connect(client)`` connects a discord.py client to ``discord_server`` with error
    hooks installed; clients are closed at teardown (before errors are checked and the server stops)."""
    connector = ClientConnector(discord_server, discord_errors)
    try:
        yield connector
    finally:
        await connector.aclose()
