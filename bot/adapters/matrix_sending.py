"""Sending on Matrix: messages as rich replies, files after their text, native polls, edits, redactions,
direct rooms.

Each event is sent with a transaction id that stays the same for every retry, so the homeserver stores it
once; a message from the outbox (its delivery key) keeps its id even across a restart of copbot.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bot.adapters.matrix_client import MatrixClient
from bot.adapters.matrix_http import MatrixSendError, RawResult, call, path
from bot.adapters.matrix_levels import said
from bot.adapters.matrix_media import file_content, upload
from bot.adapters.matrix_render import (
    POLL_END,
    POLL_START,
    answer_ids,
    edit_content,
    message_contents,
    poll_end_content,
    poll_start_content,
)
from bot.adapters.matrix_rooms import RoomDirectory, needed_to_send
from bot.adapters.matrix_session import SessionState
from bot.errors import NotPermitted, Undeliverable
from bot.model import Content
from bot.render import plain_text

log = logging.getLogger(__name__)
POWER_ADVICE = (
    "a room admin can raise copbot's power level in Element (Room settings → Roles & Permissions), or "
    'lower what "Send messages" needs there, or remove the room from the community\'s rooms'
)


class Sender:
    """Events into rooms, for one Matrix account."""

    def __init__(
        self,
        client: MatrixClient,
        rooms: RoomDirectory,
        state: SessionState,
        room_name: Callable[[str], str | None] = lambda room_id: None,
    ) -> None:
        self.client = client
        self.rooms = rooms
        self.state = state
        self.room_name = room_name
        """The room's name (m.room.name) where copbot knows it, to say which room in a refusal."""
        self._direct_lock = asyncio.Lock()

    async def content(
        self, room_id: str, content: Content, *, reply_to: str | None = None, thread: str | None = None
    ) -> str:
        """A rich reply or message; a poll is a native MSC3381 poll (after the text, if there is one: the
        poll's ``beside`` text when it has one, so the question and options are shown once, by the poll).

        A message that ends a poll also sends ``m.poll.end`` for it, so clients close their poll UI.
        ``thread``: the thread ``reply_to`` is in, where the reply's text goes too.
        """
        key = content.delivery_key
        if content.ends_poll:
            await self.event(
                room_id, POLL_END, poll_end_content(content.ends_poll, plain_text(content)), key=key
            )
        if content.poll is None and content.attachment is not None:
            return await self._with_file(room_id, content, reply_to=reply_to, thread=thread)
        if content.poll is None:
            return await self._message(room_id, content, reply_to=reply_to, thread=thread)
        spec, intro = content.poll, content.text
        if spec.beside:  # the text says only what the poll cannot, the poll's fallback the rest
            content, intro = replace(content, text=spec.beside), ""
        if content.text or content.card is not None:
            await self._message(room_id, content, reply_to=reply_to, thread=thread)
        poll_id = await self.event(room_id, POLL_START, poll_start_content(spec, intro), key=key)
        self.state.remember_poll(poll_id, answer_ids(spec))
        return poll_id

    async def _with_file(
        self, room_id: str, content: Content, *, reply_to: str | None, thread: str | None = None
    ) -> str:
        """Upload first (a refused file then sends nothing), then the text if any, then the ``m.file``.

        Returns the first message's id, the one a reply or an edit refers to. The file's event gets its own
        delivery key: under the text's, the homeserver would take it for a retry of the text.
        """
        assert content.attachment is not None
        key = content.delivery_key
        mxc = await upload(self.client, content.attachment)
        first = None
        if plain_text(content):
            first = await self._message(room_id, content, reply_to=reply_to, thread=thread)
        file = file_content(content.attachment, mxc, reply_to=None if first else reply_to, thread=thread)
        file_id = await self.event(room_id, "m.room.message", file, key=f"{key}:file" if key else None)
        return first or file_id

    async def _message(
        self, room_id: str, content: Content, *, reply_to: str | None, thread: str | None
    ) -> str:
        """The message as one ``m.room.message``, or in parts where it would pass Matrix's event size
        (:func:`message_contents`); the first part's id, the one a reply or an edit refers to. Each part
        has its own transaction id under the delivery key: under one, the homeserver would take the
        second part for a retry of the first."""
        key = content.delivery_key
        first = ""
        for index, part in enumerate(message_contents(content, reply_to=reply_to, thread=thread)):
            event_id = await self.event(
                room_id, "m.room.message", part, key=f"{key}#{index}" if key and index else key
            )
            first = first or event_id
        return first

    async def edit(self, room_id: str, message_id: str, content: Content) -> None:
        """Replace a message copbot sent with an ``m.replace`` edit, which clients show in its place.

        The original is looked up first: a homeserver accepts an edit of an event that is gone (redacted,
        or in a room copbot left) and clients would just ignore it, so that case is seen here and only
        logged — a moderator removing an announcement is no error. Only copbot's own ``m.room.message``
        events can be edited (clients ignore edits by anyone else, or of another event type).
        """
        api_path = path("rooms", room_id, "event", message_id)
        original = await call(lambda: self.client.request("GET", api_path), what="get event")
        redacted = "redacted_because" in (original.body.get("unsigned") or {})
        if original.status in (403, 404) or (original.ok and redacted):
            log.debug("matrix: message %s in %s is gone; not edited", message_id, room_id)
            return
        if not original.ok:
            raise MatrixSendError(f"could not look up {message_id} in {room_id}: {original.body}")
        own = original.body.get("sender") == self.client.user_id
        if not own or original.body.get("type") != "m.room.message":
            log.warning("matrix: %s in %s is not a message copbot sent; not edited", message_id, room_id)
            return
        key = f"edit:{message_id}:{content.delivery_key}" if content.delivery_key else None
        await self.event(room_id, "m.room.message", edit_content(message_id, content), key=key)

    async def redact(self, room_id: str, message_id: str) -> None:
        """Redact an event copbot sent, under a transaction id of its own (a retry redacts once). Copbot
        may always redact its own events; one gone already (403/404) is only logged."""
        transaction = hashlib.sha256(f"redact|{room_id}|{message_id}".encode()).hexdigest()[:32]
        api_path = path("rooms", room_id, "redact", message_id, transaction)
        answer = await call(lambda: self.client.request("PUT", api_path, {}), what="redact")
        if answer.status in (403, 404):
            log.debug("matrix: %s in %s is gone or not copbot's; not redacted", message_id, room_id)
            return
        if not answer.ok:
            raise MatrixSendError(
                f"could not redact {message_id} in {room_id}: {answer.status} {answer.body}"
            )

    async def direct_room(self, user_id: str) -> str:
        """The direct room with ``user_id``, created (and recorded in m.direct) if there is none yet."""
        async with self._direct_lock:
            room_id = self.rooms.direct_room_for(user_id)
            if room_id is None:
                request = {"is_direct": True, "invite": [user_id], "preset": "trusted_private_chat"}
                created = await call(lambda: self.client.create_room(request), what="create direct room")
                room_id = created.body.get("room_id")
                if not created.ok or not isinstance(room_id, str):
                    raise MatrixSendError(f"could not open a direct room with {user_id}: {created.body}")
                self.rooms.joined.add(room_id)
                await self.rooms.mark_direct(user_id, room_id)
        return room_id

    async def event(
        self, room_id: str, event_type: str, content: dict[str, Any], *, key: str | None = None
    ) -> str:
        """Send one event; its id. Retried under the same transaction id (see the module's docstring)."""
        transaction = (
            hashlib.sha256(f"{key}|{room_id}|{event_type}".encode()).hexdigest()[:32]
            if key
            else uuid.uuid4().hex
        )
        api_path = path("rooms", room_id, "send", event_type, transaction)
        answer = await call(lambda: self.client.request("PUT", api_path, content), what="send")
        event_id = answer.body.get("event_id")
        if answer.status == 403:  # not (or no longer) in the room, or not allowed to post there
            raise await self._refusal(room_id, event_type, answer)
        if not answer.ok or not isinstance(event_id, str):
            raise MatrixSendError(f"could not send to {room_id}: {answer.status} {answer.body}")
        return event_id

    async def _refusal(self, room_id: str, event_type: str, answer: RawResult) -> Undeliverable:
        """What a 403 to a send means: :class:`NotPermitted` when copbot is in the room but its power level
        is below what ``event_type`` needs (a room admin can undo that, so the outbox tries again later),
        else :class:`Undeliverable` (copbot was removed or banned, the room is gone: nothing helps).

        Read from the room's state rather than the homeserver's wording of the error, which differs
        between homeservers; the power levels read are the room's current ones, kept for the next send.
        """
        member = await call(
            lambda: self.client.state_event(room_id, "m.room.member", self.client.user_id),
            what=f"copbot's membership of {room_id}",
        )
        if member.ok and member.body.get("membership") == "join":
            levels = await call(
                lambda: self.client.state_event(room_id, "m.room.power_levels"),
                what=f"power levels of {room_id}",
            )
            if levels.ok:
                self.rooms.power_levels_changed(room_id, levels.body)
                own = await self.rooms.power_level(room_id, self.client.user_id)
                needed = needed_to_send(levels.body, event_type)
                if own < needed:
                    room = await self._room_label(room_id)
                    return NotPermitted(
                        f"copbot's power level in {room} is {own}, below the {needed} needed to send "
                        f"{event_type} events there; {POWER_ADVICE} ({said(answer)})",
                        room=room,
                    )
        return Undeliverable(f"copbot may not post in {room_id}: {answer.body}")

    async def _room_label(self, room_id: str) -> str:
        """The room's name and id (``Announcements (!abc:example.org)``), or its id if it has no name;
        read from the room when the timeline has not told it yet."""
        name = self.room_name(room_id)
        if name is None:
            answer = await call(
                lambda: self.client.state_event(room_id, "m.room.name"), what=f"name of {room_id}"
            )
            found = answer.body.get("name") if answer.ok else None
            name = found if isinstance(found, str) else None
        return f"{name} ({room_id})" if name else room_id
