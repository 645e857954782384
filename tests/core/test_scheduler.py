"""Scheduled jobs persist in the database, survive a restart, and fire once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

from bot import migrate
from bot.clock import FakeClock
from bot.context import JobContext
from bot.db import Database, sync_url
from bot.plugin import Plugin, schedule
from bot.scheduler import Scheduler, previous_fire_time


async def _scheduler(tmp_path: Path, clock: FakeClock, fired: list[tuple[str, dict]]) -> Scheduler:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    await migrate.upgrade(database)
    await database.close()

    async def runner(target: str, payload: dict) -> None:
        payload.pop("due_at")  # when it was due: the key of its outbox messages (tested elsewhere)
        fired.append((target, payload))

    scheduler = Scheduler(sync_url(database.url), clock, runner)
    await scheduler.open()
    return scheduler


async def test_a_job_survives_a_restart_and_fires_once(tmp_path: Path, clock: FakeClock) -> None:
    fired: list[tuple[str, dict]] = []
    first = await _scheduler(tmp_path, clock, fired)
    await first.run_at("poll:7:close", clock.now() + timedelta(minutes=2), "polls.close", poll_id=7)
    assert await first.run_due() == 0
    await first.stop()  # the bot goes down before the job is due

    clock.advance(minutes=5)
    second = await _scheduler(tmp_path, clock, fired)
    assert await second.job_ids() == ["poll:7:close"]
    assert await second.run_due() == 1
    assert fired == [("polls.close", {"job_id": "poll:7:close", "poll_id": 7})]
    assert await second.run_due() == 0
    await second.stop()

    third = await _scheduler(tmp_path, clock, fired)  # and after yet another restart, still only once
    clock.advance(hours=1)
    assert await third.run_due() == 0
    assert await third.job_ids() == []
    await third.stop()
    assert len(fired) == 1


async def test_rescheduling_the_same_id_replaces_the_job(tmp_path: Path, clock: FakeClock) -> None:
    fired: list[tuple[str, dict]] = []
    scheduler = await _scheduler(tmp_path, clock, fired)
    await scheduler.run_at("meeting:1:reminder", clock.now() + timedelta(hours=1), "meetings.remind", n=1)
    await scheduler.run_at("meeting:1:reminder", clock.now() + timedelta(hours=3), "meetings.remind", n=2)
    assert await scheduler.next_run("meeting:1:reminder") == clock.now() + timedelta(hours=3)
    clock.advance(hours=2)
    assert await scheduler.run_due() == 0
    clock.advance(hours=2)
    assert await scheduler.run_due() == 1
    assert fired == [("meetings.remind", {"job_id": "meeting:1:reminder", "n": 2})]
    assert await scheduler.cancel("meeting:1:reminder") is False
    await scheduler.stop()


async def test_recurring_job_coalesces_missed_runs_and_keeps_its_time_across_restarts(
    tmp_path: Path, clock: FakeClock
) -> None:
    fired: list[tuple[str, dict]] = []
    scheduler = await _scheduler(tmp_path, clock, fired)
    await scheduler.every("digest", "digest.post", cron="0 9 * * mon", timezone="Europe/Amsterdam")
    first_run = await scheduler.next_run("digest")
    assert first_run is not None and first_run.isoformat() == "2026-03-09T08:00:00+00:00"
    await scheduler.stop()

    clock.set(first_run + timedelta(days=14, hours=1))  # down for two weeks: three Mondays missed
    scheduler = await _scheduler(tmp_path, clock, fired)
    await scheduler.every("digest", "digest.post", cron="0 9 * * mon", timezone="Europe/Amsterdam")
    assert await scheduler.run_due() == 1
    assert len(fired) == 1
    following = await scheduler.next_run("digest")
    assert following is not None and following.isoformat() == "2026-03-30T07:00:00+00:00"  # summer time
    await scheduler.stop()


async def test_a_job_at_a_set_hour_runs_once_when_the_clocks_go_back(
    tmp_path: Path, clock: FakeClock
) -> None:
    """APScheduler's cron matches 02:30 twice on the night the clocks go back (CEST, then CET an hour
    later): the digest would be posted twice, the second covering one hour. It runs once, as in cron; a job
    at every hour still runs in both hours, each an hour of its own."""
    fired: list[tuple[str, dict]] = []
    clock.set(datetime(2026, 10, 24, 12, tzinfo=UTC))
    scheduler = await _scheduler(tmp_path, clock, fired)
    await scheduler.every("digest", "digest.post", cron="30 2 * * *", timezone="Europe/Berlin")
    await scheduler.every("hourly", "value.sample", cron="0 * * * *", timezone="Europe/Berlin")
    ran_at: dict[str, list[str]] = {"digest.post": [], "value.sample": []}
    while clock.now() < datetime(2026, 10, 26, 6, tzinfo=UTC):
        clock.advance(minutes=15)
        before = len(fired)
        await scheduler.run_due()
        for target, _ in fired[before:]:
            ran_at[target].append(f"{clock.now():%d %H:%M}")
    assert ran_at["digest.post"] == ["25 00:30", "26 01:30"]  # 02:30 CEST, then 02:30 CET the next night
    hourly = ran_at["value.sample"]  # 24 13:00 … 26 06:00 UTC: every hour, 02:00 CEST and CET among them
    assert len(hourly) == len(set(hourly)) == 42 and {"25 00:00", "25 01:00", "25 02:00"} <= set(hourly)
    following = await scheduler.next_run("digest")
    assert following is not None and following.isoformat() == "2026-10-27T01:30:00+00:00"
    await scheduler.stop()


def test_the_tick_before_a_moment_is_found_however_often_a_line_ticks() -> None:
    """What a first digest covers: the schedule's tick before its own (in the line's zone)."""
    ams = "Europe/Amsterdam"
    tick = datetime(2026, 3, 10, 8, tzinfo=UTC)  # 09:00 in Amsterdam (CET)
    assert previous_fire_time("0 9 * * *", ams, tick) == tick - timedelta(days=1)
    assert previous_fire_time("0 9 * * *", ams, tick + timedelta(seconds=1)) == tick
    assert previous_fire_time("0 9 * * mon", ams, tick) == datetime(2026, 3, 9, 8, tzinfo=UTC)
    assert previous_fire_time("0 9 1 * *", ams, tick) == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert previous_fire_time("0 9 1 1 *", ams, tick) == datetime(2026, 1, 1, 8, tzinfo=UTC)
    assert previous_fire_time("* * * * *", ams, tick) == tick - timedelta(minutes=1)
    # across the spring change: 09:00 CEST on 30 March is 07:00 UTC, the day before 09:00 CET 08:00 UTC
    assert previous_fire_time("0 9 * * *", ams, datetime(2026, 3, 30, 7, tzinfo=UTC)) == datetime(
        2026, 3, 29, 7, tzinfo=UTC
    )
    assert previous_fire_time("0 9 30 2 *", ams, tick) is None  # a day no calendar has


async def test_plugin_schedules_run_through_the_bot(console_bot_factory, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    class Ticker(Plugin):
        name = "ticker"
        ticks: ClassVar[list[str]] = []

        @schedule("tick", interval=timedelta(minutes=10))
        async def tick(self, ctx: JobContext) -> None:
            Ticker.ticks.append(ctx.job_id)
            await ctx.send(ctx.services.adapters["console"].room, "tick")  # type: ignore[attr-defined]

    bot = await console_bot_factory([Ticker])
    scheduler = bot.services.scheduler
    assert await scheduler.run_due() == 0
    clock.advance(minutes=10)
    assert await scheduler.run_due() == 1
    assert Ticker.ticks == ["recurring:ticker.tick"]
    assert bot.new_lines() == ["[1] copbot> tick"]
    assert "recurring:ticker.tick" in "\n".join(await bot.say("!status"))


async def test_a_failing_job_stays_stored_and_is_retried_with_back_off(
    tmp_path: Path, clock: FakeClock
) -> None:
    attempts: list[str] = []
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    await migrate.upgrade(database)
    await database.close()

    async def runner(target: str, payload: dict) -> None:
        attempts.append(payload["job_id"])
        if len(attempts) < 3:
            raise RuntimeError("the platform is down")

    scheduler = Scheduler(sync_url(database.url), clock, runner)
    await scheduler.open()
    await scheduler.run_at("digest:1", clock.now(), "digest.post")
    assert await scheduler.run_due() == 1 and await scheduler.job_ids() == ["digest:1"]  # kept
    assert await scheduler.next_run("digest:1") == clock.now() + timedelta(minutes=1)
    clock.advance(minutes=1)
    await scheduler.run_due()
    assert await scheduler.next_run("digest:1") == clock.now() + timedelta(minutes=2)  # backing off
    clock.advance(minutes=2)
    await scheduler.run_due()
    assert attempts == ["digest:1"] * 3 and await scheduler.job_ids() == []  # done, then removed
    await scheduler.stop()


async def test_a_job_moved_while_it_runs_keeps_its_new_time(tmp_path: Path, clock: FakeClock) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    await migrate.upgrade(database)
    await database.close()
    scheduler: Scheduler

    async def runner(target: str, payload: dict) -> None:  # the meeting is moved during its reminder
        await scheduler.run_at("meeting:1:reminder", clock.now() + timedelta(days=1), "meetings.remind")

    scheduler = Scheduler(sync_url(database.url), clock, runner)
    await scheduler.open()
    await scheduler.run_at("meeting:1:reminder", clock.now(), "meetings.remind")
    assert await scheduler.run_due() == 1
    assert await scheduler.next_run("meeting:1:reminder") == clock.now() + timedelta(days=1)
    await scheduler.stop()


async def test_overdue_jobs_run_however_late_unless_they_say_otherwise(
    tmp_path: Path, clock: FakeClock
) -> None:
    fired: list[tuple[str, dict]] = []
    scheduler = await _scheduler(tmp_path, clock, fired)
    await scheduler.run_at("poll:1:close", clock.now() + timedelta(minutes=1), "polls.close", poll_id=1)
    await scheduler.run_at(
        "meeting:1:reminder",
        clock.now() + timedelta(minutes=1),
        "meetings.remind",
        grace=timedelta(minutes=15),
    )
    clock.advance(days=3)  # down for three days
    assert await scheduler.run_due() == 1
    assert [target for target, _ in fired] == ["polls.close"]  # the reminder was pointless by then
    assert await scheduler.job_ids() == []
    await scheduler.stop()


def test_outbox_messages_survive_their_stored_form() -> None:
    from datetime import UTC, datetime

    from bot.model import Attachment, Button, Card, Content, Member, PollSpec, SelectMenu
    from bot.outbox import decode_content, encode_content

    content = Content(
        "Results ✅",
        mentions=(Member("matrix", "@ana:example.org", "Ana"),),
        card=Card("Poll", (("Yes", "3"),), "closed"),
        poll=PollSpec("Q?", ("A", "B"), multi=True, closes_at=datetime(2026, 3, 2, 9, tzinfo=UTC)),
        buttons=(Button("A", "polls:1:0"),),
        select=SelectMenu("x:1", (("a", "A"),), "pick"),
        ends_poll="$poll",
        delivery_key="poll:1:close@2026-03-02T09:00:00+00:00#0",
        attachment=Attachment("repertoire.md", b"# Items\n\x00", "text/markdown"),
    )
    assert decode_content(encode_content(content)) == content


async def test_a_community_that_changes_its_zone_gets_its_digest_at_the_new_zones_time(
    tmp_path: Path, clock: FakeClock
) -> None:
    """The same cron line in another zone is another schedule: the stored job must not keep the old zone
    (APScheduler's text of a cron trigger leaves the zone out)."""
    fired: list[tuple[str, dict]] = []
    scheduler = await _scheduler(tmp_path, clock, fired)
    await scheduler.every("digest", "digest.post", cron="0 9 * * mon", timezone="UTC")
    assert (await scheduler.next_run("digest")) == datetime(2026, 3, 9, 9, tzinfo=UTC)
    await scheduler.stop()

    scheduler = await _scheduler(tmp_path, clock, fired)  # restarted with the community in New York
    await scheduler.every("digest", "digest.post", cron="0 9 * * mon", timezone="America/New_York")
    assert (await scheduler.next_run("digest")) == datetime(2026, 3, 2, 14, tzinfo=UTC)  # 09:00 EST today
    await scheduler.stop()
