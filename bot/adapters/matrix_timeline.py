"""A sync answer's joined rooms → the core events to handle, in order, with room state kept on the way.

What is no member's doing is kept here and not handed on: display names and room names (``Roster``),
power levels (``RoomDirectory``), copbot's own membership (a leave or ban: the room is forgotten), the
poll a vote answers (loaded from the session state, so the vote is read against its options). An encrypted
room gets one notice that copbot cannot read it there. A tombstone is followed (``matrix_upgrades``) and
becomes a ``RoomReplaced``, also when the sync's gap left it in the room's state block instead of its
timeline, and when copbot joins a room (on an invite) that had been upgraded before it came. A redaction
is a reaction taken back (``ReactionRemoved``), else a message deleted (``MessageDeleted``).

A limited timeline (more events than the sync's limit) is completed from ``/messages`` back to the
position the adapter asked from (``matrix_messages.page_back``), so every missed command is handled, once,
in order; in a room copbot has just joined, what happened before it came is history and is skipped.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any

from bot.adapters.matrix_client import MatrixClient
from bot.adapters.matrix_events import (
    PLATFORM,
    event_time,
    own_join_index,
    poll_target,
    relation,
    translate,
    with_pill_ids,
)
from bot.adapters.matrix_invites import ENCRYPTED_NOT_SUPPORTED
from bot.adapters.matrix_messages import page_back
from bot.adapters.matrix_render import message_content
from bot.adapters.matrix_rooms import RoomDirectory
from bot.adapters.matrix_roster import Roster
from bot.adapters.matrix_sending import Sender
from bot.adapters.matrix_session import SessionState
from bot.adapters.matrix_upgrades import TOMBSTONE, RoomUpgrades
from bot.model import (
    Content,
    Event,
    Member,
    MemberLeft,
    MessageDeleted,
    ReactionAdded,
    ReactionRemoved,
    Room,
)

log = logging.getLogger(__name__)


class Timeline:
    thread_memory = 10_000
    """Messages in threads whose thread is remembered, for replies to go there (recent ones suffice)."""
    reaction_memory = 10_000
    """Reactions remembered, for a redaction to say whose reaction on what was taken back."""

    def __init__(
        self,
        client: MatrixClient,
        rooms: RoomDirectory,
        roster: Roster,
        state: SessionState,
        sender: Sender,
        upgrades: RoomUpgrades,
        *,
        user_id: str,
        room: Callable[[str], Room],
        serves: Callable[[str], bool],
        left: Callable[[str], None],
        close_direct: Callable[[str], Awaitable[None]],
        rooms_beside: Callable[[str], list[str]] = lambda room_id: [],
    ) -> None:
        """``room``: the core's room for an id; ``serves``: whether this process handles a room;
        ``left``: what to do when copbot is no longer in a room; ``close_direct``: leave a direct chat
        its member has left; ``rooms_beside``: the other rooms of a room's community."""
        self.client = client
        self.rooms = rooms
        self.roster = roster
        self.state = state
        self.sender = sender
        self.upgrades = upgrades
        self.user_id = user_id
        self._room = room
        self._serves = serves
        self._left = left
        self._close_direct = close_direct
        self._rooms_beside = rooms_beside
        self._reactions: OrderedDict[str, tuple[str, str, str]] = OrderedDict()
        """Reactions seen since start → (who, on what, which emoji): what a redaction takes back."""
        self._threads: OrderedDict[str, str] = OrderedDict()
        """Recent messages sent in a thread → the thread's root, so a reply to one goes into its thread."""

    async def events(
        self, answer: dict[str, Any], since: str | None, *, page_limit: int, page_pages: int
    ) -> AsyncGenerator[Event, None]:
        """The events of every joined room of ``answer``, oldest first in each room; ``since``: where the
        sync asked from, as far as a limited timeline is paged back."""
        for room_id, info in ((answer.get("rooms") or {}).get("join") or {}).items():
            newly_joined = room_id not in self.rooms.joined
            self.rooms.joined.add(room_id)
            state: list[dict[str, Any]] = list((info.get("state") or {}).get("events") or [])
            self.roster.read(room_id, state, state=True)
            timeline = info.get("timeline") or {}
            # a tombstone before a gap in the timeline is still followed
            upgraded = [source for source in state if source.get("type") == TOMBSTONE]
            sources: list[dict[str, Any]] = upgraded + list(timeline.get("events") or [])
            prev_batch = timeline.get("prev_batch")
            if timeline.get("limited") and prev_batch and not newly_joined:
                if own_join_index(sources, self.user_id) is None:
                    missed = await page_back(
                        self.client, room_id, prev_batch, since, limit=page_limit, pages=page_pages
                    )
                    sources = missed + sources
            own_join = own_join_index(sources, self.user_id)
            if own_join is not None:
                # what happened before the bot came in is history; a room already upgraded is followed
                upgraded = [source for source in sources[:own_join] if source.get("type") == TOMBSTONE]
                sources = upgraded + sources[own_join + 1 :]
            seen: set[str] = set()
            for source in sources:
                event_id = str(source.get("event_id"))
                if event_id in seen:
                    continue
                seen.add(event_id)
                event = await self._event(room_id, source)
                if event is not None:
                    yield event

    def thread_of(self, message_id: str) -> str | None:
        """The root of the thread a recent message was sent in, if it was."""
        return self._threads.get(message_id)

    async def _event(self, room_id: str, source: dict[str, Any]) -> Event | None:
        """What the pipeline is to handle of a timeline event, if anything; room state is kept on the way."""
        kind = source.get("type")
        if "state_key" in source:
            self.roster.read(room_id, (source,))
        if kind == "m.room.power_levels" and source.get("state_key") == "":
            self.rooms.power_levels_changed(room_id, source.get("content") or {})
        elif kind == "m.room.encryption" and source.get("state_key") == "":
            if self._serves(room_id):
                await self.sender.event(
                    room_id, "m.room.message", message_content(Content(ENCRYPTED_NOT_SUPPORTED))
                )
            return None
        elif kind == "m.room.member" and source.get("state_key") == self.user_id:
            if (source.get("content") or {}).get("membership") in ("leave", "ban"):
                self._left(room_id)
            return None
        elif kind == "m.room.member" and self.rooms.is_direct(room_id):
            await self._direct_membership(room_id, source)
            return None
        elif kind == TOMBSTONE:
            return await self.upgrades.follow(room_id, source)
        elif kind == "m.room.redaction":
            return await self._redacted(room_id, source)
        self._remember_thread(source)
        target = poll_target(source)
        if target is not None:
            await self.state.load_poll(target)
        event = translate(
            with_pill_ids(source),
            self._room(room_id),
            own_id=self.user_id,
            name_of=lambda user: self.roster.display_name(room_id, user),
            poll_answers=self.state.polls,
        )
        if isinstance(event, ReactionAdded):
            self._reactions[event.event_id] = (event.member.id, event.message_id, event.emoji)
            while len(self._reactions) > self.reaction_memory:
                self._reactions.popitem(last=False)
        elif isinstance(event, MemberLeft) and await self._still_in_community(room_id, event.member.id):
            return None
        return event

    async def _still_in_community(self, room_id: str, user_id: str) -> bool:
        """Whether a member who left ``room_id`` is still joined to another room of its community: a
        community with several rooms (a general one, a working group's) is left by leaving the last of
        them, not each — leaving one withdrew their meeting answers and marked them gone. Asked of the
        homeserver (copbot keeps no member lists: memory), once per leave; a room it cannot read says
        nothing, so the leave stands."""
        for other in self._rooms_beside(room_id):
            try:
                answer = await self.client.state_event(other, "m.room.member", user_id)
            except Exception:  # the homeserver unreachable: the leave stands, as before
                log.warning("matrix: could not ask whether %s is still in %s", user_id, other, exc_info=True)
                continue
            if answer.ok and answer.body.get("membership") == "join":
                return True
        return False

    async def _redacted(self, room_id: str, source: Mapping[str, Any]) -> Event | None:
        """A redaction of a reaction is that reaction taken back, when copbot knows what it stood for: a
        redaction names only the event, which the homeserver strips of its content. It does for those it
        saw given since it started, and for those a plugin acted on (an RSVP, a 📌: kept in the database
        by :meth:`keep_reaction`, forgotten here), given before a restart too. A redaction of anything
        else is a ``MessageDeleted``: what copbot kept of a message goes with it (for any other event
        nobody kept anything)."""
        content = source.get("content") or {}
        redacted = source.get("redacts") or content.get("redacts")  # room v11 moved it into the content
        event_id = source.get("event_id")
        if not isinstance(redacted, str) or not isinstance(event_id, str) or not self._serves(room_id):
            return None  # another process's room: what is kept for it is that process's to take
        seen = self._reactions.pop(redacted, None)
        try:
            kept = await self.state.take_reaction(redacted)
        except Exception:  # the database failing must not hold the sync up: what memory has still counts
            log.warning("matrix: could not look up the redacted event %s", redacted, exc_info=True)
            kept = None
        given = seen or kept
        if given is None:
            return MessageDeleted(
                event_id=event_id, room=self._room(room_id), at=event_time(source), message_id=redacted
            )
        sender, message_id, emoji = given
        member = Member(PLATFORM, sender, self.roster.display_name(room_id, sender))
        at = event_time(source)
        return ReactionRemoved(
            event_id=event_id,
            room=self._room(room_id),
            at=at,
            member=member,
            message_id=message_id,
            emoji=emoji,
        )

    async def keep_reaction(self, event: ReactionAdded) -> None:
        """A plugin acted on this reaction: what it stands for is kept until it is taken back — unless it
        was taken back already (redacted in the same sync batch, while it was being handled)."""
        if event.event_id not in self._reactions:
            return
        await self.state.keep_reaction(event.event_id, event.member.id, event.message_id, event.emoji)

    async def _direct_membership(self, room_id: str, source: dict[str, Any]) -> None:
        """A member opening or closing their direct chat with copbot neither joins nor leaves a community
        (the chat belongs to one only so that commands there know where to answer from): no core event.

        When the member leaves it, copbot leaves too and forgets the chat, so its next direct message
        opens a new one that reaches them; sent into the chat they left, nobody would ever read it."""
        user = source.get("state_key")
        membership = (source.get("content") or {}).get("membership")
        if (
            membership in ("leave", "ban")
            and isinstance(user, str)
            and room_id in self.rooms.direct.get(user, [])
            and self._serves(room_id)
        ):
            await self._close_direct(room_id)

    def _remember_thread(self, source: dict[str, Any]) -> None:
        """A member's message in a thread: its root kept (the latest ``thread_memory`` of them)."""
        content = source.get("content")
        event_id = source.get("event_id")
        if (
            source.get("type") != "m.room.message"
            or not isinstance(content, dict)
            or not isinstance(event_id, str)
        ):
            return
        rel_type, root = relation(content)
        if rel_type != "m.thread" or not isinstance(root, str):
            return
        self._threads[event_id] = root
        while len(self._threads) > self.thread_memory:
            self._threads.popitem(last=False)
