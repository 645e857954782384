"""Messages that belong to a unit of work: stored with it, sent after it commits, sent once.

A poll's results, a reminder, a digest are *work*: if copbot posted them and then died before committing
(or committed and died before posting), a restart would post twice or never. So a handler that posts
somewhere other than its own reply writes the message into the ``outbox`` table inside its unit of work,
under a key that names the work (``poll:7:close@2026-03-02T09:02:00+00:00#0``). After the commit the outbox
sends it and marks it sent; at start-up it sends whatever a previous process committed but did not send.

Keys make re-runs harmless: writing a message whose key is already stored does nothing, so a job that runs
again after a crash cannot queue its messages twice. The one window left is between "sent" and "marked
sent"; there the key also goes to the platform (Matrix uses it as the transaction id, which the homeserver
deduplicates), so even a retry in that window is stored once where the platform allows it.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot import failpoints, store
from bot.errors import NotPermitted, Undeliverable
from bot.model import Attachment, Button, Card, Content, Member, PollSpec, Room, SelectMenu
from bot.tables import OutboxRow, table_of
from bot.tasks import cancel_and_wait

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)
RETRY_FIRST = 2.0
RETRY_CAP = 60.0
"""A failed delivery is tried again after 2 s, doubling up to a minute; success starts again at 2 s."""
PLATFORM_POLL = 1.0
"""While a platform is down its messages wait, uncounted, and are looked at again every second."""
MAX_ATTEMPTS = 20
PERMISSION_RETRIES = (300.0, 1800.0, 7200.0)
"""A message the platform refuses for lack of permission (:class:`NotPermitted`) is tried again after 5 min,
30 min and 2 h, since a moderator may restore the permission meanwhile, then given up: four attempts over
about two and a half hours, not twenty within minutes. (A restart tries once more, its attempts counted.)"""


# --- the stored form of a message ---------------------------------------------------------------------


def encode_content(content: Content) -> str:
    """Content as JSON; times as ISO strings, members and nested parts as their fields."""
    return json.dumps(_plain(dataclasses.asdict(content)), ensure_ascii=False, separators=(",", ":"))


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, datetime):
        return {"$time": value.astimezone(UTC).isoformat()}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def decode_content(text: str) -> Content:
    data = json.loads(text)
    card = data.get("card")
    poll = data.get("poll")
    select_menu = data.get("select")
    return Content(
        text=data["text"],
        mentions=tuple(Member(**member) for member in data.get("mentions") or ()),
        card=Card(card["title"], tuple(tuple(pair) for pair in card["fields"]), card["footer"])
        if card
        else None,
        poll=PollSpec(
            poll["question"],
            tuple(poll["answers"]),
            poll["multi"],
            poll["anonymous"],
            _time(poll["closes_at"]),
            poll.get("beside", ""),
        )
        if poll
        else None,
        buttons=tuple(Button(**button) for button in data.get("buttons") or ()),
        select=SelectMenu(
            select_menu["custom_id"],
            tuple(tuple(option) for option in select_menu["options"]),
            select_menu["placeholder"],
        )
        if select_menu
        else None,
        ends_poll=data.get("ends_poll"),
        ephemeral=bool(data.get("ephemeral")),
        delivery_key=data.get("delivery_key"),
        attachment=Attachment(
            attached["filename"], base64.b64decode(attached["data"]["$bytes"]), attached["mime"]
        )
        if (attached := data.get("attachment"))
        else None,
    )


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value["$time"]) if isinstance(value, dict) else None


# --- writing and delivering ---------------------------------------------------------------------------


async def put(
    session: AsyncSession,
    key: str,
    content: Content,
    *,
    room: Room | None = None,
    member: Member | None = None,
    now: datetime,
    owner: str = "",
) -> None:
    """Queue a message in the caller's unit of work; a key already stored is left as it is.

    ``owner``: the instance queuing it (``[instance] name``); with several processes on one database each
    sends only its own instance's messages (README "Running more than one process")."""
    target: dict[str, Any]
    if room is not None and member is None:
        platform = room.platform
        target = {"room": room.id, "community": room.community_id, "direct": room.is_direct}
    elif member is not None and room is None:
        platform = member.platform
        target = {"member": dataclasses.asdict(member)}
    else:
        raise ValueError("a message goes to a room or to a member")
    content = dataclasses.replace(content, delivery_key=key)
    await session.execute(
        store.insert_ignoring_conflicts(session, table_of(OutboxRow)).values(
            key=key,
            platform=platform,
            target=json.dumps(target),
            content=encode_content(content),
            created_at=now,
            attempts=0,
            owner=owner,
        )
    )


class Outbox:
    """Sends committed messages, one delivery at a time so a message is never sent by two tasks."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._lock = asyncio.Lock()
        self._retry: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._failed = 0  # deliveries that failed since the retry loop last looked
        self._waiting = False  # messages kept back because their platform is down
        self.sent = 0
        self._not_before: dict[int, float] = {}  # row id → when a refused message may be tried again
        self.refused: dict[str, str] = {}
        """Where copbot may not post (a stored target) → what is wrong and what to fix, for ``status``;
        forgotten when a message gets through there again."""

    async def start(self) -> None:
        """Send what an earlier process committed but did not send; then retry failures in the background."""
        await self.deliver()
        self._retry = asyncio.create_task(self._retry_loop(), name="copbot-outbox")

    async def stop(self) -> None:
        self._closing = True
        self._wake.set()
        if self._retry is not None:
            await cancel_and_wait(self._retry, what="the outbox's retries")
            self._retry = None
        async with self._lock:  # a delivery in progress finishes and is marked
            pass

    async def deliver(self, keys: list[str] | None = None) -> int:
        """Send unsent messages (those with ``keys``, or all); returns how many went out."""
        sent = 0
        async with self._lock:
            async with self.services.db.session() as session:
                query = select(OutboxRow).where(col(OutboxRow.sent_at).is_(None))
                settings = self.services.settings
                if settings.partitioned:  # other processes send theirs
                    query = query.where(col(OutboxRow.owner) == settings.instance_name)
                if keys is not None:
                    if not keys:
                        return 0
                    query = query.where(col(OutboxRow.key).in_(keys))
                rows = (await session.execute(query.order_by(col(OutboxRow.id)))).scalars().all()
            for row in rows:
                if self._not_before.get(row.id or 0, 0.0) > time.monotonic():
                    continue  # refused for lack of permission: tried again later (PERMISSION_RETRIES)
                if await self._send(row):
                    sent += 1
        self.sent += sent
        return sent

    async def _send(self, row: OutboxRow) -> bool:
        adapter = self.services.adapters.get(row.platform)
        if adapter is None:
            return False  # that platform is not running in this process; kept for when it is
        if not getattr(adapter, "connected", True):
            self._waiting = True  # the platform is down (its adapter said so once): no attempt counted
            self._wake.set()
            return False
        target = json.loads(row.target)
        content = decode_content(row.content)
        try:
            if "member" in target:
                message_id = await adapter.send_direct(Member(**target["member"]), content)
            else:
                room = Room(row.platform, target["room"], target.get("community"), bool(target.get("direct")))
                message_id = await adapter.send(room, content)
        except Exception as error:
            attempts = row.attempts + 1
            values: dict[str, Any] = {"attempts": attempts, "last_error": str(error)[:500]}
            if isinstance(error, NotPermitted):
                if self._not_permitted(row, error, attempts):
                    values.update(sent_at=self.services.clock.now(), message_id="")
                await self._mark(row.id, values)
                return False
            if isinstance(error, Undeliverable):  # no retry can deliver it: given up at once, said once
                log.warning("message %s cannot be delivered, given up: %s", row.key, error)
            else:
                log.warning("could not deliver message %s (attempt %d): %s", row.key, attempts, error)
                if attempts >= MAX_ATTEMPTS:
                    log.error("giving up on message %s after %d attempts", row.key, attempts)
            if isinstance(error, Undeliverable) or attempts >= MAX_ATTEMPTS:
                values.update(sent_at=self.services.clock.now(), message_id="")
            else:
                self._failed += 1  # tried again after a back-off
                self._wake.set()
            await self._mark(row.id, values)
            return False
        failpoints.hit("outbox.sent")
        await self._mark(row.id, {"sent_at": self.services.clock.now(), "message_id": str(message_id)})
        self._not_before.pop(row.id or 0, None)
        if self.refused.pop(row.target, None) is not None:
            log.info("outbox: message %s delivered: copbot may post there again", row.key)
        return True

    def _not_permitted(self, row: OutboxRow, error: NotPermitted, attempts: int) -> bool:
        """A refusal a moderator can undo: tried again later (:data:`PERMISSION_RETRIES`), said once per
        room with what to fix, then given up with one line. True when given up."""
        first_here = row.target not in self.refused
        self.refused[row.target] = error.message
        if attempts > len(PERMISSION_RETRIES):
            self._not_before.pop(row.id or 0, None)
            log.warning("message %s given up after %d attempts: %s", row.key, attempts, error.message)
            return True
        delay = PERMISSION_RETRIES[attempts - 1]
        self._not_before[row.id or 0] = time.monotonic() + delay
        asyncio.get_running_loop().call_later(delay, self._wake.set)
        left = len(PERMISSION_RETRIES) - attempts + 1
        level = logging.WARNING if first_here else logging.INFO
        log.log(
            level,
            "message %s not sent: %s; trying again in %s (%d more attempt%s before giving up)",
            row.key,
            error.message,
            _delay(delay),
            left,
            "" if left == 1 else "s",
        )
        return False

    async def _mark(self, row_id: int | None, values: dict[str, Any]) -> None:
        async with self.services.db.session() as session:
            await session.execute(update(OutboxRow).where(col(OutboxRow.id) == row_id).values(**values))

    async def _retry_loop(self) -> None:
        """Deliver again what failed (back-off) or waited for its platform (polled while it is down)."""
        failures = 0
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            waiting_only = self._waiting and not self._failed
            await asyncio.sleep(PLATFORM_POLL if waiting_only else min(RETRY_CAP, RETRY_FIRST * 2**failures))
            failed_before, self._failed, self._waiting = self._failed, 0, False
            try:
                await self.deliver()
            except Exception as error:
                self._failed += 1
                self._wake.set()
                if not self.services.db.unavailable(error):
                    log.exception("retrying queued messages failed")
            failures = failures + 1 if self._failed else 0
            if failed_before and not self._failed and not self._waiting:
                log.info("outbox: queued messages delivered again")


def _delay(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
