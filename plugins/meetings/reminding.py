"""Reminders, the I/O half (the rules are in reminders.py): one job per meeting, posted through the outbox
to the meeting's room mentioning those who come, or by direct message to those who prefer it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.adapters.base import shown_when
from bot.context import Context, JobContext
from bot.model import Content, Room
from bot.plugin import Job, schedule
from plugins.meetings import queries
from plugins.meetings.base import _cancel_job, reminder_job
from plugins.meetings.mirroring import Mirroring
from plugins.meetings.models import Meeting, occurrence_key, occurrence_time
from plugins.meetings.recurrence import Occurrence, Series
from plugins.meetings.reminders import Reminder, next_reminder, still_worth_sending


class Reminding(Mirroring):  # a reminder sent rolls the platform event on (Mirroring._roll_mirror_later)
    def leads(self, community_slug: str | None) -> list[timedelta]:
        return self.config.leads(community_slug)

    async def _plan_reminder(
        self,
        ctx: Context | JobContext,
        meeting: Meeting,
        times: Series,
        *,
        after: datetime,
        now: datetime | None = None,
    ) -> None:
        """The series' one reminder job, at its next reminder after ``after`` (of a meeting after ``now``)."""
        assert meeting.id is not None
        upcoming = next_reminder(times, self.leads(self._slug(meeting.community_id)), after, now)
        if upcoming is None:
            await _cancel_job(ctx, reminder_job(meeting.id))
            return
        await ctx.schedule_at(
            reminder_job(meeting.id),
            upcoming.due,
            "meetings.remind",
            meeting_id=meeting.id,
            occurrence=occurrence_key(upcoming.occurrence.original),
            lead=int(upcoming.lead.total_seconds()),
        )

    async def jobs(self, session: AsyncSession) -> Sequence[Job]:
        """Each meeting's next reminder, from the last one handled: one job per meeting, restored at start."""
        found: list[Job] = []
        now = self.services.clock.now()
        meetings = await queries.active(session, None)
        changes = await queries.changes_of(session, [m.id for m in meetings if m.id is not None])
        for meeting in meetings:
            assert meeting.id is not None
            times = queries.series_of(meeting, changes[meeting.id])
            leads = self.leads(self._slug(meeting.community_id))
            upcoming = next_reminder(times, leads, meeting.reminded_through or meeting.created_at, now)
            if upcoming is not None:
                found.append(
                    Job(
                        reminder_job(meeting.id),
                        upcoming.due,
                        "meetings.remind",
                        {
                            "meeting_id": meeting.id,
                            "occurrence": occurrence_key(upcoming.occurrence.original),
                            "lead": int(upcoming.lead.total_seconds()),
                        },
                        meeting.community_id,
                    )
                )
        return found

    @schedule("remind")
    async def remind(self, ctx: JobContext, meeting_id: int, occurrence: str, lead: int) -> None:
        """Post one reminder (if still worth it), then plan the next one of the series."""
        meeting = await ctx.session.get(Meeting, meeting_id)
        if meeting is None or meeting.cancelled_at is not None:
            return
        times = await queries.series(ctx.session, meeting)
        leads = self.leads(self._slug(meeting.community_id))
        original = occurrence_time(occurrence)
        if original not in times.cancelled and times.has(original):
            reminder = Reminder(
                Occurrence(original, times.moves.get(original, original)), timedelta(seconds=lead)
            )
            if still_worth_sending(reminder, leads, ctx.now()):
                await self._post_reminder(ctx, meeting, reminder)
                self._roll_mirror_later(ctx, meeting, reminder.occurrence)
            due = reminder.due
        else:
            due = original - timedelta(seconds=lead)
        meeting.reminded_through = max(due, meeting.reminded_through or due)
        await self._plan_reminder(ctx, meeting, times, after=meeting.reminded_through, now=ctx.now())

    async def _post_reminder(self, ctx: JobContext, meeting: Meeting, reminder: Reminder) -> None:
        team = await queries.occurrence_roster(ctx.session, meeting, reminder.occurrence)
        rows = await queries.members_by_id(ctx.session, team.reminded)
        in_room = [row for row in rows.values() if row.reminders != "dm" and row.platform == meeting.platform]
        by_dm = [row for row in rows.values() if row not in in_room]
        adapter = self.services.adapters.get(meeting.platform)
        place = f" — {meeting.place}" if meeting.place else ""
        starts = shown_when(adapter, reminder.occurrence.start, meeting.tz)
        label = reminder.label_at(ctx.now())
        text = f"⏰ {meeting.title} starts in {label}: {starts}{place}."
        members = tuple(store.as_member(row) for row in in_room)
        if adapter is not None and members:
            text += " " + " ".join(adapter.mention(member) for member in members)
        await ctx.post(Room(meeting.platform, meeting.room_id), Content(text, mentions=members))
        for row in by_dm:
            await ctx.send_direct(
                store.as_member(row),
                f"⏰ {meeting.title} starts in {label}: "
                f"{self._when_for(row, reminder.occurrence.start, meeting)}{place}.",
            )
