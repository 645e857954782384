"""Value creation: is the community worth it to its members? — stories, indicators per cycle, a report.

Following Wenger, Trayner & de Laat (2011), the value a community creates is looked at in five cycles —
immediate, potential, applied, realized and reframing value (see ``indicators.py``). copbot's own data
gives indicators for the first cycles; for the later ones only members can tell, so on a schedule
(monthly by default, in each community's zone) members who took part in the period are asked by direct
message for a short story, which of five plain statements fits it, and whether it may be shown. Anyone
can tell one unprompted with ``value story``. ``value report`` puts indicators and stories side by side
for moderators; ``/c/<slug>/value`` shows the matrix and the stories authors agreed to show.

Members choose: ``profile set prompts off`` (or ``never`` in the conversation) stops the questions;
a story is shown only with its author's consent, and with their name only if they chose
``profile set public on``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.arguments import short_answer
from bot.commands import Text
from bot.config_values import CronSchedule, PerCommunity
from bot.context import Context, JobContext
from bot.errors import Undeliverable, UsageError
from bot.model import ButtonClicked, Capability, CommandAnswered, Content, Member, MessageCreated
from bot.plugin import Panel, Plugin, PluginConfig, command, listen, route, schedule
from bot.tables import MemberRow
from plugins.value import conversation, indicators, queries
from plugins.value.indicators import CYCLE_INFO, CYCLES, Indicator
from plugins.value.models import MAX_STORY, Prompt, Round, Story

if TYPE_CHECKING:
    from aiohttp import web

Cycle = Literal["immediate", "potential", "applied", "realized", "reframing"]
ANONYMOUS = "a member"


class ValueConfig(PluginConfig):
    schedule: CronSchedule = Field(
        default="0 10 1 * *",
        description="cron for the story prompts, in each community's zone; '' = no prompts",
    )
    community_schedules: Annotated[dict[str, CronSchedule], PerCommunity] = Field(
        default_factory=dict,
        description="community slug → its own cron ('' = none there)",
        examples=[{"water": "0 10 1 */3 *"}],
    )
    window_days: int = Field(default=30, ge=1, le=366, description="the period the indicators cover")
    expire_days: int = Field(default=7, ge=1, le=90, description="an unanswered conversation ends quietly")


@dataclass(frozen=True)
class Row:
    indicator: Indicator
    now: str
    before: str


@dataclass(frozen=True)
class CycleBlock:
    cycle: indicators.Cycle
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Matrix:
    start: datetime
    end: datetime
    blocks: tuple[CycleBlock, ...]
    unplaced: int  # stories of the period whose author has not chosen a cycle (yet)


class Value(Plugin):
    name = "value"
    activity_kinds = frozenset({"value_story"})
    description = "value-creation stories and indicators (immediate … reframing value)"
    Config = ValueConfig
    config: ValueConfig

    async def setup(self) -> None:
        await self.schedule_per_community(
            job_id, "value.prompt_round", self.config.schedule, self.config.community_schedules
        )

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.config.window_days)

    # --- the rounds -------------------------------------------------------------------------------------

    @schedule("prompt_round")
    async def prompt_round(self, ctx: JobContext, community: str) -> None:
        """Ask the members active since the last round, once per period (also across restarts)."""
        registry = self.services.registry
        if registry is None or community not in registry.community_ids:
            return
        community_id = registry.community_ids[community]
        end = ctx.due_at or ctx.now()
        last = await queries.last_round(ctx.session, community_id)
        if last is not None and last.period_end >= end:
            return  # this period's round ran already
        start = last.period_end if last is not None else end - self.window
        now = ctx.now()
        await queries.expire_prompts(ctx.session, now)
        asked = 0
        name = registry.communities[community_id].name
        previous = last.ran_at if last is not None else None
        for row in await queries.to_ask(ctx.session, community_id, start, end, now, previous):
            adapter = self.services.adapters.get(row.platform)
            if adapter is None or Capability.DIRECT_MESSAGES not in adapter.capabilities:
                continue
            assert row.id is not None
            ctx.session.add(
                Prompt(
                    community_id=community_id,
                    member_id=row.id,
                    asked_at=now,
                    expires_at=now + timedelta(days=self.config.expire_days),
                )
            )
            member = store.as_member(row)
            # a job's messages go through the outbox: one to a member taking no DMs is given up there
            await ctx.send_direct(member, conversation.story_question(member.display_name, name))
            asked += 1
        ctx.session.add(
            Round(community_id=community_id, period_start=start, period_end=end, ran_at=now, asked=asked)
        )
        await ctx.session.flush()  # the period is taken: a second run of it fails here, before any DM
        self.log.info("value round for %s: asked %d members", community, asked)

    # --- the conversation -------------------------------------------------------------------------------

    @listen(MessageCreated)
    async def on_direct_message(self, ctx: Context, event: MessageCreated) -> None:
        """An answer to the pending question. A message onboarding took (it goes first) is not one; if it
        ended onboarding, the story question, long scrolled away, is asked again below onboarding's end."""
        if not event.room.is_direct or ctx.author is None or ctx.author_id is None:
            return
        if not ctx.consumed:
            await self._answer(ctx, ctx.author, ctx.author_id, event.message.text)
        elif not await queries.onboarding_waits(ctx.session, ctx.author_id, ctx.now()):
            await self._ask_again(ctx, ctx.author, ctx.author_id)

    @listen(CommandAnswered)
    async def on_command_answered(self, ctx: Context, event: CommandAnswered) -> None:
        """A command typed mid-conversation pushes the question up, out of sight: ask it again below the
        answer, once, so the member's next message answers a question they can see. ``value story`` has
        just asked its own question.

        Onboarding goes first: while it waits in the same chat, it alone asks its question again (and the
        member's next message answers it, see :meth:`on_direct_message`); a story question below it would
        leave one message answering two. Rounds skip members in onboarding for the same reason."""
        if ctx.author_id is None or event.command == "value story":
            return
        if not await queries.onboarding_waits(ctx.session, ctx.author_id, ctx.now()):
            await self._ask_again(ctx, event.member, ctx.author_id)

    async def _ask_again(self, ctx: Context, member: Member, member_id: int) -> None:
        """The pending question once more, under a short lead, if a conversation still waits for it."""
        prompt = await queries.open_prompt(ctx.session, member_id)
        if prompt is None or prompt.expires_at <= ctx.now():  # none, or expired: _answer ends that quietly
            return
        story = await ctx.session.get(Story, prompt.story_id) if prompt.story_id is not None else None
        prompted = story is None or story.source == "prompt"
        row = await ctx.session.get(MemberRow, member_id)
        if prompted and row is not None and not row.prompts:  # opted out: _answer ends it, nothing to ask
            return
        question = conversation.pending_question(
            prompt.step, member_id, ctx.adapter.capabilities, prompted=prompted, lead=conversation.AGAIN
        )
        await self._ask(ctx, member, prompt, question)

    @listen(ButtonClicked)
    async def on_menu(self, ctx: Context, event: ButtonClicked) -> None:
        """The select menus (Discord) answer the cycle and the public question."""
        parts = event.custom_id.split(":")
        if len(parts) != 3 or not event.values or not parts[2].isdigit() or ctx.author_id != int(parts[2]):
            return
        prompt = await queries.open_prompt(ctx.session, ctx.author_id)
        expected = {"cycle": 1, "public": 2}.get(parts[1])
        if prompt is None or prompt.step != expected:
            return
        choice = event.values[0]
        said = (
            CYCLE_INFO[choice].name
            if choice in CYCLE_INFO
            else {"yes": "may be shown"}.get(choice, "private")
        )
        await ctx.reply(Content(f"Noted: {said}", ephemeral=True))
        await self._answer(ctx, event.member, ctx.author_id, choice)

    async def _answer(self, ctx: Context, member: Member, member_id: int, text: str) -> None:
        prompt = await queries.open_prompt(ctx.session, member_id)
        if prompt is None:
            return
        now = ctx.now()
        if prompt.expires_at <= now:  # ends quietly: the member has moved on, this is something else
            prompt.ended_at, prompt.outcome = now, "expired"
            return
        story = await ctx.session.get(Story, prompt.story_id) if prompt.story_id is not None else None
        prompted = story is None or story.source == "prompt"
        row = await ctx.session.get(MemberRow, member_id)
        if prompted and row is not None and not row.prompts:  # opted out meanwhile (profile set prompts off)
            prompt.ended_at, prompt.outcome = now, "opted_out"
            return
        ctx.consumed = True  # an answer to our question, not a message that needs a "type !help" hint
        answer = " ".join(text.strip().split())
        word = short_answer(answer)
        if word in conversation.STOP:
            prompt.ended_at, prompt.outcome = now, "stopped"
            await self._tell(ctx, member, f"Stopped here — thank you. {_kept(story)}".rstrip())
            return
        if word in conversation.NEVER:
            prompt.ended_at, prompt.outcome = now, "opted_out"
            if row is not None:
                row.prompts = False
                ctx.member_changed(member)
            kept = f" {_kept(story)}" if story is not None else ""
            await self._tell(
                ctx,
                member,
                f"Understood: I will not ask you again.{kept} "
                f"Changed your mind? {ctx.prefix}profile set prompts on",
            )
            return
        skip = word in conversation.SKIP
        capabilities = ctx.adapter.capabilities
        if prompt.step == 0:
            if skip:
                prompt.ended_at, prompt.outcome = now, "skipped"
                await self._tell(
                    ctx,
                    member,
                    "No story this time — thank you all the same. Whenever something comes to mind: "
                    f"{ctx.prefix}value story …",
                )
                return
            told = text.strip()
            if len(told) > MAX_STORY:
                hint = (
                    f"That is {len(told):,} characters; a story has at most {MAX_STORY:,}. "
                    "Shorten it, or skip."
                )
                await self._ask(ctx, member, prompt, conversation.again_story_question(hint))
                return
            story = Story(
                community_id=prompt.community_id,
                author_id=member_id,
                text=told,
                source="prompt",
                created_at=now,
            )
            ctx.session.add(story)
            await ctx.session.flush()
            prompt.story_id, prompt.step = story.id, 1
            ctx.count_activity("value_story", f"story {story.id}", community_id=prompt.community_id)
            await self._ask(
                ctx,
                member,
                prompt,
                conversation.cycle_question(member_id, capabilities, prompted=True, lead="Thank you!"),
            )
            return
        assert story is not None
        if prompt.step == 1:
            if not skip:
                cycle = indicators.parse_cycle(answer)
                if cycle is None:
                    hint = (
                        f"'{answer[:40]}' is not one of the five; answer with a number from 1 to 5, or skip."
                    )
                    await self._ask(
                        ctx,
                        member,
                        prompt,
                        conversation.cycle_question(member_id, capabilities, prompted=prompted, lead=hint),
                    )
                    return
                story.cycle = cycle
            if story.public:  # already agreed (`value story … --public`): nothing more to ask
                await self._finish(ctx, member, prompt, story)
                return
            prompt.step = 2
            await self._ask(
                ctx, member, prompt, conversation.public_question(member_id, capabilities, prompted=prompted)
            )
            return
        if not skip:
            public = conversation.yes_or_no(answer)
            if public is None:
                await self._ask(
                    ctx,
                    member,
                    prompt,
                    conversation.public_question(
                        member_id, capabilities, prompted=prompted, lead="Please answer yes or no (or skip)."
                    ),
                )
                return
            story.public = public
        await self._finish(ctx, member, prompt, story)

    async def _finish(self, ctx: Context, member: Member, prompt: Prompt, story: Story) -> None:
        prompt.ended_at, prompt.outcome = ctx.now(), "done"
        await self._tell(
            ctx,
            member,
            f"Thank you! Your story is saved — {_described(story)}. "
            f"Tell another whenever you like: {ctx.prefix}value story …",
        )

    async def _tell(self, ctx: Context, member: Member, content: str | Content) -> bool:
        """A message of the conversation by direct message. One the platform refuses (direct messages
        closed) is one line in the log, not a failure: what the member said is kept (a failure would roll
        it back). False when refused."""
        try:
            await ctx.send_direct(member, content)
        except Undeliverable as error:
            self.log.info(
                "value: %r (%s) could not be told by direct message: %s",
                member.display_name,
                member.key,
                error,
            )
            return False
        return True

    async def _ask(self, ctx: Context, member: Member, prompt: Prompt, question: str | Content) -> bool:
        """A question of the conversation; one that cannot reach the member ends it (``unreachable``), so
        that no answer is awaited to a question never seen. False when refused."""
        if await self._tell(ctx, member, question):
            return True
        prompt.ended_at, prompt.outcome = ctx.now(), "unreachable"
        return False

    # --- telling one unprompted -------------------------------------------------------------------------

    @command(
        "value story",
        examples=(
            "value story The leak-map session saved us a week of field work --cycle realized",
            "value story I met Bo at the call and we now share our pump data --public",
        ),
    )
    async def story(
        self, ctx: Context, text: Text, *, cycle: Cycle | None = None, public: bool = False
    ) -> None:
        """Tell what the community was worth to you: what you took from it, and what it changed.

        Without --cycle I ask you by direct message which of five statements fits, and whether it may be
        shown. A story is shown (on the value page, in reports) only if you agree; your name with it only
        if you chose profile set public on.

        Args:
            text: your story, up to 2,000 characters
            cycle: immediate, potential, applied, realized or reframing value
            public: it may be shown to the community
        """
        assert ctx.author is not None and ctx.author_id is not None
        told = text.strip()
        if not told:
            raise UsageError("the story is missing")
        if len(told) > MAX_STORY:
            raise UsageError(f"a story has at most {MAX_STORY:,} characters (this one has {len(told):,})")
        community_id = await self._community_of(ctx)
        now = ctx.now()
        story = Story(
            community_id=community_id,
            author_id=ctx.author_id,
            text=told,
            cycle=cycle,
            public=public,
            source="unprompted",
            created_at=now,
        )
        ctx.session.add(story)
        await ctx.session.flush()
        ctx.count_activity("value_story", f"story {story.id}", community_id=community_id)
        # This story answers any question still open (a round's "what did you take…"): ended, so that the
        # member's next direct message is not taken for another story, nor for this one's cycle.
        await queries.end_open_prompts(ctx.session, ctx.author_id, now, "replaced")
        if cycle is not None:
            how = (
                "it may be shown to the community"
                if public
                else "kept private (add --public to let it be shown)"
            )
            await ctx.reply(f"Thank you! Your story is saved as {CYCLE_INFO[cycle].name.lower()}, {how}.")
            return
        prompt = Prompt(
            community_id=community_id,
            member_id=ctx.author_id,
            story_id=story.id,
            step=1,
            asked_at=now,
            expires_at=now + timedelta(days=self.config.expire_days),
        )
        ctx.session.add(prompt)
        question = conversation.cycle_question(
            ctx.author_id, ctx.adapter.capabilities, prompted=False, lead="Thanks for your story!"
        )
        if not await self._ask(ctx, ctx.author, prompt, question):
            await ctx.reply(
                Content(
                    "Thank you! Your story is saved, kept private. I could not send you the question about "
                    "it by direct message; next time add --cycle (immediate, potential, applied, realized or "
                    "reframing) and --public if it may be shown, or allow direct messages from this "
                    "community's members.",
                    ephemeral=True,
                )
            )
            return
        if not ctx.room.is_direct:
            await ctx.reply(
                "Thank you! Your story is saved; I have sent you a question about it in a direct message."
            )

    async def _community_of(self, ctx: Context) -> int:
        if ctx.community_id is not None:
            return ctx.community_id
        assert ctx.author_id is not None
        mine = await queries.communities_of(ctx.session, ctx.author_id)
        if len(mine) == 1:
            return mine[0]
        raise UsageError("tell it in a room of the community it is about, so I know which one")

    # --- the member's own data --------------------------------------------------------------------------

    async def personal_data(self, session: AsyncSession, member_ids: Sequence[int]) -> Mapping[str, Any]:
        from plugins.value import privacy  # only when a member's data is exported or forgotten

        return await privacy.personal_data(session, member_ids)

    async def forget(
        self, session: AsyncSession, member_ids: Sequence[int], *, remove_items: bool
    ) -> Sequence[str]:
        from plugins.value import privacy  # only when a member's data is exported or forgotten

        return await privacy.forget(session, member_ids, remove_items=remove_items)

    # --- the matrix -------------------------------------------------------------------------------------

    async def periods(
        self, session: AsyncSession, community_id: int, now: datetime
    ) -> tuple[datetime, datetime, dict[str, int], dict[str, int]]:
        """The period ending ``now`` (start, end) and the raw figures of it and of the one before it."""
        end = now + timedelta(seconds=1)  # what happened this very second counts too
        start, before = end - self.window, end - 2 * self.window
        ties = await queries.tie_times(session, community_id, end)
        current = await queries.figures(session, community_id, start, end, ties)
        previous = await queries.figures(session, community_id, before, start, ties)
        return start, end, current, previous

    async def matrix(self, session: AsyncSession, community_id: int, now: datetime) -> Matrix:
        """Every indicator for the period ending now and the one before it, per cycle."""
        start, end, current, previous = await self.periods(session, community_id, now)
        blocks = tuple(
            CycleBlock(
                CYCLE_INFO[cycle],
                tuple(
                    Row(
                        indicator, indicators.shown(indicator, current), indicators.shown(indicator, previous)
                    )
                    for indicator in indicators.of_cycle(cycle)
                ),
            )
            for cycle in CYCLES
        )
        unplaced = (await queries.stories_per_cycle(session, community_id, start, end)).get(None, 0)
        return Matrix(start, end, blocks, unplaced)

    @command("value report", mod=True, examples=("value report",), reads_activity=True)
    async def report(self, ctx: Context) -> None:
        """The value-creation matrix: indicators per cycle beside the period before, and the stories."""
        if ctx.community_id is None or ctx.community is None:
            raise UsageError("this room belongs to no community")
        now = ctx.now()
        start, end, current, previous = await self.periods(ctx.session, ctx.community_id, now)
        latest = await queries.latest_public(ctx.session, ctx.community_id)
        days = self.config.window_days
        lines = [
            f"Value creation in {ctx.community.name}, the last {days} days "
            f"(the {days} days before in brackets):"
        ]
        for cycle in CYCLES:
            info = CYCLE_INFO[cycle]
            lines.append(f"{info.name} — {info.question}")
            for indicator in indicators.of_cycle(cycle):
                lines.append(f"• {indicator.label}: {indicators.versus(indicator, current, previous)}")
            told = latest.get(cycle)
            if told is not None:
                line = indicators.first_line(told.story.text)
                lines.append(f"  latest story shared: “{line}” — {told.name or ANONYMOUS}")
        unplaced = (await queries.stories_per_cycle(ctx.session, ctx.community_id, start, end)).get(None, 0)
        if unplaced:
            lines.append(f"Stories whose author has not chosen a cycle yet: {unplaced}")
        await ctx.reply("\n".join(lines))

    # --- the dashboard and the page ---------------------------------------------------------------------

    async def panels(
        self, session: AsyncSession, community_id: int, now: datetime, tz: str
    ) -> Sequence[Panel]:
        """A small box: the stories of the period per cycle, with a link to the value page."""
        end = now + timedelta(seconds=1)
        told = await queries.stories_per_cycle(session, community_id, end - self.window, end)
        counted = [f"{CYCLE_INFO[c].name}: {told[c]}" for c in CYCLES if told.get(c)]
        lines = (f"Stories in the last {self.config.window_days} days: {sum(told.values())}", *counted)
        return (Panel("Value creation", tuple(lines), order=80, link=("Value-creation matrix", "value")),)

    @route("/c/{slug}/value")
    async def page(self, request: web.Request) -> web.Response:
        """The value-creation matrix (cycles × indicators, with the period before) and the public stories."""
        import aiohttp_jinja2

        from bot.web.pages import community_nav, open_community

        community, query = await open_community(request, self.services)
        registry = self.services.registry
        assert registry is not None
        community_id = registry.community_ids[community.slug]
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            matrix = await self.matrix(session, community_id, now)
            stories = await queries.public_stories(session, community_id)
        zone = ZoneInfo(community.timezone)
        return aiohttp_jinja2.render_template(
            "value/value.html",
            request,
            {
                "community": community,
                "q": query,
                "days": self.config.window_days,
                "period": _span(matrix.start, matrix.end, zone),
                "previous": _span(matrix.start - self.window, matrix.start, zone),
                "matrix": matrix,
                "nav": community_nav(self.services, community.slug, query),
                "definitions": definitions(),
                "stories": [
                    {
                        "cycle": CYCLE_INFO[told.story.cycle].name if told.story.cycle else "",
                        "date": told.story.created_at.astimezone(zone).strftime("%-d %b %Y"),
                        "text": told.story.text,
                        "name": told.name or ANONYMOUS,
                    }
                    for told in stories
                ],
            },
        )


def definitions() -> list[tuple[str, str, str]]:
    """(cycle, indicator, where it comes from) for the page: each indicator once, the stories once."""
    found = [
        (CYCLE_INFO[indicator.cycle].name, indicator.label, indicator.definition)
        for indicator in indicators.INDICATORS
        if not indicator.key.startswith("stories_")
    ]
    found.append(("Every cycle", "Stories", indicators.STORIES_DEFINITION))
    return found


def _kept(story: Story | None) -> str:
    if story is None:
        return ""
    return f"Your story is kept — {_described(story)}."


def _described(story: Story) -> str:
    cycle = CYCLE_INFO[story.cycle].name.lower() if story.cycle else "no cycle chosen"
    shown = "it may be shown to the community" if story.public else "kept private: only counted, never shown"
    return f"{cycle}, {shown}"


def _span(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    first, last = start.astimezone(zone), (end - timedelta(seconds=1)).astimezone(zone)
    return f"{first:%-d %b %Y} – {last:%-d %b %Y}"


def job_id(slug: str) -> str:
    return f"value:prompts:{slug}"
