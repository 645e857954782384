"""The community's calendar feed: ``meeting ics`` gives its address, ``/c/<slug>/meetings.ics`` serves it.

A private community's feed needs the key in the link (a signature, see bot/web/links.py); calendar apps
keep the whole address, so one link serves a member for as long as the community keeps its secret.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.context import Context
from bot.errors import UsageError
from bot.plugin import command, route
from bot.web.links import sign, signing_key, verify
from plugins.meetings import queries
from plugins.meetings.base import MeetingsBase
from plugins.meetings.models import Meeting

if TYPE_CHECKING:
    from aiohttp import web

    from plugins.meetings.calendar import CalendarEntry


class CalendarFeed(MeetingsBase):
    @command("meeting ics", examples=("meeting ics",))
    async def ics(self, ctx: Context) -> None:
        """The address of the community's calendar feed, for any calendar app."""
        if ctx.community is None:
            raise UsageError("this room belongs to no community")
        url = await self._feed_url(ctx.session, ctx.community.slug, public=ctx.community.public)
        await ctx.reply(f"Add this calendar to your calendar app (it follows every change): {url}")

    async def _feed_url(self, session: AsyncSession, slug: str, *, public: bool) -> str:
        web = self.services.settings.web
        url = f"{web.base_url()}/c/{slug}/meetings.ics"
        if public:
            return url
        key = await signing_key(session, web.secret, self.services.clock.now())
        return f"{url}?key={sign(key, f'ics:{slug}')}"

    @route("/c/{slug}/meetings.ics")
    async def feed(self, request: web.Request) -> web.Response:
        """The community's meetings as iCalendar; a private community's needs the link's key."""
        from aiohttp import web

        slug = request.match_info["slug"]
        registry = self.services.registry
        assert registry is not None
        community_id = registry.community_ids.get(slug)
        community = registry.communities.get(community_id) if community_id is not None else None
        if community is None:
            raise web.HTTPNotFound(text="no such community")
        now = self.services.clock.now()
        if not community.public:
            key = await signing_key(self.services.db, self.services.settings.web.secret, now)
            if not verify(key, f"ics:{slug}", request.query.get("key", ""), now):
                raise web.HTTPForbidden(text="this calendar needs the link copbot gives with `meeting ics`")
        async with self.services.db.session() as session:
            entries = await self._entries(session, community_id, slug)
        from plugins.meetings.calendar import ics_feed  # icalendar (~7 MB) only once a feed is asked for

        body = ics_feed(f"{community.name} meetings", entries, now=now)
        return web.Response(
            body=body,
            content_type="text/calendar",
            charset="utf-8",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    async def _entries(
        self, session: AsyncSession, community_id: int | None, slug: str
    ) -> list[CalendarEntry]:
        from plugins.meetings.calendar import CalendarEntry

        meetings = list(
            (
                await session.execute(
                    select(Meeting).where(col(Meeting.community_id) == community_id).order_by(col(Meeting.id))
                )
            ).scalars()
        )
        changes = await queries.changes_of(session, [m.id for m in meetings if m.id is not None])
        return [
            CalendarEntry(
                uid=f"meeting-{meeting.id}@{slug}.copbot",
                title=meeting.title,
                where=meeting.place,
                description=(
                    f"Meeting #{meeting.id} of {slug}. "
                    f"Answer in the chat with meeting rsvp {meeting.id} yes|no|maybe."
                ),
                series=queries.series_of(meeting, changes[meeting.id or 0]),
                duration=timedelta(minutes=meeting.duration_minutes),
                sequence=meeting.sequence,
                cancelled=meeting.cancelled_at is not None,
                created=meeting.created_at,
                updated=meeting.updated_at,
            )
            for meeting in meetings
        ]
