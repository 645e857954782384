"""The Matrix platform (``matrix_client``): sync → core events, core ``Content`` → Matrix events.

Delivery rules, because a chat bot that replays or drops commands is worse than none:

* The sync token is stored in the database after each sync batch has been handled, so a restart resumes
  right after the last handled batch (Synapse even caches answers by token: a stale one replays events).
* After downtime the first sync of a run asks for a whole backlog at once (``catchup_limit`` events per
  room: a homeserver that allows it hands 10,000 events over in about a second, twenty times faster than
  paging). Where the timeline is still ``limited`` (Synapse allows 100 unless its
  ``filter_timeline_limit`` is raised), the adapter pages back with ``/messages`` to the stored token
  (``matrix_messages.page_back``), so every missed command is handled, once, in order. The core's
  journal of handled event ids is the second guard against repeats.
* A brand-new bot (no stored token) syncs once without handling anything, so years of room history are
  not run as commands and existing members are not welcomed as newcomers.

This module is the adapter's life and its sync loop; the rest is beside it: the HTTP calls and their
retries (``matrix_client``, ``matrix_http``), logging in without piling up devices (``matrix_login``),
what is stored between runs (``matrix_session``), rooms and power levels (``matrix_rooms``,
``matrix_roster``), a sync answer's rooms → the events to handle, room state kept on the way
(``matrix_timeline``), raw events → core events (``matrix_events``), invites (``matrix_invites``), sending,
files and polls (``matrix_sending``, ``matrix_media``, ``matrix_render``), messages looked up again and
events paged back (``matrix_messages``), room upgrades followed (``matrix_upgrades``) and participation
levels as power levels and level rooms (``matrix_levels``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
from collections.abc import Coroutine, Sequence
from typing import Any

from bot import failpoints
from bot.adapters.base import Dispatch
from bot.adapters.matrix_batches import Batch, Handling
from bot.adapters.matrix_client import MatrixClient
from bot.adapters.matrix_events import (
    PLATFORM,
    display_name,
)
from bot.adapters.matrix_http import (
    NETWORK_ERRORS,
    Backoff,
    MatrixUnavailable,
    RawResult,
    call,
    path,
    rate_limit_delay,
)
from bot.adapters.matrix_invites import DIRECT_CHAT_CLOSED, InviteAnswerer
from bot.adapters.matrix_levels import LevelMirror
from bot.adapters.matrix_login import Login
from bot.adapters.matrix_messages import fetch_message, permalink
from bot.adapters.matrix_render import POLL_END, poll_end_content
from bot.adapters.matrix_rooms import RoomDirectory
from bot.adapters.matrix_roster import Roster
from bot.adapters.matrix_sending import Sender
from bot.adapters.matrix_session import SessionState
from bot.adapters.matrix_startup import first_sync_failed, network_reason, reach
from bot.adapters.matrix_timeline import Timeline
from bot.adapters.matrix_upgrades import RoomUpgrades
from bot.clock import Clock
from bot.commands import CommandSpec
from bot.config import CommunityConfig, MatrixConfig
from bot.db import Database
from bot.health import Trouble
from bot.model import Capability, Content, Member, Message, ReactionAdded, Room
from bot.tasks import cancel_and_wait

log = logging.getLogger(__name__)

_MXID = re.compile(r"^@[^:\s]+:[^\s]+$")


class MatrixAdapter:
    platform = PLATFORM
    capabilities = frozenset(
        {
            Capability.NATIVE_POLLS,
            Capability.DIRECT_MESSAGES,
            Capability.REACTIONS,
            Capability.RICH_TEXT,
            Capability.EDITS,
            Capability.DELETES,
            Capability.FILES,
            Capability.ROLES,  # participation levels as power levels, and invites to a level's room
            Capability.LONG_MESSAGES,  # split only past an event's 64 KiB (matrix_render.message_contents)
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
    stop_grace = 10.0
    """Seconds a stop waits for the batch being read, then as long for the events being handled, before it
    cancels them (their position is then not stored: they come again at the next start)."""
    sync_grace_seconds = 15.0
    """How long past its long poll a sync's answer may take before the connection counts as lost."""
    catchup_grace_seconds = 120.0
    """The same for a catch-up sync, the backlog in one answer. A homeserver gathering thousands of events
    it no longer holds in memory takes far longer than for a live sync (Synapse here: 4,000 events in 1.4 s
    after its restart against 0.2 s from its caches); cut short, the sync is asked again from the start, and
    a homeserver slower than the allowance would never catch the bot up."""

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
        processes share the account, each then with a device and sync position of its own (see
        ``SessionState.key``)."""
        self.config = config
        self.communities = list(communities)
        self._served = set(served) if served is not None else None
        self.db = db
        self.clock = clock
        self.client = MatrixClient(config.homeserver, config.user_id, request_timeout=30)
        self.rooms = RoomDirectory(self.client, self.communities)
        self.roster = Roster()
        self.user_id = config.user_id
        self._dispatch: Dispatch | None = None
        self._token_stored: str | None = None
        self._token: str | None = None
        """Where the next sync asks from: the last batch read, which may still be being handled."""
        self._token_settled: str | None = None
        """The last position up to which every event is handled: the one that may be stored."""
        self.handling = Handling(self._settled)
        self._task: asyncio.Task[None] | None = None
        self._connected = False
        self.trouble = Trouble("matrix", log)
        """The homeserver failing (unreachable, token refused): said once, shown by /healthz."""
        self._batch_trouble = Trouble("matrix", log)
        self._stopping = False
        self._idle = asyncio.Event()
        self._idle.set()
        self.state = SessionState(db, clock, config.user_id, instance)
        self.login = Login(config, self.client, self.state, self.trouble)
        self.sender = Sender(self.client, self.rooms, self.state, self.roster.room_name)
        self.invites = InviteAnswerer(
            self.client,
            self.rooms,
            self.sender,
            direct_messages=direct_messages,
            serves_community=self._serves_community,
            joined_community_room=self._joined_community_room,
            left=self._left,
            successor_community=self._successor_community,
        )
        self.upgrades = RoomUpgrades(
            self.client,
            self.rooms,
            self.state,
            platform=PLATFORM,
            community_of=self._community_of,
            serves_community=self._serves_community,
            joined_community_room=self._attach_with_members,
        )
        self._single_community = self.communities[0].slug if len(self.communities) == 1 else None
        self._members_listed = False
        self._catching_up = True
        """The next sync follows a start or an outage: it asks for ``catchup_limit`` events per room."""
        self._background: set[asyncio.Task[None]] = set()
        self.levels = LevelMirror(self.client, self.rooms, self.roster)
        self.timeline = Timeline(
            self.client,
            self.rooms,
            self.roster,
            self.state,
            self.sender,
            self.upgrades,
            user_id=self.user_id,
            room=self._room,
            serves=self._serves,
            left=self._left,
            close_direct=functools.partial(self.invites.leave, reason=DIRECT_CHAT_CLOSED),
            rooms_beside=self._rooms_beside,
        )

    @property
    def connected(self) -> bool:
        """True after a sync succeeded, false from a failed one until the next success."""
        return self._connected

    # --- lifecycle --------------------------------------------------------------------------------------

    async def start(self, dispatch: Dispatch) -> None:
        """Log in, learn the rooms, catch up the first time (without handling history), start syncing."""
        self._dispatch = dispatch
        self._stopping = False
        await self.login.start()
        await self.rooms.load()
        await self._join_configured_rooms()
        self._token = self._token_stored = self._token_settled = await self.state.stored_sync_token()
        if self._token is None:
            await self._first_sync()
        self._connected = True
        self._task = asyncio.create_task(self._sync_loop(), name="matrix-sync")

    async def install_commands(self, specs: Sequence[CommandSpec]) -> None:
        """Matrix has no native commands; members type them with the prefix."""

    async def stop(self) -> None:
        """Let the events being handled finish (their position gets stored), then end the long poll and
        close."""
        self._stopping = True
        for task in list(self._background):
            task.cancel()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout=self.stop_grace)
            await cancel_and_wait(self._task, what="matrix: the sync loop")
            self._task = None
        await self.handling.drain(timeout=self.stop_grace)
        self._connected = False
        if self._token_settled and self._token_settled != self._token_stored:
            with contextlib.suppress(Exception):
                await self._store_token(self._token_settled)  # with what it covers, in one transaction
        await self.state.flush()
        await self.client.close()

    async def _join_configured_rooms(self) -> None:
        """Join configured rooms the bot is not in yet (public ones, or ones it was invited to) and
        attach them all to their community, so a room listed in the config is served without an invite.
        Rooms of communities another process serves are that process's to join. A room joined here that
        had been upgraded already (configured by its old id) is followed to the room that replaced it."""
        joined_now: list[str] = []
        for room_id, slug in self.rooms.configured.items():
            if not self._serves_community(slug):
                continue
            if room_id not in self.rooms.joined:
                answer = await call(functools.partial(self.client.join, room_id), what=f"join {room_id}")
                if not answer.ok:
                    log.warning("matrix: could not join configured room %s: %s", room_id, answer.body)
                    continue
                self.rooms.joined.add(room_id)
                joined_now.append(room_id)
            await self._attach(room_id, slug)
        for room_id in joined_now:
            replaced = await self.upgrades.replaced_before(room_id)
            if replaced is not None and self._dispatch is not None:
                await self._dispatch(replaced)

    async def _joined_community_room(self, room_id: str, slug: str) -> None:
        """A community's room joined on an invite: served from now on, its members recorded; one that
        replaced a room of the community takes over from it (see ``matrix_upgrades``)."""
        await self._attach_with_members(room_id, slug)
        replaced = await self.upgrades.community_for_invite(room_id)
        if replaced is not None and self._dispatch is not None:
            await self._dispatch(self.upgrades.replaced(replaced[0], room_id))

    async def _attach_with_members(self, room_id: str, slug: str) -> None:
        await self._attach(room_id, slug)
        self._in_background(self._list_members([room_id], None))

    async def _successor_community(self, room_id: str) -> str | None:
        replaced = await self.upgrades.community_for_invite(room_id)
        return replaced[1] if replaced is not None else None

    def _community_of(self, room_id: str) -> str | None:
        return self._dispatch.community_of(self._room(room_id)) if self._dispatch is not None else None

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
                    functools.partial(self.client.request, "GET", api_path),
                    what=f"members of {room_id}",
                )
            except MatrixUnavailable as error:
                log.warning("matrix: could not list the members of %s: %s", room_id, error)
                continue
            if not answer.ok:
                log.warning("matrix: could not list the members of %s: %s", room_id, answer.body)
                continue
            members = [
                Member(PLATFORM, event["state_key"], display_name(event))
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
        """At most ``limit`` timeline events a room; and the member event of whoever sent one, every time.

        Display names are read from member events (``Roster``), and a sync from a stored position carries
        only the room state that changed since: after a restart copbot would know no one's name, show and
        store their id's localpart instead. Lazy-loaded members with ``include_redundant_members`` make
        the homeserver put each sender's member event beside their events, whatever it sent before."""
        members = {"lazy_load_members": True, "include_redundant_members": True}
        return {"room": {"timeline": {"limit": limit}, "state": members}, "presence": {"types": []}}

    def _catchup_limit(self) -> int:
        share = self.catchup_budget // max(1, len(self.rooms.joined))
        return max(self.timeline_limit, min(self.catchup_limit, share))

    async def _sync(
        self, limit: int, timeout_ms: int, grace: float | None = None
    ) -> dict[str, Any] | RawResult:
        """One /sync as raw JSON. nio's parser is not used: it drops invite state (``m.room.encryption``),
        and validating every event against its schemas cost more CPU than everything copbot does with a
        command; the little room state copbot needs is kept by :class:`Roster`."""
        query = {"timeout": str(timeout_ms), "filter": json.dumps(self._filter(limit))}
        if self._token:
            query["since"] = self._token
        allowed = timeout_ms / 1000 + (self.sync_grace_seconds if grace is None else grace)
        result = await self.client.request("GET", path("sync", query=query), timeout=allowed)
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
        await self.invites.answer(answer)
        self._token = self._token_settled = answer["next_batch"]
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
                if self._catching_up:
                    answer = await self._sync(self._catchup_limit(), wait, self.catchup_grace_seconds)
                else:
                    answer = await self._sync(self.timeline_limit, wait)
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
                    if await self.login.again():
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
            batch = self.handling.open()
            try:
                try:
                    await self._handle_sync(answer, batch)
                except BaseException:
                    self.handling.abandon(batch)
                    raise
                # The next sync asks from here while this batch's events may still be handled (see
                # matrix_batches.py); its position is stored once they are (_settled).
                self._token = answer["next_batch"]
                await self.handling.close(batch, answer["next_batch"])
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

    def _disconnected(self, why: str, *, advice: str = "retrying with back-off") -> None:
        """Sync failed: not connected (/healthz says so) until the next success; said once per streak."""
        self._connected = False
        self.trouble.failed(why, advice=advice)

    async def _settled(self, token: str, delivered: bool) -> None:
        """Every event up to ``token`` is handled: store it with the journal's next batch.

        A position whose batches delivered nothing (typically the echo of our own reply) is not worth a
        database write: replaying them after a crash delivers nothing either. It is kept in memory and
        written with the next position that mattered, or at stop."""
        self._token_settled = token
        if delivered and self.db.writes.failing:
            # The database refuses writes: what was handled waits in the journal, which retries it; the
            # position moves on in memory only (stored once writes work again), so commands are still
            # answered meanwhile.
            delivered = False
        failpoints.hit("matrix.handled")
        if delivered:
            await self._store_token(token, wait=False)

    async def _store_token(self, token: str, *, wait: bool = True) -> None:
        """Store the position with the handled ids it covers, in one transaction (the journal's), so a
        restart from it never finds a handled event not recorded — at once, or (``wait=False``) with the
        journal's next batch."""
        if self._dispatch is not None:
            await self._dispatch.checkpoint((self.state.key("sync_token"), token), wait=wait)
        else:
            await self.state.put(self.state.key("sync_token"), token)
        self._token_stored = token

    async def _handle_sync(self, answer: dict[str, Any], batch: Batch) -> None:
        self.rooms.account_data((answer.get("account_data") or {}).get("events") or [])
        await self.invites.answer(answer)
        events = self.timeline.events(
            answer, self._token, page_limit=self.page_limit, page_pages=self.page_pages
        )
        async with contextlib.aclosing(events):
            async for event in events:
                if self._dispatch is not None:
                    await self.handling.start(batch, functools.partial(self._dispatch, event))
        for room_id in (answer.get("rooms") or {}).get("leave") or {}:
            self._left(room_id)

    def _left(self, room_id: str) -> None:
        self.rooms.left(room_id)
        self.roster.forget(room_id)

    # --- sending ----------------------------------------------------------------------------------------

    async def send(self, room: Room, content: Content, *, reply_to: str | None = None) -> str:
        """A rich reply or message; a poll is a native MSC3381 poll (``matrix_sending``). A reply to a
        message in a thread goes into that thread."""
        thread = self.timeline.thread_of(reply_to) if reply_to else None
        # a reply goes where its message is; anything else to the room that now stands for the one named
        room_id = room.id if reply_to else await self.upgrades.newest(room.id)
        return await self.sender.content(room_id, content, reply_to=reply_to, thread=thread)

    async def reaction_acted_on(self, event: ReactionAdded) -> None:
        """Keep what a reaction a plugin acted on stands for, so its redaction after a restart is understood
        (``matrix_timeline``); a failure to keep it costs only that, and is said in the log."""
        try:
            await self.timeline.keep_reaction(event)
        except Exception:
            log.warning("matrix: could not keep reaction %s for its redaction", event.event_id, exc_info=True)

    async def fetch_message(self, room: Room, message_id: str) -> Message | None:
        """The message as it reads now (its latest edit), its sender named; None if redacted, unknown or
        not text."""
        return await fetch_message(self.client, room, message_id, own_id=self.user_id, roster=self.roster)

    def permalink(self, room: Room, message_id: str) -> str:
        """A matrix.to link, routed through copbot's own homeserver (which is in the room)."""
        return permalink(room.id, message_id, via=self.user_id.split(":", 1)[-1])

    async def edit(self, room: Room, message_id: str, content: Content) -> None:
        """Replace a message copbot sent with an ``m.replace`` edit (not one that is gone, or not its own)."""
        await self.sender.edit(room.id, message_id, content)

    async def delete(self, room: Room, message_id: str) -> None:
        """Redact a message copbot sent (one gone already is no error)."""
        await self.sender.redact(room.id, message_id)

    async def end_poll(self, room: Room, poll_message_id: str, results: str) -> str:
        """Close a native poll in clients (``m.poll.end``), with the results as its text."""
        return await self.sender.event(room.id, POLL_END, poll_end_content(poll_message_id, results))

    async def send_direct(self, member: Member, content: Content) -> str:
        """Send in the direct room with ``member``, creating it (and recording it in m.direct) if needed."""
        return await self.send(self._room(await self.sender.direct_room(member.id)), content)

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
        """The level's power level in every room of the community copbot is in, and an invite to the
        level's room (``matrix_levels``)."""
        config = next((c.matrix for c in self.communities if c.slug == community and c.matrix), None)
        if config is None or member.platform != self.platform or member.id == self.user_id:
            return False
        rooms: list[str] = []
        if config.level_power_levels and self._dispatch is not None:
            rooms = self._dispatch.rooms_of(community)
        return await self.levels.set_level(config, rooms, member.id, level, repair=repair)

    def mention(self, member: Member) -> str:
        """The Matrix id: readable in the plain body, turned into a pill in the HTML body."""
        return member.id

    def parse_mention(self, text: str) -> Member | None:
        user_id = text.removeprefix("https://matrix.to/#/")
        if _MXID.match(user_id):  # called as the rooms show them ("Bo Berg"), not "bo-2" from the id
            return Member(self.platform, user_id, self.roster.any_display_name(user_id))
        return None

    def _name_of(self, room_id: str, user_id: str) -> str:
        return self.roster.display_name(room_id, user_id)

    def _room(self, room_id: str) -> Room:
        if self.rooms.is_direct(room_id):
            return Room(self.platform, room_id, community_id=self._single_community, is_direct=True)
        return Room(self.platform, room_id)

    def _rooms_beside(self, room_id: str) -> list[str]:
        """The other rooms of the community ``room_id`` belongs to (configured or attached)."""
        slug = self._community_of(room_id)
        if slug is None or self._dispatch is None:
            return []
        return [other for other in self._dispatch.rooms_of(slug) if other != room_id]

    # --- scope -----------------------------------------------------------------------------------------

    def _serves(self, room_id: str) -> bool:
        """Whether this process handles the room (its community's, or a direct chat it answers)."""
        return self._dispatch is None or self._dispatch.serves(self._room(room_id))

    def _serves_community(self, slug: str) -> bool:
        return self._served is None or slug in self._served
