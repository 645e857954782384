"""The community's calendar feed: ``meeting ics`` gives its address, ``/c/<slug>/meetings.ics`` serves it.

A private community's feed needs the key in the link (a signature, see bot/web/links.py); calendar apps
keep the whole address, so one link serves a member for as long as the community keeps its secret.

Calendar apps ask again every few minutes to hours, for each member who subscribed; with a thousand
series, building the feed takes half a second, reading what it is made of a few milliseconds. So the
feed's ETag is a fingerprint of those rows (and of the community's name, and of the year that bounds its
time zones): an app that has the feed already is told 304, and the feed last built is kept and sent
again until a row changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import Context, platform_prefix
from bot.errors import UsageError
from bot.escaping import calendar_text
from bot.plugin import command, route
from bot.tables import table_of
from bot.web.caching import fresh
from bot.web.links import keyed, pages_address, signing_key, verify
from plugins.meetings import queries
from plugins.meetings.base import MeetingsBase
from plugins.meetings.models import Meeting

if TYPE_CHECKING:
    from aiohttp import web

    from plugins.meetings.calendar import CalendarEntry


class CalendarFeed(MeetingsBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._feeds: dict[int | None, tuple[str, bytes]] = {}
        """Each community's feed as last built, with its ETag (one each: at most some hundred kB)."""

    @command("meeting ics", examples=("meeting ics",))
    async def ics(self, ctx: Context) -> None:
        """The address of the community's calendar feed, for any calendar app."""
        if ctx.community is None:
            raise UsageError("this room belongs to no community")
        slug, web = ctx.community.slug, self.services.settings.web
        address = f"{pages_address(web)}/c/{slug}/meetings.ics"
        url = await keyed(
            ctx.session, web.secret, address, f"ics:{slug}", ctx.now(), public=ctx.community.public
        )
        await ctx.reply(f"Add this calendar to your calendar app (it follows every change): {url}")

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
            meetings, changes = await _feed_rows(session, community_id)
        settings, adapters = self.services.settings, self.services.adapters

        def prefix(platform: str) -> str:
            return platform_prefix(adapters.get(platform), settings.prefix)

        # the descriptions say how to answer (`!meeting rsvp 2`): a new prefix is a new feed
        written = tuple(sorted({(row.platform, prefix(row.platform)) for row in meetings}))
        etag = '"' + _fingerprint(repr((community.name, written)), now.year, meetings, changes) + '"'
        headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "ETag": etag}
        if fresh(request, etag):
            return web.Response(status=304, headers=headers)
        cached = self._feeds.get(community_id)
        if cached is not None and cached[0] == etag:
            body = cached[1]
        else:
            from plugins.meetings.calendar import ics_feed  # icalendar (~7 MB) only once a feed is asked for

            entries = _entries(meetings, changes, slug, prefix)
            body = ics_feed(f"{community.name} meetings", entries, now=now)
            self._feeds[community_id] = (etag, body)  # one feed per community: the newest
        return web.Response(body=body, content_type="text/calendar", charset="utf-8", headers=headers)


async def _feed_rows(
    session: AsyncSession, community_id: int | None
) -> tuple[list[Any], dict[int, list[Any]]]:
    """Every meeting of the community (cancelled ones too: the feed says so) and their changes, as plain
    rows, in the order of their ids."""
    table = table_of(Meeting)
    ours = table.c.community_id == community_id
    meetings = list(await session.execute(select(table).where(ours).order_by(table.c.id)))
    changes = await queries.changes_of(session, select(table.c.id).where(ours)) if meetings else {}
    return meetings, changes


def _fingerprint(name: str, year: int, meetings: Sequence[Any], changes: dict[int, list[Any]]) -> str:
    """What the feed is made of, hashed: the same rows give the same feed, byte for byte."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((name, year)).encode())
    for meeting in meetings:
        digest.update(repr(tuple(meeting)).encode())
        for change in sorted(changes.get(meeting.id, ()), key=lambda row: row.occurrence):
            digest.update(repr(tuple(change)).encode())
    return digest.hexdigest()


def _entries(
    meetings: Sequence[Any], changes: dict[int, list[Any]], slug: str, prefix: Callable[[str], str]
) -> list[CalendarEntry]:
    from plugins.meetings.calendar import CalendarEntry

    return [
        CalendarEntry(
            uid=f"meeting-{meeting.id}@{slug}.copbot",
            title=calendar_text(meeting.title),
            where=calendar_text(meeting.place) if meeting.place else meeting.place,
            description=(
                f"Meeting #{meeting.id} of {slug}. "
                f"Answer in the chat with {prefix(meeting.platform)}meeting rsvp {meeting.id} yes|no|maybe."
            ),
            series=queries.series_of(meeting, changes.get(meeting.id, ())),
            duration=timedelta(minutes=meeting.duration_minutes),
            sequence=meeting.sequence,
            cancelled=meeting.cancelled_at is not None,
            created=meeting.created_at,
            updated=meeting.updated_at,
        )
        for meeting in meetings
    ]
