"""What every part of the meetings plugin shares: finding a meeting, who may change it, which occurrence
a command means, and how a time reads for whoever sees it."""

from __future__ import annotations

from collections.abc import Awaitable, Collection
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.adapters.base import Adapter, shown_when
from bot.context import Context, JobContext
from bot.errors import NotFound, Refused, Undeliverable, UsageError
from bot.model import Content, Member
from bot.plugin import Plugin
from bot.tables import MemberRow
from plugins.meetings import queries
from plugins.meetings.config import MeetingsConfig
from plugins.meetings.models import Meeting
from plugins.meetings.recurrence import Occurrence, Series

PAST_WINDOW = timedelta(days=400)


class MeetingsBase(Plugin):
    config: MeetingsConfig

    def _when(self, ctx: Context | None, moment: datetime, tz: str, adapter: object = None) -> str:
        """A time for the readers of ``ctx``'s platform (or ``adapter``'s): a timestamp, or in ``tz``."""
        return shown_when(ctx.adapter if ctx is not None else adapter, moment, tz)

    def _when_for(self, row: MemberRow, moment: datetime, meeting: Meeting) -> str:
        """A time in a direct message to ``row``: a timestamp their client shows in their own zone where
        their platform has them (Discord), else in their zone (the meeting's when they set none)."""
        return self._when(None, moment, row.timezone or meeting.tz, self.services.adapters.get(row.platform))

    def _slug(self, community_id: int | None) -> str | None:
        registry = self.services.registry
        community = registry.communities.get(community_id) if registry and community_id is not None else None
        return community.slug if community else None

    async def _meeting(self, ctx: Context, meeting_id: int) -> Meeting:
        meeting = await ctx.session.get(Meeting, meeting_id)
        if meeting is None or (
            ctx.community_id is not None and meeting.community_id not in (None, ctx.community_id)
        ):
            raise NotFound(
                f"There is no meeting #{meeting_id}; {ctx.prefix}meeting list shows what is planned."
            )
        return meeting

    async def _changeable(self, ctx: Context, meeting_id: int) -> Meeting:
        meeting = await self._meeting(ctx, meeting_id)
        if meeting.creator_id != ctx.author_id and not ctx.is_moderator:
            raise Refused(
                f"Only the meeting's creator or a moderator can change meeting #{meeting.id}; "
                "nothing was changed."
            )
        if meeting.cancelled_at is not None:  # when it was is stored; who is not
            when = self._when(ctx, meeting.cancelled_at, ctx.timezone)
            raise Refused(f"Meeting #{meeting.id} was cancelled already, on {when}; nothing was changed.")
        return meeting

    def _occurrence(
        self,
        times: Series,
        day: datetime | None,
        now: datetime,
        meeting: Meeting,
        zone: str,
        cancelled_moves: Collection[datetime] = (),
    ) -> Occurrence:
        """The meeting ``day`` names (the next one without it). ``day`` is read in the caller's ``zone``
        and is a day of the caller's calendar, the one ``meeting list`` shows them: a member in Tokyo who
        says 12 March means the meeting listed on the 12th, which is the 11th in the meeting's Berlin.

        ``cancelled_moves``: where meetings moved and then cancelled had been moved to (``times`` forgets
        those moves), so the day it was moved to, named again, reads as cancelled already too."""
        if day is None:
            found = times.next(now)
            if found is None:
                raise Refused(f"Meeting #{meeting.id} has no meeting left.")
            return found
        caller_zone = ZoneInfo(zone)
        local_day = day.astimezone(caller_zone).date()
        found = times.named_by_day(local_day, caller_zone)
        if found is None and not any(
            moved.astimezone(caller_zone).date() == local_day for moved in cancelled_moves
        ):
            raise UsageError(f"meeting #{meeting.id} does not take place on {local_day:%a %-d %b %Y}")
        if found is None or found.original in times.cancelled:  # a second cancel (or a move): cancelled
            raise Refused(
                f"The meeting of {local_day:%a %-d %b %Y} (meeting #{meeting.id}) was cancelled already; "
                "nothing was changed."
            )
        if found.start <= now:
            raise UsageError(f"the meeting of {local_day:%a %-d %b %Y} has already taken place")
        return found

    async def _latest_past(self, ctx: Context, meeting: Meeting) -> Occurrence:
        times = await queries.series(ctx.session, meeting)
        now = ctx.now()
        past = times.occurrences(now - PAST_WINDOW, now + timedelta(seconds=1))
        if not past:
            raise Refused(f"Meeting #{meeting.id} has not taken place yet.")
        return past[-1]


def reminder_job(meeting_id: int) -> str:
    return f"meeting:{meeting_id}:reminder"


async def _cancel_job(ctx: Context | JobContext, job_id: str) -> None:
    scheduler = ctx.services.scheduler
    if scheduler is None:
        return
    if isinstance(ctx, Context):
        await ctx.cancel_job(job_id)
    else:
        ctx.after_commit.append(lambda: scheduler.cancel(job_id))


async def _quietly(plugin: Plugin, work: Awaitable[object]) -> None:
    try:
        await work
    except Undeliverable as error:  # the platform's final word (DMs closed): one line, no traceback
        plugin.log.info("a message for meetings was not delivered: %s", error)
    except Exception:
        plugin.log.warning("a platform call for meetings failed", exc_info=True)


async def _quietly_dm(plugin: Plugin, adapter: Adapter, member: Member, text: str) -> None:
    """A courtesy by direct message (a confirmation, a freed place), sent once the answer it tells of is
    committed: a member who takes no direct messages keeps the answer, and the rest of the unit's follow-ups
    (the announcement's counts) still run."""
    await _quietly(plugin, adapter.send_direct(member, Content(text)))
