"""Discord interactions (a slash command, a button click): delivered to the core (``Interactions``) and
answered within Discord's three seconds (``InteractionReply``).

The first answer is the interaction's response and later ones are follow-ups; an answer that has not come
within ``DEFER_AFTER`` seconds is deferred ("copbot is thinking…") so Discord keeps waiting for it. Every
interaction takes an answer, so one nobody answered is acknowledged quietly, and one in a channel copbot
does not serve is told so — by the one process that speaks for that guild.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

import discord

from bot.adapters.base import Dispatch
from bot.adapters.discord_commands import focused, invoked, zone_suggestions
from bot.adapters.discord_events import utc
from bot.adapters.discord_members import PLATFORM, member_of
from bot.adapters.discord_render import pieces
from bot.clock import Clock
from bot.commands import CommandSpec, Kind
from bot.model import ButtonClicked, Content, Invocation, Member, Room
from bot.suggest import Suggestion

log = logging.getLogger(__name__)

DEFER_AFTER = 2.0  # seconds; Discord drops an interaction not acknowledged within 3
PRIVATE_PLACEHOLDER = "Answered privately."
"""What a deferred "thinking…" message is resolved with before a private answer follows (then deleted)."""
ALREADY_ACKNOWLEDGED = 40060
"""Discord's answer to a second acknowledgement of an interaction: it was answered before (by a run of
copbot that died before recording it as handled); that answer stands and nothing more is sent for it."""


class Interactions:
    """Slash commands and clicks to the core. An interaction takes exactly one answer, so only the process
    serving its room answers it, and one that nothing answered is still acknowledged."""

    def __init__(
        self,
        clock: Clock,
        *,
        room_of: Callable[[Any, int | None], Room | None],
        answers_guild: Callable[[int | None], bool],
    ) -> None:
        self.clock = clock
        self.room_of = room_of
        """The room of a channel copbot serves, else None."""
        self.answers_guild = answers_guild
        """Whether this process answers for a guild (or a direct chat) where copbot is not active."""

    async def handle(
        self, interaction: discord.Interaction, dispatch: Dispatch | None, commands: Mapping[str, CommandSpec]
    ) -> None:
        """``commands``: the specs by name, to tell ``/profile show`` (the bare ``profile``) from a command
        really named so, and to know what an option being typed takes."""
        room = (
            self.room_of(interaction.channel, interaction.user.id)
            if interaction.channel is not None
            else None
        )
        if interaction.type is discord.InteractionType.autocomplete:  # one answer: by whoever serves the room
            ours = (
                self.answers_guild(interaction.guild_id)
                if room is None
                else dispatch is None or dispatch.serves(room)
            )
            if ours:
                await _complete(interaction, commands, dispatch, room)
            return
        if room is None:
            if self.answers_guild(interaction.guild_id):
                await interaction.response.send_message(
                    "copbot is not active in this channel.", ephemeral=True
                )
            return
        if dispatch is not None and not dispatch.serves(room):
            return  # another copbot process serves it and answers: an interaction takes one answer
        reply = InteractionReply(interaction, self.clock)
        member = member_of(interaction.user)
        at = utc(interaction.created_at)
        data: dict[str, Any] = dict(interaction.data or {})
        try:
            if interaction.type is discord.InteractionType.application_command and dispatch:
                name, options = invoked(data, commands)
                options = typed_options(data, options)
                if not dispatch.has_command(name):
                    await reply.send(Content(f"/{name} is not available here any more.", ephemeral=True))
                    return
                await dispatch.invoke(
                    Invocation(
                        event_id=f"interaction:{interaction.id}",
                        room=room,
                        author=member,
                        at=at,
                        name=name,
                        options=options,
                        responder=reply.send,
                        prefix="/",
                    ),
                )
            elif interaction.type is discord.InteractionType.component:
                event = ButtonClicked(
                    event_id=f"interaction:{interaction.id}",
                    room=room,
                    at=at,
                    member=member,
                    custom_id=str(data.get("custom_id", "")),
                    values=tuple(str(value) for value in data.get("values", ())),
                )
                if dispatch is not None:
                    await dispatch(event, responder=reply.send)
        finally:
            await reply.finish()


async def _complete(
    interaction: discord.Interaction,
    commands: Mapping[str, CommandSpec],
    dispatch: Dispatch | None,
    room: Room | None,
) -> None:
    """The choices for the option being typed: time zones here, a plugin's rows (a poll, a meeting, an
    item) from the pipeline, in a room copbot serves. An autocomplete takes this one answer, never
    deferred; one Discord no longer wants (the member typed on) is dropped without a word."""
    typing = focused(commands, dict(interaction.data or {}))
    offered: list[Suggestion] = []
    if typing is not None:
        spec, option, typed = typing
        if option.kind is Kind.ZONE:
            offered = zone_suggestions(typed)
        elif dispatch is not None and room is not None:
            offered = await dispatch.suggest(room, member_of(interaction.user), spec.name, option.name, typed)
    choices = [discord.app_commands.Choice(name=s.label, value=s.value) for s in offered]
    try:
        await interaction.response.autocomplete(choices)
    except discord.HTTPException as error:
        log.debug("discord: suggestions for interaction %s not taken: %s", interaction.id, error)


def typed_options(data: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """User options arrive as ids; the spec wants Members, built from the interaction's resolved data."""
    users = (data.get("resolved") or {}).get("users") or {}
    typed = dict(options)
    for name, value in options.items():
        if isinstance(value, str) and value in users:
            user = users[value]
            typed[name] = Member(
                PLATFORM,
                value,
                user.get("global_name") or user.get("username", value),
                bool(user.get("bot")),
            )
    return typed


class InteractionReply:
    """Answers one interaction (see the module's docstring)."""

    def __init__(self, interaction: discord.Interaction, clock: Clock) -> None:
        self.interaction = interaction
        self.clock = clock
        self._lock = asyncio.Lock()
        self._timer = asyncio.create_task(self._defer_later())
        self._answered_before = False
        self._thinking = False
        """Deferred as "copbot is thinking…", and that message not resolved yet: Discord makes the first
        follow-up resolve it, with the defer's visibility whatever the follow-up asks."""

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
                self._thinking = thinking and not self._answered_before

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
        if self._thinking and kwargs.get("ephemeral"):
            await self._resolve_thinking()
        self._thinking = False
        message = await self.interaction.followup.send(content=text or "\u200b", wait=True, **kwargs)
        return str(message.id)

    async def _resolve_thinking(self) -> None:
        """A private answer to a command deferred in public: as the first follow-up it would be posted for
        the whole channel (a link code, an anonymous vote). The public "thinking…" message is resolved
        with a neutral line and removed, so the answer can follow as a private follow-up."""
        self._thinking = False
        await self.interaction.edit_original_response(content=PRIVATE_PLACEHOLDER)
        try:
            await self.interaction.delete_original_response()
        except discord.HTTPException as error:  # the neutral line stays: no harm done
            log.debug("discord: placeholder of interaction %s not deleted: %s", self.interaction.id, error)

    async def finish(self) -> None:
        """Nobody answered a click: acknowledge it quietly so the member does not see a failure."""
        self._timer.cancel()
        async with self._lock:
            if self._pending():
                await self._first_answer(self.interaction.response.defer())
