"""Answering a Discord interaction (a slash command, a button click) within Discord's three seconds.

The first answer is the interaction's response and later ones are follow-ups; an answer that has not come
within ``DEFER_AFTER`` seconds is deferred ("copbot is thinking…") so Discord keeps waiting for it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord

from bot.adapters.discord_render import pieces
from bot.clock import Clock
from bot.model import Content

log = logging.getLogger(__name__)

DEFER_AFTER = 2.0  # seconds; Discord drops an interaction not acknowledged within 3
ALREADY_ACKNOWLEDGED = 40060
"""Discord's answer to a second acknowledgement of an interaction: it was answered before (by a run of
copbot that died before recording it as handled); that answer stands and nothing more is sent for it."""


class InteractionReply:
    """Answers one interaction (see the module's docstring)."""

    def __init__(self, interaction: discord.Interaction, clock: Clock) -> None:
        self.interaction = interaction
        self.clock = clock
        self._lock = asyncio.Lock()
        self._timer = asyncio.create_task(self._defer_later())
        self._answered_before = False

    def _pending(self) -> bool:
        return not self._answered_before and not self.interaction.response.is_done()

    async def _first_answer(self, answer: Any) -> Any:
        """Acknowledge the interaction; None if Discord says it was acknowledged before (a redelivery
        after copbot died between answering and recording it): then nothing more is sent for it."""
        try:
            return await answer
        except discord.HTTPException as error:
            if error.code != ALREADY_ACKNOWLEDGED:
                raise
            log.debug("discord: interaction %s was answered before; not answered again", self.interaction.id)
            self._answered_before = True
            return None

    async def _defer_later(self) -> None:
        await asyncio.sleep(DEFER_AFTER)
        async with self._lock:
            if self._pending():
                thinking = self.interaction.type is discord.InteractionType.application_command
                await self._first_answer(self.interaction.response.defer(thinking=thinking))

    async def send(self, content: Content) -> str:
        """The answer's pieces in order (Discord takes 2,000 characters a message: a long ``help`` is
        several), the first answering the interaction; the id of the last, which has the rich parts."""
        async with self._lock:
            sent = str(self.interaction.id)
            for text, parts in pieces(content, self.clock.now()):
                if self._answered_before:
                    break
                sent = await self._piece(text, {**parts, "ephemeral": content.ephemeral})
            return sent

    async def _piece(self, text: str, kwargs: dict[str, Any]) -> str:
        if not self.interaction.response.is_done():
            self._timer.cancel()
            callback = await self._first_answer(
                self.interaction.response.send_message(content=text or None, **kwargs)
            )
            return str(getattr(callback, "message_id", None) or self.interaction.id)
        message = await self.interaction.followup.send(content=text or "\u200b", wait=True, **kwargs)
        return str(message.id)

    async def finish(self) -> None:
        """Nobody answered a click: acknowledge it quietly so the member does not see a failure."""
        self._timer.cancel()
        async with self._lock:
            if self._pending():
                await self._first_answer(self.interaction.response.defer())
