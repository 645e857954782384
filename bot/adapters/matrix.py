"""The Matrix platform (``matrix_client``): sync → core events, core ``Content`` → Matrix events.

Delivery rules, because a chat bot that replays or drops commands is worse than none:

* The sync token is stored in the database after each sync batch has been handled, so a restart resumes
  right after the last handled batch (Synapse even caches answers by token: a stale one replays events).
* After downtime the first sync of a run asks for a whole backlog at once (``catchup_limit`` events per
  room: a homeserver that allows it hands 10,000 events over in about a second, twenty times faster than
  paging). Where the timeline is still ``limited`` (Synapse allows 100 unless its
  ``filter_timeline_limit`` is raised), the adapter pages back with ``/messages`` to the stored token, so
  every missed command is handled, once, in order. The core's journal of handled event ids is the second
  guard against repeats.
* A brand-new bot (no stored token) syncs once without handling anything, so years of room history are
  not run as commands and existing members are not welcomed as newcomers.

Login: a configured access token, else the device and token stored at first login, else a password login
that reuses the stored device id, so restarts never pile up devices on the account.

Files (``matrix_media``) are uploaded and sent as ``m.file`` after the text; messages are looked up again
and linked to through ``matrix_messages``. Participation levels are mirrored as power levels in the
community's rooms, with an invite to a level's own room (``set_level_role``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

from bot import escaping, failpoints, store
from bot.adapters.base import Dispatch
from bot.adapters.matrix_client import MatrixClient
from bot.adapters.matrix_events import PLATFORM, localpart, poll_target, translate
from bot.adapters.matrix_http import (
    NETWORK_ERRORS,
    Backoff,
    MatrixUnavailable,
    RawResult,
    call,
    path,
    rate_limit_delay,
    raw_request,
)
from bot.adapters.matrix_media import file_content, upload
from bot.adapters.matrix_messages import fetch_message, permalink
from bot.adapters.matrix_render import (
    POLL_END,
    POLL_START,
    answer_ids,
    edit_content,
    message_content,
    poll_end_content,
    poll_start_content,
)
from bot.adapters.matrix_rooms import (
    CREATOR_POWER,
    Invite,
    RoomDirectory,
    needed_for,
    read_invite,
    user_power,
)
from bot.adapters.matrix_roster import Roster
from bot.adapters.matrix_startup import (
    first_sync_failed,
    login_refused,
    network_reason,
    reach,
    token_refused,
)
from bot.clock import Clock
from bot.commands import CommandSpec
from bot.config import CommunityConfig, Level, MatrixConfig, is_level
from bot.db import Database
from bot.errors import RoleRefused
from bot.health import Trouble
from bot.model import Capability, Content, Member, Message, Room
from bot.render import plain_text

log = logging.getLogger(__name__)

STATE_SCOPE = "matrix"
ENCRYPTED_NOT_SUPPORTED = (
    "Sorry, I can't work in encrypted rooms yet: I would not be able to read your messages. "
    "Please invite me to an unencrypted room instead."
)
DECLINE_REASON = (
    "copbot only joins rooms of the communities it serves. Ask a coordinator to add this room to its "
    "configuration."
)
_MXID = re.compile(r"^@[^:\s]+:[^\s]+$")
_PILL = re.compile(r'<a href="https://matrix\.to/#/(@[^"]+)">([^<]+)</a>')


class MatrixSendError(Exception):
    """The homeserver refused an event the bot tried to send."""


class MatrixAdapter:
    platform = PLATFORM
    capabilities = frozenset(
        {
            Capability.NATIVE_POLLS,
            Capability.DIRECT_MESSAGES,
            Capability.REACTIONS,
            Capability.RICH_TEXT,
            Capability.EDITS,
            Capability.FILES,
            Capability.ROLES,  # participation levels as power levels, and invites to a level's room
        }
    )
    timeline_limit = 50
    """Events per room in a sync while running; more than that are paged back with /messages."""
    catchup_limit = 10_000
    """Events per room in the first sync of a run and the first after an outage: the backlog in one answer
    where the homeserver allows it (Synapse: ``filter_timeline_limit``, 100 unless raised). Measured on
    this machine: 10,000 events in 1.0 s by one sync against 20 s by ten /messages pages (Synapse spends
    ~2 ms per event paginating). Not used while running, so a room joined then does not bring its history."""
    catchup_budget = 20_000
    """Events in that one answer at most, shared among the joined rooms (each gets at least
    ``timeline_limit``): a bot in many busy rooms back from a long downtime must not hold them all in
    memory at once; what a room's share leaves out is paged back."""
    page_limit = 1000
    page_pages = 100
    """At most ``page_limit`` × ``page_pages`` events of one room are paged back after downtime."""
    long_poll_ms = 30_000

    def __init__(
        self,
        *,
        config: MatrixConfig,
        communities: Sequence[CommunityConfig],
        db: Database,
        clock: Clock,
        served: Sequence[str] | None = None,
        direct_messages: bool = True,
        instance: str = "",
    ) -> None:
        """``served``: the slugs of the communities this process serves (None: all); ``direct_messages``:
        whether it answers direct chats and invites outside any community; ``instance``: set when several
        processes share the account, each then with a device and sync position of its own (see _key)."""
        self.config = config
        self.communities = list(communities)
        self._served = set(served) if served is not None else None
        self._direct_messages = direct_messages
        self._instance = instance
        self.db = db
        self.clock = clock
        self.client = MatrixClient(config.homeserver, config.user_id, request_timeout=30)
        self.rooms = RoomDirectory(self.client, self.communities)
        self.roster = Roster()
        self.user_id = config.user_id
        self._dispatch: Dispatch | None = None
        self._dispatched = 0
        self._token_stored: str | None = None
        self._token: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = False
        self.trouble = Trouble("matrix", log)
        """The homeserver failing (unreachable, token refused): said once, shown by /healthz."""
        self._batch_trouble = Trouble("matrix", log)
        self._stopping = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._polls: dict[str, list[str]] = {}
        self._writes: set[asyncio.Task[None]] = set()
        self._invites_in_progress: set[str] = set()
        self._direct_lock = asyncio.Lock()
        self._single_community = self.communities[0].slug if len(self.communities) == 1 else None
        self._members_listed = False
        self._catching_up = True
        """The next sync follows a start or an outage: it asks for ``catchup_limit`` events per room."""
        self._background: set[asyncio.Task[None]] = set()
        self._power_locks: dict[str, asyncio.Lock] = {}  # room id → one change of its power levels at a time
        self._level_rooms: dict[str, str] = {}  # a level room as configured → its room id

    @property
    def connected(self) -> bool:
        """True after a sync succeeded, false from a failed one until the next success."""
        return self._connected

    # --- lifecycle --------------------------------------------------------------------------------------

    async def start(self, dispatch: Dispatch) -> None:
        """Log in, learn the rooms, catch up the first time (without handling history), start syncing."""
        self._dispatch = dispatch
        self._stopping = False
        await self._login()
        await self.rooms.load()
        await self._join_configured_rooms()
        self._token = self._token_stored = await self._stored_sync_token()
        if self._token is None:
            await self._first_sync()
        self._connected = True
        self._task = asyncio.create_task(self._sync_loop(), name="matrix-sync")

    async def install_commands(self, specs: Sequence[CommandSpec]) -> None:
        """Matrix has no native commands; members type them with the prefix."""

    async def stop(self) -> None:
        """Let a batch being handled finish (its token gets stored), then end the long poll and close."""
        self._stopping = True
        for task in list(self._background):
            task.cancel()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout=10)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self._connected = False
        if self._token and self._token != self._token_stored:
            with contextlib.suppress(Exception):
                await self._store_token(self._token)  # with what it covers, in one transaction
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        await self.client.close()

    async def _login(self) -> None:
        """Configured token, else stored token, else password (on the stored device id, if any)."""
        config = self.config
        stored_device = await self._get_state(self._key("device_id"))
        stored_token = await self._get_state(self._key("access_token"))
        token = config.access_token or stored_token
        if token:
            self.client.access_token, self.client.device_id = token, stored_device or ""
            who = await reach(config, self.client.whoami, what="whoami")
            if who.ok and who.body.get("user_id") == self.user_id:
                self.client.device_id = str(who.body.get("device_id") or stored_device or "")
                return
            if config.access_token or not config.password:
                raise token_refused(config, who)
            log.info("matrix: the stored access token no longer works; logging in with the password")
        await self._password_login(stored_device)

    async def _password_login(self, stored_device: str | None = None) -> None:
        """Log in with the password on the stored device id (if any); store the device and token."""
        config = self.config
        if stored_device is None:
            stored_device = await self._get_state(self._key("device_id"))
        self.client.access_token = ""
        self.client.device_id = stored_device or ""
        answer = await reach(
            config, lambda: self.client.login(config.password or "", config.device_name), what="login"
        )
        if not answer.ok or not self.client.access_token:
            raise login_refused(config, answer)
        await self._put_state(self._key("device_id"), self.client.device_id)
        await self._put_state(self._key("access_token"), self.client.access_token)
        log.info("matrix: logged in as %s (device %s)", answer.body.get("user_id"), self.client.device_id)

    async def _join_configured_rooms(self) -> None:
        """Join configured rooms the bot is not in yet (public ones, or ones it was invited to) and
        attach them all to their community, so a room listed in the config is served without an invite.
        Rooms of communities another process serves are that process's to join."""
        for room_id, slug in self.rooms.configured.items():
            if not self._serves_community(slug):
                continue
            if room_id not in self.rooms.joined:
                answer = await call(functools.partial(self.client.join, room_id), what=f"join {room_id}")
                if not answer.ok:
                    log.warning("matrix: could not join configured room %s: %s", room_id, answer.body)
                    continue
                self.rooms.joined.add(room_id)
            await self._attach(room_id, slug)

    async def _attach(self, room_id: str, slug: str) -> None:
        if self._dispatch is not None:
            await self._dispatch.attach_room(room_id, slug)

    async def _list_members(self, room_ids: list[str], at: str | None) -> None:
        """Everyone already in the community's rooms is a member, even if copbot never saw them join.

        The lists are asked as they were at ``at``, the sync position this run has handled, so a join
        copbot has yet to handle is not in them (it arrives as a join, and is welcomed); whoever is listed
        without a membership was there before copbot came, and is recorded quietly. This runs beside the
        sync loop, never holding it up.
        """
        if self._dispatch is None:
            return
        for room_id in room_ids:
            if self.rooms.is_direct(room_id) or not self._serves(room_id):
                continue
            query = {"membership": "join", **({"at": at} if at else {})}
            api_path = path("rooms", room_id, "members", query=query)
            try:
                answer = await call(
                    functools.partial(raw_request, self.client, "GET", api_path),
                    what=f"members of {room_id}",
                )
            except MatrixUnavailable as error:
                log.warning("matrix: could not list the members of %s: %s", room_id, error)
                continue
            if not answer.ok:
                log.warning("matrix: could not list the members of %s: %s", room_id, answer.body)
                continue
            members = [
                Member(PLATFORM, event["state_key"], _display_name(event))
                for event in answer.body.get("chunk") or []
                if isinstance(event.get("state_key"), str) and event["state_key"] != self.user_id
            ]
            added = await self._dispatch.members_present(room_id, members)
            if added:
                log.info("matrix: %d member(s) of %s recorded from its member list", added, room_id)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Work beside the sync loop; cancelled at stop (it is redone at the next start)."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- syncing ----------------------------------------------------------------------------------------

    def _filter(self, limit: int) -> dict[str, Any]:
        return {"room": {"timeline": {"limit": limit}}, "presence": {"types": []}}

    def _catchup_limit(self) -> int:
        share = self.catchup_budget // max(1, len(self.rooms.joined))
        return max(self.timeline_limit, min(self.catchup_limit, share))

    async def _sync(self, limit: int, timeout_ms: int) -> dict[str, Any] | RawResult:
        """One /sync as raw JSON. nio's parser is not used: it drops invite state (``m.room.encryption``),
        and validating every event against its schemas cost more CPU than everything copbot does with a
        command; the little room state copbot needs is kept by :class:`Roster`."""
        query = {"timeout": str(timeout_ms), "filter": json.dumps(self._filter(limit))}
        if self._token:
            query["since"] = self._token
        result = await raw_request(
            self.client, "GET", path("sync", query=query), timeout=timeout_ms / 1000 + 15
        )
        if not result.ok or not isinstance(result.body.get("next_batch"), str):
            return result
        return result.body

    async def _first_sync(self) -> None:
        """A brand-new bot: take the current position without handling history; invites still count."""
        answer = await reach(self.config, lambda: self._sync(limit=1, timeout_ms=0), what="sync")
        if isinstance(answer, RawResult):
            raise first_sync_failed(self.config, answer.status, answer.errcode)
        for room_id in (answer.get("rooms") or {}).get("join") or {}:
            self.rooms.joined.add(room_id)
        await self._handle_invites(answer)
        await self._store_token(answer["next_batch"])
        log.info("matrix: first start; existing history is not handled as commands")

    async def _sync_loop(self) -> None:
        backoff = Backoff()
        handling = Backoff(first=0.5)  # a batch that could not be handled (the database refusing writes)
        while not self._stopping:
            try:
                # The first sync of a run catches up at once (no long poll): what was missed is handled
                # right away, and the member lists can be read as of that position.
                wait = self.long_poll_ms if self._members_listed else 0
                limit = self._catchup_limit() if self._catching_up else self.timeline_limit
                answer = await self._sync(limit=limit, timeout_ms=wait)
            except NETWORK_ERRORS as error:
                self._catching_up = True
                self._disconnected(
                    f"cannot reach {self.config.homeserver} ({network_reason(error)})",
                    advice="retrying with back-off (up to 15 s apart); check that the homeserver is up "
                    "and that [matrix] homeserver points at it",
                )
                await asyncio.sleep(backoff.next_delay())
                continue
            if isinstance(answer, RawResult):
                self._catching_up = True
                delay = rate_limit_delay(answer)
                if answer.errcode == "M_UNKNOWN_TOKEN":
                    self._connected = False
                    if await self._login_again():
                        continue
                elif delay is None:
                    self._disconnected(
                        f"sync answered HTTP {answer.status}"
                        + (f" {answer.errcode}" if answer.errcode else "")
                        + f" from {self.config.homeserver}",
                        advice="retrying with back-off (up to 15 s apart)",
                    )
                await asyncio.sleep(delay if delay is not None else backoff.next_delay())
                continue
            self._connected = True
            self.trouble.recovered("connected again")
            backoff.reset()
            pause = 0.0
            self._idle.clear()
            try:
                before = self._dispatched
                await self._handle_sync(answer)
                # A batch that delivered nothing (typically the echo of our own reply) is not worth a
                # database write: replaying it after a crash delivers nothing either. The token is kept
                # in memory and written with the next batch that mattered, or at stop.
                delivered = self._dispatched != before
                if delivered and self.db.writes.failing:
                    # The database refuses writes: what was handled waits in the journal, which retries
                    # it; the position moves on in memory only (stored once writes work again), so
                    # commands are still answered meanwhile.
                    delivered = False
                failpoints.hit("matrix.handled")
                await self._store_token(answer["next_batch"], persist=delivered, wait=False)
                self._catching_up = False
                if not self._members_listed:
                    self._members_listed = True
                    self._in_background(self._list_members(sorted(self.rooms.joined), answer["next_batch"]))
                handling.reset()
                self._batch_trouble.recovered("sync batches are handled again")
            except NETWORK_ERRORS as error:
                # Not stored: the batch comes again and the journal skips what was already handled.
                self._disconnected(
                    f"cannot reach {self.config.homeserver} while handling a batch ({network_reason(error)})",
                    advice="retrying with back-off (up to 15 s apart)",
                )
                pause = backoff.next_delay()
            except Exception as error:
                # Fetched again from the same position after the pause. A database refusing writes has
                # said so itself (once); anything else is said once per streak, with its traceback.
                if not self.db.unavailable(error):
                    self._batch_trouble.failed(
                        "could not handle a sync batch; it will be fetched again",
                        level=logging.ERROR,
                        exc_info=error,
                    )
                pause = handling.next_delay()
            finally:
                self._idle.set()
            if pause:
                await asyncio.sleep(pause)  # idle meanwhile: stop() need not wait for it

    async def _login_again(self) -> bool:
        """The token was revoked (a logout, an admin): log in again with the password, same device.

        Without a password nothing can be done but retry (with back-off, said once): the token in the
        config must be replaced, which takes a restart."""
        if not self.config.password:
            self.trouble.failed(
                f"the homeserver refused the access token of {self.user_id} (revoked, or its device was "
                "logged out)",
                advice="set a new [matrix] access_token (or COPBOT_MATRIX__ACCESS_TOKEN), or a password, and "
                "restart copbot; until then sync is retried with back-off",
                level=logging.ERROR,
            )
            return False
        log.warning("matrix: the homeserver refused the access token; logging in again with the password")
        try:
            await self._put_state(self._key("access_token"), "")
            await self._password_login()
        except Exception as error:
            self.trouble.failed(
                f"logging in again as {self.user_id} failed ({error})",
                advice="check [matrix] password; retrying with back-off",
                level=logging.ERROR,
            )
            return False
        return True

    def _disconnected(self, why: str, *, advice: str = "retrying with back-off") -> None:
        """Sync failed: not connected (/healthz says so) until the next success; said once per streak."""
        self._connected = False
        self.trouble.failed(why, advice=advice)

    async def _store_token(self, token: str, *, persist: bool = True, wait: bool = True) -> None:
        """Move the position on; when ``persist``, store it with the handled ids it covers, in one
        transaction (the journal's), so a restart from it never finds a handled event not recorded —
        at once, or (``wait=False``, the sync loop) with the journal's next batch."""
        self._token = token
        if persist:
            if self._dispatch is not None:
                await self._dispatch.checkpoint((self._key("sync_token"), token), wait=wait)
            else:
                await self._put_state(self._key("sync_token"), token)
            self._token_stored = token

    async def _handle_sync(self, answer: dict[str, Any]) -> None:
        self.rooms.account_data((answer.get("account_data") or {}).get("events") or [])
        await self._handle_invites(answer)
        rooms = answer.get("rooms") or {}
        for room_id, info in (rooms.get("join") or {}).items():
            newly_joined = room_id not in self.rooms.joined
            self.rooms.joined.add(room_id)
            self.roster.read(room_id, (info.get("state") or {}).get("events") or [])
            timeline = info.get("timeline") or {}
            events: list[dict[str, Any]] = list(timeline.get("events") or [])
            prev_batch = timeline.get("prev_batch")
            if timeline.get("limited") and prev_batch and not newly_joined:
                if _own_join_index(events, self.user_id) is None:
                    events = await self._page_back(room_id, prev_batch) + events
            own_join = _own_join_index(events, self.user_id)
            if own_join is not None:
                events = events[own_join + 1 :]  # what happened before the bot came in is history
            seen: set[str] = set()
            for source in events:
                event_id = str(source.get("event_id"))
                if event_id in seen:
                    continue
                seen.add(event_id)
                await self._handle_timeline_event(room_id, source)
        for room_id in rooms.get("leave") or {}:
            self._left(room_id)

    async def _page_back(self, room_id: str, start: str) -> list[dict[str, Any]]:
        """The events a limited timeline left out, oldest first, back to the stored sync token.

        Raw JSON, a thousand events a page (the most Synapse gives): a hundred at a time, each event
        parsed into objects, made a catch-up of 10,000 events take minutes instead of seconds."""
        older: list[dict[str, Any]] = []
        since = self._token
        for _ in range(self.page_pages):
            query = {"dir": "b", "from": start, "limit": str(self.page_limit)}
            if since:
                query["to"] = since
            api_path = path("rooms", room_id, "messages", query=query)
            answer = await call(
                functools.partial(raw_request, self.client, "GET", api_path),
                what=f"messages of {room_id}",
            )
            if not answer.ok:
                log.warning("matrix: could not page back in %s: %s %s", room_id, answer.status, answer.body)
                break
            chunk = [event for event in answer.body.get("chunk") or [] if isinstance(event, dict)]
            older += chunk
            end = answer.body.get("end")
            if not chunk or not isinstance(end, str) or end == start:
                break
            start = end
        older.reverse()
        log.info("matrix: caught up %d earlier events in %s", len(older), room_id)
        return older

    async def _handle_timeline_event(self, room_id: str, source: dict[str, Any]) -> None:
        kind = source.get("type")
        if "state_key" in source:
            self.roster.read(room_id, (source,))
        if kind == "m.room.power_levels" and source.get("state_key") == "":
            self.rooms.power_levels_changed(room_id, source.get("content") or {})
        elif kind == "m.room.encryption" and source.get("state_key") == "":
            if not self._serves(room_id):
                return
            await self._send_event(
                room_id, "m.room.message", message_content(Content(ENCRYPTED_NOT_SUPPORTED))
            )
            return
        elif kind == "m.room.member" and source.get("state_key") == self.user_id:
            if (source.get("content") or {}).get("membership") in ("leave", "ban"):
                self._left(room_id)
            return
        target = poll_target(source)
        if target is not None:
            await self._poll_answers(target)
        event = translate(
            _with_pill_ids(source),
            self._room(room_id),
            own_id=self.user_id,
            name_of=lambda user: self._name_of(room_id, user),
            poll_answers=self._polls,
        )
        if event is not None and self._dispatch is not None:
            self._dispatched += 1
            await self._dispatch(event)

    # --- invites ----------------------------------------------------------------------------------------

    async def _handle_invites(self, answer: dict[str, Any]) -> None:
        for room_id, info in ((answer.get("rooms") or {}).get("invite") or {}).items():
            if room_id in self._invites_in_progress or room_id in self.rooms.joined:
                continue
            self._invites_in_progress.add(room_id)
            try:
                states = list((info.get("invite_state") or {}).get("events") or [])
                await self._answer_invite(read_invite(room_id, self.user_id, states))
            except Exception:
                log.exception("matrix: could not answer the invite to %s", room_id)
            finally:
                self._invites_in_progress.discard(room_id)

    async def _answer_invite(self, invite: Invite) -> None:
        """Join rooms of the bot's communities; say why in encrypted rooms; politely decline the rest.

        With several processes on the account, each sees every invite: the one serving the room's community
        joins it, and the one answering direct messages takes direct chats and answers the rest."""
        if invite.encrypted:
            if not self._direct_messages:
                return
            if await self._join(invite.room_id):
                await self._send_event(
                    invite.room_id, "m.room.message", message_content(Content(ENCRYPTED_NOT_SUPPORTED))
                )
                await self._leave(invite.room_id, "encrypted rooms are not supported yet")
            return
        slug = await self.rooms.community_for_invite(invite)
        if slug is not None:
            if not self._serves_community(slug):
                return  # the process serving that community joins it
            if await self._join(invite.room_id):
                await self._attach(invite.room_id, slug)
                self._in_background(self._list_members([invite.room_id], None))
                log.info(
                    "matrix: joined %s for community %s (invited by %s)", invite.room_id, slug, invite.inviter
                )
            return
        if not self._direct_messages:
            return
        if invite.inviter and invite.looks_direct and await self.rooms.shares_room_with(invite.inviter):
            await self._accept_direct(invite.room_id, invite.inviter)
            return
        log.info("matrix: declining the invite to %s from %s", invite.room_id, invite.inviter)
        await self._leave(invite.room_id, DECLINE_REASON)

    async def _accept_direct(self, room_id: str, inviter: str) -> None:
        """A member of a community room opens a chat with the bot: joined, and kept as a direct room if
        it is just the two of them (Synapse may strip ``is_direct`` from the invite, so look)."""
        if not await self._join(room_id):
            return
        members = await call(lambda: self.client.joined_members(room_id), what="joined members")
        if members.ok and len(members.body.get("joined") or {}) <= 2:
            await self.rooms.mark_direct(inviter, room_id)
            return
        await self._leave(room_id, DECLINE_REASON)

    async def _join(self, room_id: str) -> bool:
        answer = await call(lambda: self.client.join(room_id), what=f"join {room_id}")
        if not answer.ok:
            log.warning("matrix: could not join %s: %s", room_id, answer.body)
            return False
        self.rooms.joined.add(room_id)
        return True

    async def _leave(self, room_id: str, reason: str) -> None:
        """Leave a room, or decline an invite, telling the inviter why (the reason shows in their client)."""
        api_path = path("rooms", room_id, "leave")
        result = await call(
            lambda: raw_request(self.client, "POST", api_path, {"reason": reason}), what="leave"
        )
        if not result.ok:
            log.warning("matrix: could not leave %s: %s %s", room_id, result.status, result.body)
        self._left(room_id)

    def _left(self, room_id: str) -> None:
        self.rooms.left(room_id)
        self.roster.forget(room_id)

    # --- sending ----------------------------------------------------------------------------------------

    async def send(self, room: Room, content: Content, *, reply_to: str | None = None) -> str:
        """A rich reply or message; a poll is a native MSC3381 poll (after the text, if there is one).

        A message that ends a poll also sends ``m.poll.end`` for it, so clients close their poll UI.
        """
        key = content.delivery_key
        if content.ends_poll:
            await self._send_event(
                room.id, POLL_END, poll_end_content(content.ends_poll, plain_text(content)), key=key
            )
        if content.poll is None and content.attachment is not None:
            return await self._send_with_file(room, content, reply_to=reply_to)
        if content.poll is None:
            return await self._send_event(
                room.id, "m.room.message", message_content(content, reply_to=reply_to), key=key
            )
        if content.text or content.card is not None:
            await self._send_event(
                room.id, "m.room.message", message_content(content, reply_to=reply_to), key=key
            )
        poll_id = await self._send_event(
            room.id, POLL_START, poll_start_content(content.poll, content.text), key=key
        )
        ids = answer_ids(content.poll)
        self._polls[poll_id] = ids
        # Stored in the background: the caller may be inside a unit of work that holds SQLite's write lock
        # until it returns, so waiting here for our own write would wait on ourselves.
        task = asyncio.create_task(self._put_state(f"poll:{poll_id}", json.dumps(ids)))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        return poll_id

    async def _send_with_file(self, room: Room, content: Content, *, reply_to: str | None) -> str:
        """Upload first (a refused file then sends nothing), then the text if any, then the ``m.file``.

        Returns the first message's id, the one a reply or an edit refers to. The file's event gets its own
        delivery key: under the text's, the homeserver would take it for a retry of the text.
        """
        assert content.attachment is not None
        key = content.delivery_key
        mxc = await upload(self.client, content.attachment)
        first = None
        if plain_text(content):
            first = await self._send_event(
                room.id, "m.room.message", message_content(content, reply_to=reply_to), key=key
            )
        file = file_content(content.attachment, mxc, reply_to=None if first else reply_to)
        file_id = await self._send_event(room.id, "m.room.message", file, key=f"{key}:file" if key else None)
        return first or file_id

    async def fetch_message(self, room: Room, message_id: str) -> Message | None:
        """The message as it reads now (its latest edit); None if redacted, unknown or not text."""
        name_of = functools.partial(self._name_of, room.id)
        return await fetch_message(self.client, room, message_id, own_id=self.user_id, name_of=name_of)

    def permalink(self, room: Room, message_id: str) -> str:
        """A matrix.to link, routed through copbot's own homeserver (which is in the room)."""
        return permalink(room.id, message_id, via=self.user_id.split(":", 1)[-1])

    async def edit(self, room: Room, message_id: str, content: Content) -> None:
        """Replace a message copbot sent with an ``m.replace`` edit, which clients show in its place.

        The original is looked up first: a homeserver accepts an edit of an event that is gone (redacted,
        or in a room copbot left) and clients would just ignore it, so that case is seen here and only
        logged — a moderator removing an announcement is no error. Only copbot's own ``m.room.message``
        events can be edited (clients ignore edits by anyone else, or of another event type).
        """
        api_path = path("rooms", room.id, "event", message_id)
        original = await call(lambda: raw_request(self.client, "GET", api_path), what="get event")
        redacted = "redacted_because" in (original.body.get("unsigned") or {})
        if original.status in (403, 404) or (original.ok and redacted):
            log.debug("matrix: message %s in %s is gone; not edited", message_id, room.id)
            return
        if not original.ok:
            raise MatrixSendError(f"could not look up {message_id} in {room.id}: {original.body}")
        if original.body.get("sender") != self.user_id or original.body.get("type") != "m.room.message":
            log.warning("matrix: %s in %s is not a message copbot sent; not edited", message_id, room.id)
            return
        key = f"edit:{message_id}:{content.delivery_key}" if content.delivery_key else None
        await self._send_event(room.id, "m.room.message", edit_content(message_id, content), key=key)

    async def end_poll(self, room: Room, poll_message_id: str, results: str) -> str:
        """Close a native poll in clients (``m.poll.end``), with the results as its text."""
        return await self._send_event(room.id, POLL_END, poll_end_content(poll_message_id, results))

    async def send_direct(self, member: Member, content: Content) -> str:
        """Send in the direct room with ``member``, creating it (and recording it in m.direct) if needed."""
        async with self._direct_lock:
            room_id = self.rooms.direct_room_for(member.id)
            if room_id is None:
                request = {"is_direct": True, "invite": [member.id], "preset": "trusted_private_chat"}
                created = await call(lambda: self.client.create_room(request), what="create direct room")
                room_id = created.body.get("room_id")
                if not created.ok or not isinstance(room_id, str):
                    raise MatrixSendError(f"could not open a direct room with {member.id}: {created.body}")
                self.rooms.joined.add(room_id)
                await self.rooms.mark_direct(member.id, room_id)
        return await self.send(self._room(room_id), content)

    async def _send_event(
        self, room_id: str, event_type: str, content: dict[str, Any], *, key: str | None = None
    ) -> str:
        """Send one event. Its transaction id is the same for every retry, so the homeserver stores it
        once; a message from the outbox (``key``) keeps its id even across a restart of copbot."""
        transaction = (
            hashlib.sha256(f"{key}|{room_id}|{event_type}".encode()).hexdigest()[:32]
            if key
            else uuid.uuid4().hex
        )
        # A raw PUT: nio's room_send validates its answer against a JSON schema, for one event id.
        api_path = path("rooms", room_id, "send", event_type, transaction)
        answer = await call(lambda: raw_request(self.client, "PUT", api_path, content), what="send")
        event_id = answer.body.get("event_id")
        if not answer.ok or not isinstance(event_id, str):
            raise MatrixSendError(f"could not send to {room_id}: {answer.status} {answer.body}")
        return event_id

    # --- people -----------------------------------------------------------------------------------------

    async def is_moderator(self, member: Member, room: Room) -> bool:
        """Power level ≥ the configured level in that room; a direct room makes nobody a moderator
        (whoever opened it holds power there)."""
        if member.platform != self.platform or room.platform != self.platform:
            return False
        if room.is_direct or self.rooms.is_direct(room.id):
            return False
        return await self.rooms.power_level(room.id, member.id) >= self.config.moderator_power_level

    # --- participation levels ---------------------------------------------------------------------------

    async def set_level_role(
        self, community: str, member: Member, level: str, *, reason: str = "", repair: bool = False
    ) -> bool:
        """The level's power level (``level_power_levels``) in every room of the community copbot is in,
        and an invite to the level's room (``level_rooms``) unless the member is there or was invited.

        Only the member's entry of m.room.power_levels changes, and only where it differs: a level not
        listed is the room's ``users_default`` (the entry removed). Power copbot could not have given — a
        room admin's 100, a level set by hand that no participation level has — is left as it is. Matrix
        lets copbot set levels up to its own, for members below it; where it cannot, RoleRefused says
        what to change. ``repair`` (the walk at start-up) does not invite again who left the level's room.
        """
        config = next((c.matrix for c in self.communities if c.slug == community and c.matrix), None)
        if config is None or member.platform != self.platform or member.id == self.user_id:
            return False
        refusals: list[RoleRefused] = []
        if config.level_power_levels and self._dispatch is not None:
            for room_id in self._dispatch.rooms_of(community):
                if room_id not in self.rooms.joined or self.rooms.is_direct(room_id):
                    continue
                try:
                    await self._set_power(room_id, member.id, level, config.level_power_levels)
                except RoleRefused as refused:
                    refusals.append(refused)
        room = config.level_rooms.get(level) if is_level(level) else None
        if room:
            try:
                await self._invite_to_level_room(room, member.id, level, repair=repair)
            except RoleRefused as refused:
                refusals.append(refused)
        if refusals:
            raise RoleRefused(
                "; ".join(r.message for r in refusals), role=", ".join(r.role for r in refusals)
            )
        return level in config.level_power_levels or level in config.level_rooms

    async def _set_power(self, room_id: str, user_id: str, level: str, powers: Mapping[Level, int]) -> None:
        """Send the room's power levels with ``user_id``'s entry changed, if the level calls for it."""
        creators = await self.rooms.creators(room_id)
        if user_id in creators:
            return  # a creator's power is unlimited (room version 12 on): no level adds to it
        async with self._power_locks.setdefault(room_id, asyncio.Lock()):
            if _power_change(await self.rooms.power_levels(room_id), user_id, level, powers) is None:
                return  # as the timeline keeps it, the room already shows the level: nothing is asked
            levels = await self._fresh_power_levels(room_id)  # never build on a stale copy
            change = _power_change(levels, user_id, level, powers)
            if change is None:
                return
            current, target = change
            own = CREATOR_POWER if self.user_id in creators else user_power(levels, self.user_id)
            needed = needed_for(levels, "m.room.power_levels")
            if own < needed or own <= current or own < target:
                raise RoleRefused(
                    f"matrix: copbot's power level in {self._room_label(room_id)} is {own}; to set "
                    f"{user_id}'s power level to {target} ({level}) it needs at least "
                    f"{max(needed, current + 1, target)} — raise copbot's power level in the room's "
                    "settings (Roles & Permissions)",
                    role=f"{room_id} {level}",
                )
            users = dict(levels.get("users") or {})
            if is_level(level) and level in powers:
                users[user_id] = powers[level]
            else:
                users.pop(user_id, None)  # the room's users_default
            content = {**levels, "users": users}
            answer = await call(
                lambda: self.client.put_state(room_id, "m.room.power_levels", content),
                what=f"power levels of {room_id}",
            )
            if not answer.ok:
                if answer.errcode == "M_FORBIDDEN":
                    raise RoleRefused(
                        f"matrix: the homeserver refused copbot's change of the power levels in "
                        f"{self._room_label(room_id)} ({_said(answer)}); raise copbot's power level there",
                        role=f"{room_id} {level}",
                    )
                raise MatrixSendError(f"could not change the power levels in {room_id}: {_said(answer)}")
            self.rooms.power_levels_changed(room_id, content)
            log.info("matrix: %s is now at power level %d in %s (%s)", user_id, target, room_id, level)

    async def _fresh_power_levels(self, room_id: str) -> dict[str, Any]:
        answer = await call(
            lambda: self.client.state_event(room_id, "m.room.power_levels"),
            what=f"power levels of {room_id}",
        )
        if not answer.ok:
            raise MatrixSendError(f"could not read the power levels of {room_id}: {_said(answer)}")
        content = answer.body
        self.rooms.power_levels_changed(room_id, content)
        return content

    async def _invite_to_level_room(self, room: str, user_id: str, level: str, *, repair: bool) -> None:
        """Invite a member to their level's room, unless they are in it, invited or banned (or, when
        repairing, left it: they chose to)."""
        room_id = self._level_rooms.get(room) or await self.rooms.resolve(room)
        if room_id is None:
            raise RoleRefused(f"matrix: the {level} room {room} (level_rooms) does not exist", role=room)
        self._level_rooms[room] = room_id
        if room_id not in self.rooms.joined:
            raise RoleRefused(
                f"matrix: copbot is not in the {level} room {room}, so it cannot invite members there; "
                "invite copbot to it (or list it in rooms)",
                role=room,
            )
        membership = await self._membership(room_id, user_id)
        if membership in ("join", "invite", "ban") or (repair and membership == "leave"):
            return
        answer = await call(lambda: self.client.invite(room_id, user_id), what=f"invite to {room_id}")
        if not answer.ok:
            if answer.errcode == "M_FORBIDDEN":
                raise RoleRefused(
                    f"matrix: copbot may not invite members to the {level} room {room} ({_said(answer)}); "
                    "give it the power level to invite there",
                    role=room,
                )
            raise MatrixSendError(f"could not invite {user_id} to {room_id}: {_said(answer)}")
        log.info("matrix: invited %s to the %s room %s", user_id, level, room_id)

    async def _membership(self, room_id: str, user_id: str) -> str | None:
        """A user's membership of a room ("join", "invite", "leave"…), None if they never were in it."""
        api_path = path("rooms", room_id, "state", "m.room.member", user_id)
        answer = await call(lambda: raw_request(self.client, "GET", api_path), what="membership")
        membership = answer.body.get("membership") if answer.ok else None
        return membership if isinstance(membership, str) else None

    def _room_label(self, room_id: str) -> str:
        """The room's id, after its name where it has one (m.room.name), for messages to the operator."""
        name = self.roster.room_name(room_id)
        return f"{room_id} ({name})" if name else room_id

    def mention(self, member: Member) -> str:
        """The Matrix id: readable in the plain body, turned into a pill in the HTML body."""
        return member.id

    def parse_mention(self, text: str) -> Member | None:
        user_id = text.removeprefix("https://matrix.to/#/")
        if _MXID.match(user_id):
            return Member(self.platform, user_id, localpart(user_id))
        return None

    def _name_of(self, room_id: str, user_id: str) -> str:
        return self.roster.display_name(room_id, user_id)

    def _room(self, room_id: str) -> Room:
        if self.rooms.is_direct(room_id):
            return Room(self.platform, room_id, community_id=self._single_community, is_direct=True)
        return Room(self.platform, room_id)

    # --- stored state -----------------------------------------------------------------------------------

    def _key(self, name: str) -> str:
        """The state key of this process's Matrix session: its device, access token and sync token. With
        several processes on one account (``instance``) each has its own — one device and one position
        per process; a single process keeps the keys it always had."""
        if self._instance:
            return f"{self.user_id}@{self._instance}:{name}"
        return f"{self.user_id}:{name}"

    async def _stored_sync_token(self) -> str | None:
        """Where this process's sync resumes. A process of a newly divided deployment starts where the
        undivided one stopped (events handled before are skipped by their ids), so nothing sent during the
        change is lost; with no position at all, the first sync takes the current one."""
        token = await self._get_state(self._key("sync_token"))
        if token is None and self._instance:
            token = await self._get_state(f"{self.user_id}:sync_token")
        return token

    def _serves(self, room_id: str) -> bool:
        """Whether this process handles the room (its community's, or a direct chat it answers)."""
        return self._dispatch is None or self._dispatch.serves(self._room(room_id))

    def _serves_community(self, slug: str) -> bool:
        return self._served is None or slug in self._served

    async def _poll_answers(self, poll_id: str) -> None:
        if poll_id in self._polls:
            return
        stored = await self._get_state(f"poll:{poll_id}")
        if stored is not None:
            self._polls[poll_id] = list(json.loads(stored))

    async def _get_state(self, key: str) -> str | None:
        async with self.db.session() as session:
            return await store.get_state(session, STATE_SCOPE, key)

    async def _put_state(self, key: str, value: str) -> None:
        async with self.db.engine.begin() as connection:  # one statement: no ORM session needed
            await store.put_state(connection, STATE_SCOPE, key, value, self.clock.now())


def _said(answer: RawResult) -> str:
    """What the homeserver said, as a Matrix client shows it: ``M_FORBIDDEN: You don't have permission``."""
    return f"{answer.errcode or answer.status}: {answer.body.get('error', '')}".rstrip(": ")


def _display_name(member_event: Mapping[str, Any]) -> str:
    name = (member_event.get("content") or {}).get("displayname")
    return name if isinstance(name, str) and name else localpart(str(member_event.get("state_key")))


def _power_change(
    levels: Mapping[str, Any], user_id: str, level: str, powers: Mapping[Level, int]
) -> tuple[int, int] | None:
    """(current, wanted) power of a member whose level calls for a change copbot may make, else None.

    A power that is neither the room's default nor one a level gives was given by hand (a room admin, a
    moderator at 75): it is not copbot's to move.
    """
    current = user_power(levels, user_id)
    default = user_power({"users_default": levels.get("users_default", 0)}, "")
    wanted = powers.get(level, default) if is_level(level) else default
    if current == wanted or (current != default and current not in powers.values()):
        return None
    return current, wanted


def _own_join_index(events: list[dict[str, Any]], user_id: str) -> int | None:
    """Where the bot's own join is in a timeline (the last one), if it is there."""
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if (
            event.get("type") == "m.room.member"
            and event.get("state_key") == user_id
            and (event.get("content") or {}).get("membership") == "join"
            and ((event.get("unsigned") or {}).get("prev_content") or {}).get("membership") != "join"
        ):
            return index
    return None


def _with_pill_ids(source: Mapping[str, Any]) -> Mapping[str, Any]:
    """Put Matrix ids where a client's pills showed names, so ``!profile @Ana`` names the right member.

    Element writes a mention as ``Ana`` in the body and a matrix.to link in the HTML body.
    """
    content = source.get("content")
    if not isinstance(content, dict) or not isinstance(content.get("formatted_body"), str):
        return source
    body = content.get("body")
    if not isinstance(body, str):
        return source
    for user_id, escaped in _PILL.findall(content["formatted_body"]):
        name = escaping.unescape(escaped)
        if name != user_id and name in body:
            body = body.replace(name, user_id, 1)
    if body == content.get("body"):
        return source
    return {**source, "content": {**content, "body": body}}
