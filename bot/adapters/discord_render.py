"""Core ``Content`` → Discord's native forms, as functions of the content alone (no connection needed).

Kept apart from the adapter so the rules live in one place for every path a message takes — a channel
message, an interaction response or follow-up, and an edit: text split at Discord's 2,000 characters, a
card as an embed, a poll as a native poll when Discord's limits allow (else its buttons), buttons and menus
as a persistent view, an attachment as a file sent with the message, and ``allowed_mentions`` that never
lets member-written text ping anyone unintended. A card's title and fields are member-written data (a
meeting's title, a profile), so their markdown is escaped: in an embed it would render as headers, bold or
masked links, and an ``@everyone`` would look like one even though ``allowed_mentions`` stops the ping.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import discord

from bot.model import Attachment, Content

MAX_MESSAGE = 2000
MAX_NATIVE_ANSWERS = 10
MAX_NATIVE_ANSWER = 55
"""Characters of a native poll's answer: a longer option (copbot takes 100) gets buttons, not a cut answer
that could read like its neighbour."""
MAX_POLL_DURATION = timedelta(days=32)
_MASS_MENTION = re.compile(r"@(everyone|here)\b")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
# discord.py's escape_markdown reads "[…](…)" as one greedy match and escapes only its first "[": on a line
# with two brackets, everything between them (a masked link, a code fence) stayed live. Brackets are set
# aside before it runs and escaped after, except inside a link, which must stay a working link.
_BRACKET = "\ue000"
_LINK = r"<[^: >]+:\/[^ >]+>|(?:https?|steam):\/\/[^\s<]+[^<.,:;\"\'\]\s]"
_SET_ASIDE = re.compile(rf"(?P<link>{_LINK})|{_BRACKET}")
_LIVE = re.compile(rf"(?P<link>{_LINK})|[\\`\[]")
"""Outside links: what could make a masked link or a code block of copbot's text (see render_text)."""


def allowed_mentions(content: Content) -> discord.AllowedMentions:
    """Only the members the message means to mention may be pinged: never everyone, here or a role."""
    return discord.AllowedMentions(
        everyone=False,
        roles=False,
        users=[discord.Object(int(member.id)) for member in content.mentions if member.id.isdigit()],
        replied_user=False,
    )


def edit_mentions() -> discord.AllowedMentions:
    """An edit pings nobody: the members it mentions were pinged (or deliberately not) when it was sent,
    and a count updated in place must not ping them again."""
    return discord.AllowedMentions(everyone=False, roles=False, users=False, replied_user=False)


def render_text(content: Content) -> str:
    """The message's text for Discord, which reads it as Markdown.

    copbot's text is plain text with member-written parts inside it (a meeting's title in its reminder, a
    poll's question, a display name). Most of Markdown only changes how words look, but some would let a
    member change what copbot's message does: a masked link ``[Verify here](https://phish.example)`` is a live
    link in copbot's own reminder, hiding where it goes; an unclosed code fence in a title turns the rest of
    the reminder into code, mentions of the members coming included, so they are not pinged; ``@everyone`` and
    role mentions look like pings even though :func:`allowed_mentions` stops them. So brackets, backticks and
    backslashes are escaped (a backslash too, or a member's own ``\\[`` would undo the escape) and mass and
    role mentions broken with a zero-width space — outside links, which stay working and show where they go.
    Bold, italics and the like are left: they change how a line looks, never where it leads or whom it
    reaches.
    """
    text = content.text
    if content.poll is not None and not content.text:
        text = content.poll.question
    text = _LIVE.sub(_escaped, text)
    return _ROLE_MENTION.sub("<@\u200b&\\1>", _MASS_MENTION.sub("@\u200b\\1", text))


def _escaped(match: re.Match[str]) -> str:
    link = match.group("link")
    return link if link else "\\" + match.group(0)


def split_text(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Discord refuses messages over 2,000 characters: split at line breaks, never mid-word when avoidable.

    No piece is empty or blank (Discord refuses an empty message): blank lines where a piece ends go."""
    if len(text) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""

    def flush() -> None:
        nonlocal current
        if current.strip():
            chunks.append(current.rstrip("\n"))
        current = ""

    for line in text.split("\n"):
        while len(line) > limit:
            flush()
            cut = line.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            if line[:cut].strip():
                chunks.append(line[:cut])
            line = line[cut:].lstrip()
        if len(current) + len(line) + 1 > limit:
            flush()
        current += line + "\n"
    flush()
    return chunks


def escape_data(text: str, limit: int) -> str:
    """Member-written text shown as itself: markdown escaped, ``@everyone``/``@here`` and role mentions
    broken with a zero-width space, and cut to ``limit`` without leaving half an escape at the end.

    Backslashes are escaped too, so a member's own ``\\*`` cannot undo an escape. Links and user mentions
    stay as they are: a bare URL shows where it goes, and a card may name a member.
    """
    escaped = discord.utils.escape_markdown(text.replace(_BRACKET, "").replace("[", _BRACKET))
    escaped = _SET_ASIDE.sub(_bracket, escaped)
    escaped = _ROLE_MENTION.sub("<@\u200b&\\1>", _MASS_MENTION.sub("@\u200b\\1", escaped))
    if len(escaped) > limit:
        escaped = escaped[:limit]
        if (len(escaped) - len(escaped.rstrip("\\"))) % 2:  # the cut split an escape: drop its half
            escaped = escaped[:-1]
    return escaped


def _bracket(match: re.Match[str]) -> str:
    link = match.group("link")
    return link.replace(_BRACKET, "[") if link else "\\["


def embed_of(content: Content) -> discord.Embed:
    """The card as an embed; its title and fields escaped (member data), the footer copbot's own text."""
    assert content.card is not None
    embed = discord.Embed(title=escape_data(content.card.title, 256))
    for name, value in content.card.fields[:25]:
        embed.add_field(
            name=escape_data(name, 256) or "\u200b", value=escape_data(value, 1024) or "\u200b", inline=False
        )
    if content.card.footer:
        embed.set_footer(text=content.card.footer[:2048])
    return embed


def native_poll_fits(content: Content, now: datetime) -> bool:
    poll = content.poll
    if poll is None or poll.anonymous or len(poll.answers) > MAX_NATIVE_ANSWERS:
        return False
    if any(len(answer) > MAX_NATIVE_ANSWER for answer in poll.answers):
        return False
    return poll.closes_at is None or poll.closes_at - now <= MAX_POLL_DURATION


def native_poll(content: Content, now: datetime) -> discord.Poll:
    poll = content.poll
    assert poll is not None
    # A poll without a deadline stays open in copbot; Discord's UI for it stays open its longest, 32 days
    # (Discord's default, 24 hours, would show "final results" of a poll members can still vote in).
    left = MAX_POLL_DURATION if poll.closes_at is None else poll.closes_at - now
    # Discord counts whole hours. Rounded up: its UI then stays open until copbot closes the poll (which
    # ends the native one too); rounded down, members could no longer vote there before the deadline.
    hours = max(1, math.ceil(left.total_seconds() / 3600))
    native = discord.Poll(question=poll.question[:300], duration=timedelta(hours=hours), multiple=poll.multi)
    for answer in poll.answers:
        native.add_answer(text=answer)
    return native


def pieces(content: Content, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """The message as Discord takes it: its text in pieces of at most 2,000 characters, each with the
    keyword arguments to send it with; the last carries the rich parts (embed, poll, buttons, file)."""
    chunks = split_text(render_text(beside_native_poll(content, now)))
    mentions = allowed_mentions(content)
    last = len(chunks) - 1
    return [
        (chunk, {"allowed_mentions": mentions, **(rich_parts(content, now) if index == last else {})})
        for index, chunk in enumerate(chunks)
    ]


def beside_native_poll(content: Content, now: datetime) -> Content:
    """The content with the poll's ``beside`` text when a native poll goes with it: the poll shows the
    question and answers, the text only what it cannot. With buttons instead, the text keeps the options
    (a button's label is cut at 80 characters)."""
    poll = content.poll
    if poll is None or not poll.beside or not native_poll_fits(content, now):
        return content
    return replace(content, text=poll.beside)


def file_of(attachment: Attachment) -> discord.File:
    """A new ``discord.File`` for each send: discord.py reads (and closes) the one it is given."""
    return discord.File(io.BytesIO(attachment.data), filename=attachment.filename)


def rich_parts(content: Content, now: datetime) -> dict[str, Any]:
    """Embed, native poll, buttons and the attachment, as discord.py keyword arguments (a channel message,
    an interaction response and a follow-up all take the same ones)."""
    parts: dict[str, Any] = {}
    if content.attachment is not None:
        parts["file"] = file_of(content.attachment)
    if content.card is not None:
        parts["embed"] = embed_of(content)
    native = content.poll is not None and native_poll_fits(content, now)
    if native:
        parts["poll"] = native_poll(content, now)
    buttons = () if native else content.buttons  # a poll's buttons are its fallback voting UI
    if buttons or content.select is not None:
        view = discord.ui.View(timeout=None)
        offset = 0
        if content.select is not None:
            view.add_item(
                discord.ui.Select(
                    custom_id=content.select.custom_id[:100],
                    placeholder=content.select.placeholder[:150] or None,
                    options=[
                        discord.SelectOption(label=label[:100], value=value[:100])
                        for value, label in content.select.options[:25]
                    ],
                    row=0,
                )
            )
            offset = 1
        for index, button in enumerate(buttons[: 25 - 5 * offset]):
            view.add_item(
                discord.ui.Button(
                    label=button.label[:80], custom_id=button.custom_id[:100], row=offset + index // 5
                )
            )
        parts["view"] = view
    return parts


def edit_parts(content: Content, now: datetime) -> dict[str, Any]:
    """What replaces a sent message wholesale: text, embed and components, each cleared when the new
    content has none (so a card or buttons dropped from the content disappear from the message).

    Discord cannot change a poll once sent; an edit keeps the message's poll as it is.
    """
    parts = rich_parts(content, now)
    parts.pop("poll", None)
    parts.pop("file", None)  # an edit changes the text, not the files sent with it
    text = split_text(render_text(beside_native_poll(content, now)))[0]
    return {
        "content": text or None,
        "embed": parts.get("embed"),
        "view": parts.get("view"),
        "allowed_mentions": edit_mentions(),
    }


def message_link(guild_id: str | None, channel_id: str, message_id: str) -> str:
    """The link Discord's clients open at a message; a direct message (no guild) is under ``@me``."""
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def timestamp(moment: datetime) -> str:
    """A moment every reader sees in their own time zone and language, plus how far away it is:
    ``<t:…:F>`` is the full date and time, ``<t:…:R>`` "in 2 days"."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # the core's naive times are UTC
    unix = int(aware.timestamp())
    return f"<t:{unix}:F> (<t:{unix}:R>)"
