"""Sending on Discord: text split to Discord's limits, the rich parts (embeds, polls, buttons, files) with
the last piece, replies as message references that never ping, edits in place, deletions.

Each piece carries a nonce made of its delivery key: discord.py sends it with ``enforce_nonce``, so the
same message sent again within a few minutes (a command run again after copbot died, an outbox retry)
returns the one already posted instead of posting a second — as Matrix does with transaction ids.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import discord

from bot.adapters.discord_render import edit_parts, pieces
from bot.clock import Clock
from bot.model import Content

log = logging.getLogger(__name__)


class Sender:
    """Messages into channels and direct chats, for one Discord client."""

    def __init__(self, client: discord.Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock

    async def to_channel_id(self, channel_id: str, content: Content, *, reply_to: str | None = None) -> str:
        channel = self.client.get_channel(int(channel_id)) or await self.client.fetch_channel(int(channel_id))
        assert isinstance(channel, discord.abc.Messageable)
        reference = None
        if reply_to is not None and reply_to.isdigit():
            reference = discord.MessageReference(
                message_id=int(reply_to), channel_id=int(channel_id), fail_if_not_exists=False
            )
        return await self.to_channel(channel, content, reference=reference)

    async def to_user(self, user_id: str, content: Content) -> str:
        user = self.client.get_user(int(user_id)) or await self.client.fetch_user(int(user_id))
        channel = user.dm_channel or await user.create_dm()
        return await self.to_channel(channel, content)

    async def to_channel(
        self, channel: discord.abc.Messageable, content: Content, *, reference: Any = None
    ) -> str:
        """The message's pieces in order; the id of the last (the one with the rich parts)."""
        channel_id: int | None = getattr(channel, "id", None)  # every channel has one; a Messageable need not
        if content.ends_poll and content.ends_poll.isdigit() and channel_id is not None:
            try:
                await self.client.http.end_poll(channel_id, int(content.ends_poll))
            except discord.HTTPException as error:  # a button poll, or already ended: results still go out
                log.debug("discord: could not end poll %s: %s", content.ends_poll, error)
        last: discord.Message | None = None
        for index, (chunk, extra) in enumerate(pieces(content, self.clock.now())):
            if content.delivery_key:
                extra["nonce"] = nonce(content.delivery_key, index)
            if index == 0 and reference is not None:
                extra["reference"] = reference
            last = await channel.send(content=chunk or None, mention_author=False, **extra)
        assert last is not None
        return str(last.id)

    async def edit(self, channel_id: str, message_id: str, content: Content) -> None:
        """Replace a message copbot sent — text, embed and buttons — without pinging anyone again.

        No fetch first: a partial message is edited by id. A message deleted meanwhile is no error (an
        announcement a moderator removed simply stops being updated).
        """
        if not (channel_id.isdigit() and message_id.isdigit()):
            log.debug("discord: %s in %s is not a Discord message id; not edited", message_id, channel_id)
            return
        message = self.client.get_partial_messageable(int(channel_id)).get_partial_message(int(message_id))
        try:
            await message.edit(**edit_parts(content, self.clock.now()))
        except discord.NotFound:
            log.debug("discord: message %s in %s is gone; not edited", message_id, channel_id)

    async def delete(self, channel_id: str, message_id: str) -> None:
        """Delete a message copbot sent, by id (no fetch first); one deleted meanwhile is no error."""
        if not (channel_id.isdigit() and message_id.isdigit()):
            log.debug("discord: %s in %s is not a Discord message id; not deleted", message_id, channel_id)
            return
        message = self.client.get_partial_messageable(int(channel_id)).get_partial_message(int(message_id))
        try:
            await message.delete()
        except discord.NotFound:
            log.debug("discord: message %s in %s is gone already", message_id, channel_id)


def nonce(delivery_key: str, chunk: int) -> str:
    """A piece's nonce (see the module's docstring), at most 25 characters as Discord allows."""
    return hashlib.sha256(f"{delivery_key}#{chunk}".encode()).hexdigest()[:25]
