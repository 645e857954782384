"""Answers and what follows from them: the waiting list moving up, the announcement's counts edited in
place, and those who come told by direct message when their meeting changes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot import store
from bot.adapters.base import Adapter, EditAdapter
from bot.coalesce import Coalescing
from bot.context import Context
from bot.errors import Refused
from bot.model import Capability, Room
from bot.tables import MemberRow, Membership
from plugins.meetings import queries
from plugins.meetings.base import MeetingsBase, _quietly_dm
from plugins.meetings.models import SERIES, Meeting, Rsvp, occurrence_key, occurrence_time
from plugins.meetings.recurrence import Occurrence, Series
from plugins.meetings.render import announcement, places, repeats
from plugins.meetings.rsvp import moved_up


class Answering(MeetingsBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refreshing = Coalescing()
        """Meetings whose announcement is being edited now."""

    async def _answer(
        self, ctx: Context, meeting: Meeting, answer: str, *, whole_series: bool = False
    ) -> str:
        """Store an answer; tell whoever moves up from the waiting list; the confirmation to show."""
        assert meeting.id is not None and ctx.author_id is not None
        times = await queries.series(ctx.session, meeting)
        occurrence = times.next(ctx.now())
        if occurrence is None:
            raise Refused(f"Meeting #{meeting.id} has no meeting left to answer for.")
        if whole_series and meeting.rule is None:
            whole_series = False
        given = (await queries.answers(ctx.session, [meeting.id]))[meeting.id]
        key = SERIES if whole_series else occurrence_key(occurrence.original)
        await queries.set_answer(ctx.session, meeting.id, key, ctx.author_id, answer, ctx.now(), times=times)
        now_given = (await queries.answers(ctx.session, [meeting.id]))[meeting.id]
        after = queries.roster_for(now_given, occurrence, meeting.cap)
        ctx.count_activity("rsvp", f"meeting {meeting.id}")
        told: set[int] = set()
        for later in _to_come(times, occurrence, given, now_given) if meeting.cap else (occurrence,):
            before = queries.roster_for(given, later, meeting.cap)
            if not before.waiting:  # nobody waits: nobody moves up (a meeting with no cap never has any)
                continue
            for member_id in moved_up(before, queries.roster_for(now_given, later, meeting.cap)):
                if member_id not in told:  # once, for the first meeting they have a place in now
                    told.add(member_id)
                    await self._tell_moved_up(ctx, meeting, later, member_id)
        self._refresh_announcement(ctx, meeting)
        shown = self._when(ctx, occurrence.start, ctx.timezone)
        scope = "every meeting of the series, starting" if whole_series else ""
        if answer == "yes" and ctx.author_id in after.waiting:
            place = after.waiting.index(ctx.author_id) + 1
            assert meeting.cap is not None  # only a meeting with places keeps a waiting list
            return (
                f"Meeting #{meeting.id} is full ({places(meeting.cap)}): you are number {place} on the "
                f"waiting list for {shown}; I will tell you when a place frees up."
            )
        verb = {"yes": "You are coming to", "no": "You are not coming to", "maybe": "You might come to"}[
            answer
        ]
        return f"{verb} {meeting.title} {scope} {shown}.".replace("  ", " ")

    async def _withdraw(self, ctx: Context, meeting: Meeting, answer: str) -> str | None:
        """A reaction taken back: the answer it gave for the next meeting is withdrawn — if it is still the
        member's answer there (one changed since, by a command or another reaction, stays). Whoever it
        lets in from the waiting list is told. The confirmation to show, None when nothing changed."""
        assert meeting.id is not None and ctx.author_id is not None
        times = await queries.series(ctx.session, meeting)
        occurrence = times.next(ctx.now())
        if occurrence is None:
            return None
        key = occurrence_key(occurrence.original)
        given = (await queries.answers(ctx.session, [meeting.id]))[meeting.id]
        mine = next((row for row in given if row.occurrence == key and row.member_id == ctx.author_id), None)
        if mine is None or mine.answer != answer:
            return None
        await queries.drop_answer(ctx.session, meeting.id, key, ctx.author_id)
        now_given = (await queries.answers(ctx.session, [meeting.id]))[meeting.id]
        before = queries.roster_for(given, occurrence, meeting.cap)
        for member_id in moved_up(before, queries.roster_for(now_given, occurrence, meeting.cap)):
            await self._tell_moved_up(ctx, meeting, occurrence, member_id)
        self._refresh_announcement(ctx, meeting)
        return (
            f"Your answer for {meeting.title} {self._when(ctx, occurrence.start, ctx.timezone)} is withdrawn."
        )

    async def _withdraw_leaver(self, ctx: Context, member_id: int, community_id: int) -> None:
        """A member left the community: their answers for its meetings still to come are withdrawn — they
        are no longer counted, reminded or told — and whoever waited for their place moves up and is told.
        What they said for the meetings held stays, their record (with attendance and notes): an answer for
        the series becomes an answer of its own for each meeting held under it. A person still in the
        community through a linked account keeps their answers; they still come."""
        if await _still_present(ctx.session, member_id, community_id):
            return
        now = ctx.now()
        mine = list(
            await ctx.session.scalars(
                select(Rsvp)
                .join(Meeting, col(Meeting.id) == col(Rsvp.meeting_id))
                .where(
                    col(Rsvp.member_id) == member_id,
                    col(Meeting.community_id) == community_id,
                    col(Meeting.cancelled_at).is_(None),
                )
            )
        )
        for meeting_id in sorted({row.meeting_id for row in mine}):
            meeting = await ctx.session.get(Meeting, meeting_id)
            assert meeting is not None
            times = await queries.series(ctx.session, meeting)
            given = (await queries.answers(ctx.session, [meeting_id]))[meeting_id]
            rows = {row.occurrence: row for row in mine if row.meeting_id == meeting_id}
            for key, row in rows.items():
                if key == SERIES:
                    for held in times.occurrences(row.at, now + timedelta(microseconds=1)):
                        if occurrence_key(held.original) not in rows:
                            ctx.session.add(
                                Rsvp(
                                    meeting_id=meeting_id,
                                    occurrence=occurrence_key(held.original),
                                    member_id=member_id,
                                    answer=row.answer,
                                    at=row.at,
                                )
                            )
                    await ctx.session.delete(row)
                else:
                    original = occurrence_time(key)
                    if times.moves.get(original, original) > now:
                        await ctx.session.delete(row)
            await ctx.session.flush()
            following = times.next(now)
            if following is not None and meeting.cap:
                now_given = (await queries.answers(ctx.session, [meeting_id]))[meeting_id]
                told: set[int] = set()
                for later in _to_come(times, following, given, now_given):
                    before = queries.roster_for(given, later, meeting.cap)
                    after = queries.roster_for(now_given, later, meeting.cap)
                    for moved in moved_up(before, after):
                        if moved not in told:
                            told.add(moved)
                            await self._tell_moved_up(ctx, meeting, later, moved)
            self._refresh_announcement(ctx, meeting)

    async def _tell_moved_up(
        self, ctx: Context, meeting: Meeting, occurrence: Occurrence, member_id: int
    ) -> None:
        row = await ctx.session.get(MemberRow, member_id)
        if row is None:
            return
        text = (
            f"A place freed up: you are now coming to {meeting.title} "
            f"({self._when_for(row, occurrence.start, meeting)})."
        )
        member = store.as_member(row)
        adapter = ctx.services.adapters.get(row.platform)
        if adapter is not None:
            ctx.after_commit.append(partial(_quietly_dm, self, adapter, member, text))

    def _refresh_announcement(self, ctx: Context, meeting: Meeting) -> None:
        """Edit the announcement in place with the current answers, once this unit of work commits.

        One edit of an announcement at a time: a change that commits while one is under way (two clicks, a
        click and a move) has the running edit read the meeting again and edit once more when it is done.
        Edits that each read and sent on their own could arrive in another order than they read, and the
        card would keep an old time or old counts; this way the last edit sent always shows the last state,
        and a burst of clicks costs two edits, not one each."""
        adapter = ctx.services.adapters.get(meeting.platform)
        if (
            adapter is None
            or not meeting.announcement_id
            or Capability.EDITS not in adapter.capabilities
            or not isinstance(adapter, EditAdapter)
        ):
            return
        meeting_id = meeting.id
        if meeting_id is None:
            return
        ctx.after_commit.append(
            lambda: self._refreshing.run(meeting_id, lambda: self._edit_announcement(adapter, meeting_id))
        )

    async def _edit_announcement(self, adapter: Adapter, meeting_id: int) -> None:
        if not isinstance(adapter, EditAdapter):
            return
        async with self.services.db.session() as session:
            current = await session.get(Meeting, meeting_id)
            if current is None or not current.announcement_id:
                return
            times = await queries.series(session, current)
            following = times.next(self.services.clock.now())
            occurrence = following or Occurrence(current.starts_at, current.starts_at)
            posted = announcement(
                current,
                following,
                await queries.occurrence_roster(session, current, occurrence),
                prefix=self.services.settings.prefix,
                capabilities=adapter.capabilities,
                shown_when=self._when(None, occurrence.start, current.tz, adapter),
                planner_zone=await self._planner_zone(session, current),
            )
        try:
            await adapter.edit(Room(current.platform, current.room_id), current.announcement_id, posted)
        except Exception:
            self.log.warning("could not update the announcement of meeting %s", meeting_id, exc_info=True)

    async def _planner_zone(self, session: AsyncSession, meeting: Meeting) -> str:
        """The zone the announcement was first written for, so an edit keeps its headline: the creator's
        own, or else their community's, as the pipeline chose it when they planned."""
        creator = await session.get(MemberRow, meeting.creator_id) if meeting.creator_id else None
        if creator is not None and creator.timezone:
            return creator.timezone
        registry = self.services.registry
        return registry.zone_of(meeting.community_id) if registry else self.services.settings.timezone

    async def _tell_attendees(
        self,
        ctx: Context,
        member_ids: Sequence[int],
        template: str,
        *,
        old: datetime,
        meeting: Meeting,
        new: datetime | None = None,
    ) -> None:
        """Those who said yes or maybe hear of a change by direct message, in their own zone: ``template``
        with ``{title}``, ``{repeats}``, ``{old}`` and ``{new}`` filled in (a title is a value put in, never
        part of the template: braces in it are text)."""
        rows = await queries.members_by_id(ctx.session, member_ids)
        for row in rows.values():
            if row.id == ctx.author_id:
                continue
            text = template.format(
                title=meeting.title,
                repeats=repeats(meeting),
                old=self._when_for(row, old, meeting),
                new=self._when_for(row, new, meeting) if new else "",
            )
            adapter = ctx.services.adapters.get(row.platform)
            if adapter is not None:
                member = store.as_member(row)
                ctx.after_commit.append(partial(_quietly_dm, self, adapter, member, text))


async def _still_present(session: AsyncSession, member_id: int, community_id: int) -> bool:
    """Whether another account of the member's person is still in the community."""
    row = await session.get(MemberRow, member_id)
    if row is None:
        return False
    person = row.person_id if row.person_id is not None else member_id
    found = await session.scalar(
        select(col(MemberRow.id))
        .join(Membership, col(Membership.member_id) == col(MemberRow.id))
        .where(
            (col(MemberRow.id) == person) | (col(MemberRow.person_id) == person),
            col(MemberRow.id) != member_id,
            col(Membership.community_id) == community_id,
            col(Membership.left_at).is_(None),
        )
        .limit(1)
    )
    return found is not None


def _to_come(times: Series, following: Occurrence, *answers: Sequence[Any]) -> list[Occurrence]:
    """The meetings still to come whose waiting lists can differ, in time order: the next one, each later
    one with answers of its own, and the first later one without — it stands for all the others, which the
    series answers alone fill alike (a series may have no end: they are not each looked at).

    An answer for the series frees or takes a place in all of them, not only in the next, and who moves up
    in a later one was promised word as much as who moves up in the next."""
    own = {row.occurrence for rows in answers for row in rows if row.occurrence != SERIES}
    found = [following]
    for key in sorted(own - {occurrence_key(following.original)}):
        original = occurrence_time(key)
        start = times.moves.get(original, original)
        if original not in times.cancelled and start > following.start:
            found.append(Occurrence(original, start))
    rest = times.next(following.start)
    while rest is not None and occurrence_key(rest.original) in own:
        rest = times.next(rest.start)
    if rest is not None:
        found.append(rest)
    return sorted(found, key=lambda occurrence: occurrence.start)
