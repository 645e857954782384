"""What the plugins suggest while a number is typed, on SQLite and on PostgreSQL.

Discord asks for the suggestions (tests/e2e/test_discord.py drives that whole path on SQLite); here the
same pipeline entry the adapters call, ``Pipeline.suggest``, runs against each backend: the queries are
written once (``ILIKE`` on the titles, ``CAST(id AS VARCHAR) LIKE`` on the numbers, closed polls last),
so each backend must read them the same, and neither may write anything for a keystroke.
"""

from __future__ import annotations

from sqlalchemy import func, select

from bot.suggest import Suggestion
from bot.tables import ActivityEvent, MemberRow
from plugins.meetings.plugin import Meetings
from plugins.polls.plugin import Polls
from plugins.repertoire.plugin import Repertoire


async def test_polls_meetings_and_items_are_suggested_alike_on_both_backends(
    console_bot_factory, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Polls, Meetings, Repertoire], database_url=database_url)
    for line in (
        '!poll create "Leakage first?" Yes No',
        '!poll create "Which metering pilot?" North South',
        '!poll create "Tariff review date?" May June',
        "!poll close 3",
        '!meeting schedule "Monthly call" 2026-03-20T14:00 --every monthly --tz UTC',
        '!meeting schedule "Leak detection demo" 2026-03-25T09:30 --tz Europe/Amsterdam',
        '!share story "Finding leaks by night" We listened to the pipes at 3 am #leakage',
        '!share tool "Leak 100% logger" https://example.org/logger',
        '!share practice "Night flow O\'Brien method" Minimum night flow per district',
        "!repertoire remove 2",
    ):
        assert not any(line.startswith("Sorry") for line in await bot.say(line)), line
    async with bot.bot.db.session() as session:
        activity_before = (await session.execute(select(func.count()).select_from(ActivityEvent))).scalar()

    pipeline, adapter = bot.bot.pipeline, bot.adapter

    async def typed(who: str, command: str, option: str, text: str) -> list[Suggestion]:
        return await pipeline.suggest(adapter, adapter.room, adapter.member(who), command, option, text)

    assert await typed("carol", "poll vote", "poll_id", "") == [
        Suggestion("#2 Which metering pilot?", 2),
        Suggestion("#1 Leakage first?", 1),
    ]
    assert await typed("carol", "poll vote", "poll_id", "LEAK") == [Suggestion("#1 Leakage first?", 1)]
    assert await typed("carol", "poll results", "poll_id", "") == [
        Suggestion("#2 Which metering pilot?", 2),
        Suggestion("#1 Leakage first?", 1),
        Suggestion("#3 Tariff review date? · closed", 3),
    ]
    assert await typed("carol", "poll results", "poll_id", "#3") == [
        Suggestion("#3 Tariff review date? · closed", 3)
    ]

    assert await typed("carol", "meeting show", "meeting_id", "de mo") == [
        Suggestion("#2 Leak detection demo · Wed 25 Mar 08:30 UTC", 2)  # carol has no zone: UTC
    ]
    assert [s.value for s in await typed("carol", "meeting rsvp", "meeting_id", "")] == [2, 1]

    assert await typed("carol", "repertoire show", "item_id", "leak") == [
        Suggestion("#1 Finding leaks by night · story", 1)
    ]
    assert await typed("carol", "repertoire show", "item_id", "o'brien") == [
        Suggestion("#3 Night flow O'Brien method · practice", 3)
    ]
    assert await typed("carol", "repertoire show", "item_id", "100%") == []  # removed, and % is literal
    assert await typed("carol", "repertoire restore", "item_id", "") == []  # a moderators' command
    assert await typed("you", "repertoire restore", "item_id", "100%") == [
        Suggestion("#2 Leak 100% logger · tool", 2)
    ]
    assert await typed("you", "repertoire restore", "item_id", "1%") == []

    await pipeline.journal.flush()
    async with bot.bot.db.session() as session:  # typing is not acting: nothing counted, nobody new
        activity = (await session.execute(select(func.count()).select_from(ActivityEvent))).scalar()
        carol = (await session.execute(select(MemberRow).where(MemberRow.platform_id == "carol"))).first()
    assert activity == activity_before and carol is None
