"""The levels' set-based queries give the same numbers on SQLite and PostgreSQL: activity per person over the
window (linked accounts summed, days counted per UTC day, a day on two accounts once), seats, last seen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, insert, select

from bot import migrate
from bot.db import Database
from bot.tables import ActivityEvent, CommunityRow, MemberRow, Membership
from plugins.roles import queries
from plugins.roles.models import LevelChange
from plugins.roles.rules import CONTRIBUTIONS, DEFAULT_WEIGHTS, Stats

NOW = datetime(2026, 3, 31, 3, 20, tzinfo=UTC)
SINCE = NOW - timedelta(days=30)  # 2026-03-01 03:20 UTC
NEW_YORK = timezone(timedelta(hours=-5))
WEIGHTS = {**DEFAULT_WEIGHTS, "o'clock": 2.0}  # a kind with a quote in its name, counted all the same

# member id → (name, linked to, bot, left, level, locked)
MEMBERS = {
    1: ("ana", None, False, False, "active", False),  # Ana on Discord…
    2: ("ana-matrix", 1, False, False, "occasional", True),  # …and on Matrix, linked; locked there
    3: ("bo", None, False, False, "peripheral", False),
    4: ("cy", None, False, False, "core", False),  # a membership, no activity in the window
    5: ("dee", None, False, True, "peripheral", False),  # left the community
    6: ("bot", None, True, False, "peripheral", False),
    7: ("eve", None, False, False, "transactional", True),  # locked, active only in another community
}


def at(day: int, hour: int, minute: int = 0, tz: timezone = UTC) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=tz)


# (member, kind, when): community 1 unless said otherwise
ACTIVITY: list[tuple[int, str, datetime]] = [
    # Ana, Discord: 2 messages on 2 March, a repertoire item on 3 March
    (1, "message", at(2, 9)),
    (1, "message", at(2, 23, 59)),
    (1, "repertoire_item", at(3, 0, 1)),  # two minutes later, but the next UTC day
    # Ana, Matrix: a message on 2 March (a day Ana already counts), a reaction on 4 March, a kind the
    # weights do not name (counted, worth nothing) and one with a quote in its name
    (2, "message", at(2, 12)),
    (2, "reaction", at(4, 23, 30, NEW_YORK)),  # 5 March 04:30 UTC: a day of its own
    (2, "repertoire_save", at(6, 10)),
    (2, "o'clock", at(6, 11)),
    # Bo: exactly at the start of the window (counts) and a second before it (does not)
    (3, "attendance", SINCE),
    (3, "message", SINCE - timedelta(seconds=1)),
    (3, "message", at(30, 23, 59, NEW_YORK)),  # 31 March 04:59 UTC, after "now": still since SINCE
    # Dee left, but what they did while a member counts for them
    (5, "message_saved", at(10, 8)),
    (5, "message_saved", at(10, 20)),
]
ELSEWHERE = [(7, "message", at(12, 9)), (1, "message", at(12, 9))]  # in community 2: not counted here
LAST_SEEN = {1: at(3, 0, 1), 2: at(6, 11), 3: at(31, 3, 0), 4: datetime(2025, 12, 1, tzinfo=UTC)}


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await migrate.upgrade(database)
    try:
        async with database.session() as session:
            await session.execute(
                insert(CommunityRow.__table__),
                [
                    {"id": n, "slug": f"cop{n}", "name": f"CoP {n}", "domain": "", "timezone": "UTC"}
                    | {"created_at": NOW - timedelta(days=400)}
                    for n in (1, 2)
                ],
            )
            await session.execute(
                insert(MemberRow.__table__),
                [
                    {
                        "id": member,
                        "platform": "matrix" if name.endswith("matrix") else "discord",
                        "platform_id": name,
                        "display_name": name,
                        "is_bot": is_bot,
                        "person_id": linked,
                        "first_seen": NOW - timedelta(days=200),
                        # anywhere: Ana and Eve wrote in community 2 later (ELSEWHERE)
                        "last_seen": at(12, 9)
                        if member in (1, 7)
                        else LAST_SEEN.get(member, NOW - timedelta(days=100)),
                    }
                    for member, (name, linked, is_bot, _, _, _) in MEMBERS.items()
                ],
            )
            await session.execute(
                insert(Membership.__table__),
                [
                    {
                        "community_id": 1,
                        "member_id": member,
                        "joined_at": NOW - timedelta(days=100 + member),
                        "left_at": NOW - timedelta(days=3) if left else None,
                        "level": level,
                        "level_since": NOW - timedelta(days=50 + member),
                        "locked": locked,
                        "below_since": NOW - timedelta(days=2) if member == 2 else None,
                        "last_seen": LAST_SEEN.get(member, NOW - timedelta(days=100)),  # in community 1
                    }
                    for member, (_, _, _, left, level, locked) in MEMBERS.items()
                ],
            )
            await session.execute(
                insert(Membership.__table__).values(
                    community_id=2, member_id=7, joined_at=NOW, last_seen=at(12, 9)
                )
            )
            await session.execute(
                insert(ActivityEvent.__table__),
                [
                    {"community_id": community, "member_id": member, "kind": kind, "platform": "discord"}
                    | {"room_id": "general", "detail": "", "at": when}
                    for community, rows in ((1, ACTIVITY), (2, ELSEWHERE))
                    for member, kind, when in rows
                ],
            )
        yield database
    finally:
        await database.close()


async def stats_of(database: Database, persons: list[int] | None = None) -> dict[int, Stats]:
    async with database.session() as session:
        return await queries.window_stats(session, 1, SINCE, WEIGHTS, CONTRIBUTIONS, persons=persons)


async def test_window_stats_sum_linked_accounts_and_count_utc_days(database: Database) -> None:
    stats = await stats_of(database)
    assert stats[1] == Stats(
        score=round(3 * 1.0 + 5.0 + 0.2 + 2.0, 3),
        contributions=1,
        active_days=4,  # 2, 3, 5 and 6 March (UTC): the 2nd on both accounts counts once
        last_active=at(6, 11),
        by_kind={
            "message": 3.0,
            "o'clock": 2.0,
            "reaction": 0.2,
            "repertoire_item": 5.0,
            "repertoire_save": 0.0,
        },
    )
    assert 2 not in stats  # the linked account speaks through its person
    assert stats[3] == Stats(
        score=4.0,
        contributions=1,
        active_days=2,  # 1 March (the window's first second) and 31 March
        last_active=at(31, 3, 0),
        by_kind={"attendance": 3.0, "message": 1.0},
    )
    assert stats[4] == Stats(last_active=datetime(2025, 12, 1, tzinfo=UTC))  # nothing in the window
    assert stats[5] == Stats(
        score=6.0,
        contributions=2,
        active_days=1,
        last_active=NOW - timedelta(days=100),
        by_kind={"message_saved": 6.0},
    )
    assert set(stats) == {1, 3, 4, 5, 6, 7}  # the bot has a membership too; nobody is left out
    assert stats[7] == Stats(last_active=NOW - timedelta(days=100))  # their activity is elsewhere


@pytest.mark.parametrize("many", [1000, 1], ids=["few persons", "many persons"])
async def test_some_persons_match_the_whole_community(
    database: Database, monkeypatch: pytest.MonkeyPatch, many: int
) -> None:
    monkeypatch.setattr(queries, "MANY_PERSONS", many)  # beyond it: the whole community, then picked
    everyone = await stats_of(database)
    async with database.session() as session:
        all_seats = await queries.seats(session, 1)
        all_last = await queries.last_active(session, 1)
    for persons in ([1], [3, 4], [7, 5, 1], [2], []):
        assert await stats_of(database, persons) == {p: everyone[p] for p in persons if p in everyone}
        async with database.session() as session:
            chosen = await queries.seats(session, 1, persons)
            last = await queries.last_active(session, 1, persons)
        assert list(chosen.items()) == [(p, seat) for p, seat in all_seats.items() if p in persons]
        assert last == {p: all_last[p] for p in persons if p in all_last}


async def test_weights_naming_few_kinds_still_count_every_kind(database: Database) -> None:
    async with database.session() as session:
        stats = await queries.window_stats(session, 1, SINCE, {"reaction": 1.0}, ["attendance"])
    assert stats[1].by_kind == {
        "message": 0.0,
        "o'clock": 0.0,
        "reaction": 1.0,
        "repertoire_item": 0.0,
        "repertoire_save": 0.0,
    }
    assert (stats[1].score, stats[1].contributions, stats[1].active_days) == (1.0, 0, 4)
    assert (stats[3].score, stats[3].contributions) == (0.0, 1)


async def test_seats_merge_linked_accounts_and_leave_out_bots_and_who_left(database: Database) -> None:
    async with database.session() as session:
        seats = await queries.seats(session, 1)
        some = await queries.seats(session, 1, [1, 7])
        last = await queries.last_active(session, 1)
    assert list(seats) == [1, 3, 4, 7]
    ana = seats[1]
    assert ana.member_ids == (1, 2)
    assert ana.level == "active"  # the most central of the two
    assert ana.locked is True  # locked on one account: locked
    assert ana.level_since == NOW - timedelta(days=52)  # the earliest
    assert ana.below_since == NOW - timedelta(days=2)
    assert ana.joined_at == NOW - timedelta(days=102)
    assert ana.level_since.tzinfo is UTC
    assert seats[7].locked is True and seats[7].level == "transactional"
    assert (seats[4].level, seats[4].locked, seats[4].below_since) == ("core", False, None)
    assert some == {1: seats[1], 7: seats[7]}
    assert last == {
        1: at(6, 11),
        3: at(31, 3, 0),
        4: datetime(2025, 12, 1, tzinfo=UTC),
        5: NOW - timedelta(days=100),
        6: NOW - timedelta(days=100),
        7: NOW - timedelta(days=100),
    }


async def test_persons_page_by_page_are_the_seats_of_everyone(database: Database) -> None:
    """The start-up walk reads the community a page at a time: the pages, in order, are every seat once."""
    async with database.session() as session:
        everyone = await queries.seats(session, 1)
        pages: list[list[int]] = []
        after: int | None = None
        while persons := await queries.persons_after(session, 1, after, 2):
            pages.append(persons)
            after = persons[-1]
    assert pages == [[1, 3], [4, 7]]  # Ana once (two linked accounts), no bot, nobody who left
    assert [person for page in pages for person in page] == list(everyone)


@pytest.mark.parametrize("size", [1, 2, 3, 100])
async def test_pages_of_person_ids_read_the_whole_community_once(database: Database, size: int) -> None:
    """The nightly evaluation reads a community a range of person ids at a time: the ranges cover every id,
    and the seats, statistics and last-seen times read page by page (apart, and together as the nightly run
    reads them) are those read at once — Ana's Matrix account (id 2) counted in the page of her person id
    (1), however small the pages."""
    everyone = await stats_of(database)
    async with database.session() as session:
        all_seats = await queries.seats(session, 1)
        all_last = await queries.last_active(session, 1)
        pages = await queries.person_pages(session, size)
        seats: dict[int, queries.Seat] = {}
        last: dict[int, datetime] = {}
        stats: dict[int, Stats] = {}
        read_together: tuple[dict[int, queries.Seat], dict[int, datetime]] = ({}, {})
        for page in pages:
            assert len(page) == size
            seats |= await queries.seats(session, 1, page)
            last |= await queries.last_active(session, 1, page)
            page_seats, page_last = await queries.page_seats(session, 1, page)  # the nightly run's read
            read_together[0].update(page_seats)
            read_together[1].update(page_last)
            stats |= await queries.window_stats(session, 1, SINCE, WEIGHTS, CONTRIBUTIONS, persons=page)
    assert [person for page in pages for person in page][: len(MEMBERS)] == list(MEMBERS)
    assert list(seats.items()) == list(all_seats.items())
    assert seats[1].member_ids == (1, 2)
    assert last == all_last
    assert read_together == (all_seats, all_last)
    assert stats == everyone
    assert stats[1].contributions == everyone[1].contributions > 0


async def test_set_levels_moves_every_account_and_keeps_one_history_row(database: Database) -> None:
    async with database.session() as session:
        seats = await queries.seats(session, 1)
        await queries.set_below_since(session, 1, [(seats[3], NOW)])
        await queries.set_levels(session, 1, [(seats[1], "occasional", "a rule", None, "")], NOW)
    async with database.session() as session:
        after = await queries.seats(session, 1)
        history = await queries.history(session, 1, [1, 2])
        count = await session.scalar(select(func.count()).select_from(LevelChange))
    assert after[1].level == "occasional" and after[1].level_since == NOW and after[1].below_since is None
    assert after[3].below_since == NOW
    assert count == 1
    assert (history[0].member_id, history[0].old_level, history[0].new_level) == (1, "active", "occasional")
    assert (history[0].rule, history[0].at) == ("a rule", NOW)


async def test_active_days_are_days_of_the_communitys_zone_after_its_clocks_change_too(
    database: Database,
) -> None:
    """Berlin's clocks go forward on 29 March (01:00 UTC), inside the window that began on 1 March in
    winter time: cy's evening and the following night after it are two days there, as before it."""
    async with database.session() as session:
        await session.execute(
            insert(ActivityEvent.__table__),
            [
                {"community_id": 1, "member_id": 4, "kind": "message", "platform": "discord"}
                | {"room_id": "general", "detail": "", "at": when}
                for when in (
                    at(28, 22, 30),  # 23:30 on 28 March, winter time
                    at(28, 23, 30),  # 00:30 on 29 March, winter time
                    at(30, 21, 30),  # 23:30 on 30 March, summer time
                    at(30, 22, 30),  # 00:30 on 31 March, summer time
                )
            ],
        )
        stats = await queries.window_stats(
            session, 1, SINCE, WEIGHTS, CONTRIBUTIONS, persons=[4], zone="Europe/Berlin"
        )
    assert stats[4].active_days == 4  # 28, 29, 30 and 31 March in Berlin
