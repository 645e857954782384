"""Several processes, each serving its part (issue 16): which communities a process serves (the config, or
Discord's shards), rooms of other communities ignored, scheduled jobs run by the process serving their
community, queued messages sent by the instance that queued them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import migrate, outbox
from bot.clock import FakeClock
from bot.config import ConfigError, Settings, load_settings, shard_of
from bot.db import Database, sync_url
from bot.model import Content
from bot.scheduler import Scheduler
from bot.tables import ActivityEvent, OutboxRow

GUILDS = ("111111111111111111", "222222222222222222", "333333333333333333")


def communities(*slugs: str, guilds: bool = False) -> list[dict[str, Any]]:
    return [
        {"slug": slug, "name": slug.title(), **({"discord": {"guild_id": GUILDS[i]}} if guilds else {})}
        for i, slug in enumerate(slugs)
    ]


# --- which communities ----------------------------------------------------------------------------------


def test_instance_communities_divide_the_communities_and_name_the_share() -> None:
    water = Settings(communities=communities("water", "waste"), instance={"communities": ["water"]})
    waste = Settings(communities=communities("water", "waste"), instance={"communities": ["waste"]})
    whole = Settings(communities=communities("water", "waste"))
    assert [c.slug for c in water.served_communities()] == ["water"]
    assert (water.partitioned, water.instance_name, waste.instance_name) == (True, "water", "waste")
    assert (whole.partitioned, whole.instance_name) == (False, "")
    # Direct messages: the process serving the first community, unless said otherwise.
    assert (water.answers_direct_messages, waste.answers_direct_messages) == (True, False)
    assert whole.answers_direct_messages


def test_without_a_list_discord_shards_divide_the_communities() -> None:
    on_shard = {slug: shard_of(GUILDS[i], 2) for i, slug in enumerate(("a", "b", "c"))}
    for shard in (0, 1):
        settings = Settings(
            communities=[*communities("a", "b", "c", guilds=True), {"slug": "plain", "name": "No Discord"}],
            discord={"token": "t", "shard_count": 2, "shard_ids": [shard]},
        )
        served = {c.slug for c in settings.served_communities()}
        assert served == {slug for slug, s in on_shard.items() if s == shard} | (
            {"plain"} if shard == 0 else set()
        )
        assert settings.answers_direct_messages is (shard == 0)  # Discord sends them on shard 0


def test_a_listed_community_off_this_process_s_shards_is_refused(tmp_path: Path) -> None:
    guild = next(g for g in GUILDS if shard_of(g, 2) == 1)
    config = tmp_path / "config.toml"
    config.write_text(
        '[discord]\ntoken = "t"\nshard_count = 2\nshard_ids = [0]\n'
        '[instance]\ncommunities = ["water"]\n'
        f'[[communities]]\nslug = "water"\nname = "W"\n[communities.discord]\nguild_id = "{guild}"\n'
    )
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    assert refused.value.problems == [
        "instance.communities[0]: 'water' is on Discord shard 1 of 2, which this process does not connect "
        "(shard_ids = [0])"
    ]


# --- rooms of other communities ---------------------------------------------------------------------------


async def test_a_room_of_another_process_s_community_is_ignored_entirely(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    # The console speaks in the first community, "waste"; this process serves "water" only.
    bot = await console_bot_factory(
        communities=communities("waste", "water"), instance={"communities": ["water"]}
    )
    for line in ("!about", "ana> hello", "ana>> !about"):  # direct messages: the first community's process
        assert not [said for said in await bot.say(line) if "copbot>" in said or "copbot →" in said], line
    async with bot.services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(ActivityEvent)) == 0


async def test_the_process_serving_the_room_answers(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(
        communities=communities("water", "waste"),
        instance={"communities": ["water"], "direct_messages": True},
    )
    assert any("copbot>" in line for line in await bot.say("!about"))
    assert any("copbot → ana (direct)>" in line for line in await bot.say("ana>> !about"))


async def test_queued_messages_are_sent_by_the_instance_that_queued_them(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory(
        communities=communities("water", "waste"), instance={"communities": ["water"]}
    )
    room = bot.adapter.room
    async with bot.services.db.session() as session:
        for owner in ("water", "waste"):
            await outbox.put(
                session,
                f"k:{owner}",
                Content(f"from {owner}"),
                room=room,
                now=bot.bot.clock.now(),
                owner=owner,
            )
    assert await bot.bot.pipeline.outbox.deliver() == 1
    assert [line for line in bot.new_lines() if "copbot>" in line] == ["[1] copbot> from water"]
    async with bot.services.db.session() as session:
        unsent = await session.scalars(select(OutboxRow.owner).where(OutboxRow.sent_at.is_(None)))  # type: ignore[union-attr]
        assert list(unsent) == ["waste"]  # the waste process sends it


# --- scheduled jobs ---------------------------------------------------------------------------------------


async def _schedulers(tmp_path: Path, clock: FakeClock, ran: list[tuple[str, str]]) -> dict[str, Scheduler]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    await migrate.upgrade(database)
    await database.close()
    found: dict[str, Scheduler] = {}

    def runner_for(name: str) -> Any:
        async def runner(target: str, payload: dict[str, Any]) -> None:
            ran.append((name, payload["job_id"]))
            if target == "meetings.remind" and payload["job_id"] == "meeting:1:reminder":
                # the next reminder, planned by the job: it belongs to the same community
                await found[name].run_at("meeting:1:reminder", clock.now() + timedelta(days=7), target)

        return runner

    for name, owners in (("water", ["water"]), ("waste", ["waste"]), ("whole", None)):
        found[name] = Scheduler(sync_url(database.url), clock, runner_for(name), owners=owners, instance=name)
        await found[name].open()
    return found


async def test_each_process_runs_the_jobs_of_its_own_communities(tmp_path: Path, clock: FakeClock) -> None:
    ran: list[tuple[str, str]] = []
    schedulers = await _schedulers(tmp_path, clock, ran)
    water, waste = schedulers["water"], schedulers["waste"]
    soon = clock.now() + timedelta(minutes=1)
    await water.run_at("poll:1:close", soon, "polls.close", owner="water")
    await water.run_at("poll:2:close", soon, "polls.close", owner="waste")  # any process may plan it
    await water.every("digest:waste", "digest.post", interval=timedelta(minutes=1), community="waste")
    await waste.run_at("meeting:1:reminder", soon, "meetings.remind", owner="waste")
    await water.every(
        water.own_id("recurring:roles.evaluate_all"), "roles.evaluate_all", interval=timedelta(minutes=1)
    )
    assert water.own_id("recurring:x") == "recurring:x@water"
    clock.advance(minutes=2)
    assert await water.run_due() == 2 and await waste.run_due() == 3
    assert sorted(ran) == [
        ("waste", "digest:waste"),
        ("waste", "meeting:1:reminder"),
        ("waste", "poll:2:close"),
        ("water", "poll:1:close"),
        ("water", "recurring:roles.evaluate_all@water"),
    ]
    owners = await water.owners()
    assert owners["meeting:1:reminder"] == "waste"  # planned again by the job: still the community's
    assert owners["recurring:roles.evaluate_all@water"] == "@water"
    for scheduler in schedulers.values():
        await scheduler.stop()


async def test_a_single_process_runs_every_job_and_jobs_from_before_owners_get_one(
    tmp_path: Path, clock: FakeClock
) -> None:
    ran: list[tuple[str, str]] = []
    schedulers = await _schedulers(tmp_path, clock, ran)
    whole, water = schedulers["whole"], schedulers["water"]
    await whole.run_at("poll:1:close", clock.now(), "polls.close", owner="")  # as stored before 0014
    assert await water.run_due() == 0  # nobody's: a divided process leaves it
    assert await water.ensure("poll:1:close", clock.now(), "polls.close", owner="water") is False
    assert (await water.owners())["poll:1:close"] == "water"  # the poll's own data says whose it is
    assert await water.run_due() == 1
    await whole.run_at("poll:2:close", clock.now(), "polls.close", owner="waste")
    assert await whole.run_due() == 1  # one process serving everything runs everyone's
    assert ran == [("water", "poll:1:close"), ("whole", "poll:2:close")]
    for scheduler in schedulers.values():
        await scheduler.stop()
