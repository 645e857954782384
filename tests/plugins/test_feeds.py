"""What calendar apps and feed readers get: text they can read, and 304s for what they have already."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import feedparser
import icalendar
from aiohttp.test_utils import TestClient, TestServer

from bot.clock import FakeClock
from bot.escaping import calendar_text
from bot.web.app import create_app
from plugins.digest.plugin import DigestPlugin
from plugins.meetings.plugin import Meetings
from plugins.profiles.plugin import Profiles

HOST = "http://127.0.0.1:8080"


async def test_control_characters_a_member_typed_are_left_out_of_the_calendar(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    """RFC 5545 allows no control character in a TEXT value, and icalendar writes them as they are: one in a
    title could make a strict calendar app refuse the community's whole calendar."""
    bot = await console_bot_factory([Meetings, Profiles])
    await bot.say('!meeting schedule "Leak\x01age\x1b call" 2026-03-10 15:00 --where "Room\x07 4"')
    path = (await bot.say("!meeting ics"))[1].rsplit(" ", 1)[1].removeprefix(HOST)
    async with TestClient(TestServer(create_app(bot.services))) as client:
        response = await client.get(path)
        body = await response.read()
    assert response.status == 200
    assert not any(byte < 0x20 and byte not in b"\r\n\t" for byte in body), body
    event = icalendar.Calendar.from_ical(body).walk("VEVENT")[0]
    assert (str(event["SUMMARY"]), str(event["LOCATION"])) == ("Leakage call", "Room 4")
    assert calendar_text("a\tb\nc\x7fd\re") == "a\tb\ncde"  # a tab and a newline are text; DEL and CR are not


async def test_a_rule_with_a_tab_or_line_break_inside_is_refused_and_the_calendar_stays_readable(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    """``--every`` takes an RRULE as typed. dateutil reads any whitespace in it as the start of another line
    of its own (a DTSTART, a second RRULE, an EXDATE), so a tab or a line break (Matrix and Discord text
    keep them in quotes) got a rule past the check: stored, it made the community's calendar feed a 500 for
    every subscriber; or the command failed with an apology. Now it is refused like any other bad rule."""
    bot = await console_bot_factory([Meetings, Profiles])
    for hidden in ("\tDTSTART:20260310T150000", "\u3000DTSTART:20260310T150000", "\nRRULE:FREQ=DAILY"):
        answer = await bot.say(
            f'!meeting schedule "Call" 2026-03-10 15:00 --every "FREQ=WEEKLY;BYDAY=TU{hidden}"'
        )
        said = " ".join(line for line in answer if "copbot>" in line)  # (a line break is echoed as typed)
        assert "is not a rule" in said and "e.g. !meeting schedule" in said, answer
    assert await count_meetings(bot) == 0  # nothing written
    planned = await bot.say('!meeting schedule "Call" 2026-03-10 15:00 --every "FREQ=WEEKLY; BYDAY=TU"')
    assert "Meeting #1 planned" in planned[1], planned  # spaces between the parts are still fine
    path = (await bot.say("!meeting ics"))[1].rsplit(" ", 1)[1].removeprefix(HOST)
    async with TestClient(TestServer(create_app(bot.services))) as client:
        response = await client.get(path)
        body = await response.read()
    assert response.status == 200, body
    event = icalendar.Calendar.from_ical(body).walk("VEVENT")[0]
    assert event["RRULE"].to_ical() == b"FREQ=WEEKLY;BYDAY=TU"


async def test_a_place_that_only_looks_like_a_link_leaves_the_calendar_readable(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    """A place starting with http:// goes into the event's URL too; one with a stray bracket (a typo for
    an IPv6 address, a pasted markdown link) made Python's URL parser raise, and the community's whole
    calendar feed answered 500 for as long as the meeting was in it."""
    bot = await console_bot_factory([Meetings, Profiles])
    await bot.say('!meeting schedule "Leak call" 2026-03-10 15:00 --where "https://[meet.example/leak"')
    await bot.say('!meeting schedule "Pump call" 2026-03-11 15:00 --where "http://a]b"')
    await bot.say('!meeting schedule "Valve call" 2026-03-12 15:00 --where https://meet.example/valve')
    assert await count_meetings(bot) == 3
    path = (await bot.say("!meeting ics"))[1].rsplit(" ", 1)[1].removeprefix(HOST)
    async with TestClient(TestServer(create_app(bot.services))) as client:
        response = await client.get(path)
        body = await response.read()
    assert response.status == 200, body
    events = icalendar.Calendar.from_ical(body).walk("VEVENT")
    shown = [(str(e["SUMMARY"]), str(e["LOCATION"]), str(e.get("URL", ""))) for e in events]
    assert shown == [
        ("Leak call", "https://[meet.example/leak", ""),  # the place as typed; no link made of it
        ("Pump call", "http://a]b", ""),
        ("Valve call", "https://meet.example/valve", "https://meet.example/valve"),
    ]


async def count_meetings(bot) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from plugins.meetings.models import Meeting

    async with bot.services.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Meeting)) or 0)


async def test_the_digest_feed_answers_not_modified_and_keeps_its_date_until_a_digest(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock
) -> None:
    """Feed readers ask every few minutes: with no digest yet the feed's <updated> moved on every fetch (so
    it looked new each time), and it had no ETag or Last-Modified to answer 304 with."""
    bot = await console_bot_factory(
        [Profiles, DigestPlugin], plugins={"digest": {"rooms": {"cop": {"console": "console"}}}}
    )
    path = (await bot.say("!digest subscribe"))[1].rsplit(" ", 1)[1].removeprefix(HOST)
    async with TestClient(TestServer(create_app(bot.services))) as client:
        first = await client.get(path)
        etag, body = first.headers["ETag"], await first.read()
        assert first.status == 200 and etag.startswith('"') and first.headers["Last-Modified"]
        clock.advance(timedelta(hours=1))
        again = await client.get(path)
        assert await again.read() == body and again.headers["ETag"] == etag
        assert feedparser.parse(body).feed.updated_parsed is not None
        unchanged = await client.get(path, headers={"If-None-Match": etag})
        assert unchanged.status == 304 and await unchanged.read() == b""
        assert unchanged.headers["X-Content-Type-Options"] == "nosniff"
        since = await client.get(path, headers={"If-Modified-Since": first.headers["Last-Modified"]})
        assert since.status == 304
        await bot.say("!digest now")
        posted = await client.get(path, headers={"If-None-Match": etag})
        assert posted.status == 200 and posted.headers["ETag"] != etag
        assert len(feedparser.parse(await posted.read()).entries) == 1
        old = format_datetime(clock.now() - timedelta(days=1), usegmt=True)
        assert (await client.get(path, headers={"If-Modified-Since": old})).status == 200


async def test_a_page_address_with_a_trailing_slash_leads_to_the_page(  # type: ignore[no-untyped-def]
    console_bot_factory,
) -> None:
    """People type /c/cop/ as often as /c/cop: it was a 404. It is a redirect that keeps a private
    community's key."""
    bot = await console_bot_factory([Meetings, Profiles])
    path = (await bot.say("!meeting ics"))[1].rsplit(" ", 1)[1].removeprefix(HOST)
    slashed = path.replace("/meetings.ics?", "/meetings.ics/?")
    async with TestClient(TestServer(create_app(bot.services))) as client:
        moved = await client.get(slashed, allow_redirects=False)
        assert moved.status in (301, 308) and moved.headers["Location"] == path
        assert moved.headers["X-Content-Type-Options"] == "nosniff"
        assert (await client.get(slashed)).status == 200
        assert (await client.get("/c/nowhere/")).status == 404
