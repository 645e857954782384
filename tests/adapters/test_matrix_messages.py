"""Reading a Matrix message back (``matrix_messages``) and an attachment's ``m.file`` (``matrix_media``),
without a homeserver: the edge cases a live Synapse would take long to set up."""

from __future__ import annotations

from typing import Any

import pytest

from bot.adapters.matrix_media import file_content
from bot.adapters.matrix_messages import message_of, permalink
from bot.model import Attachment, Room

ROOM = Room("matrix", "!r:hs")
BOT = "@copbot:hs"


def event(content: dict[str, Any], sender: str = "@ana:hs", **extra: Any) -> dict[str, Any]:
    return {"type": "m.room.message", "content": content, "sender": sender, "event_id": "$e", **extra}


def read(source: dict[str, Any], replacement: dict[str, Any] | None = None) -> Any:
    return message_of(
        source, ROOM, own_id=BOT, name_of=lambda user: user[1:4].title(), replacement=replacement
    )


def edit(body: str, sender: str = "@ana:hs") -> dict[str, Any]:
    return {
        "type": "m.room.message",
        "sender": sender,
        "event_id": "$edit",
        "content": {
            "msgtype": "m.text",
            "body": f"* {body}",
            "m.new_content": {"msgtype": "m.text", "body": body},
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$e"},
        },
    }


def test_a_text_message_reads_as_its_body_with_its_sender() -> None:
    message = read(event({"msgtype": "m.text", "body": "Log pressure at night"}))
    assert (message.id, message.room, message.text) == ("$e", ROOM, "Log pressure at night")
    assert (message.author.id, message.author.display_name, message.author.is_bot) == (
        "@ana:hs",
        "Ana",
        False,
    )
    notice = read(event({"msgtype": "m.notice", "body": "Saved."}, sender=BOT))
    assert notice.author.is_bot and notice.text == "Saved."


def test_the_latest_edit_wins_unless_someone_else_wrote_it() -> None:
    original = event({"msgtype": "m.text", "body": "Log presure"})
    assert read(original, replacement=edit("Log pressure")).text == "Log pressure"
    assert read(original, replacement=edit("hijacked", sender="@eve:hs")).text == "Log presure"
    redacted_edit = {**edit("gone"), "unsigned": {"redacted_because": {}}}
    assert read(original, replacement=redacted_edit).text == "Log presure"
    assert read(edit("Log pressure")).text == "Log pressure"  # the edit event itself: its new content


def test_a_reply_loses_its_quoted_fallback() -> None:
    content = {
        "msgtype": "m.text",
        "body": "> <@bo:hs> earlier\n\nthe answer",
        "m.relates_to": {"m.in_reply_to": {"event_id": "$x"}},
    }
    assert read(event(content)).text == "the answer"


@pytest.mark.parametrize(
    "source",
    [
        event({}, unsigned={"redacted_because": {"type": "m.room.redaction"}}),
        event({"msgtype": "m.file", "body": "export.csv", "url": "mxc://hs/x"}),
        {**event({"msgtype": "m.text", "body": "x"}), "type": "m.reaction"},
        event({"msgtype": "m.text"}),
    ],
    ids=["redacted", "a file", "not a message", "no body"],
)
def test_what_is_not_a_readable_text_message_is_none(source: dict[str, Any]) -> None:
    assert read(source) is None


def test_permalink_is_percent_encoded_for_matrix_to() -> None:
    assert (
        permalink("!abc:example.org", "$ev/1+x") == "https://matrix.to/#/%21abc%3Aexample.org/%24ev%2F1%2Bx"
    )
    assert permalink("!abc:example.org", "$ev", via="example.org") == (
        "https://matrix.to/#/%21abc%3Aexample.org/%24ev?via=example.org"
    )


def test_a_file_event_names_the_upload_its_type_and_size_and_mentions_nobody() -> None:
    export = Attachment("repertoire.csv", b"a,b\n", "text/csv")
    assert file_content(export, "mxc://hs/abc", reply_to="$q") == {
        "msgtype": "m.file",
        "body": "repertoire.csv",
        "filename": "repertoire.csv",
        "url": "mxc://hs/abc",
        "info": {"mimetype": "text/csv", "size": 4},
        "m.mentions": {},
        "m.relates_to": {"m.in_reply_to": {"event_id": "$q"}},
    }
