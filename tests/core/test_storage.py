"""Migrations from empty, and the same storage code on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from bot import migrate, store
from bot.config import Settings
from bot.db import Database
from bot.journal import Journal
from bot.model import Member
from bot.plugin_tables import import_plugin_tables
from bot.tables import ActivityEvent, MemberRow

CORE_TABLES = {
    "communities",
    "rooms",
    "members",
    "activity_events",
    "handled_events",
    "state",
    "apscheduler_jobs",
    "alembic_version",
}

OWNED_ELSEWHERE = (  # the job store's; full-text indexes kept by the migrations, not the models
    "apscheduler_jobs",
    "profiles_fts",
    "repertoire_fts",
    "repertoire_recent",
    "ix_repertoire_search",
    "ix_repertoire_ranked",
    "Column('search'",
)


def unexpected_schema_differences(connection: Connection) -> list[Any]:
    """What autogenerate would change to make the database match the models, but for OWNED_ELSEWHERE."""
    import_plugin_tables()
    differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    return [d for d in differences if not any(name in repr(d) for name in OWNED_ELSEWHERE)]


async def test_migrations_from_empty_create_every_table_and_match_the_models(database_url: str) -> None:
    database = Database(database_url)
    try:
        assert await migrate.current_revision(database) is None
        await migrate.upgrade(database)
        assert await migrate.current_revision(database) == migrate.head_revision()
        await migrate.upgrade(database)  # a second upgrade is a no-op

        def _inspect(connection):  # type: ignore[no-untyped-def]
            return set(inspect(connection).get_table_names()), unexpected_schema_differences(connection)

        async with database.engine.connect() as connection:
            tables, unexpected = await connection.run_sync(_inspect)
        assert CORE_TABLES <= tables
        assert unexpected == [], "a model changed without a migration"
    finally:
        await database.close()


async def test_members_activity_and_duplicates_round_trip_with_aware_utc(database_url: str) -> None:
    database = Database(database_url)
    await migrate.upgrade(database)
    at = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    try:
        async with database.session() as session:
            ids = await store.sync_communities(session, Settings().community_list(), at)
            row = await store.ensure_member(session, Member("matrix", "@ana:x.org", "Ana"), at)
            await store.put_state(session, "matrix", "since", "s1_2", at)
        journal = Journal(database)
        await journal.start(at)
        assert journal.first_delivery("matrix", "$event1", at) is True
        assert journal.first_delivery("matrix", "$event1", at) is False
        assert row.id is not None
        journal.record(
            member_id=row.id,
            community_id=ids["cop"],
            kind="message",
            platform="matrix",
            room_id="!r:x.org",
            at=at,
        )
        await journal.stop()  # writes what is pending
        restarted = Journal(database)
        await restarted.start(
            at
        )  # primed from the database: a redelivery after a restart is still a duplicate
        assert restarted.first_delivery("matrix", "$event1", at) is False
        assert restarted.first_delivery("matrix", "$event2", at) is True
        await restarted.stop()
        async with database.session() as session:
            member = (await session.execute(select(MemberRow))).scalar_one()
            activity = (await session.execute(select(ActivityEvent))).scalar_one()
            assert member.first_seen == at and member.first_seen.tzinfo is not None
            assert activity.at == at and activity.at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
            assert await store.get_state(session, "matrix", "since") == "s1_2"
            assert await store.count_activity(session, member_id=row.id) == 1
            await store.ensure_member(session, Member("matrix", "@ana:x.org", "Ana B."), at)
        async with database.session() as session:
            found = await store.find_member(session, Member("matrix", "@ana:x.org", ""))
            assert found is not None and found.display_name == "Ana B."
    finally:
        await database.close()


async def test_the_whole_bot_runs_on_either_backend(console_bot_factory, database_url: str) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([], database_url=database_url)
    lines = await bot.say("!status")
    expected = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
    assert f"Database: {expected}" in "\n".join(lines)
    await bot.say("ana> !about")
    async with bot.services.db.session() as session:
        assert await store.count_activity(session, kind="command") == 2


async def test_meeting_list_reads_moves_and_answers_the_same_on_either_backend(  # type: ignore[no-untyped-def]
    console_bot_factory, database_url: str
) -> None:
    """The list reads every series' times, their changes through a subquery and the answers of those shown:
    statements of their own shape, so they run on PostgreSQL too. A cancelled series is left out."""
    from plugins.meetings.plugin import Meetings

    bot = await console_bot_factory([Meetings], database_url=database_url)
    await bot.say('ana> !meeting schedule "Call" 2026-03-10 15:00 --every weekly')
    await bot.say('ana> !meeting schedule "Gone" 2026-03-12 09:00 --every weekly')
    await bot.say("ana> !meeting cancel 2")
    await bot.say("bo> !meeting rsvp 1 yes --all")
    await bot.say("ana> !meeting move 1 2026-03-11 16:00")
    listed = "\n".join(await bot.say("bo> !meeting list"))
    assert "#1 Wed 11 Mar 16:00 UTC (moved) Call · ✅ 1 · ❔ 0 · ❌ 0" in listed
    assert "#1 Tue 17 Mar 15:00 UTC Call · ✅ 1" in listed
    assert "Tue 10 Mar" not in listed and "Gone" not in listed


async def test_a_rooms_member_list_is_recorded_in_a_few_statements_on_either_backend(  # type: ignore[no-untyped-def]
    console_bot_factory, database_url: str
) -> None:
    """Members listed in a room at start-up (1,203 here, more than a statement asks about): new ones get a
    row and a membership, a renamed one their new name, one who had left is back; those already present
    change nothing, and bots are not members."""
    from bot import store
    from bot.model import Member
    from bot.tables import Membership

    bot = await console_bot_factory([], database_url=database_url)
    await bot.say(":join ana")
    await bot.say(":join bo")
    await bot.say(":leave bo")
    listed = [Member("console", "ana", "Ana Lopes"), Member("console", "bo", "bo")]
    listed += [Member("console", f"m{index}", f"M {index}") for index in range(1200)]
    listed.append(Member("console", "helper", "helper", is_bot=True))
    pipeline, room = bot.bot.pipeline, bot.bot.adapters[0].room
    assert store.LISTED_CHUNK < len(listed)
    assert await pipeline.members_present(room, listed) == 1201  # bo back, and the 1,200 new
    assert await pipeline.members_present(room, listed) == 0
    async with bot.services.db.session() as session:
        rows = {row.platform_id: row for row in (await session.execute(select(MemberRow))).scalars()}
        present = set(
            (
                await session.execute(select(Membership.member_id).where(Membership.left_at.is_(None)))
            ).scalars()
        )
    assert "helper" not in rows and len(rows) == 1202
    assert rows["ana"].display_name == "Ana Lopes" and rows["m1199"].display_name == "M 1199"
    assert present == {row.id for row in rows.values()}


async def test_the_community_wide_reads_answer_the_same_on_either_backend(  # type: ignore[no-untyped-def]
    console_bot_factory, database_url: str, clock
) -> None:
    """The statements written for large communities (members looked up one by one with EXISTS, ranking by
    id before reading rows, the feed's rows by subquery) are valid on PostgreSQL as on SQLite, and answer."""
    from aiohttp.test_utils import TestClient, TestServer

    from bot.web.app import create_app
    from plugins.dashboard.plugin import Dashboard
    from plugins.digest.plugin import DigestPlugin
    from plugins.meetings.plugin import Meetings
    from plugins.profiles.plugin import Profiles
    from plugins.repertoire.plugin import Repertoire
    from plugins.value.plugin import Value

    bot = await console_bot_factory(
        [Profiles, Repertoire, Meetings, DigestPlugin, Value, Dashboard],
        database_url=database_url,
        communities=[{"slug": "cop", "name": "Water", "public": True}],
    )
    for line in (
        "ana> !profile set expertise leak detection",
        "bo> !profile set interests leak detection",
        'ana> !share tool "Leak map" https://example.org/map #gis',
        "bo> !repertoire upvote 1",
        '!meeting schedule "Call" 2026-03-10 15:00 --every weekly',
    ):
        await bot.say(line)
    clock.advance(timedelta(minutes=1))  # the figures' windows end before now

    def reply(lines: list[str]) -> str:
        return "\n".join(lines[1:])

    assert "Meet @ana: They know about leak detection" in reply(await bot.say("bo> !match"))
    assert "1. #1 [tool] Leak map — ana · 1▲" in reply(await bot.say("!repertoire top"))
    assert "Active in the last 30 days: 3" in reply(await bot.say("!stats"))
    assert "Value creation in Water" in reply(await bot.say("!value report"))
    async with TestClient(TestServer(create_app(bot.services))) as client:
        listed = await client.get("/")
        feed = await client.get("/c/cop/meetings.ics")
        assert listed.status == 200 and "Water" in await listed.text()
        assert feed.status == 200 and b"SUMMARY:Call" in await feed.read()
        again = await client.get("/c/cop/meetings.ics", headers={"If-None-Match": feed.headers["ETag"]})
        assert again.status == 304


def test_the_head_read_from_the_files_is_alembics() -> None:
    """Start-up skips Alembic when the database is at the head it reads from the files; they must agree."""
    assert migrate.head_from_files() == migrate.head_revision()


async def test_a_membership_the_member_list_wrote_meanwhile_is_no_error_on_either_backend(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member's first event and the room's member list (read beside the sync at start) may record the
    same membership at once: the journal's insert, after a read that found none, keeps the list's row."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.tables import Membership

    database = Database(database_url)
    await migrate.upgrade(database)
    at = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    try:
        async with database.session() as session:
            community = (await store.sync_communities(session, Settings().community_list(), at))["cop"]
            member = await store.ensure_member(session, Member("matrix", "@ana:x.org", "Ana"), at)
        assert member.id is not None
        member_id = member.id
        read = AsyncSession.get

        async def get_while_the_list_writes(self: AsyncSession, entity: Any, ident: Any, **kw: Any) -> Any:
            found = await read(self, entity, ident, **kw)
            if entity is Membership:
                async with database.session() as listing:
                    assert await store.ensure_listed_memberships(listing, community, [member_id], at) == 1
            return found

        monkeypatch.setattr(AsyncSession, "get", get_while_the_list_writes)
        assert await Journal(database).ensure_membership(community, member_id, at) == 0
        monkeypatch.undo()
        async with database.session() as session:
            rows = (await session.execute(select(Membership))).scalars().all()
        found = [(row.community_id, row.member_id, row.left_at) for row in rows]
        assert found == [(community, member_id, None)]
    finally:
        await database.close()
