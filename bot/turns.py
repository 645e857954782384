"""One member's events one at a time, in order; different members' at once.

An answer typed (or clicked) right after a question must never race the unit of work that asked it, so the
pipeline handles each member's events in turn: a lock per member, taken in the order the events came
(asyncio's locks are FIFO). Events with no member (a room's state) take no turn.
"""

from __future__ import annotations

import asyncio

from bot.model import Member


class Turns:
    """The members with events in flight and their locks: ``async with turns(member):`` handles one."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[str, tuple[asyncio.Lock, int]] = {}

    def __call__(self, member: Member | None) -> Turn:
        return Turn(self._held, member.key if member is not None else None)

    def __len__(self) -> int:
        """Members with an event in flight or waiting (their locks are dropped once none is)."""
        return len(self._held)


class Turn:
    """One event's turn (``async with``): a plain class rather than an async generator, for it wraps
    every event (the generator's machinery cost a twentieth of a command). The lock of a member nobody waits
    for is dropped on the way out, so there is one only per member with events in flight."""

    __slots__ = ("_key", "_lock", "_turns")

    def __init__(self, turns: dict[str, tuple[asyncio.Lock, int]], key: str | None) -> None:
        self._turns = turns
        self._key = key
        self._lock: asyncio.Lock | None = None

    async def __aenter__(self) -> None:
        key = self._key
        if key is None:
            return
        held = self._turns.get(key)
        lock, users = held if held is not None else (asyncio.Lock(), 0)
        self._turns[key] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:  # cancelled while waiting: no longer in line
            self._leave(key)
            raise
        self._lock = lock

    async def __aexit__(self, *_exc: object) -> None:
        lock, key = self._lock, self._key
        if lock is None or key is None:
            return
        self._lock = None
        lock.release()
        self._leave(key)

    def _leave(self, key: str) -> None:
        lock, users = self._turns[key]
        if users <= 1:
            del self._turns[key]
        else:
            self._turns[key] = (lock, users - 1)
