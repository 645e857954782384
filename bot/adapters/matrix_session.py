"""What the Matrix adapter keeps in the database between runs: its device, access token and sync position,
the answer ids of the native polls it sent (a vote names an answer by id; after a restart the poll's
ids are read back, so votes still count), and what the reactions a plugin acted on stood for (a redaction
names only the reaction's event: taken back after a restart, it is still understood)."""

from __future__ import annotations

import asyncio
import json

from bot import store
from bot.clock import Clock
from bot.db import Database

STATE_SCOPE = "matrix"


class SessionState:
    """One process's Matrix session as stored: keys are the account's, or the account's per instance."""

    def __init__(self, db: Database, clock: Clock, user_id: str, instance: str = "") -> None:
        self.db = db
        self.clock = clock
        self.user_id = user_id
        self.instance = instance
        self.polls: dict[str, list[str]] = {}
        """A native poll's event id → its answers' ids, in the order of the poll's options."""
        self._writes: set[asyncio.Task[None]] = set()

    def key(self, name: str) -> str:
        """The state key of this process's Matrix session: its device, access token and sync token. With
        several processes on one account (``instance``) each has its own — one device and one position
        per process; a single process keeps the keys it always had."""
        if self.instance:
            return f"{self.user_id}@{self.instance}:{name}"
        return f"{self.user_id}:{name}"

    async def stored_sync_token(self) -> str | None:
        """Where this process's sync resumes. A process of a newly divided deployment starts where the
        undivided one stopped (events handled before are skipped by their ids), so nothing sent during the
        change is lost; with no position at all, the first sync takes the current one."""
        token = await self.get(self.key("sync_token"))
        if token is None and self.instance:
            token = await self.get(f"{self.user_id}:sync_token")
        return token

    def remember_poll(self, poll_id: str, answer_ids: list[str]) -> None:
        """Keep a sent poll's answer ids, and store them in the background: the sender may be inside a unit
        of work that holds SQLite's write lock until it returns, so waiting here for our own write would
        wait on ourselves."""
        self.polls[poll_id] = answer_ids
        task = asyncio.create_task(self.put(f"poll:{poll_id}", json.dumps(answer_ids)))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def load_poll(self, poll_id: str) -> None:
        """Read a poll's answer ids back (a vote for a poll sent before this run)."""
        if poll_id in self.polls:
            return
        stored = await self.get(f"poll:{poll_id}")
        if stored is not None:
            self.polls[poll_id] = list(json.loads(stored))

    async def keep_reaction(self, reaction_id: str, sender: str, message_id: str, emoji: str) -> None:
        """What a reaction a plugin acted on stands for: its redaction names only its event, which the
        homeserver strips of its content, so after a restart this is all that says what was taken back."""
        await self.put(f"reaction:{reaction_id}", json.dumps([sender, message_id, emoji]))

    async def take_reaction(self, reaction_id: str) -> tuple[str, str, str] | None:
        """(who, on what, which emoji) of a kept reaction being taken back, forgotten as it is read."""
        async with self.db.engine.begin() as connection:
            stored = await store.take_state(connection, STATE_SCOPE, f"reaction:{reaction_id}")
        if stored is None:
            return None
        sender, message_id, emoji = json.loads(stored)
        return str(sender), str(message_id), str(emoji)

    async def flush(self) -> None:
        """Wait for the writes still running in the background (at stop)."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    async def get(self, key: str) -> str | None:
        async with self.db.session() as session:
            return await store.get_state(session, STATE_SCOPE, key)

    async def put(self, key: str, value: str) -> None:
        async with self.db.engine.begin() as connection:  # one statement: no ORM session needed
            await store.put_state(connection, STATE_SCOPE, key, value, self.clock.now())
