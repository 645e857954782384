"""What an adapter talks to: the pipeline bound to that adapter, so adapters never reach into the core."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.model import Event, Invocation, Member, Responder, Room
from bot.suggest import Suggestion

if TYPE_CHECKING:
    from bot.adapters.base import Adapter
    from bot.pipeline import Pipeline


class Dispatcher:
    """The one object an adapter talks to (bound to that adapter), so adapters never reach into the core."""

    def __init__(self, pipeline: Pipeline, adapter: Adapter) -> None:
        self.pipeline = pipeline
        self.adapter = adapter

    async def __call__(self, event: Event, *, responder: Responder | None = None) -> None:
        await self.pipeline.handle(self.adapter, event, responder=responder)

    async def invoke(self, invocation: Invocation) -> None:
        if not self.serves(invocation.room):
            return
        async with self.pipeline.in_turn(invocation.author):
            await self.pipeline.invoke(self.adapter, invocation)

    def serves(self, room: Room) -> bool:
        """Whether this process handles ``room`` (see :meth:`Registry.serves`); adapters ask before they
        answer anything themselves (a Discord interaction, a Matrix invite)."""
        return self.pipeline.registry.serves(room)

    def has_command(self, name: str) -> bool:
        return name in self.pipeline.registry.commands

    def community_id(self, slug: str) -> int:
        return self.pipeline.registry.community_ids[slug]

    def community_of(self, room: Room) -> str | None:
        registry = self.pipeline.registry
        community_id = registry.community_for(room)
        community = registry.communities.get(community_id) if community_id is not None else None
        return community.slug if community is not None else None

    async def attach_room(self, room_id: str, slug: str) -> None:
        await self.pipeline.registry.attach_room(self.adapter.platform, room_id, slug)

    def rooms_of(self, slug: str) -> list[str]:
        registry = self.pipeline.registry
        wanted = (self.adapter.platform, registry.community_ids.get(slug))
        return sorted(room for (platform, room), c in registry.room_map.items() if (platform, c) == wanted)

    async def suggest(
        self, room: Room, author: Member, command: str, option: str, typed: str
    ) -> list[Suggestion]:
        return await self.pipeline.suggest(self.adapter, room, author, command, option, typed)

    async def members_present(self, room_id: str, members: list[Member]) -> int:
        return await self.pipeline.members_present(Room(self.adapter.platform, room_id), members)

    async def checkpoint(self, position: tuple[str, str] | None = None, *, wait: bool = True) -> None:
        """Store what was handled so far with the adapter's position (key, value: a sync token), in one
        transaction, so a restart from that position never finds events handled but not recorded.

        ``wait=False`` queues the position for the journal's next batch (within ``interval``) instead:
        the sync loop's way, so a batch of events costs no commit of its own."""
        journal = self.pipeline.journal
        stored = (self.adapter.platform, *position) if position is not None else None
        if not wait and stored is not None:
            journal.position(*stored)
            return
        await journal.flush(stored)
