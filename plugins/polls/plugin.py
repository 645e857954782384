"""Polls: the community decides together — which topic next, which date, which practice to adopt.

A poll is posted in the platform's own form where it has one (MSC3381 on Matrix, a native Discord poll when
it fits, buttons otherwise) and can always be voted with ``poll vote``.

The poll's own ``closes_at`` is its deadline: from that moment votes are refused and the poll shows as
closed, whether or not the close job has run yet. The close job posts the results; it is restored from the
polls themselves at every start (see :meth:`Polls.jobs`), so no close is ever lost with the job store.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.commands import Id, LastDay
from bot.context import Context, JobContext
from bot.errors import NotFound, Refused, Undeliverable, UsageError
from bot.model import Button, ButtonClicked, Capability, Content, PollSpec, PollVoted, Room
from bot.plugin import DigestSection, Job, Panel, Plugin, PluginConfig, command, listen, schedule, suggests
from bot.suggest import Suggestion, narrowed, suggestion
from bot.tables import ActivityEvent
from bot.timeparse import format_when, format_when_set
from plugins.polls.models import Poll, PollCount, PollForgottenVoter, PollVote, PollVoter
from plugins.polls.tally import (
    chart,
    check_poll,
    counts_response,
    parse_choices,
    response_answers,
    split_question,
    tally,
)

MAX_OPEN = timedelta(days=90)
PANEL_POLLS = 10


class PollsConfig(PluginConfig):
    hide_anonymous_results_until_closed: bool = False


class Polls(Plugin):
    name = "polls"
    activity_kinds = frozenset({"poll_vote"})
    description = "polls, native where the platform has them"
    Config = PollsConfig
    config: PollsConfig

    async def jobs(self, session: AsyncSession) -> Sequence[Job]:
        """Every open poll with a deadline has its close job, whatever happened to the job store."""
        open_polls = await session.execute(
            select(col(Poll.id), col(Poll.closes_at), col(Poll.community_id)).where(
                col(Poll.closed_at).is_(None),
                col(Poll.closes_at).is_not(None),
            )
        )
        return [
            Job(close_job(poll_id), closes_at, "polls.close", {"poll_id": poll_id}, community_id)
            for poll_id, closes_at, community_id in open_polls
            if closes_at is not None  # the query leaves those out
        ]

    # --- creating ---------------------------------------------------------------------------------------

    @command(
        "poll create",
        examples=(
            'poll create "Next meeting topic?" "Leak detection" "Smart metering" --closes 2d',
            'poll create "Which dates suit you?" Mon Tue Wed --multi',
        ),
    )
    async def create(
        self,
        ctx: Context,
        question: str,
        options: list[str],
        *,
        multi: bool = False,
        anonymous: bool = False,
        closes: LastDay | None = None,
    ) -> None:
        """Start a poll with 2–20 options.

        Args:
            question: what to decide (at most 300 characters)
            options: the choices (2–20, at most 100 characters each)
            multi: members may pick several options
            anonymous: nobody, moderators included, can see who voted what
            closes: when voting ends: a duration (2d), a time (friday 17:00), a day (friday: through it)
        """
        assert ctx.author_id is not None
        if ctx.room.is_direct:  # posted where it is created: here nobody else could see it or vote on it
            raise UsageError("start polls in the community's room, where everyone sees them and can vote")
        question, answers = check_poll(*split_question(question, options))
        if closes is not None:
            if closes <= ctx.now():
                raise UsageError(f"--closes: {format_when(closes, ctx.timezone)} has already passed")
            # "1m" was read a moment ago: a minute then is a few milliseconds less than a minute now
            if closes - ctx.now() < timedelta(minutes=1) - timedelta(seconds=5):
                raise UsageError("--closes must be at least a minute from now")
            if closes - ctx.now() > MAX_OPEN:
                raise UsageError(f"--closes must be within {MAX_OPEN.days} days")
        poll = Poll(
            community_id=ctx.community_id,
            platform=ctx.room.platform,
            room_id=ctx.room.id,
            question=question,
            options=json.dumps(list(answers)),
            multi=multi,
            anonymous=anonymous,
            creator_id=ctx.author_id,
            created_at=ctx.now(),
            closes_at=closes,
        )
        ctx.session.add(poll)
        await ctx.session.flush()
        assert poll.id is not None
        poll.message_id = await ctx.reply(self._poll_content(ctx, poll, answers))
        if closes is not None:
            await ctx.schedule_at(close_job(poll.id), closes, "polls.close", poll_id=poll.id)

    def _poll_content(self, ctx: Context, poll: Poll, answers: tuple[str, ...]) -> Content:
        assert poll.id is not None
        lines = [f"📊 Poll #{poll.id}: {poll.question}"]
        lines += [f"{number}. {answer}" for number, answer in enumerate(answers, start=1)]
        how = f"Vote with {ctx.prefix}poll vote {poll.id} <number>"
        if poll.multi:
            how += " (several allowed: 1,3)"
        if poll.anonymous:
            how += ". Anonymous: nobody sees who voted what"
            capabilities = ctx.adapter.capabilities
            if Capability.BUTTONS not in capabilities and Capability.DIRECT_MESSAGES in capabilities:
                # No private buttons here: a vote typed (or clicked in a native poll) in the room is public.
                how += (
                    f" — vote in a direct message to me ({ctx.prefix}poll vote {poll.id} <number>), "
                    "since what is posted in the room is public"
                )
        if poll.closes_at is not None:
            if Capability.TIMESTAMPS in ctx.adapter.capabilities:  # every reader sees it in their own zone
                how += f". Closes {ctx.when(poll.closes_at)}"
            else:  # a time being set: in the caller's zone, with UTC beside it (SPEC, times on screen)
                how += f". Closes {format_when_set(poll.closes_at, ctx.timezone)}"
        lines.append(how + ".")
        buttons: tuple[Button, ...] = ()
        if Capability.BUTTONS in ctx.adapter.capabilities:  # the fallback where no native poll fits
            buttons = tuple(
                Button(f"{number}. {answer}"[:80], f"polls:{poll.id}:{number - 1}")
                for number, answer in enumerate(answers, start=1)
            )
        # beside a native poll (Matrix, Discord), which shows the question and options itself: the rest
        beside = f"📊 Poll #{poll.id}. {how}."
        spec = PollSpec(poll.question, answers, poll.multi, poll.anonymous, poll.closes_at, beside)
        return Content("\n".join(lines), poll=spec, buttons=buttons)

    # --- voting -----------------------------------------------------------------------------------------

    @command("poll vote", examples=("poll vote 3 2", "poll vote 3 1,4"), reads_activity=True)
    async def vote(self, ctx: Context, poll_id: Id, choices: list[str]) -> None:
        """Vote in a poll (several options as 1,3 when the poll allows it).

        Args:
            poll_id: the poll's number, shown in the poll
            choices: the option number(s), or the options as written
        """
        assert ctx.author_id is not None
        poll = await self._poll(ctx, poll_id)
        _open(poll, ctx.now())
        usage = f"{ctx.prefix}poll vote {poll.id}"
        picked = parse_choices(choices, _options(poll), multi=poll.multi, usage=usage)
        if poll.anonymous:
            await self._not_voted_before_forgetting(ctx, poll)
        await self._store(ctx.session, poll, ctx.author_id, picked, ctx.now())
        await self._count_vote(ctx, poll, ctx.author_id)
        if poll.anonymous:  # what they chose is for their eyes only: never in the room
            await ctx.reply_privately(
                self._confirmation(poll, picked), public=f"Your vote in poll #{poll.id} is recorded."
            )
            return
        await ctx.reply(Content(self._confirmation(poll, picked), ephemeral=True))

    @listen(PollVoted)
    async def on_native_vote(self, ctx: Context, event: PollVoted) -> None:
        """A vote cast with the platform's own poll UI (MSC3381 responses, Discord poll votes)."""
        await self._activity_written()
        poll = await ctx.session.scalar(
            select(Poll).where(
                col(Poll.platform) == event.room.platform, col(Poll.message_id) == event.poll_message_id
            )
        )
        if poll is None or ctx.author_id is None:
            return
        if _closed(poll, event.at):
            return  # a response after the end (or after the deadline) does not count
        if poll.anonymous:
            try:
                await ctx.send_direct(
                    event.member,
                    f"Poll #{poll.id} is anonymous, so responses in the room are not counted (they are "
                    f"public). Vote here instead: {ctx.prefix}poll vote {poll.id} <number>",
                )
            except Undeliverable as error:  # direct messages closed: nothing was stored, nothing is lost
                self.log.info(
                    "%s's response in anonymous poll #%s is not counted, and they could not be told: %s",
                    event.member.key,
                    poll.id,
                    error,
                )
            return
        count = len(_options(poll))
        current = await ctx.session.get(PollVote, (poll.id, ctx.author_id))
        if not counts_response(
            at=event.at, previous_at=current.at if current else None, closed_at=poll.closed_at
        ):
            return  # an older response arriving late: only the latest counts
        mine = set(_choices(current)) if current else set()
        if event.mode == "set":
            answers = response_answers(event.answers, count, multi=poll.multi)
        elif event.mode == "add":
            added = response_answers(event.answers, count, multi=True)
            answers = None if added is None else tuple(sorted(mine | set(added))) if poll.multi else added
        else:
            answers = tuple(sorted(mine - set(event.answers)))
        if answers is None:
            return  # nothing valid in the response: ignored
        if not answers:
            if current is not None:
                await ctx.session.delete(current)
            return
        await self._store(ctx.session, poll, ctx.author_id, answers, event.at)
        await self._count_vote(ctx, poll, ctx.author_id)

    @listen(ButtonClicked)
    async def on_button(self, ctx: Context, event: ButtonClicked) -> None:
        """A click on a poll's button: a vote (toggling the option in a multiple-choice poll)."""
        parts = event.custom_id.split(":")
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit() or ctx.author_id is None:
            return
        await self._activity_written()
        poll = await ctx.session.get(Poll, int(parts[1]))
        if poll is None:
            raise NotFound("This poll no longer exists.")
        _open(poll, ctx.now())
        option = int(parts[2])
        if not 0 <= option < len(_options(poll)):
            return
        picked: tuple[int, ...] = (option,)
        if poll.multi and not poll.anonymous:
            current = await ctx.session.get(PollVote, (poll.id, ctx.author_id))
            mine = set(_choices(current)) if current else set()
            picked = tuple(sorted(mine ^ {option}))
        if poll.anonymous:
            await self._not_voted_before_forgetting(ctx, poll)
        if not picked:
            await ctx.session.execute(
                delete(PollVote).where(
                    col(PollVote.poll_id) == poll.id, col(PollVote.member_id) == ctx.author_id
                )
            )
            await ctx.reply(Content(f"Your vote in poll #{poll.id} is withdrawn.", ephemeral=True))
            return
        await self._store(ctx.session, poll, ctx.author_id, picked, ctx.now())
        await self._count_vote(ctx, poll, ctx.author_id)
        await ctx.reply(Content(self._confirmation(poll, picked), ephemeral=True))

    async def _activity_written(self) -> None:
        """Write the journal's buffer before a vote's unit of work opens, so :meth:`_count_vote` sees a
        vote counted a moment ago (Discord changes a vote as a removal and a new vote, seconds apart)."""
        pipeline = self.services.pipeline
        if pipeline is not None:
            await pipeline.activity_written()

    async def _count_vote(self, ctx: Context, poll: Poll, member_id: int) -> None:
        """Count a member's vote as activity once per poll, in the poll's community: the tally keeps one
        vote per member, so a changed vote (by command, poll UI or button) adds nothing to their level.
        Asked of the activity records, not of the vote row, which a withdrawn vote no longer has."""
        detail = f"poll {poll.id}"
        counted = await ctx.session.scalar(
            select(col(ActivityEvent.id))
            .where(
                col(ActivityEvent.member_id) == member_id,
                col(ActivityEvent.community_id) == poll.community_id,
                col(ActivityEvent.at) >= poll.created_at,
                col(ActivityEvent.kind) == "poll_vote",
                col(ActivityEvent.detail) == detail,
            )
            .limit(1)
        )
        if counted is None:
            ctx.count_activity("poll_vote", detail, community_id=poll.community_id)

    async def _not_voted_before_forgetting(self, ctx: Context, poll: Poll) -> None:
        """Refuse an account that voted in this anonymous poll before its person asked to be forgotten:
        that vote cannot be withdrawn (its choice was never stored), so it stays counted, and the account,
        met as a new member since, would count twice (see plugins/polls/privacy.py)."""
        marked = await ctx.session.scalar(
            select(col(PollForgottenVoter.marker)).where(col(PollForgottenVoter.poll_id) == poll.id).limit(1)
        )
        if marked is None or ctx.author is None or poll.id is None:
            return  # (almost always) nobody who voted here was forgotten since
        from bot.web.links import signing_key
        from plugins.polls.privacy import forgotten_mark  # only for a poll with such a mark

        key = await signing_key(ctx.session, self.services.settings.web.secret, ctx.now())
        mark = forgotten_mark(key, poll.id, ctx.author.platform, ctx.author.id)
        if await ctx.session.get(PollForgottenVoter, (poll.id, mark)) is not None:
            raise Refused(f"You have already voted in poll #{poll.id}; anonymous votes cannot be changed.")

    async def _store(
        self, session: AsyncSession, poll: Poll, member_id: int, picked: tuple[int, ...], at: datetime
    ) -> None:
        assert poll.id is not None
        if poll.anonymous:
            if await session.get(PollVoter, (poll.id, member_id)) is not None:
                raise Refused(
                    f"You have already voted in poll #{poll.id}; anonymous votes cannot be changed."
                )
            session.add(PollVoter(poll_id=poll.id, member_id=member_id))
            for option in picked:
                tally = await session.get(PollCount, (poll.id, option))
                if tally is None:
                    session.add(PollCount(poll_id=poll.id, option=option, count=1))
                else:
                    tally.count += 1
            return
        row = await session.get(PollVote, (poll.id, member_id))
        stored = ",".join(str(option) for option in picked)
        if row is None:
            session.add(PollVote(poll_id=poll.id, member_id=member_id, choices=stored, at=at))
        else:
            row.choices, row.at = stored, at

    def _confirmation(self, poll: Poll, picked: tuple[int, ...]) -> str:
        options = _options(poll)
        chosen = ", ".join(options[index] for index in picked)
        return f"Your vote in poll #{poll.id}: {chosen}" + (" (anonymous)" if poll.anonymous else "")

    # --- results and closing ----------------------------------------------------------------------------

    @command("poll results", examples=("poll results 3",))
    async def results(self, ctx: Context, poll_id: Id) -> None:
        """Show a poll's tally.

        Args:
            poll_id: the poll's number
        """
        poll = await self._poll(ctx, poll_id)
        closed = _closed(poll, ctx.now())
        if poll.anonymous and not closed and self.config.hide_anonymous_results_until_closed:
            raise Refused(f"Results of anonymous poll #{poll.id} are shown when it closes.")
        await ctx.reply(await self._results_text(ctx.session, poll, closed=closed))

    @command("poll close", owner=True, examples=("poll close 3",))
    async def close_command(self, ctx: Context, poll_id: Id) -> None:
        """Close a poll now and post its results (its creator or a moderator).

        Args:
            poll_id: the poll's number
        """
        poll = await self._poll(ctx, poll_id)
        if poll.creator_id != ctx.author_id and not ctx.is_moderator:
            raise Refused(
                f"Only the poll's creator or a moderator can close poll #{poll.id}; nothing was changed."
            )
        if _ended(poll, ctx.now()):
            shown = f"{ctx.prefix}poll results {poll.id}"
            raise Refused(f"Poll #{poll.id} is already closed; {shown} shows them.")
        await ctx.cancel_job(close_job(poll.id))
        await self._close(ctx.session, poll, ctx.now(), ctx.post)
        if (poll.platform, poll.room_id) != (ctx.room.platform, ctx.room.id):
            await ctx.reply(
                Content(f"Poll #{poll.id} is closed; the results are posted where it ran.", ephemeral=True)
            )

    @suggests("poll_id")
    async def suggest_polls(self, ctx: Context, typed: str) -> list[Suggestion]:
        """The community's open polls, newest first — all ``vote`` takes; ``close`` only the caller's
        unless they moderate (it refuses the others); ``results`` is offered the closed ones after them."""
        if ctx.community_id is None:
            return []
        query = select(col(Poll.id), col(Poll.question), col(Poll.closed_at)).where(
            col(Poll.community_id) == ctx.community_id
        )
        if ctx.command is not None and ctx.command.owner_only and not ctx.is_moderator:
            query = query.where(col(Poll.creator_id) == (ctx.author_id or 0))
        if ctx.command is None or ctx.command.name != "poll results":
            query = query.where(col(Poll.closed_at).is_(None))
        query = query.order_by(col(Poll.closed_at).is_not(None), col(Poll.id).desc())
        rows = await ctx.session.execute(narrowed(query, col(Poll.id), col(Poll.question), typed))
        return [
            suggestion(number, question, "closed" if closed else "")
            for number, question, closed in rows
            if number is not None
        ]

    @schedule("close")
    async def close(self, ctx: JobContext, poll_id: int) -> None:
        """The scheduled close; idempotent: a job that fires again finds the poll closed and does nothing.

        The poll closed at its deadline, however late copbot came back to post the results.
        """
        poll = await ctx.session.get(Poll, poll_id)
        if poll is None or poll.closed_at is not None:
            return
        deadline = poll.closes_at or ctx.now()
        await self._close(ctx.session, poll, min(deadline, ctx.now()), ctx.post)

    async def _close(
        self,
        session: AsyncSession,
        poll: Poll,
        closed_at: datetime,
        post: Callable[[Room, Content], Awaitable[None]],
    ) -> None:
        """Close and queue the results in the same unit of work: both happen, once, or neither does."""
        poll.closed_at = closed_at
        # the marks of forgotten voters served only to refuse them a second vote while it was open
        await session.execute(delete(PollForgottenVoter).where(col(PollForgottenVoter.poll_id) == poll.id))
        await session.flush()
        text = await self._results_text(session, poll, closed=True)
        room = Room(poll.platform, poll.room_id)
        await post(room, Content(text, ends_poll=poll.message_id or None))  # mentions nobody

    async def _totals(self, session: AsyncSession, poll: Poll) -> tuple[list[str], list[int], int]:
        """The options, the count per option, and how many voted."""
        return (await _totals_of(session, [poll]))[poll.id or 0]

    async def _results_text(self, session: AsyncSession, poll: Poll, *, closed: bool) -> str:
        options, totals, voters = await self._totals(session, poll)
        state = "closed" if closed else "open"
        head = f"📊 Poll #{poll.id} ({state}): {poll.question} — {voters} voter{'s' if voters != 1 else ''}"
        return "\n".join([head, *chart(options, totals, voters)])

    @command("poll list", examples=("poll list",))
    async def list_open(self, ctx: Context) -> None:
        """The open polls of this community."""
        polls = (
            (
                await ctx.session.execute(
                    select(Poll)
                    .where(
                        col(Poll.community_id) == ctx.community_id,
                        col(Poll.closed_at).is_(None),
                        or_(col(Poll.closes_at).is_(None), col(Poll.closes_at) > ctx.now()),
                    )
                    .order_by(col(Poll.id))
                )
            )
            .scalars()
            .all()
        )
        if not polls:
            await ctx.reply(f"No open polls. Start one with {ctx.prefix}poll create.")
            return
        lines = ["Open polls:"]
        for poll in polls:
            closes = f", closes {ctx.when(poll.closes_at)}" if poll.closes_at else ""
            lines.append(f"#{poll.id} {poll.question} ({len(_options(poll))} options{closes})")
        await ctx.reply("\n".join(lines))

    # --- the digest -------------------------------------------------------------------------------------

    async def digest(
        self, session: AsyncSession, community_id: int, start: datetime, end: datetime, tz: str
    ) -> Sequence[DigestSection]:
        """Polls still open at the end of the period, and the results of those that closed in it."""
        sections: list[DigestSection] = []
        open_polls = list(
            (
                await session.execute(
                    select(Poll)
                    .where(
                        col(Poll.community_id) == community_id,
                        col(Poll.created_at) < end,
                        col(Poll.closed_at).is_(None),
                        or_(col(Poll.closes_at).is_(None), col(Poll.closes_at) > end),
                    )
                    .order_by(col(Poll.id))
                    .limit(10)
                )
            ).scalars()
        )
        if open_polls:
            sections.append(
                DigestSection(
                    "Open polls",
                    tuple(
                        f"#{poll.id} {poll.question}"
                        + (f" (closes {format_when(poll.closes_at, tz)})" if poll.closes_at else "")
                        for poll in open_polls
                    ),
                    50,
                )
            )
        closed = list(
            (
                await session.execute(
                    select(Poll)
                    .where(
                        col(Poll.community_id) == community_id,
                        col(Poll.closed_at) >= start,
                        col(Poll.closed_at) < end,
                    )
                    .order_by(col(Poll.closed_at))
                    .limit(10)
                )
            ).scalars()
        )
        if closed:
            lines = []
            results = await _totals_of(session, closed)
            for poll in closed:
                options, totals, voters = results[poll.id or 0]
                people = f"{voters} voter{'s' if voters != 1 else ''}"
                if voters and max(totals):
                    top = max(totals)
                    leaders = " and ".join(o for o, t in zip(options, totals, strict=True) if t == top)
                    lines.append(
                        f"#{poll.id} {poll.question} — {leaders} ({round(100 * top / voters)}%, {people})"
                    )
                else:
                    lines.append(f"#{poll.id} {poll.question} — no votes")
            sections.append(DigestSection("Poll results", tuple(lines), 55))
        return sections

    # --- the dashboard ----------------------------------------------------------------------------------

    async def panels(
        self, session: AsyncSession, community_id: int, now: datetime, tz: str
    ) -> Sequence[Panel]:
        """The open polls, with how many have voted and when each closes (in the community's zone)."""
        polls = list(
            (
                await session.execute(
                    select(Poll)
                    .where(
                        col(Poll.community_id) == community_id,
                        col(Poll.closed_at).is_(None),
                        or_(col(Poll.closes_at).is_(None), col(Poll.closes_at) > now),
                    )
                    .order_by(col(Poll.id))
                    .limit(PANEL_POLLS + 1)
                )
            ).scalars()
        )
        if not polls:
            return (Panel("Open polls", ("No open polls.",), 30),)
        ids = [poll.id for poll in polls[:PANEL_POLLS]]
        voters: dict[int, int] = {}
        for table in (PollVote, PollVoter):
            rows = await session.execute(
                select(col(table.poll_id), func.count())
                .where(col(table.poll_id).in_(ids))
                .group_by(col(table.poll_id))
            )
            for poll_id, count in rows.all():
                voters[poll_id] = voters.get(poll_id, 0) + int(count)
        lines = []
        for poll in polls[:PANEL_POLLS]:
            voted = voters.get(poll.id or 0, 0)
            closes = f", closes {format_when(poll.closes_at, tz)}" if poll.closes_at else ""
            lines.append(
                f"#{poll.id} {poll.question} — {len(_options(poll))} options, "
                f"{voted} voter{'s' if voted != 1 else ''}{' (anonymous)' if poll.anonymous else ''}{closes}"
            )
        if len(polls) > PANEL_POLLS:
            lines.append("… and more: the chat's poll list shows them all")
        return (Panel("Open polls", tuple(lines), 30),)

    # --- the member's own data --------------------------------------------------------------------------

    async def personal_data(self, session: AsyncSession, member_ids: Sequence[int]) -> Mapping[str, Any]:
        from plugins.polls import privacy  # only when a member's data is exported or forgotten

        return await privacy.personal_data(session, member_ids)

    async def forget(
        self, session: AsyncSession, member_ids: Sequence[int], *, remove_items: bool
    ) -> Sequence[str]:
        from bot.web.links import signing_key
        from plugins.polls import privacy  # only when a member's data is exported or forgotten

        now = self.services.clock.now()

        async def key() -> bytes:
            return await signing_key(session, self.services.settings.web.secret, now)

        return await privacy.forget(session, member_ids, now, key)

    # --- helpers ----------------------------------------------------------------------------------------

    async def _poll(self, ctx: Context, poll_id: Id) -> Poll:
        poll = await ctx.session.get(Poll, poll_id)
        if poll is None or (
            ctx.community_id is not None and poll.community_id not in (None, ctx.community_id)
        ):
            raise NotFound(f"There is no poll #{poll_id}; {ctx.prefix}poll list shows the open ones.")
        return poll


def close_job(poll_id: int | None) -> str:
    return f"poll:{poll_id}:close"


def _closed(poll: Poll, at: datetime) -> bool:
    """Closed by a close, or by reaching its deadline (whether or not the close job has run yet)."""
    if poll.closed_at is not None:
        return at >= poll.closed_at
    return poll.closes_at is not None and at >= poll.closes_at


def _ended(poll: Poll, now: datetime) -> bool:
    """No more votes: closed, or past its deadline (a close set for later still ends voting now)."""
    return _closed(poll, now) or poll.closed_at is not None


def _open(poll: Poll, now: datetime) -> None:
    if _ended(poll, now):
        raise Refused(f"Poll #{poll.id} is closed; votes are no longer counted.")


def _options(poll: Poll) -> list[str]:
    return list(json.loads(poll.options))


async def _totals_of(
    session: AsyncSession, polls: Sequence[Poll]
) -> dict[int, tuple[list[str], list[int], int]]:
    """Per poll: the options, the count per option, and how many voted — counted in the database, a few
    queries for any number of polls (a closed poll's thousand votes are never loaded one by one)."""
    public = [poll.id for poll in polls if not poll.anonymous and poll.id is not None]
    anonymous = [poll.id for poll in polls if poll.anonymous and poll.id is not None]
    same_choices: dict[int, list[tuple[str, int]]] = {}
    counts: dict[int, dict[int, int]] = {}
    voters: dict[int, int] = {}
    if public:
        rows = await session.execute(
            select(col(PollVote.poll_id), col(PollVote.choices), func.count())
            .where(col(PollVote.poll_id).in_(public))
            .group_by(col(PollVote.poll_id), col(PollVote.choices))
        )
        for poll_id, choices, count in rows.all():
            same_choices.setdefault(poll_id, []).append((choices, int(count)))
    unnamed = anonymous + public  # votes without a name: anonymous ones, and those of forgotten voters
    if unnamed:
        for poll_id, option, count in (
            await session.execute(
                select(col(PollCount.poll_id), col(PollCount.option), col(PollCount.count)).where(
                    col(PollCount.poll_id).in_(unnamed)
                )
            )
        ).all():
            counts.setdefault(poll_id, {})[option] = int(count)
        voter_rows = await session.execute(
            select(col(PollVoter.poll_id), func.count())
            .where(col(PollVoter.poll_id).in_(unnamed))
            .group_by(col(PollVoter.poll_id))
        )
        voters.update((poll_id, int(count)) for poll_id, count in voter_rows.all())
    found: dict[int, tuple[list[str], list[int], int]] = {}
    for poll in polls:
        options = _options(poll)
        key = poll.id or 0
        if poll.anonymous:
            totals = [counts.get(key, {}).get(index, 0) for index in range(len(options))]
            found[key] = (options, totals, voters.get(key, 0))
            continue
        groups = same_choices.get(key, [])
        totals = [counts.get(key, {}).get(index, 0) for index in range(len(options))]  # forgotten voters'
        for choices, count in groups:  # each distinct choice once, weighted by how many made it
            for index, total in enumerate(tally([_parsed(choices)], len(options))):
                totals[index] += total * count
        found[key] = (options, totals, sum(count for _, count in groups) + voters.get(key, 0))
    return found


def _parsed(choices: str) -> tuple[int, ...]:
    return tuple(int(part) for part in choices.split(",")) if choices else ()


def _choices(vote: PollVote | None) -> tuple[int, ...]:
    return () if vote is None else _parsed(vote.choices)
