"""The figures a coordinator reads, cross-checked against a month whose truth is known: `stats`, `value
report`, the digest, `role list`, poll results and the dashboard agree with each other and with what the
members did (direct chats, tracking off, members who left and came back not counted where they must not be).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.clock import FakeClock
from bot.tables import ActivityEvent
from plugins.dashboard.plugin import Dashboard
from plugins.digest.plugin import DigestPlugin
from plugins.meetings.plugin import Meetings
from plugins.polls.plugin import Polls
from plugins.profiles.plugin import Profiles
from plugins.repertoire.plugin import Repertoire
from plugins.roles.plugin import Roles
from plugins.value.plugin import Value
from plugins.welcome.plugin import Welcome

PLUGINS = [Welcome, Profiles, Polls, Meetings, Repertoire, Roles, DigestPlugin, Dashboard, Value]
COMMUNITIES = [{"slug": "cop", "name": "Water CoP", "timezone": "Europe/Amsterdam"}]


def replies(lines: list[str]) -> list[str]:
    """What copbot answered, one line each, without the numbering."""
    return [line.split("> ", 1)[-1].strip() for line in lines if "copbot" in line or line.startswith(" ")]


async def test_stats_counts_what_happened_this_very_moment_as_the_value_report_does(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(PLUGINS, communities=COMMUNITIES)
    for name in ("ana", "bo"):
        await bot.say(f":join {name}")
        await bot.say(f"{name}>> stop")
    await bot.say("ana> hello all")
    await bot.say("bo> hi ana")
    await bot.say('ana> !share tool "Leak map" https://example.org/map')
    async with bot.services.db.session() as session:  # what is stored: ana's and bo's, at this moment
        at_now = await session.scalar(
            select(func.count(func.distinct(ActivityEvent.member_id))).where(ActivityEvent.at == clock.now())
        )
    assert at_now == 2
    stats = replies(await bot.say("!stats"))
    assert "Active in the last 30 days: 2 (↑ from 0)" in stats, stats
    assert "Contributions in 30 days: repertoire item 1 (↑ from 0)" in stats, stats
    report = replies(await bot.say("!value report"))  # `you` took part now too: the `stats` command
    assert "• Active members: 3 (↑ from 0)" in report and "• Repertoire items added: 1 (↑ from 0)" in report
    stats = replies(await bot.say("!stats"))
    assert "Active in the last 30 days: 3 (↑ from 0)" in stats, stats
    # a month and an hour later, that moment is in the period before, counted once
    clock.advance(timedelta(days=30, hours=1))
    stats = replies(await bot.say("!stats"))
    assert "Active in the last 30 days: 0 (↓ 100% from 3)" in stats, stats
    assert "Contributions in 30 days: repertoire item 0 (↓ 100% from 1)" in stats, stats
