"""The console adapter as a MessageSource: a printed message can be looked up again by its number."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from bot.adapters.base import MessageSource
from bot.adapters.console import ConsoleAdapter
from bot.clock import FakeClock
from bot.model import Capability, Card, Content, Member
from plugins.profiles.plugin import Profiles
from plugins.welcome.plugin import Welcome


def console() -> tuple[ConsoleAdapter, io.StringIO]:
    output = io.StringIO()
    adapter = ConsoleAdapter(
        clock=FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
        community="water",
        stdin=io.StringIO(""),
        stdout=output,
        interactive=False,
    )
    return adapter, output


async def test_fetch_message_returns_the_author_and_text_of_message_n() -> None:
    adapter, output = console()
    assert isinstance(adapter, MessageSource)
    await adapter.handle_line("ana> Log pressure at night: leaks show")
    await adapter.handle_line("a line from you")
    await adapter.handle_line(":join bob")
    assert output.getvalue().splitlines()[0] == "[1] ana> Log pressure at night: leaks show"

    first = await adapter.fetch_message(adapter.room, "1")
    assert first is not None
    assert (first.id, first.room, first.text) == ("1", adapter.room, "Log pressure at night: leaks show")
    assert first.author == Member("console", "ana", "ana")
    second = await adapter.fetch_message(adapter.room, "2")
    assert second is not None and (second.author.id, second.text) == ("you", "a line from you")

    sent = await adapter.send(adapter.room, Content("Saved.", card=Card("Practice", (("By", "ana"),))))
    own = await adapter.fetch_message(adapter.room, sent)
    assert own is not None
    assert own.author == Member("console", "copbot", "copbot", is_bot=True)
    assert own.text == "Saved.\nPractice\n  By: ana"  # as printed

    assert await adapter.fetch_message(adapter.room, "3") is None  # ":join bob" is no message
    assert await adapter.fetch_message(adapter.room, "99") is None
    assert await adapter.fetch_message(adapter.room, "x") is None
    assert adapter.permalink(adapter.room, "1") == ""  # the console has no links


async def test_a_direct_message_is_not_found_in_the_channel_and_files_are_not_offered() -> None:
    adapter, _ = console()
    await adapter.handle_line("ana>> just between us")
    assert await adapter.fetch_message(adapter.room, "1") is None
    direct = await adapter.fetch_message(adapter.direct_room("ana"), "1")
    assert direct is not None and direct.text == "just between us" and direct.room.is_direct
    assert Capability.FILES not in adapter.capabilities  # a plugin sends a link instead


async def test_names_in_any_script_and_with_apostrophes_join_speak_and_are_mentioned(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    bot = await console_bot_factory([Welcome, Profiles])
    joined = await bot.say(":join cé")
    assert joined[0] == "[1] * cé joined"
    assert joined[1].startswith("[2] copbot> Welcome to Our Community of Practice, @cé!")
    assert joined[2].startswith("[3] copbot → cé (direct)> Hi cé, welcome!")
    stopped = await bot.say("cé>> stop")  # a direct message from cé, not a line from you
    assert stopped[0] == "[4] cé → copbot (direct)> stop"
    assert stopped[1].startswith("[5] copbot → cé (direct)> Stopped here, thanks!")
    quoted = await bot.say(':join "O\'Brien"')  # quotes around a name are not part of it
    assert quoted[0] == "[6] * O'Brien joined"
    assert quoted[1].startswith("[7] copbot> Welcome to Our Community of Practice, @O'Brien!")
    await bot.say("O'Brien>> stop")
    said = await bot.say("O'Brien> !profile set country Ireland")
    assert said[0] == "[11] O'Brien> !profile set country Ireland"
    shown = await bot.say("cé> !profile @O'Brien")
    assert shown[0] == "[13] cé> !profile @O'Brien"
    assert "Country: Ireland" in "\n".join(shown)
    decomposed = await bot.say("ce\u0301> hello")  # é typed as e and a combining accent: the same cé
    assert decomposed[0] == "[15] cé> hello"
    message = await bot.adapter.fetch_message(bot.adapter.room, "15")
    assert message is not None and message.author == Member("console", "cé", "cé")
    assert await bot.say(':join "Ana Maria"') == [
        "(console) '\"Ana Maria\"' cannot join or leave: a console name is letters or digits of any script "
        "and _ . - ' (no spaces), at most 32 characters: :join O'Brien, then O'Brien> hello"
    ]
    assert (await bot.say("a b> hello"))[0] == "[16] you> a b> hello"  # no name: a line from you
