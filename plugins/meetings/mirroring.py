"""Each meeting mirrored as the platform's own event (a Discord guild scheduled event), through the
adapter's EventAdapter protocol: created with the meeting, moved with it, rolled on to the next occurrence,
taken away when it is cancelled. A failure here is logged and never undoes the meeting itself."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypedDict

from bot.adapters.base import EventAdapter
from bot.coalesce import Coalescing
from bot.context import JobContext
from bot.model import Capability, Room
from plugins.meetings import queries
from plugins.meetings.base import MeetingsBase, _quietly
from plugins.meetings.models import Meeting, occurrence_key
from plugins.meetings.recurrence import Occurrence


class _EventDetails(TypedDict):
    """What EventAdapter.create_event and update_event take besides the room (and the event's id)."""

    title: str
    start: datetime
    end: datetime
    where: str
    description: str


class Mirroring(MeetingsBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mirroring = Coalescing()
        """Meetings whose platform event is being changed now."""

    async def _mirror(self, adapter: object, meeting_id: int) -> None:
        """Bring the platform's event in line with the meeting as stored: created, moved to its next
        occurrence, or taken away once it is cancelled or has none left.

        One change of a meeting's event at a time: a change of the meeting committed while one is under way
        (a move right after scheduling, a cancel during a move) has it read the meeting again and act once
        more when it is done. Calls that each read and sent on their own made two events for one meeting
        (both read "no event yet" and created one), or left an event with an old time, or an event for a
        cancelled meeting (the cancel read no event while the create was still on its way)."""
        await self._mirroring.run(meeting_id, lambda: self._mirror_once(adapter, meeting_id))

    async def _mirror_once(self, adapter: object, meeting_id: int) -> None:
        if not isinstance(adapter, EventAdapter) or Capability.SCHEDULED_EVENTS not in getattr(
            adapter, "capabilities", ()
        ):
            return
        async with self.services.db.session() as session:
            meeting = await session.get(Meeting, meeting_id)
            if meeting is None:
                return
            room = Room(meeting.platform, meeting.room_id)
            upcoming = None
            if meeting.cancelled_at is None:
                upcoming = (await queries.series(session, meeting)).next(self.services.clock.now())
            if upcoming is None:  # cancelled, or no occurrence left: no event
                if meeting.platform_event_id:
                    await _quietly(self, adapter.cancel_event(room, meeting.platform_event_id))
                    meeting.platform_event_id = ""
                return
            details: _EventDetails = {
                "title": meeting.title,
                "start": upcoming.start,
                "end": upcoming.start + timedelta(minutes=meeting.duration_minutes),
                "where": meeting.place,
                "description": (
                    f"Meeting #{meeting.id}: answer with /meeting rsvp {meeting.id}, or mark Interested."
                ),
            }
            try:
                if meeting.platform_event_id:
                    try:
                        await adapter.update_event(room, meeting.platform_event_id, **details)
                    except Exception:
                        # Platforms end an event once it is over and refuse changes to it (Discord does):
                        # the series' next meeting then gets an event of its own.
                        self.log.info(
                            "meeting %s: its platform event could not be changed; making a new one",
                            meeting_id,
                        )
                        meeting.platform_event_id = await adapter.create_event(room, **details)
                else:
                    meeting.platform_event_id = await adapter.create_event(room, **details)
            except Exception:
                self.log.warning("could not mirror meeting %s as a platform event", meeting_id, exc_info=True)
                return
            meeting.platform_event_for = occurrence_key(upcoming.original)

    def _roll_mirror_later(self, ctx: JobContext, meeting: Meeting, occurrence: Occurrence) -> None:
        if meeting.platform_event_id and meeting.platform_event_for != occurrence_key(occurrence.original):
            adapter = self.services.adapters.get(meeting.platform)
            ctx.after_commit.append(lambda: self._mirror(adapter, meeting.id or 0))
