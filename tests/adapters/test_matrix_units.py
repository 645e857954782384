"""The Matrix adapter's pure parts, without a homeserver: translation, rendering, and the retry rules."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientConnectionError

from bot import escaping
from bot.adapters.matrix_events import translate
from bot.adapters.matrix_http import MatrixUnavailable, RawResult, call
from bot.adapters.matrix_render import (
    CONTENT_LIMIT,
    edit_content,
    html_text,
    message_content,
    message_contents,
    poll_selections,
    strip_reply_fallback,
)
from bot.adapters.matrix_rooms import read_invite
from bot.config import ConfigError, load_settings
from bot.model import Card, Content, Member, MessageCreated, PollVoted, Room

ROOM = Room("matrix", "!r:hs")
BOT = "@copbot:hs"


def event(kind: str, content: dict[str, Any], sender: str = "@ana:hs", **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "content": content,
        "sender": sender,
        "event_id": "$e",
        "origin_server_ts": 1_760_000_000_000,
        **extra,
    }


def translated(source: dict[str, Any], polls: dict[str, list[str]] | None = None) -> Any:
    return translate(source, ROOM, own_id=BOT, name_of=lambda user: user[1:4], poll_answers=polls or {})


def test_text_message_becomes_message_created_and_reply_fallback_is_stripped() -> None:
    plain = translated(event("m.room.message", {"msgtype": "m.text", "body": "!help"}))
    assert isinstance(plain, MessageCreated) and plain.message.text == "!help"
    reply = {
        "msgtype": "m.text",
        "body": "> <@bo:hs> earlier\n> more\n\n!about",
        "m.relates_to": {"m.in_reply_to": {"event_id": "$x"}},
    }
    assert translated(event("m.room.message", reply)).message.text == "!about"


@pytest.mark.parametrize(
    "source",
    [
        event("m.room.message", {"msgtype": "m.text", "body": "!help"}, sender=BOT),  # own message
        event("m.room.message", {"msgtype": "m.notice", "body": "!help"}),  # another bot
        event(
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": "* !help",
                "m.relates_to": {"rel_type": "m.replace", "event_id": "$a"},
            },
        ),
        event("m.room.redaction", {}, redacts="$a"),
        event("m.room.message", {}, unsigned={"redacted_because": {}}),
        event(
            "m.room.member",
            {"membership": "join"},
            state_key="@ana:hs",
            unsigned={"prev_content": {"membership": "join"}},
        ),
    ],
    ids=["own", "notice", "edit", "redaction", "redacted", "profile-change"],
)
def test_what_is_not_a_core_event(source: dict[str, Any]) -> None:
    assert translated(source) is None


def test_poll_votes_map_answer_ids_to_indexes_and_ignore_unknown_polls() -> None:
    polls = {"$poll": ["a0", "a1", "a2"]}
    relates = {"rel_type": "m.reference", "event_id": "$poll"}
    vote = translated(
        event("m.poll.response", {"m.relates_to": relates, "m.selections": ["a2", "a0"]}), polls
    )
    assert isinstance(vote, PollVoted) and vote.answers == (2, 0)
    unknown = {"m.relates_to": {**relates, "event_id": "$other"}, "m.selections": ["a0"]}
    assert translated(event("m.poll.response", unknown), polls) is None
    assert (
        translated(event("m.poll.response", {"m.relates_to": relates, "m.selections": ["zz"]}), polls) is None
    )
    assert poll_selections({"org.matrix.msc3381.poll.response": {"answers": ["a1"]}}) == ["a1"]


def test_html_is_escaped_before_mentions_become_pills() -> None:
    ana = Member("matrix", "@ana:hs", "Ana <3")
    content = Content(text="@ana:hs <img src=x> @room", mentions=(ana,))
    assert html_text(content) == (
        '<a href="https://matrix.to/#/@ana:hs">Ana &lt;3</a> &lt;img src=x&gt; @room'
    )
    message = message_content(content, reply_to="$cmd")
    assert message["m.mentions"] == {"user_ids": ["@ana:hs"]}
    assert message["m.relates_to"] == {"m.in_reply_to": {"event_id": "$cmd"}}


def test_an_edit_carries_the_whole_new_message_and_pings_nobody() -> None:
    ana = Member("matrix", "@ana:hs", "Ana <3")
    edit = edit_content("$original", Content("<b>2</b> going, with @ana:hs", mentions=(ana,)))
    assert edit["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$original"}
    assert edit["m.new_content"] == message_content(Content("<b>2</b> going, with @ana:hs", mentions=(ana,)))
    assert edit["body"] == "* <b>2</b> going, with @ana:hs"
    assert (
        edit["formatted_body"].startswith("* &lt;b&gt;2&lt;/b&gt; going")
        and "Ana &lt;3</a>" in edit["formatted_body"]
    )
    assert edit["m.mentions"] == {} and edit["m.new_content"]["m.mentions"] == {"user_ids": ["@ana:hs"]}


def test_strip_reply_fallback_leaves_plain_text_alone() -> None:
    assert strip_reply_fallback("!help > x") == "!help > x"


def test_invite_reads_inviter_and_encryption_even_without_member_content() -> None:
    state = [
        {"type": "m.room.member", "state_key": BOT, "sender": "@ana:hs"},
        {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}},
    ]
    invite = read_invite("!r:hs", BOT, state)
    assert invite.inviter == "@ana:hs" and invite.encrypted and invite.looks_direct


async def test_rate_limit_waits_retry_after_ms_then_retries() -> None:
    slept: list[float] = []
    answers: list[Any] = [
        RawResult(429, {"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 1234}),
        RawResult(400, {"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 50}),
        "ok",
    ]

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def make() -> Any:
        return answers.pop(0)

    assert await call(make, what="send", sleep=sleep) == "ok"
    assert slept == [1.234, 0.05]


async def test_network_errors_back_off_and_give_up_at_the_deadline() -> None:
    attempts = 0

    async def make() -> Any:
        nonlocal attempts
        attempts += 1
        raise ClientConnectionError("refused")

    with pytest.raises(MatrixUnavailable):
        await call(make, what="send", deadline=0.05, sleep=lambda s: asyncio.sleep(0.01))
    assert attempts >= 2


def test_matrix_config_is_checked_and_names_the_bad_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[matrix]\nhomeserver = "https://hs.example"\nuser_id = "@copbot:hs.example"\n\n'
        '[[communities]]\nslug = "water"\nname = "Water"\n[communities.matrix]\nrooms = ["water"]\n'
    )
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    problems = "\n".join(error.value.problems)
    assert "communities[0].matrix.rooms" in problems and "neither a room id" in problems
    config.write_text(  # room version 12 ids have no server part
        '[matrix]\nhomeserver = "https://hs.example"\nuser_id = "@copbot:hs.example"\npassword = "x"\n\n'
        '[[communities]]\nslug = "water"\nname = "Water"\n[communities.matrix]\n'
        'rooms = ["!KbO0uEraVyAbCdEf", "!old:hs.example", "#water:hs.example"]\n'
    )
    assert load_settings(config).communities[0].matrix.rooms[0] == "!KbO0uEraVyAbCdEf"  # type: ignore[union-attr]
    config.write_text('[matrix]\nhomeserver = "https://hs.example"\nuser_id = "@copbot:hs.example"\n')
    with pytest.raises(ConfigError, match="matrix: set password or access_token"):
        load_settings(config)


def test_copbot_never_imports_nio() -> None:
    """The adapter speaks the client-server API itself (matrix_client); nio is only the tests' client."""
    code = (
        "import sys, bot.app, bot.cli, bot.adapters.matrix\n"
        "from bot.registry import discover_plugins\n"
        "discover_plugins()\n"
        "assert 'nio' not in sys.modules, sorted(m for m in sys.modules if m.startswith('nio'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_a_card_past_an_event_s_size_is_split_between_its_items_into_whole_html() -> None:
    """A digest whose one section passes 64 KiB as HTML: as few events as fit, each within the limit, the
    section going on under "(continued)", every item whole in exactly one event, no tag or entity cut."""
    items = [f"Notice {n:03d}: <pressure> & flow at night " + "x" * 100 for n in range(300)]
    card = Card(
        "📰 Water CoP", (("Notices", "\n".join(f"• {item}" for item in items)), ("Open polls", "• #1 Q"))
    )
    parts = message_contents(Content("", card=card), reply_to="$command")
    assert len(parts) == 2  # about 95,000 bytes: two events, not one per 6,000 characters
    assert parts[0]["m.relates_to"] == {"m.in_reply_to": {"event_id": "$command"}}
    assert all("m.relates_to" not in part for part in parts[1:])
    html = [part["formatted_body"] for part in parts]
    for part in parts:
        assert len(json.dumps(part, ensure_ascii=False, separators=(",", ":")).encode()) <= CONTENT_LIMIT
    for item in items:
        assert sum(f"<li>{escaping.escape(item)}</li>" in one for one in html) == 1
    assert "<p><b>Notices</b></p>" in html[0] and "<p><b>Notices (continued)</b></p>" in html[1]
    assert html[-1].endswith("<p><b>Open polls</b></p><ul><li>#1 Q</li></ul>")
    one = message_contents(Content("", card=Card("t", (("Notices", "• a\n• b"),))))
    assert len(one) == 1  # what fits stays one message


def test_a_display_name_of_nothing_storable_is_the_members_localpart() -> None:
    """A display name is kept as a member's row can keep it (no NUL, at most 255 characters); one made
    only of NULs is no name at all, so the member is shown by their localpart, never as an empty name."""
    from bot.adapters.matrix_events import display_name
    from bot.adapters.matrix_roster import Roster

    roster = Roster()
    joined = {"type": "m.room.member", "state_key": "@ana:x", "content": {"membership": "join"}}
    roster.read("!r", [{**joined, "content": {"membership": "join", "displayname": "\x00\x00"}}])
    assert (roster.any_display_name("@ana:x"), roster.display_name("!r", "@ana:x")) == ("ana", "ana")
    assert display_name({**joined, "content": {"displayname": "\x00"}}) == "ana"
    roster.read("!r", [{**joined, "content": {"membership": "join", "displayname": "A\x00na " + "x" * 300}}])
    assert roster.any_display_name("@ana:x") == ("Ana " + "x" * 300)[:255]


def test_a_sync_state_block_older_than_a_rename_does_not_take_the_name_back() -> None:
    """A message sent while its author was being renamed comes with the room's state where the timeline
    starts: the name from before. The rename the timeline already told of stands; a state block of what
    copbot never saw in a timeline (a member first met in a gap) is still read."""
    from bot.adapters.matrix_roster import Roster

    def member(name: str, at: int) -> dict[str, Any]:
        return {
            "type": "m.room.member",
            "state_key": "@ana:hs",
            "origin_server_ts": at,
            "content": {"membership": "join", "displayname": name},
        }

    roster = Roster()
    roster.read("!r", [member("ana", 1_000)])
    roster.read("!r", [member("Ana Smith", 2_000)])  # the rename, in the timeline
    roster.read("!r", [member("ana", 1_000)], state=True)  # the state before it, with her next message
    assert roster.display_name("!r", "@ana:hs") == "Ana Smith"
    roster.read("!r", [member("Ana S.", 3_000)], state=True)  # renamed in a gap: newer, read
    assert roster.display_name("!r", "@ana:hs") == "Ana S."
    roster.read("!other", [member("Ana elsewhere", 500)], state=True)  # never in a timeline there
    assert roster.display_name("!other", "@ana:hs") == "Ana elsewhere"
