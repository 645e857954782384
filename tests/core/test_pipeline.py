"""The command and event pipeline, driven through the console adapter and checked in the database."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot import store
from bot.commands import Text
from bot.context import Context
from bot.errors import UsageError
from bot.model import Member, MemberJoined, Message, MessageCreated, ReactionAdded
from bot.pipeline import CANNOT_SAVE
from bot.plugin import Plugin, PluginConfig, command, listen
from bot.tables import ActivityEvent, HandledEvent, MemberRow, StateRow
from tests.harness.refused_writes import RefusedWrites


class NotesConfig(PluginConfig):
    greeting: str = "hello"


class Notes(Plugin):
    """A small plugin that writes to the database, so tests can see what was kept."""

    name = "notes"
    Config = NotesConfig

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []
        self.seen: list[object] = []

    @command("note set", mod=True, examples=("note set Meeting moved to Friday",))
    async def set_note(self, ctx: Context, text: Text) -> None:
        """Pin the community's note."""
        self.calls.append(text)
        await store.put_state(ctx.session, "notes", "pinned", text, ctx.now())
        await ctx.reply(f"{self.config.greeting}: noted")

    @command("note count", examples=("note count 3",))
    async def count(self, ctx: Context, times: int, *, every: timedelta | None = None) -> None:
        """Repeat a count."""
        await store.put_state(ctx.session, "notes", "count", str(times), ctx.now())
        if times > 10:
            raise UsageError("times must be at most 10")
        await ctx.reply(" ".join(str(n) for n in range(1, times + 1)))

    @command("note later", examples=("note later remember the milk",))
    async def later(self, ctx: Context, text: Text) -> None:
        """Keep a note, written when the command commits (an ORM row, not flushed before)."""
        ctx.session.add(StateRow(scope="notes", key="later", value=text, updated_at=ctx.now()))
        await ctx.reply("kept for later")

    @command("note crash")
    async def crash(self, ctx: Context) -> None:
        """Fail on purpose."""
        await store.put_state(ctx.session, "notes", "crash", "written before the crash", ctx.now())
        raise RuntimeError("boom")

    @listen(ReactionAdded)
    async def on_reaction(self, ctx: Context, event: ReactionAdded) -> None:
        self.seen.append(event)

    @listen(MemberJoined)
    async def on_join(self, ctx: Context, event: MemberJoined) -> None:
        self.seen.append(event)
        await ctx.send(ctx.room, f"welcome {ctx.mention(event.member)}")


async def _count(bot, model) -> int:  # type: ignore[no-untyped-def]
    async with bot.services.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _state(bot, key: str) -> str | None:  # type: ignore[no-untyped-def]
    async with bot.services.db.session() as session:
        return await store.get_state(session, "notes", key)


async def test_moderator_command_runs_and_is_recorded(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Notes])
    lines = await bot.say("!note set Meeting moved to Friday")
    assert lines == ["[1] you> !note set Meeting moved to Friday", "[2] copbot> hello: noted"]
    assert await _state(bot, "pinned") == "Meeting moved to Friday"
    async with bot.services.db.session() as session:
        activity = (await session.execute(select(ActivityEvent))).scalars().all()
    assert [(a.kind, a.detail, a.platform) for a in activity] == [("command", "note set", "console")]


async def test_permission_refusal_writes_nothing(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Notes])
    lines = await bot.say("ana> !note set I am not a moderator")
    assert lines[1] == "[2] copbot> !note set is for moderators only; nothing was changed."
    assert bot.bot.registry.plugins["notes"].calls == []
    assert await _state(bot, "pinned") is None
    assert await _count(bot, ActivityEvent) == 0
    assert await _count(bot, MemberRow) == 0
    assert await _count(bot, StateRow) == 0
    counters = bot.services.metrics.render().decode()
    assert 'copbot_commands_total{command="note set",outcome="refused"} 1.0' in counters


async def test_malformed_arguments_get_one_line_with_usage_and_write_nothing(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Notes])
    lines = await bot.say("!note count three")
    assert lines[1] == (
        "[2] copbot> <times> must be a whole number, not 'three'. "
        "Usage: !note count <times> [--every <duration>] — e.g. !note count 3"
    )
    lines = await bot.say("!note count 3 --every soon")
    assert "--every: 'soon' is not a duration" in lines[1]
    lines = await bot.say("!note count 11")  # the handler wrote, then refused: nothing is kept
    assert lines[1].startswith("[6] copbot> times must be at most 10. Usage: !note count")
    assert await _state(bot, "count") is None
    assert await _count(bot, ActivityEvent) == 0


async def test_unknown_command_names_the_closest_and_help(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Notes])
    assert (await bot.say("!stauts"))[1] == (
        "[2] copbot> Unknown command !stauts — did you mean !status? Type !help for the list."
    )
    assert (await bot.say("!note sett x"))[1] == (
        "[4] copbot> !note sett is not a command — did you mean !note set? "
        "(!note has: count, crash, later, set)"
    )


async def test_failing_handler_is_logged_member_gets_apology_bot_keeps_running(  # type: ignore[no-untyped-def]
    console_bot_factory, caplog
) -> None:
    bot = await console_bot_factory([Notes])
    lines = await bot.say("ana> !note crash")
    assert lines[1].startswith("[2] copbot> Sorry, something went wrong on my side")
    assert await _state(bot, "crash") is None
    failure = [r for r in caplog.records if r.levelname == "ERROR"]
    assert failure and "note crash" in failure[0].getMessage() and "console:ana" in failure[0].getMessage()
    assert failure[0].exc_info is not None
    assert (await bot.say("!note count 2"))[1] == "[4] copbot> 1 2"


async def test_an_event_delivered_twice_is_handled_once(console_bot_factory, clock) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Notes])
    adapter = bot.adapter
    author = Member("console", "you", "you")
    message = Message(id="m1", room=adapter.room, author=author, text="!note set once")
    event = MessageCreated(event_id="delivery-1", room=adapter.room, at=clock.now(), message=message)
    await bot.bot.pipeline.handle(adapter, event)
    await bot.bot.pipeline.handle(adapter, event)
    assert bot.bot.registry.plugins["notes"].calls == ["once"]
    assert [line for line in bot.new_lines() if "noted" in line] == ["[1] copbot> hello: noted"]
    reaction = ReactionAdded(
        event_id="delivery-2", room=adapter.room, at=clock.now(), member=author, message_id="m1", emoji="👍"
    )
    await bot.bot.pipeline.handle(adapter, reaction)
    await bot.bot.pipeline.handle(adapter, reaction)
    await bot.bot.pipeline.journal.flush()
    assert len(bot.bot.registry.plugins["notes"].seen) == 1
    assert await _count(bot, HandledEvent) == 2
    async with bot.services.db.session() as session:
        kinds = (await session.execute(select(ActivityEvent.kind))).scalars().all()
    assert sorted(kinds) == ["command", "reaction"]


async def test_listeners_get_console_joins_and_reactions(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Notes])
    await bot.say("ana> hello everyone")
    lines = await bot.say(":join bo")
    assert lines == ["[2] * bo joined", "[3] copbot> welcome @bo"]
    assert (await bot.say(":react bo 1 🎉")) == ["[4] * bo reacted 🎉 to [1]"]
    seen = bot.bot.registry.plugins["notes"].seen
    assert [type(event).__name__ for event in seen] == ["MemberJoined", "ReactionAdded"]
    assert seen[1].message_id == "1" and seen[1].emoji == "🎉"
    async with bot.services.db.session() as session:
        kinds = (await session.execute(select(ActivityEvent.kind).order_by(ActivityEvent.id))).scalars().all()
    assert kinds == ["message", "reaction"]


async def test_help_lists_only_what_the_caller_may_use(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Notes])
    member_help = "\n".join(await bot.say("ana> !help"))
    assert "!note count" in member_help and "!note set" not in member_help and "!status" not in member_help
    mod_help = "\n".join(await bot.say("!help"))
    assert "!note set" in mod_help and "!status" in mod_help
    detail = await bot.say("!help note count")
    assert detail[1] == "[6] copbot> !note count <times> [--every <duration>]"
    assert "Examples: !note count 3" in detail[-1]
    assert (await bot.say("ana> !help note set"))[1] == "[8] copbot> !note set is for moderators only."


async def test_help_for_a_mistyped_command_names_the_one_meant(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    """As the mistyped command itself does: `!help note cuont` used to say only that there is none."""
    bot = await console_bot_factory([Notes])
    assert (await bot.say("ana> !help note cuont"))[1] == (
        "[2] copbot> !note cuont is not a command — did you mean !note count? "
        "(!note has: count, crash, later)"
    )
    assert (await bot.say("!help stauts"))[1] == (
        "[4] copbot> Unknown command !stauts — did you mean !status? Type !help for the list."
    )
    assert (await bot.say("ana> !help stauts"))[1] == (  # never a command the caller may not use
        "[6] copbot> Unknown command !stauts. Type !help for the list."
    )
    assert (await bot.say("!help !"))[1] == "[8] copbot> There is no command !; type !help for the list."


async def test_status_for_moderators(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    bot = await console_bot_factory([Notes])
    lines = await bot.say("!status")
    text = "\n".join(lines)
    assert "Platforms: console (connected)" in text
    assert "Plugins: core, notes" in text
    assert "Database: SQLite" in text


async def test_joins_and_leaves_are_tracked_and_a_return_is_recognised(console_bot_factory) -> None:  # type: ignore[no-untyped-def]
    from bot.tables import Membership

    bot = await console_bot_factory([Notes])
    await bot.say(":join bo")
    await bot.say(":leave bo")
    async with bot.services.db.session() as session:
        row = (await session.execute(select(Membership))).scalar_one()
        assert row.left_at is not None
    await bot.say(":join bo")
    joins = [e for e in bot.bot.registry.plugins["notes"].seen if isinstance(e, MemberJoined)]
    assert [e.returning for e in joins] == [False, True]
    async with bot.services.db.session() as session:
        assert await store.current_members(session, bot.bot.registry.community_ids["cop"], "console") == {
            "bo": row.member_id
        }


async def test_a_database_refusing_the_commit_of_a_command_tells_the_member_and_keeps_nothing(  # type: ignore[no-untyped-def]
    console_bot_factory, clock, caplog
) -> None:
    """The handled id is the unit of work's first write here (the handler's row is flushed at the commit):
    on SQLite it goes to the driver directly, and a refusal there is still the database refusing — the
    member is told, one line is logged without a traceback, nothing is kept, and the next try works."""
    bot = await console_bot_factory([Notes])
    assert (await bot.say("!note count 1"))[1] == "[2] copbot> 1"  # known, and its unit of work done
    author = Member("console", "you", "you")
    text = "!note later remember the milk"
    message = Message(id="m1", room=bot.adapter.room, author=author, text=text)
    command = MessageCreated(event_id="later-1", room=bot.adapter.room, at=clock.now(), message=message)
    caplog.clear()
    refused = RefusedWrites(bot.services.db, "read-only")
    try:
        await bot.bot.pipeline.handle(bot.adapter, command)
        assert bot.new_lines()[-1] == f"[4] copbot> {CANNOT_SAVE}"
        errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
        assert len(errors) == 1 and errors[0].startswith("database: cannot write to")
        assert "check permissions" in errors[0]
        assert all(record.exc_info is None for record in caplog.records)
        refused.lift()
        assert await _state(bot, "later") is None
        assert await _count(bot, HandledEvent) == 1  # the first command's only
        again = MessageCreated(event_id="later-2", room=bot.adapter.room, at=clock.now(), message=message)
        await bot.bot.pipeline.handle(bot.adapter, again)  # the member tries again: answered and kept
    finally:
        refused.remove()
    assert bot.new_lines()[-1] == "[5] copbot> kept for later"
    assert await _state(bot, "later") == "remember the milk"
