"""Rendering and translation rules of the platform adapters, without a server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.adapters.discord_render import MAX_MESSAGE, pieces, render_text, split_text
from bot.adapters.matrix_events import with_pill_ids
from bot.adapters.matrix_media import file_content
from bot.adapters.matrix_render import message_content
from bot.model import Attachment, Content


@pytest.mark.parametrize(
    "text",
    [
        "a" * 2000 + "\nb",  # a line of exactly 2,000 characters
        "x\n" + "a" * 2000 + "\nb",
        "字" * 4000,  # a body in a script written without spaces, as long as copbot takes
        "\n" + "w " * 1500,  # a blank line before a long one
        "head\n" + " " * 2500 + "\ntail",  # a line of spaces only
    ],
)
def test_discord_pieces_are_never_empty(text: str) -> None:
    """Discord refuses an empty message (50006): every piece has text, and none is over the limit."""
    chunks = split_text(text)
    assert chunks and all(chunk.strip() and len(chunk) <= MAX_MESSAGE for chunk in chunks), [
        len(c) for c in chunks
    ]
    assert "".join("".join(chunks).split()) == "".join(text.split())
    assert all(piece.strip() for piece, _ in pieces(Content(text), datetime.now(UTC)))


def _pill_event(body: str, name: str, user_id: str = "@ed:hs") -> dict[str, Any]:
    html = body.replace(name, f'<a href="https://matrix.to/#/{user_id}">{name}</a>')
    return {
        "type": "m.room.message",
        "event_id": "$e",
        "sender": "@ana:hs",
        "content": {
            "msgtype": "m.text",
            "body": body,
            "format": "org.matrix.custom.html",
            "formatted_body": html,
        },
    }


@pytest.mark.parametrize(
    ("body", "name", "expected"),
    [
        ("!meeting attended 3 ed", "ed", "!meeting attended 3 @ed:hs"),
        ("!profile ed", "ed", "!profile @ed:hs"),
        ("!role set Ana active", "Ana", "!role set @ed:hs active"),
        ("!role show ro", "ro", "!role show @ed:hs"),
        ("!role show edward", "ed", "!role show edward"),  # only inside a word: no place for the id
    ],
)
def test_a_pill_name_becomes_the_id_where_it_is_a_word(body: str, name: str, expected: str) -> None:
    """Element writes a mention's display name (the localpart when none is set) in the body: a short
    name must not be replaced inside a command word ("attended", "role")."""
    source = _pill_event(body, name)
    source["content"]["formatted_body"] = source["content"]["body"].rsplit(name, 1)[0] + (
        f'<a href="https://matrix.to/#/@ed:hs">{name}</a>'
    )
    assert with_pill_ids(source)["content"]["body"] == expected


def test_a_reply_in_a_thread_stays_in_the_thread() -> None:
    message = message_content(Content("done"), reply_to="$cmd", thread="$root")
    assert message["m.relates_to"] == {
        "rel_type": "m.thread",
        "event_id": "$root",
        "is_falling_back": False,
        "m.in_reply_to": {"event_id": "$cmd"},
    }
    assert message_content(Content("done"), reply_to="$cmd")["m.relates_to"] == {
        "m.in_reply_to": {"event_id": "$cmd"}
    }
    attachment = Attachment("x.csv", b"a,b\n", "text/csv")
    after_text = file_content(attachment, "mxc://hs/x", thread="$root")
    assert after_text["m.relates_to"]["rel_type"] == "m.thread"
    assert after_text["m.relates_to"]["event_id"] == "$root"
    assert after_text["m.relates_to"]["is_falling_back"] is True


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("**Leak** call at [HQ](https://phish.example)", "**Leak** call at \\[HQ](https://phish.example)"),
        ("``` <@42> and <@43>", "\\`\\`\\` <@42> and <@43>"),  # the mentions stay outside any code
        ("a member's own \\[x](y) or \\`", "a member's own \\\\\\[x](y) or \\\\\\`"),  # cannot undo it
        ("@everyone @here <@&7>", "@\u200beveryone @\u200bhere <@\u200b&7>"),
        # links keep working, whatever they hold; time stamps and user mentions are untouched
        (
            "see https://x.org/a_[b]`c and <https://x.org/[d]>",
            "see https://x.org/a_[b]`c and <https://x.org/[d]>",
        ),
        ("<t:1700000000:F> (<t:1700000000:R>) <@42>", "<t:1700000000:F> (<t:1700000000:R>) <@42>"),
    ],
)
def test_discord_message_text_cannot_hide_a_link_or_swallow_its_mentions(text: str, shown: str) -> None:
    assert render_text(Content(text)) == shown
    assert [piece for piece, _ in pieces(Content(text), datetime.now(UTC))] == [shown]
