"""Participation levels through the console: the daily run moves a member, `role show` explains, moderators
set and lock, history keeps who and why, and two linked accounts are one person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from bot.clock import FakeClock
from bot.context import JobContext
from bot.model import LevelChanged
from bot.plugin import Plugin, listen
from bot.tables import ActivityEvent, MemberRow, Membership
from plugins.profiles.plugin import Profiles
from plugins.repertoire.plugin import Repertoire
from plugins.roles import evaluation as roles_evaluation
from plugins.roles import linking
from plugins.roles.linking import WRONG_CODES
from plugins.roles.models import LevelChange, LinkCode
from plugins.roles.plugin import Roles


class Watcher(Plugin):
    """Hears LevelChanged, as the digest and the dashboard will."""

    name = "watcher"
    heard: list[LevelChanged] = []  # noqa: RUF012

    @listen(LevelChanged)
    async def changed(self, ctx, event: LevelChanged) -> None:  # type: ignore[no-untyped-def]
        Watcher.heard.append(event)


def reply(lines: list[str]) -> str:
    return lines[1].split("> ", 1)[1]


async def seed(bot, name: str, kinds: list[tuple[str, datetime]]) -> None:  # type: ignore[no-untyped-def]
    """Activity as the journal would have written it (the console says one line at a time)."""
    async with bot.services.db.session() as session:
        member = await session.scalar(select(MemberRow).where(MemberRow.platform_id == name))
        await session.execute(
            insert(ActivityEvent.__table__),
            [
                {
                    "member_id": member.id,
                    "community_id": 1,
                    "kind": kind,
                    "platform": "console",
                    "room_id": "console",
                    "detail": "",
                    "at": at,
                }
                for kind, at in kinds
            ],
        )


async def level_of(bot, name: str) -> str:  # type: ignore[no-untyped-def]
    async with bot.services.db.session() as session:
        return (
            await session.execute(
                select(Membership.level)
                .join(MemberRow, MemberRow.id == Membership.member_id)
                .where(MemberRow.platform_id == name)
            )
        ).scalar_one()


async def test_the_daily_run_moves_a_member_and_role_show_explains(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    Watcher.heard = []
    bot = await console_bot_factory([Roles, Watcher])
    await bot.say("ana> hello, I am new here")
    before = await bot.say("ana> !role show")
    assert before[1:] == [
        "[3] copbot> ana: peripheral since Mon 2 Mar 09:00 UTC",
        "    Last 30 days: score 1 (message 1), 0 contributions, 1 active day",
        "    Next: 4 more points, 1 more contribution and 1 more active day → occasional",
    ]
    start = clock.now()
    await seed(
        bot,
        "ana",
        [("message", start + timedelta(days=1, hours=h)) for h in range(4)]
        + [("message_saved", start + timedelta(days=1))],
    )
    clock.set(datetime(2026, 3, 4, 3, 20, tzinfo=UTC))  # the night after
    assert await bot.services.scheduler.run_due() == 1
    assert await level_of(bot, "ana") == "occasional"
    explained = await bot.say("ana> !role show")
    assert explained[1] == "[5] copbot> ana: occasional since Wed 4 Mar 03:20 UTC"
    assert (
        explained[2]
        == "    Last 30 days: score 8 (message 5, message saved 3), 1 contribution, 2 active days"
    )
    assert explained[3] == "    Next: 12 more points, 2 more contributions and 4 more active days → active"
    history = await bot.say("!role history @ana")
    assert history[2].strip() == (
        "Wed 4 Mar 03:20 UTC: ana peripheral → occasional "
        "(rule: score ≥ 5, ≥ 1 contribution, ≥ 2 active days in 30 days → occasional)"
    )
    assert [(e.member.id, e.old_level, e.new_level, e.actor) for e in Watcher.heard] == [
        ("ana", "peripheral", "occasional", None)
    ]
    assert await bot.services.scheduler.run_due() == 0
    recomputed = await bot.say("!role recompute")
    assert reply(recomputed) == "Everyone is where the rules put them; nobody moved."  # idempotent


async def test_moderators_set_and_lock_and_members_are_refused(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Roles])
    await bot.say("ana> hi")
    await bot.say("bo> hi")
    refused = await bot.say("bo> !role set @ana core she runs the group")
    assert reply(refused) == "!role set is for moderators only; nothing was changed."
    async with bot.services.db.session() as session:
        assert int(await session.scalar(select(func.count()).select_from(LevelChange)) or 0) == 0
    too_long = reply(await bot.say("!role set @ana core " + "x" * 301))
    assert too_long.startswith("the reason has 301 characters; at most 300")
    assert "role set @ana core coordinates the leakage group" in too_long  # with an example
    async with bot.services.db.session() as session:
        assert int(await session.scalar(select(func.count()).select_from(LevelChange)) or 0) == 0
    assert reply(await bot.say("!role set @ana core she runs the group")) == "ana: peripheral → core."
    assert reply(await bot.say("!role lock @bo")) == "bo is locked: rules will not move them (peripheral)."
    assert reply(await bot.say("!role lock @bo")) == "bo is locked already (peripheral); nothing was changed."
    assert reply(await bot.say("!role unlock @ana")) == "ana is not locked (core); nothing was changed."
    listed = await bot.say("bo> !role list")
    assert [line.strip() for line in listed[2:4]] == ["core: 1", "active: 0"]
    history = await bot.say("!role history")
    assert history[2].strip().endswith("ana peripheral → core (by you) — she runs the group")
    shown = "\n".join(await bot.say("bo> !role show"))
    assert "A moderator locked this level; rules do not move it." in shown
    assert "core is set by moderators only" in "\n".join(await bot.say("bo> !role rules"))


async def test_a_moderators_move_to_transactional_holds_until_the_member_is_active_again(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Roles])
    await bot.say("ana> hi")
    clock.advance(timedelta(minutes=5))
    moved = await bot.say("!role set @ana transactional left the utility")
    assert reply(moved) == "ana: peripheral → transactional."
    # What ana said before the move is no reason to undo it.
    assert reply(await bot.say("!role recompute")) == "Everyone is where the rules put them; nobody moved."
    assert await level_of(bot, "ana") == "transactional"
    shown = await bot.say("ana> !role show")  # the way back, not occasional's thresholds
    assert shown[-1].strip() == "Next: any activity here after the move to transactional → peripheral"
    clock.advance(timedelta(days=3))
    await bot.say("ana> back from leave, hello again")
    clock.advance(timedelta(minutes=5))
    assert reply(await bot.say("!role recompute")) != "Everyone is where the rules put them; nobody moved."
    assert await level_of(bot, "ana") == "peripheral"
    history = await bot.say("!role history @ana")
    assert (
        history[2]
        .strip()
        .endswith(
            "ana transactional → peripheral (rule: active again since the move to transactional → peripheral)"
        )
    )


async def test_role_show_says_rules_do_not_move_a_member_who_turned_tracking_off(
    console_bot_factory,
) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Roles, Profiles])
    await bot.say("ana> hi")
    await bot.say("ana> !profile set tracking off")
    shown = (await bot.say("ana> !role show"))[1:]
    assert shown[-1].strip() == "Tracking is off for ana: rules do not move this level; moderators can."
    assert not any("Next:" in line for line in shown)


async def test_a_share_moves_its_author_at_once(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Roles, Repertoire])
    await bot.say("ana> first message")
    await bot.say("ana> second message")
    await bot.say("!role show @ana")
    clock_day = bot.services.clock
    clock_day.advance(days=1)
    await bot.say('ana> !share tool "Leak map" https://example.org/map #gis')
    assert await level_of(bot, "ana") == "occasional"


async def test_linked_accounts_are_one_person_with_activity_summed(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Roles])
    await bot.say("ana> morning from my work account")
    await bot.say("ana.home> and hello from home")
    code_lines = await bot.say("ana> !profile link")
    private = code_lines[1]
    assert private.startswith("[4] copbot → ana (direct)> Your link code: ")
    assert code_lines[2] == "[5] copbot> I sent you a link code by direct message."
    code = private.split("Your link code: ", 1)[1].split(".", 1)[0]
    wrong = await bot.say("ana.home> !profile link ZZZZ-ZZZZ")
    assert reply(wrong).startswith("that code is unknown or expired")
    linked = await bot.say(f"ana.home> !profile link {code}")
    assert "Linked: ana (console), ana.home (console) are one person now" in linked[1]
    again = await bot.say(f"ana.home> !profile link {code}")
    assert reply(again).startswith("that code is unknown or expired")  # one-time
    shown = "\n".join(await bot.say("ana.home> !role show"))
    assert "score 2 (message 2)" in shown  # both accounts' messages count for the one person
    assert reply(await bot.say("ana.home> !profile unlink")) == (
        "This account is on its own again; its activity counts for it alone from now on."
    )
    alone = "\n".join(await bot.say("ana> !role show"))
    assert "score 1 (message 1)" in alone
    clock.advance(minutes=20)
    expired_lines = await bot.say("ana> !profile link")
    late = expired_lines[1].split("Your link code: ", 1)[1].split(".", 1)[0]
    clock.advance(minutes=16)
    assert reply(await bot.say(f"ana.home> !profile link {late}")).startswith(
        "that code is unknown or expired"
    )


def _code(lines: list[str]) -> str:
    return lines[1].split("Your link code: ", 1)[1].split(".", 1)[0]


async def test_a_new_link_code_replaces_the_earlier_ones_and_expired_codes_are_not_kept(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    """A member who asks for a code again (the first seen by someone else, or lost) has one live code: the
    earlier one links nothing any more. Codes past their 15 minutes are deleted, not kept for ever."""
    bot = await console_bot_factory([Roles])
    await bot.say("ana> morning")
    await bot.say("ana.home> hello")
    await bot.say("bo> hi")
    stale = _code(await bot.say("bo> !profile link"))
    clock.advance(minutes=16)
    first = _code(await bot.say("ana> !profile link"))
    second = _code(await bot.say("ana> !profile link"))
    async with bot.services.db.session() as session:
        kept = (await session.execute(select(LinkCode.code))).scalars().all()
    assert kept == [second]  # bo's expired code and ana's first are gone
    assert stale != second and first != second
    assert reply(await bot.say(f"ana.home> !profile link {first}")).startswith(
        "that code is unknown or expired"
    )
    linked = await bot.say(f"ana.home> !profile link {second}")
    assert "Linked: ana (console), ana.home (console) are one person now" in linked[1]


async def test_the_daily_run_over_many_pages_reads_ahead_and_moves_each_person_once(
    console_bot_factory, clock: FakeClock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(roles_evaluation, "EVALUATION_PAGE", 2)  # seven persons: four pages, two at a time
    bot = await console_bot_factory([Roles])
    assert bot.services.db.concurrent_reads  # a SQLite file: pages ahead are read on connections of their own
    names = [f"m{index}" for index in range(7)]
    for name in names:
        await bot.say(f"{name}> hello")
    start = clock.now()
    busy = names[::2]  # persons 1, 3, 5 and 7: one in each page
    for name in busy:
        await seed(
            bot,
            name,
            [("message", start + timedelta(days=1, hours=h)) for h in range(4)]
            + [("message_saved", start + timedelta(days=1))],
        )
    clock.set(datetime(2026, 3, 4, 3, 20, tzinfo=UTC))
    assert await bot.services.scheduler.run_due() == 1
    assert {name: await level_of(bot, name) for name in names} == {
        name: "occasional" if name in busy else "peripheral" for name in names
    }
    async with bot.services.db.session() as session:
        moved = (await session.execute(select(LevelChange.member_id, LevelChange.new_level))).all()
    assert sorted(level for _, level in moved) == ["occasional"] * len(busy)  # each once, none twice


async def test_a_page_that_fails_to_be_decided_closes_the_reads_ahead(
    console_bot_factory, clock: FakeClock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(roles_evaluation, "EVALUATION_PAGE", 2)
    bot = await console_bot_factory([Roles])
    for index in range(7):
        await bot.say(f"m{index}> hello")
    plugin = bot.services.registry.plugins["roles"]

    async def failing(*_args: object) -> None:
        raise RuntimeError("the rules broke")

    monkeypatch.setattr(plugin, "_decide", failing)
    pool = bot.services.db.engine.sync_engine.pool
    with pytest.raises(RuntimeError, match="the rules broke"):
        async with bot.services.db.session() as session:
            ctx = JobContext(bot.services, session, "roles.evaluate_all", clock.now())
            await plugin.evaluate(ctx, 1, None, clock.now())
    assert pool.checkedout() == 0  # the readers' sessions were closed with the failed run, not later


async def activity_rows(bot, name: str) -> int:  # type: ignore[no-untyped-def]
    async with bot.services.db.session() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(ActivityEvent)
                .join(MemberRow, MemberRow.id == ActivityEvent.member_id)
                .where(MemberRow.platform_id == name)
            )
            or 0
        )


async def test_role_show_counts_the_last_messages_the_journal_still_holds(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """The journal writes activity every half second; a command that reports activity (``reads_activity``)
    has it written first, so a member who asks right after speaking sees their last messages counted."""
    bot = await console_bot_factory([Roles])
    await bot.hold_journal()
    await bot.say("ana> hello")  # (say writes the journal: ana is known, one message)
    for line in ("ana> a second message", "ana> a third", "ana> and a fourth"):
        await bot.chat(line)  # handled; their activity waits in the journal
    assert await activity_rows(bot, "ana") == 1
    shown = await bot.say("ana> !role show")
    assert shown[2] == "    Last 30 days: score 4 (message 4), 0 contributions, 1 active day"
    assert await activity_rows(bot, "ana") == 5  # the four messages and the command


async def test_a_callers_first_command_counts_what_others_said_just_before(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """A caller copbot has never seen has their row written in their first command's unit of work; the
    journal is written before that (after it, on SQLite, it would wait for that unit), not skipped."""
    bot = await console_bot_factory([Roles])
    await bot.hold_journal()
    await bot.say("ana> hello")  # (say writes the journal: ana is known, one message)
    for line in ("ana> a second message", "ana> a third"):
        await bot.chat(line)  # handled; their activity waits in the journal
    shown = await bot.say("newcomer> !role show @ana")  # newcomer's first line: copbot does not know them
    assert shown[2] == "    Last 30 days: score 3 (message 3), 0 contributions, 1 active day"
    assert await activity_rows(bot, "ana") == 3


async def test_a_direct_chat_with_copbot_is_no_message_in_the_community(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """Onboarding answers and value stories are said to copbot alone: they move nobody's level."""
    bot = await console_bot_factory([Roles])
    await bot.say("ana> hello everyone")
    for answer in ("KWR", "Netherlands", "leak detection"):
        await bot.say(f"ana>> {answer}")
    shown = await bot.say("ana> !role show")
    assert shown[2].strip() == "Last 30 days: score 1 (message 1), 0 contributions, 1 active day"


async def test_a_member_who_left_is_not_called_a_member_to_come(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """`role show @ana` after ana left said she was "not a member of this community yet"."""
    bot = await console_bot_factory([Roles])
    await bot.say("ana> hi")
    await bot.say(":leave ana")
    for command in ("!role show @ana", "!role set @ana active runs the group"):
        assert reply(await bot.say(command)) == "ana is not a member of this community.", command


async def test_help_names_a_choice_by_its_name_and_lists_its_choices_once(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Roles])
    shown = "\n".join(await bot.say("!help role set"))
    assert "!role set <@member> core|active|occasional|peripheral|transactional [<reason…>]" in shown
    assert "<level>: core, active, occasional, peripheral or transactional" in shown
    assert shown.count("peripheral") == 2, shown  # the usage line and the level's line


async def test_an_account_typing_wrong_codes_must_wait_before_it_may_try_again(
    console_bot_factory, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    """A code is 32 random bits for 15 minutes; an account typing codes without end would in time hit
    somebody's. After five wrong ones it waits out the quarter of an hour — the right code too — and a
    mistyping member is told how long, and what to do then."""
    bot = await console_bot_factory([Roles])
    await bot.say("ana> morning")
    await bot.say("mallory> hello")
    code = _code(await bot.say("ana> !profile link"))
    for attempt in range(WRONG_CODES):
        clock.advance(seconds=30)
        guess = f"{attempt:04X}-0000"
        assert reply(await bot.say(f"mallory> !profile link {guess}")).startswith("that code is unknown")
    clock.advance(seconds=30)  # the first wrong code was 2½ minutes ago: 12½ minutes to wait
    refused = await bot.say(f"mallory> !profile link {code}")
    assert reply(refused) == (
        "Too many wrong codes: try again in 13 minutes, with a new code from !profile link on your other "
        "account."
    )
    async with bot.services.db.session() as session:
        persons = (await session.execute(select(MemberRow.person_id))).scalars().all()
    assert persons == [None, None]  # nobody linked
    other = await bot.say("ana.home> !profile link ZZZZ-ZZZZ")  # another account may try
    assert reply(other).startswith("that code is unknown")
    clock.advance(minutes=13)
    fresh = _code(await bot.say("ana> !profile link"))
    assert "are one person now" in "\n".join(await bot.say(f"mallory> !profile link {fresh}"))


def test_wrong_codes_are_remembered_for_a_bounded_number_of_accounts(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Accounts typing wrong codes are remembered in memory: the longest unheard of is forgotten first."""
    monkeypatch.setattr(linking, "MAX_GUESSERS", 3)
    wrong, now = linking.WrongCodes(), datetime(2026, 12, 5, 12, tzinfo=UTC)
    for _ in range(WRONG_CODES):
        wrong.add(1, now)
    for account in (2, 3, 4):
        wrong.add(account, now)
    assert wrong.wait(1, now) is None  # forgotten: four accounts, room for three
    for _ in range(WRONG_CODES):
        wrong.add(2, now)
    assert wrong.wait(2, now + timedelta(minutes=5)) == timedelta(minutes=10)
    assert wrong.wait(2, now + timedelta(minutes=15)) is None


async def test_active_days_are_the_communitys_days_not_utc_days(  # type: ignore[no-untyped-def]
    console_bot_factory, clock: FakeClock, database_url: str
) -> None:
    """In Auckland, ana's morning and afternoon of one day fell on two UTC days (two active days, half of
    what occasional asks), and bo's late evening and the next early morning on one."""
    bot = await console_bot_factory(
        [Roles],
        database_url=database_url,
        communities=[{"slug": "cop", "name": "Pacific CoP", "timezone": "Pacific/Auckland"}],
    )
    clock.set(datetime(2026, 3, 2, 20, tzinfo=UTC))  # 09:00 on Tuesday 3 March in Auckland
    await bot.say("ana> morning")
    clock.set(datetime(2026, 3, 3, 2, tzinfo=UTC))  # 15:00 the same day there
    await bot.say("ana> afternoon")
    clock.set(datetime(2026, 3, 3, 10, tzinfo=UTC))  # 23:00 there
    await bot.say("bo> late")
    clock.set(datetime(2026, 3, 3, 11, 30, tzinfo=UTC))  # 00:30 on Wednesday there
    await bot.say("bo> early")
    ana, bo = (await bot.say("ana> !role show"))[2], (await bot.say("bo> !role show"))[2]
    assert ana.strip() == "Last 30 days: score 2 (message 2), 0 contributions, 1 active day"
    assert bo.strip() == "Last 30 days: score 2 (message 2), 0 contributions, 2 active days"


async def test_a_linked_persons_tracking_choice_holds_for_all_their_accounts(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """`tracking off` answered "copbot records none of your activity" while the person's other account was
    still recorded. Tracking is the person's: set on one account, it holds on all; where the accounts
    differed when linked, off holds."""
    bot = await console_bot_factory([Profiles, Roles])
    await bot.say("ana> morning")
    await bot.say("ana.home> evening")
    await bot.say("ana.home> !profile set tracking off")
    code = _code(await bot.say("ana> !profile link"))
    linked = "\n".join(await bot.say(f"ana.home> !profile link {code}"))
    assert "One of them had tracking off: now it is off on all of them." in linked, linked
    before = await activity_rows(bot, "ana")
    await bot.say("ana> a message from work, not counted")
    assert await activity_rows(bot, "ana") == before
    await bot.say("ana.home> !profile set tracking on")
    await bot.say("ana> counted again")
    assert await activity_rows(bot, "ana") == before + 1
    await bot.say("ana> !profile set tracking off")
    home = await activity_rows(bot, "ana.home")
    await bot.say("ana.home> nor this one")
    assert await activity_rows(bot, "ana.home") == home


async def test_a_level_is_set_and_listed_by_the_name_the_community_gives_it(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    names = {"core": "Stewards", "active": "Regulars"}
    bot = await console_bot_factory([Roles], plugins={"roles": {"names": names}})
    await bot.say("ana> hi")
    assert reply(await bot.say("!role set @ana stewards she runs the group")) == "ana: peripheral → Stewards."
    assert await level_of(bot, "ana") == "core"
    assert reply(await bot.say("!role list Stewards")) == "Stewards (1): ana"
    assert reply(await bot.say("!role list core")) == "Stewards (1): ana"  # the level's own word still works
    wrong = reply(await bot.say("!role set @ana leaders"))
    assert wrong.startswith(
        "<level> must be one of Stewards (core), Regulars (active), occasional, peripheral, transactional; "
        "not 'leaders'"
    )
    assert await level_of(bot, "ana") == "core"
    async with bot.services.db.session() as session:
        assert int(await session.scalar(select(func.count()).select_from(LevelChange)) or 0) == 1


@pytest.mark.parametrize(
    ("names", "said"),
    [
        ({"core": "Active"}, "'Active' names both active and core"),
        ({"core": "Leads", "active": "leads"}, "'leads' names both core and active"),
        ({"core": "  "}, "the name of core must be 1 to 100 printable characters"),
        ({"core": "Lead\nteam"}, "the name of core must be 1 to 100 printable characters"),
    ],
)
def test_level_names_members_could_not_tell_apart_are_refused(names: dict[str, str], said: str) -> None:
    from pydantic import ValidationError

    from plugins.roles.config import RolesConfig

    with pytest.raises(ValidationError) as refused:
        RolesConfig.model_validate({"names": names})
    assert said in str(refused.value)


async def test_a_moderator_may_step_down_but_not_raise_their_own_level(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """Only another moderator, or an admin listed in copbot's config, moves a moderator inward: a moderator
    by the platform's word (here the console's) making themselves core is refused with one line."""
    bot = await console_bot_factory([Roles])
    await bot.say("hi")
    await bot.say("bo> hi")
    refused = reply(await bot.say("!role set @you core I coordinate now"))
    assert refused == (
        "You cannot raise your own level (peripheral → core): another moderator can, or an admin listed "
        "in copbot's config. Nothing was changed."
    )
    async with bot.services.db.session() as session:
        assert int(await session.scalar(select(func.count()).select_from(LevelChange)) or 0) == 0
        level = await session.scalar(
            select(Membership.level).join(MemberRow).where(MemberRow.platform_id == "you")
        )
    assert level == "peripheral"
    assert reply(await bot.say("!role set @you transactional stepping back")) == (
        "you: peripheral → transactional."
    )
    assert reply(await bot.say("!role set @bo core runs the group")) == "bo: peripheral → core."
    await bot.bot.stop()

    listed = {"slug": "cop", "name": "CoP", "moderators": ["console:you"]}  # the community's, in the config
    admin = await console_bot_factory([Roles], communities=[listed])
    assert reply(await admin.say("!role set @you core I coordinate")) == "you: transactional → core."


async def test_a_partial_weights_table_keeps_the_other_defaults(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """`weights = { poll_vote = 2 }` replaced the defaults whole: messages then counted 0 and every member
    drifted to peripheral. A partial table changes only the kinds it names."""
    bot = await console_bot_factory([Roles], plugins={"roles": {"weights": {"poll_vote": 2}}})
    await bot.say("ana> hello, I am new here")
    shown = await bot.say("ana> !role show")
    assert shown[2] == "    Last 30 days: score 1 (message 1), 0 contributions, 1 active day"
    roles = bot.services.registry.plugins["roles"]
    assert roles.config.weights["poll_vote"] == 2 and roles.config.weights["message"] == 1
    async with bot.services.db.session() as session:
        kinds = (await session.execute(select(ActivityEvent.kind))).scalars().all()
    assert "message" in kinds
