"""Meetings: the community's roadmap — calls and visits, who comes, reminders, and a calendar feed.

A meeting is planned in a zone (the caller's, or ``--tz``) and repeats by an RRULE in that zone, so a
weekly call at 15:00 in Amsterdam stays at 15:00 there across daylight-saving changes. Members answer yes,
no or maybe for the next occurrence or the whole series — by command, by button (Discord), or by reacting
✅ ❌ ❔ to the announcement (Matrix, console) — and a cap keeps a waiting list that moves up by itself.

Reminders (24 h and 15 min before, per community) go to the meeting's room mentioning those who said yes
or maybe, or by direct message to those who prefer it; each reminder of each occurrence is sent once
through the outbox, and a meeting never has more than one reminder job: when one has run, the next is
planned from the rule. On Discord each meeting is mirrored as a guild scheduled event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Annotated, Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot import store
from bot.commands import Id, LastDay, Range, Start, Text, Zone
from bot.context import Context
from bot.errors import NotFound, Refused, UsageError
from bot.model import (
    ButtonClicked,
    Capability,
    Content,
    EventInterest,
    Member,
    MemberLeft,
    NotesTaken,
    ReactionAdded,
    ReactionRemoved,
    RoomReplaced,
)
from bot.plugin import DigestSection, Panel, command, listen, suggests
from bot.suggest import Suggestion, narrowed, suggestion
from bot.tables import MemberRow
from bot.timeparse import format_duration, format_when
from bot.web.links import keyed
from bot.zones import zone_note
from plugins.meetings import queries
from plugins.meetings.answering import Answering
from plugins.meetings.base import _quietly_dm, reminder_job
from plugins.meetings.config import MeetingsConfig
from plugins.meetings.feed import CalendarFeed
from plugins.meetings.mirroring import Mirroring
from plugins.meetings.models import (
    Attendance,
    Meeting,
    MeetingNote,
    Rsvp,
    occurrence_key,
    occurrence_time,
)
from plugins.meetings.recurrence import (
    MAX_SPAN,
    Occurrence,
    RecurrenceError,
    Series,
    check_series,
    clock_shifts,
    rule_from_every,
)
from plugins.meetings.reminding import Reminding
from plugins.meetings.render import announcement, clock_notes, places, repeats, when_set
from plugins.meetings.rsvp import EMOJI, Roster
from plugins.meetings.turns import check_turn

MAX_TITLE, MAX_PLACE, MAX_NOTE = 200, 500, 4000
LIST_LINES = 50
PANEL_LINES = 5
MAX_DURATION = timedelta(days=7)
Cap = Annotated[int, Range(1, 10_000)]
Count = Annotated[int, Range(1, 1000)]


class Meetings(Answering, Reminding, Mirroring, CalendarFeed):
    name = "meetings"
    activity_kinds = frozenset({"rsvp", "attendance", "meeting_notes"})
    description = "meetings with RSVPs, reminders and a calendar feed"
    Config = MeetingsConfig
    config: MeetingsConfig

    # --- scheduling -------------------------------------------------------------------------------------

    @command(
        "meeting schedule",
        examples=(
            'meeting schedule "Monthly call" next tuesday 15:00 --every monthly --where https://meet.example',
            'meeting schedule "Site visit Delft" friday 10:00 --duration 3h --cap 12 --where Delft',
        ),
    )
    async def schedule_meeting(
        self,
        ctx: Context,
        title: str,
        start: Start,
        *,
        duration: timedelta | None = None,
        every: str | None = None,
        until: LastDay | None = None,
        count: Count | None = None,
        where: str | None = None,
        tz: Zone | None = None,
        cap: Cap | None = None,
    ) -> None:
        """Plan a meeting (once, or repeating), in your time zone unless --tz says otherwise.

        Args:
            title: what the meeting is (at most 200 characters)
            start: when: words like next tuesday 15:00, or a date and time as YYYY-MM-DD 15:00
            duration: how long (default 60m)
            every: daily, weekly, biweekly, monthly, quarterly, yearly or an RRULE (FREQ=MONTHLY;BYDAY=1TU)
            until: the last day of a repeating meeting
            count: how many times a repeating meeting happens
            where: a place or a link
            tz: the time zone it is planned in, like Europe/Amsterdam
            cap: how many can come; later yeses wait for a place
        """
        assert ctx.author_id is not None
        if ctx.room.is_direct:  # announced and reminded where it is planned: here only the planner sees it
            raise UsageError(
                "plan meetings in the community's room, where everyone sees the announcement and can answer"
            )
        zone = tz or ctx.timezone
        now = ctx.now()
        title = " ".join(title.split())
        if not title:
            raise UsageError("the title is empty")
        if len(title) > MAX_TITLE:
            raise UsageError(f"the title has {len(title)} characters; at most {MAX_TITLE}")
        place = " ".join((where or "").split())
        if len(place) > MAX_PLACE:
            raise UsageError(f"--where has {len(place)} characters; at most {MAX_PLACE}")
        length = duration or timedelta(minutes=60)
        if length < timedelta(minutes=5) or length > MAX_DURATION:
            raise UsageError("--duration must be from 5m to 7d")
        if start <= now:
            raise UsageError(f"{when_set(start, zone)} has already passed; pick a time in the future")
        if start - now > MAX_SPAN:
            raise UsageError("a meeting can be planned at most two years ahead")
        try:
            rule = rule_from_every(every) if every is not None else None
            times = Series(start, zone, rule, until, count)  # a day alone is through its end: LastDay
            check_series(times, now)
        except RecurrenceError as error:
            raise UsageError(str(error)) from None
        meeting = Meeting(
            community_id=ctx.community_id,
            platform=ctx.room.platform,
            room_id=ctx.room.id,
            title=title,
            place=place,
            tz=zone,
            starts_at=start,
            duration_minutes=int(length.total_seconds() // 60),
            rule=rule,
            until_at=times.until,
            count=count,
            cap=cap,
            creator_id=ctx.author_id,
            created_at=now,
            updated_at=now,
        )
        ctx.session.add(meeting)
        await ctx.session.flush()
        assert meeting.id is not None
        first = Occurrence(start, start)
        posted = announcement(
            meeting,
            first,
            await queries.occurrence_roster(ctx.session, meeting, first),
            prefix=ctx.prefix,
            capabilities=ctx.adapter.capabilities,
            shown_when=self._when(ctx, start, zone),
            planner_zone=ctx.timezone,
        )
        # the reminder first: nothing after the announcement may fail and leave it posted for no meeting
        await self._plan_reminder(ctx, meeting, times, after=now)
        meeting.announcement_id = await ctx.reply(posted)  # the time in the planner's zone and in UTC
        shifted = clock_shifts(times)
        if shifted:  # a meeting of the series at a time the clocks skip or repeat: said, not left to be found
            await ctx.reply(clock_notes(zone, shifted))
        ctx.after_commit.append(lambda: self._mirror(ctx.adapter, meeting.id or 0))

    @suggests("meeting_id")
    async def suggest_meetings(self, ctx: Context, typed: str) -> list[Suggestion]:
        """The community's meetings that are not cancelled, newest first: a one-off with its time in the
        member's zone, a series with how it repeats. For ``move`` and ``cancel``, only the caller's unless
        they moderate (those refuse the others)."""
        if ctx.community_id is None:
            return []
        query = select(Meeting).where(
            col(Meeting.community_id) == ctx.community_id, col(Meeting.cancelled_at).is_(None)
        )
        if ctx.command is not None and ctx.command.owner_only and not ctx.is_moderator:
            query = query.where(col(Meeting.creator_id) == (ctx.author_id or 0))
        query = query.order_by(col(Meeting.id).desc())
        rows = await ctx.session.execute(narrowed(query, col(Meeting.id), col(Meeting.title), typed))
        return [
            suggestion(
                meeting.id or 0,
                meeting.title,
                repeats(meeting) if meeting.rule else format_when(meeting.starts_at, ctx.timezone),
            )
            for meeting in rows.scalars()
        ]

    # --- answering --------------------------------------------------------------------------------------

    @command("meeting rsvp", examples=("meeting rsvp 3 yes", "meeting rsvp 3 maybe --all"))
    async def rsvp(
        self, ctx: Context, meeting_id: Id, answer: Literal["yes", "no", "maybe"], *, all: bool = False
    ) -> None:
        """Say whether you come to the next meeting, or with --all to every one of the series.

        Args:
            meeting_id: the meeting's number
            answer: yes, no or maybe
            all: the answer holds for every occurrence
        """
        meeting = await self._meeting(ctx, meeting_id)
        if meeting.cancelled_at is not None:  # as a click or a reaction on its announcement is
            raise Refused(
                f"Meeting #{meeting.id} ({meeting.title}) is cancelled; there is nothing to answer."
            )
        reply = await self._answer(ctx, meeting, answer, whole_series=all)
        await ctx.reply(Content(reply, ephemeral=True))

    @listen(ButtonClicked)
    async def on_button(self, ctx: Context, event: ButtonClicked) -> None:
        parts = event.custom_id.split(":")
        if len(parts) != 3 or not parts[1].isdigit() or parts[2] not in ("yes", "no", "maybe"):
            return
        meeting = await ctx.session.get(Meeting, int(parts[1]))
        if meeting is None or meeting.cancelled_at is not None:
            raise NotFound("This meeting was cancelled.")
        await ctx.reply(Content(await self._answer(ctx, meeting, parts[2]), ephemeral=True))

    @listen(ReactionAdded)
    async def on_reaction(self, ctx: Context, event: ReactionAdded) -> None:
        found = await self._reacted_on(ctx, event)
        if found is not None:
            confirmation = await self._answer(ctx, *found)
            if event.member.platform == ctx.adapter.platform:  # told first, before whoever it moved
                told = partial(_quietly_dm, self, ctx.adapter, event.member, confirmation)
                ctx.after_commit.insert(0, told)

    @listen(ReactionRemoved)
    async def on_reaction_removed(self, ctx: Context, event: ReactionRemoved) -> None:
        """✅ taken back from an announcement withdraws the yes it gave (❌, ❔ alike)."""
        found = await self._reacted_on(ctx, event)
        if found is not None:
            confirmation = await self._withdraw(ctx, *found)
            if confirmation is not None and event.member.platform == ctx.adapter.platform:
                told = partial(_quietly_dm, self, ctx.adapter, event.member, confirmation)
                ctx.after_commit.insert(0, told)

    async def _reacted_on(
        self, ctx: Context, event: ReactionAdded | ReactionRemoved
    ) -> tuple[Meeting, str] | None:
        """The meeting whose announcement the reaction is on and the answer its emoji stands for, if both
        are (a cancelled meeting takes no answers); the reaction is then the meetings plugin's."""
        answer = EMOJI.get(event.emoji.replace("\ufe0f", ""))
        if answer is None or ctx.author_id is None:
            return None
        meeting = await ctx.session.scalar(
            select(Meeting).where(
                col(Meeting.platform) == event.room.platform, col(Meeting.announcement_id) == event.message_id
            )
        )
        if meeting is None or meeting.cancelled_at is not None:
            return None
        ctx.consumed = True
        return meeting, answer

    @listen(EventInterest)
    async def on_interest(self, ctx: Context, event: EventInterest) -> None:
        """Marking the platform's event "Interested" is a maybe for the occurrence it shows."""
        meeting = await ctx.session.scalar(
            select(Meeting).where(
                col(Meeting.platform) == event.room.platform,
                col(Meeting.platform_event_id) == event.platform_event_id,
            )
        )
        if meeting is None or meeting.cancelled_at is not None or ctx.author_id is None:
            return
        assert meeting.id is not None
        key = meeting.platform_event_for or occurrence_key(meeting.starts_at)
        times = await queries.series(ctx.session, meeting)
        shown = occurrence_time(key)
        if shown in times.cancelled or times.moves.get(shown, shown) <= event.at:
            # The event still shows a meeting that is over (it rolls on with the next reminder): marked
            # now, it means the series' next meeting, which the event moves on to.
            following = times.next(event.at)
            if following is None:
                return
            key = occurrence_key(following.original)
            ctx.after_commit.append(lambda: self._mirror(ctx.adapter, meeting.id or 0))
        current = await ctx.session.get(Rsvp, (meeting.id, key, ctx.author_id))
        if event.interested and current is None:
            await queries.set_answer(ctx.session, meeting.id, key, ctx.author_id, "maybe", event.at)
            ctx.count_activity("rsvp", f"meeting {meeting.id}")
            self._refresh_announcement(ctx, meeting)
        elif not event.interested and current is not None and current.answer == "maybe":
            await ctx.session.delete(current)
            self._refresh_announcement(ctx, meeting)

    @listen(MemberLeft)
    async def on_member_left(self, ctx: Context, event: MemberLeft) -> None:
        """Who leaves the community no longer comes to its meetings still to come (see _withdraw_leaver);
        back again, they answer again."""
        if ctx.author_id is not None and ctx.community_id is not None:
            await self._withdraw_leaver(ctx, ctx.author_id, ctx.community_id)

    @listen(RoomReplaced)
    async def on_room_replaced(self, ctx: Context, event: RoomReplaced) -> None:
        """The community's room was upgraded: its meetings still to come move to the new room, each with
        its announcement posted again there (answers kept), where members now answer and are reminded.
        Meetings that are over stay with the room they took place in."""
        meetings = await ctx.session.scalars(
            select(Meeting)
            .where(
                col(Meeting.platform) == event.previous.platform,
                col(Meeting.room_id) == event.previous.id,
                col(Meeting.cancelled_at).is_(None),
            )
            .order_by(col(Meeting.id))
        )
        now = ctx.now()
        for meeting in meetings.all():
            occurrence = (await queries.series(ctx.session, meeting)).next(now)
            if occurrence is None:
                continue
            meeting.room_id = event.room.id
            meeting.updated_at = now
            posted = announcement(
                meeting,
                occurrence,
                await queries.occurrence_roster(ctx.session, meeting, occurrence),
                prefix=ctx.prefix,
                capabilities=ctx.adapter.capabilities,
                shown_when=self._when(ctx, occurrence.start, meeting.tz),
                planner_zone=await self._planner_zone(ctx.session, meeting),
            )
            meeting.announcement_id = await ctx.reply(posted)

    # --- reading ----------------------------------------------------------------------------------------

    @command("meeting list", examples=("meeting list",))
    async def list_meetings(self, ctx: Context) -> None:
        """The meetings of the coming {list_days} days, in your time zone, with who comes."""
        now = ctx.now()
        coming, total = await queries.upcoming(
            ctx.session, ctx.community_id, now, now + timedelta(days=self.config.list_days), limit=LIST_LINES
        )
        if not coming:
            await ctx.reply(
                f"No meetings in the next {self.config.list_days} days. "
                f"Plan one with {ctx.prefix}meeting schedule."
            )
            return
        # Discord's timestamps show in each reader's own zone, which copbot does not know: named, none
        zone = "" if Capability.TIMESTAMPS in ctx.adapter.capabilities else f" (times in {ctx.timezone})"
        lines = [f"Meetings in the next {self.config.list_days} days{zone}:"]
        for item in coming:
            meeting = item.meeting
            place = f" — {meeting.place}" if meeting.place else ""
            moved = " (moved)" if item.occurrence.moved else ""
            lines.append(
                f"#{meeting.id} {self._when(ctx, item.occurrence.start, ctx.timezone)}{moved} {meeting.title}"
                f"{place} · {item.roster.counts()}"
            )
        if total > len(coming):
            lines.append(f"… and {total - len(coming)} more; {ctx.prefix}meeting show <id> tells one")
        await ctx.reply("\n".join(lines))

    @command("meeting show", examples=("meeting show 3",))
    async def show(self, ctx: Context, meeting_id: Id) -> None:
        """One meeting: when, where, how it repeats, and who comes.

        Args:
            meeting_id: the meeting's number
        """
        meeting = await self._meeting(ctx, meeting_id)
        times = await queries.series(ctx.session, meeting)
        # a cancelled meeting has no next occurrence: nobody is listed as coming to what will not be held
        occurrence = times.next(ctx.now()) if meeting.cancelled_at is None else None
        lines = [f"📅 Meeting #{meeting.id}: {meeting.title}"]
        if meeting.cancelled_at is not None:
            lines.append("Cancelled.")
        elif occurrence is None:
            lines.append("No meeting left in this series.")
        else:
            lines.append(
                f"Next: {self._when(ctx, occurrence.start, ctx.timezone)}"
                + (" (moved)" if occurrence.moved else "")
            )
        lines.append(
            f"Length {format_duration(timedelta(minutes=meeting.duration_minutes))}, {repeats(meeting)}"
            + (f", {places(meeting.cap)}" if meeting.cap else "")
        )
        if meeting.place:
            lines.append(f"Where: {meeting.place}")
        if occurrence is not None:
            team = await queries.occurrence_roster(ctx.session, meeting, occurrence)
            names = await queries.members_by_id(
                ctx.session, team.coming + team.maybe + team.waiting + team.declined
            )

            def named(ids: Sequence[int]) -> str:
                return ", ".join(names[i].display_name for i in ids if i in names) or "—"

            lines.append(f"Coming ({len(team.coming)}): {named(team.coming)}")  # names, never pings
            lines.append(f"Maybe ({len(team.maybe)}): {named(team.maybe)}")
            if team.waiting:
                lines.append(f"Waiting ({len(team.waiting)}): {named(team.waiting)}")
            lines.append(f"Not coming ({len(team.declined)}): {named(team.declined)}")
        await ctx.reply("\n".join(lines))

    # --- changing ---------------------------------------------------------------------------------------

    @command(
        "meeting move",
        owner=True,
        examples=("meeting move 3 thursday 15:00", "meeting move 3 friday 15:00 --occurrence tuesday"),
    )
    async def move(
        self, ctx: Context, meeting_id: Id, start: Start, *, occurrence: datetime | None = None
    ) -> None:
        """Move a meeting — in a series, the next one or --occurrence's; its creator or a moderator.

        Args:
            meeting_id: the meeting's number
            start: the new time
            occurrence: the day of the meeting to move, in a series
        """
        meeting = await self._changeable(ctx, meeting_id)
        assert meeting.id is not None
        now = ctx.now()
        if start <= now:  # said in the zone it was read in, the caller's, as the reply to a move is
            raise UsageError(f"{when_set(start, ctx.timezone)} has already passed; pick a time in the future")
        if start - now > MAX_SPAN:  # as when it was planned
            raise UsageError("a meeting can be moved at most two years ahead")
        times = await queries.series(ctx.session, meeting)
        gone = await queries.cancelled_moves(ctx.session, meeting.id) if occurrence is not None else ()
        target = self._occurrence(times, occurrence, now, meeting, ctx.timezone, gone)
        check_turn(
            meeting.id,
            times,
            target,
            start,
            now=now,
            zone=ctx.timezone,
            prefix=ctx.prefix,
            given_day=occurrence is not None,
        )
        team = await queries.occurrence_roster(ctx.session, meeting, target)
        if meeting.rule is None:
            # A one-off meeting's answers are keyed by its start: they move with it.
            await queries.move_answers(
                ctx.session, meeting.id, occurrence_key(meeting.starts_at), occurrence_key(start)
            )
            meeting.starts_at = start
        else:
            change = await queries.change(ctx.session, meeting.id, target.original)
            change.moved_to, change.cancelled = start, False
        meeting.sequence += 1
        meeting.updated_at = now
        await ctx.session.flush()
        times = await queries.series(ctx.session, meeting)
        await self._plan_reminder(ctx, meeting, times, after=now)
        await self._tell_attendees(
            ctx,
            team.told,
            "{title} moved from {old} to {new}.",
            old=target.start,
            new=start,
            meeting=meeting,
        )
        self._refresh_announcement(ctx, meeting)
        ctx.after_commit.append(lambda: self._mirror(ctx.adapter, meeting.id or 0))
        # only this meeting: said, or a coordinator moving the weekly call an hour takes it as the series'
        others = " The series' other meetings keep their time." if meeting.rule is not None else ""
        await ctx.reply(f"Meeting #{meeting.id} moved to {when_set(start, ctx.timezone)}.{others}")

    @command(
        "meeting cancel",
        owner=True,
        examples=("meeting cancel 3", "meeting cancel 3 --occurrence tuesday"),
    )
    async def cancel(self, ctx: Context, meeting_id: Id, *, occurrence: datetime | None = None) -> None:
        """Cancel a meeting, or with --occurrence one meeting of a series; its creator or a moderator.

        Args:
            meeting_id: the meeting's number
            occurrence: the day of the one meeting to cancel
        """
        meeting = await self._changeable(ctx, meeting_id)
        assert meeting.id is not None
        now = ctx.now()
        times = await queries.series(ctx.session, meeting)
        if occurrence is not None and meeting.rule is None:
            # a one-off's day is checked as move checks it: a wrong day is a mistake, not "cancel it anyway"
            self._occurrence(times, occurrence, now, meeting, ctx.timezone)
        meeting.sequence += 1
        meeting.updated_at = now
        if occurrence is None or meeting.rule is None:
            upcoming = times.next(now)
            team = await queries.occurrence_roster(ctx.session, meeting, upcoming) if upcoming else None
            meeting.cancelled_at = now
            await ctx.cancel_job(reminder_job(meeting.id))
            if team is not None and upcoming is not None:
                # a series ends: said so, not in the words for one of its meetings (they would come next week)
                told = (
                    "{title}, {repeats}, is cancelled: there will be no more meetings "
                    "(the next was to be on {old})."
                    if meeting.rule is not None
                    else "{title} on {old} is cancelled."
                )
                await self._tell_attendees(ctx, team.told, told, old=upcoming.start, meeting=meeting)
            ctx.after_commit.append(lambda: self._mirror(ctx.adapter, meeting.id or 0))  # takes it away
            said = f"Meeting #{meeting.id} ({meeting.title}) is cancelled."
        else:
            gone = await queries.cancelled_moves(ctx.session, meeting.id)
            target = self._occurrence(times, occurrence, now, meeting, ctx.timezone, gone)
            team = await queries.occurrence_roster(ctx.session, meeting, target)
            change = await queries.change(ctx.session, meeting.id, target.original)
            change.cancelled = True
            await ctx.session.flush()
            await self._plan_reminder(ctx, meeting, await queries.series(ctx.session, meeting), after=now)
            await self._tell_attendees(
                ctx,
                team.told,
                "{title} on {old} is cancelled.",
                old=target.start,
                meeting=meeting,
            )
            ctx.after_commit.append(lambda: self._mirror(ctx.adapter, meeting.id or 0))
            shown = self._when(ctx, target.start, ctx.timezone)
            said = f"Meeting #{meeting.id} on {shown} is cancelled; the series goes on."
        self._refresh_announcement(ctx, meeting)
        await ctx.reply(said)

    # --- notes and attendance ---------------------------------------------------------------------------

    @command("meeting notes", examples=("meeting notes 3 We agreed to pilot the leak map in Delft",))
    async def notes(self, ctx: Context, meeting_id: Id, text: Text, *, replace: bool = False) -> None:
        """Add minutes to the latest meeting that took place (its attendees); --replace (creator, moderators).

        Args:
            meeting_id: the meeting's number
            text: the notes (at most 4,000 characters)
            replace: replace the notes of that meeting instead of adding to them
        """
        assert ctx.author_id is not None
        meeting = await self._meeting(ctx, meeting_id)
        assert meeting.id is not None
        body = text.strip()
        if len(body) > MAX_NOTE:
            raise UsageError(f"the notes have {len(body)} characters; at most {MAX_NOTE}")
        past = await self._latest_past(ctx, meeting)
        key = occurrence_key(past.original)
        may_edit = ctx.is_moderator or meeting.creator_id == ctx.author_id
        if replace and not may_edit:
            raise Refused(
                "Only the meeting's creator or a moderator can replace its notes; nothing was changed."
            )
        if not may_edit:
            team = await queries.occurrence_roster(ctx.session, meeting, past)
            there = await queries.attended(ctx.session, meeting.id, key)
            if ctx.author_id not in (*team.coming, *team.maybe, *there):
                raise Refused(
                    f"Notes of meeting #{meeting.id} are added by those who came; nothing was changed."
                )
        if replace:
            await ctx.session.execute(
                delete(MeetingNote).where(
                    col(MeetingNote.meeting_id) == meeting.id, col(MeetingNote.occurrence) == key
                )
            )
        now = ctx.now()
        ctx.session.add(
            MeetingNote(
                meeting_id=meeting.id,
                occurrence=key,
                author_id=ctx.author_id,
                text=body,
                created_at=now,
                updated_at=now,
            )
        )
        ctx.count_activity("meeting_notes", f"meeting {meeting.id}")
        assert ctx.author is not None
        await ctx.emit(  # the repertoire keeps minutes as the community's record, searchable
            NotesTaken(
                event_id=f"notes:{ctx.event_id}",
                room=ctx.room,
                at=now,
                member=ctx.author,
                meeting_id=meeting.id,
                title=meeting.title,
                text=body,
                occurred_at=past.start,
                replaces=replace,
            )
        )
        await ctx.reply(
            f"Notes {'replaced' if replace else 'added'} for {meeting.title} "
            f"of {self._when(ctx, past.start, ctx.timezone)}."
        )

    @command(
        "meeting attended", mod=True, examples=("meeting attended 3 @ana @bo", "meeting attended 3 --all-yes")
    )
    async def attended(
        self, ctx: Context, meeting_id: Id, who: list[Member] | None = None, *, all_yes: bool = False
    ) -> None:
        """Confirm who was at the latest meeting: named members, or everyone who said yes.

        Args:
            meeting_id: the meeting's number
            who: the members who came
            all_yes: everyone who said yes came
        """
        assert ctx.author_id is not None
        meeting = await self._meeting(ctx, meeting_id)
        assert meeting.id is not None
        if not who and not all_yes:
            raise UsageError("name who came (@ana @bo), or say --all-yes")
        past = await self._latest_past(ctx, meeting)
        key = occurrence_key(past.original)
        member_ids: list[int] = []
        if all_yes:
            member_ids += list((await queries.occurrence_roster(ctx.session, meeting, past)).coming)
        for member in who or []:  # a mistyped name is refused, not made a member who attended
            row = await store.find_member(ctx.session, member)
            if row is None or row.id is None:
                raise NotFound(
                    f"{member.display_name} is not a member of this community yet; nothing was recorded."
                )
            member_ids.append(row.id)
        there = await queries.attended(ctx.session, meeting.id, key)
        # Linked accounts are one person (bot/persons.py), who came once: confirmed and stored once, by
        # the first of their accounts named, as the value report counts attendance.
        accounts = await queries.members_by_id(ctx.session, [*member_ids, *there])
        person = {i: row.person_id or i for i, row in accounts.items()}
        present = {person.get(i, i) for i in there}
        named: dict[int, int] = {}  # person → the account stored for them
        for member_id in member_ids:
            named.setdefault(person.get(member_id, member_id), member_id)
        confirmed = 0
        for person_id, member_id in named.items():
            if person_id not in present:
                ctx.session.add(
                    Attendance(
                        meeting_id=meeting.id,
                        occurrence=key,
                        member_id=member_id,
                        confirmed_by=ctx.author_id,
                        at=ctx.now(),
                    )
                )
                ctx.count_activity("attendance", f"meeting {meeting.id}", member_id=member_id)
                confirmed += 1
        already = len(named) - confirmed
        await ctx.reply(
            f"Attendance at {meeting.title} of {self._when(ctx, past.start, ctx.timezone)}: "
            f"{confirmed} confirmed"
            + (f", {already} already {'was' if already == 1 else 'were'}" if already else "")
            + "."
        )

    # --- the member's own data --------------------------------------------------------------------------

    async def personal_data(self, session: AsyncSession, member_ids: Sequence[int]) -> Mapping[str, Any]:
        from plugins.meetings import privacy  # only when a member's data is exported or forgotten

        return await privacy.personal_data(session, member_ids)

    async def forget(
        self, session: AsyncSession, member_ids: Sequence[int], *, remove_items: bool
    ) -> Sequence[str]:
        from plugins.meetings import privacy  # only when a member's data is exported or forgotten

        return await privacy.forget(session, member_ids, self.services.clock.now())

    # --- the digest -------------------------------------------------------------------------------------

    async def digest(
        self, session: AsyncSession, community_id: int, start: datetime, end: datetime, tz: str
    ) -> Sequence[DigestSection]:
        """The next seven days' meetings, in the community's zone, with who comes."""
        coming, total = await queries.upcoming(session, community_id, end, end + timedelta(days=7), limit=10)
        if not coming:
            return ()
        lines = [
            f"{format_when(item.occurrence.start, tz)} — {item.meeting.title}"
            + (f" ({item.meeting.place})" if item.meeting.place else "")
            + f" · {item.roster.counts()}"
            for item in coming
        ]
        if total > len(coming):
            lines.append(f"… and {total - len(coming)} more")
        return (DigestSection("Coming up this week", tuple(lines), 40),)

    # --- the dashboard ----------------------------------------------------------------------------------

    async def panels(
        self, session: AsyncSession, community_id: int, now: datetime, tz: str
    ) -> Sequence[Panel]:
        """The meetings of the coming days in the community's zone with who comes, and the calendar feed
        (a private community's with its own signed key, as ``meeting ics`` gives it)."""
        days = self.config.list_days
        coming, total = await queries.upcoming(
            session, community_id, now, now + timedelta(days=days), limit=PANEL_LINES
        )
        lines = [
            f"{format_when(item.occurrence.start, tz)} — {item.meeting.title}"
            + (f" ({item.meeting.place})" if item.meeting.place else "")
            + f" · {_in_words(item.roster)}"
            for item in coming
        ]
        if total > len(coming):
            lines.append(f"… and {total - len(coming)} more")
        if not lines:
            lines.append(f"Nothing planned in the next {days} days.")
        registry = self.services.registry
        community = registry.communities.get(community_id) if registry is not None else None
        public = community is None or community.public
        purpose = f"ics:{community.slug if community else ''}"
        feed = await keyed(
            session, self.services.settings.web.secret, "meetings.ics", purpose, now, public=public
        )
        return (Panel(f"Meetings, the next {days} days", tuple(lines), 20, ("Calendar feed (.ics)", feed)),)

    # --- your zone --------------------------------------------------------------------------------------

    @command("timezone", examples=("timezone Europe/Amsterdam", "timezone"))
    async def timezone(self, ctx: Context, zone: Zone | None = None) -> None:
        """Show or set the time zone copbot reads and shows your times in.

        Args:
            zone: an IANA zone like Europe/Amsterdam, or an offset like UTC+2 (leave out to see yours)
        """
        assert ctx.author is not None and ctx.author_id is not None
        row = await ctx.session.get(MemberRow, ctx.author_id)
        assert row is not None
        if zone is None:
            if row.timezone:
                note = zone_note(row.timezone)
                await ctx.reply(
                    f"Your time zone is {row.timezone}{f' ({note})' if note else ''}; "
                    f"it is {format_when(ctx.now(), row.timezone)} there now."
                )
            else:
                await ctx.reply(
                    f"You have not set a time zone; I use {ctx.timezone}. "
                    f"Set yours with {ctx.prefix}timezone Europe/Amsterdam."
                )
            return
        row.timezone = zone
        ctx.member_changed(ctx.author)
        note = zone_note(zone)  # UTC+2 is stored as Etc/GMT-2: say what that is
        now_there = f"it is {format_when(ctx.now(), zone)} there now"
        await ctx.reply(f"Time zone set: {zone} ({f'{note}; ' if note else ''}{now_there}).")


def _in_words(roster: Roster) -> str:
    """Who comes, in words (a web page's readers and screen readers may have no emoji)."""
    words = f"{len(roster.coming)} coming, {len(roster.maybe)} maybe, {len(roster.declined)} not coming"
    return words + (f", {len(roster.waiting)} waiting" if roster.waiting else "")
