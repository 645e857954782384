"""The digest: each community's news on its schedule, once per period, on every platform it uses — and as
an Atom feed for the transactional circle, who follow the community from outside.

Every plugin contributes its own sections (``Plugin.digest``: new members, level changes, repertoire,
meetings, polls); this one adds the activity summary, puts them in order, and posts them. A period is
posted once: the posted period is stored, the messages go through the outbox, and a digest missed while
copbot was down is posted once when it comes back (the scheduler coalesces missed ticks into one).
``stats`` shows the bulb's figures to moderators.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.config_values import CronSchedule, PerCommunity, RoomMap
from bot.context import Context, JobContext
from bot.errors import Refused, UsageError
from bot.escaping import xml_text
from bot.model import Capability, Content, Room
from bot.plugin import DigestSection, Panel, Plugin, PluginConfig, command, route, schedule
from bot.scheduler import previous_fire_time
from bot.tables import CommunityRow
from bot.timeparse import format_when
from bot.web.caching import fresh
from bot.web.links import keyed, pages_address, signing_key, verify
from plugins.digest.models import DigestEntryRow, DigestPost

if TYPE_CHECKING:
    from aiohttp import web

    from plugins.digest.render import Digest

DEFAULT_PERIOD = timedelta(days=7)
POSTED_EARLY_SLACK = timedelta(seconds=1)
"""A digest posted early covers what happened up to one second after it is posted (see ``_post``)."""
ACTIVITY_ORDER = 90
PANEL_LINES = 6


class DigestConfig(PluginConfig):
    schedule: CronSchedule = Field(default="0 9 * * mon", description="cron, in each community's zone")
    community_schedules: Annotated[dict[str, CronSchedule], PerCommunity] = Field(
        default_factory=dict, examples=[{"water": "0 9 * * fri"}]
    )
    rooms: RoomMap = Field(
        default_factory=dict, description="community slug → platform → the room the digest goes to"
    )


class DigestPlugin(Plugin):
    name = "digest"
    description = "a digest on schedule, and an Atom feed"
    Config = DigestConfig
    config: DigestConfig

    async def setup(self) -> None:
        await self.schedule_per_community(
            job_id, "digest.post", self.config.schedule, self.config.community_schedules
        )

    # --- building ---------------------------------------------------------------------------------------

    async def build(
        self,
        session: AsyncSession,
        community_id: int,
        start: datetime,
        end: datetime,
        until: datetime | None = None,
    ) -> Digest:
        """Every plugin's sections for the period, and the activity beside the period before.

        ``until``: when the period is posted before its end (``digest now``), the moment it is: the activity
        so far is compared with as long a stretch just before the period, not with a whole one.

        The two activity figures are the slow part (each counts a period's rows in the index) and mostly
        the database's work (SQLite's runs in its connection's thread, without the interpreter's lock), so
        they are read on connections of their own while the plugins' sections are read in this session:
        the build takes about the longest of the three, not their sum (bench/digest.py). Those connections
        see what was committed, which is all the period's activity: the journal is flushed before a digest
        is built. A database with one connection (SQLite in memory) reads them in turn in this session.
        """
        # Figures and rendering: loaded by the first digest built (a post, a preview), not at start-up.
        from plugins.digest import figures
        from plugins.digest.render import Digest

        registry = self.services.registry
        assert registry is not None
        community = registry.communities[community_id]

        covered = min(end, until) if until is not None else end

        async def sections_of_plugins() -> list[DigestSection]:
            # As of what the digest covers: one posted early (digest now) lists the polls open and the
            # meetings coming from now, not from the period's end days ahead.
            sections: list[DigestSection] = []
            for plugin in registry.plugins.values():
                sections += await plugin.digest(session, community_id, start, covered, community.timezone)
            return sections

        period_before = self._period_before(community.slug, community.timezone, start, covered, end)
        database = self.services.db
        if database.concurrent_reads:
            async with (
                database.session() as first,
                database.session() as second,
                asyncio.TaskGroup() as tasks,
            ):
                reading_now = tasks.create_task(figures.activity(first, community_id, start, covered))
                reading_before = tasks.create_task(figures.activity(second, community_id, *period_before))
                sections = await sections_of_plugins()
            now, before = reading_now.result(), reading_before.result()
        else:
            sections = await sections_of_plugins()
            now = await figures.activity(session, community_id, start, covered)
            before = await figures.activity(session, community_id, *period_before)
        if now.messages or now.active_members or now.contributions:
            sections.append(
                DigestSection(
                    "Activity (the period before in brackets)",
                    (
                        f"Messages: {figures.versus(now.messages, before.messages)}",
                        f"Active members: {figures.versus(now.active_members, before.active_members)}",
                        f"Contributions: {figures.versus(now.contributions, before.contributions)}",
                    ),
                    ACTIVITY_ORDER,
                )
            )
        return Digest(community.name, start, end, community.timezone, tuple(sections))

    def _period_before(
        self, slug: str, tz: str, start: datetime, covered: datetime, end: datetime
    ) -> tuple[datetime, datetime]:
        """The stretch the period's activity is compared with: for a whole period of the schedule, the
        schedule's period before it — what that period's own digest counted, also across a change of the
        clocks (a week is then 167 or 169 hours) or for months of different lengths; for a period posted
        early or caught up, as long a stretch of the community's wall-clock time just before it."""
        from zoneinfo import ZoneInfo

        line = self.config.community_schedules.get(slug, self.config.schedule)
        if covered >= end and line and previous_fire_time(line, tz, end) == start:
            tick = previous_fire_time(line, tz, start)
            if tick is not None:
                return tick, start
        zone = ZoneInfo(tz)
        wall_start = start.astimezone(zone).replace(tzinfo=None)
        length = covered.astimezone(zone).replace(tzinfo=None) - wall_start
        return (wall_start - length).replace(tzinfo=zone).astimezone(UTC), start

    async def _last_end(
        self, session: AsyncSession, community_id: int
    ) -> tuple[datetime, datetime] | tuple[None, None]:
        """The end of the last period posted, and how far its digest covered: the same, unless it was
        posted before its end (``digest now``), whose digest covered up to its posting. The next digest
        starts there, so what happens between a ``digest now`` and the end of its period (a member who
        joins, a poll that closes) is in the next one rather than in none."""
        last = (
            await session.execute(
                select(col(DigestPost.period_end), col(DigestPost.posted_at))
                .where(col(DigestPost.community_id) == community_id)
                .order_by(col(DigestPost.period_end).desc())
                .limit(1)
            )
        ).first()
        if last is None:
            return None, None
        end, posted_at = last
        return end, min(end, posted_at + POSTED_EARLY_SLACK)

    # --- posting ----------------------------------------------------------------------------------------

    @schedule("post")
    async def post(self, ctx: JobContext, community: str) -> None:
        """The scheduled digest for the period that ends now; nothing if that period was posted already."""
        registry = self.services.registry
        if registry is None or community not in registry.community_ids:
            return
        community_id = registry.community_ids[community]
        pipeline = self.services.pipeline
        if pipeline is not None:  # what happened just before the end counts in this period, not in none
            await pipeline.activity_written()
        end = ctx.due_at or ctx.now()
        last, covered = await self._last_end(ctx.session, community_id)
        if last is not None and last >= end:
            return  # posted already (by `digest now`, or before a restart)
        start = covered if covered is not None else self._first_start(community_id, end)
        await self._post(ctx, community_id, community, start, end, ctx.now())

    def _first_start(self, community_id: int, end: datetime) -> datetime:
        """Where the first digest's period starts (no digest before it): the schedule's tick before
        ``end`` — a daily digest's first covers a day, a monthly one's a month — or a week before ``end``
        for a community whose digest is off (`digest now` still posts one)."""
        registry = self.services.registry
        community = registry.communities.get(community_id) if registry is not None else None
        if community is None:
            return end - DEFAULT_PERIOD
        line = self.config.community_schedules.get(community.slug, self.config.schedule)
        tick = previous_fire_time(line, community.timezone, end) if line else None
        return tick if tick is not None else end - DEFAULT_PERIOD

    async def _post(
        self,
        ctx: Context | JobContext,
        community_id: int,
        slug: str,
        start: datetime,
        end: datetime,
        now: datetime,
    ) -> Digest:
        from plugins.digest.render import as_html, as_text, placed

        digest = await self.build(ctx.session, community_id, start, end, until=now + POSTED_EARLY_SLACK)
        web = digest.for_web()
        post = DigestPost(
            community_id=community_id,
            period_start=start,
            period_end=end,
            posted_at=now,
            title=digest.title,
            text=as_text(web),  # what the dashboard and the Atom feed show
            html=as_html(web),
            quiet=digest.quiet,
        )
        ctx.session.add(post)
        await ctx.session.flush()  # the period is taken: a second post of it fails here, not in chat
        # who and what the copy names, where: forget and public off change just that (digest/privacy.py)
        ctx.session.add_all(
            DigestEntryRow(
                post_id=post.id or 0,
                row=row,
                item=item,
                line=line,
                member_id=entry.member_id,
                name=entry.name,
                at=entry.at,
                item_by=entry.item_by,
                item_id=entry.item_id,
            )
            for row, item, line, entry in placed(web)
        )
        for platform, room_id in self.config.rooms.get(slug, {}).items():
            adapter = self.services.adapters.get(platform)
            if adapter is None:
                continue
            room = Room(platform, room_id, community_id=slug)
            for content in render_for(digest, adapter.capabilities):
                await ctx.post(room, content)
        return digest

    # --- commands ---------------------------------------------------------------------------------------

    @command("digest preview", examples=("digest preview",), reads_activity=True)
    async def preview(self, ctx: Context) -> None:
        """The digest of the period so far, as it would be posted (only to you)."""
        community_id = ctx.require_community()
        now = ctx.now()
        _, covered = await self._last_end(ctx.session, community_id)
        end = now + timedelta(seconds=1)  # what happened this very second counts too
        start = covered or self._first_start(community_id, end)
        digest = await self.build(ctx.session, community_id, start, end)
        for index, content in enumerate(render_for(digest, ctx.adapter.capabilities)):
            # only to the caller: by direct message where the platform has no private reply
            public = "I have sent you the digest preview in a direct message." if index == 0 else None
            await ctx.reply_privately(content, public=public)

    @command("digest now", mod=True, examples=("digest now",), reads_activity=True)
    async def now(self, ctx: Context) -> None:
        """Post the digest of the period so far, now; the period's scheduled digest is then skipped."""
        community_id = ctx.require_community()
        assert ctx.community is not None
        now = ctx.now()
        last, covered = await self._last_end(ctx.session, community_id)
        scheduler = self.services.scheduler
        upcoming = await scheduler.next_run(job_id(ctx.community.slug)) if scheduler else None
        end = max(upcoming or now, now)
        if last is not None and last >= end:
            raise Refused("This period's digest was posted already; the next one comes on schedule.")
        start = covered or self._first_start(community_id, end)
        digest = await self._post(ctx, community_id, ctx.community.slug, start, end, now)
        rooms = self.config.rooms.get(ctx.community.slug, {})
        where = ", ".join(sorted(rooms)) or "its feed only: no room is set for it ([plugins.digest] rooms)"
        await ctx.reply(f"Posted {digest.title} to {where}; the scheduled one for this period is skipped.")

    @command("digest subscribe", examples=("digest subscribe",))
    async def subscribe(self, ctx: Context) -> None:
        """The address of the digest's Atom feed, for a feed reader or a newsletter tool."""
        community = ctx.community
        if community is None:
            raise UsageError("this room belongs to no community")
        web = self.services.settings.web
        address, purpose = f"{pages_address(web)}/c/{community.slug}/digest.atom", f"digest:{community.slug}"
        url = await keyed(ctx.session, web.secret, address, purpose, ctx.now(), public=community.public)
        await ctx.reply(f"Follow {community.name}'s digest in any feed reader: {url}")

    @command("stats", mod=True, examples=("stats",), reads_activity=True)
    async def stats(self, ctx: Context) -> None:
        """The bulb in figures: members per level, who is active, newcomer conversion, contributions."""
        from plugins.digest import figures

        community_id = ctx.require_community()
        now = ctx.now()
        month = timedelta(days=30)
        current, previous = (
            await figures.bulb(ctx.session, community_id, now),
            await figures.bulb(ctx.session, community_id, now - month),
        )
        then = await figures.levels_at(ctx.session, community_id, now - month)
        # the newcomers of 30 days ago, at the levels they had then (not at today's)
        newcomers_then = await figures.levels_at(
            ctx.session, community_id, now - month, joined=(now - 4 * month, now - 2 * month)
        )
        joined_then = sum(newcomers_then.values())
        converted_then = sum(newcomers_then[level] for level in ("core", "active", "occasional"))
        conversion_then = converted_then / joined_then if joined_then else None
        lines = ["The community (30 days ago in brackets):"]
        lines += [
            f"{level}: {figures.versus(current.levels[level], then[level])}" for level in figures.LEVELS
        ]
        lines.append(f"Active in the last 30 days: {figures.versus(current.active_30, previous.active_30)}")
        if current.conversion is None:
            lines.append("Newcomer conversion: nobody joined 30–90 days ago")
        else:
            lines.append(
                f"Newcomer conversion: {current.conversion:.0%} of the {current.joined_30_90} who joined "
                "30–90 days ago are occasional or more"
                + (f" (was {conversion_then:.0%})" if conversion_then is not None else "")
            )
        kinds = sorted(set(current.contributions) | set(previous.contributions))
        counted = [
            f"{kind.replace('_', ' ')} "
            + figures.versus(current.contributions.get(kind, 0), previous.contributions.get(kind, 0))
            for kind in kinds
        ]
        lines.append("Contributions in 30 days: " + (", ".join(counted) if counted else "none yet"))
        await ctx.reply("\n".join(lines))

    # --- the member's own data --------------------------------------------------------------------------

    async def personal_data(self, session: AsyncSession, member_ids: Sequence[int]) -> Mapping[str, Any]:
        from plugins.digest import privacy  # only when a member's data is exported or forgotten

        return await privacy.personal_data(session, member_ids)

    async def hide_names(self, session: AsyncSession, member_ids: Sequence[int]) -> None:
        from plugins.digest import privacy  # only when a member hides their name

        await privacy.hide_names(session, member_ids)

    async def items_removed(self, session: AsyncSession, item_ids: Sequence[int]) -> None:
        from plugins.digest import privacy  # only when items leave the repertoire

        await privacy.remove_items(session, item_ids)

    async def forget(
        self, session: AsyncSession, member_ids: Sequence[int], *, remove_items: bool
    ) -> Sequence[str]:
        from plugins.digest import privacy  # only when a member's data is exported or forgotten

        return await privacy.forget(session, member_ids, remove_items=remove_items)

    # --- the dashboard ----------------------------------------------------------------------------------

    async def panels(
        self, session: AsyncSession, community_id: int, now: datetime, tz: str
    ) -> Sequence[Panel]:
        """The latest posted digest: its title and first lines, and the Atom feed (a private community's
        with its own signed key, as ``digest subscribe`` gives it)."""
        post = (
            await session.execute(
                select(col(DigestPost.title), col(DigestPost.text), col(DigestPost.posted_at))
                .where(col(DigestPost.community_id) == community_id)
                .order_by(col(DigestPost.period_end).desc())
                .limit(1)
            )
        ).first()
        registry = self.services.registry
        community = registry.communities.get(community_id) if registry is not None else None
        public = community is None or community.public
        purpose = f"digest:{community.slug if community else ''}"
        feed = await keyed(
            session, self.services.settings.web.secret, "digest.atom", purpose, now, public=public
        )
        link = ("Follow the digest (Atom feed)", feed)
        if post is None:
            return (Panel("The digest", ("No digest posted yet.",), 60, link),)
        title, text, posted_at = post
        body = [line for line in text.splitlines()[1:] if line.strip()]  # the first line is the title
        lines = (f"{title} (posted {format_when(posted_at, tz)})", *body[:PANEL_LINES])
        if len(body) > PANEL_LINES:
            lines += ("…",)
        return (Panel("The latest digest", lines, 60, link),)

    # --- the feed ---------------------------------------------------------------------------------------

    @route("/c/{slug}/digest.atom")
    async def feed(self, request: web.Request) -> web.Response:
        """Posted digests as Atom, newest first; a private community's needs the link's key."""
        from aiohttp import web

        slug = request.match_info["slug"]
        registry = self.services.registry
        assert registry is not None
        community_id = registry.community_ids.get(slug)
        if community_id is None:
            raise web.HTTPNotFound(text="no such community")
        community = registry.communities[community_id]
        now = self.services.clock.now()
        if not community.public:
            key = await signing_key(self.services.db, self.services.settings.web.secret, now)
            if not verify(key, f"digest:{slug}", request.query.get("key", ""), now):
                raise web.HTTPForbidden(text="this feed needs the link copbot gives with `digest subscribe`")
        async with self.services.db.session() as session:
            posts = list(
                (
                    await session.execute(
                        select(DigestPost)
                        .where(col(DigestPost.community_id) == community_id)
                        .order_by(col(DigestPost.period_end).desc())
                        .limit(50)
                    )
                ).scalars()
            )
            # with no digest yet, the feed was last changed when the community began, not at each fetch
            updated = posts[0].posted_at if posts else await _begun(session, community_id, now)
        base = self.services.settings.web.base_url()
        # the feed's own address as subscribed: a private community's with its key, or following it fails
        given = request.query.get("key", "") if not community.public else ""
        body = atom(slug, community.name, base, posts, updated, key=given)
        # readers ask every few minutes: one that has this feed already is told 304, without the body
        etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache", "ETag": etag}
        if fresh(request, etag, updated):
            response = web.Response(status=304, headers=headers)
        else:
            response = web.Response(
                body=body, content_type="application/atom+xml", charset="utf-8", headers=headers
            )
        response.last_modified = updated
        return response


async def _begun(session: AsyncSession, community_id: int, now: datetime) -> datetime:
    """When the community was first seen: a steady ``updated`` for a feed with no entry yet."""
    begun = await session.scalar(
        select(col(CommunityRow.created_at)).where(col(CommunityRow.id) == community_id)
    )
    return begun if begun is not None else now


def atom(
    slug: str, name: str, base: str, posts: Sequence[DigestPost], updated: datetime, *, key: str = ""
) -> bytes:
    """A valid Atom feed (feedgen): stable entry ids per period, so readers never show one twice."""
    from feedgen.feed import FeedGenerator

    feed = FeedGenerator()
    feed.id(f"tag:copbot,2026:{slug}/digest")
    feed.title(xml_text(f"{name} — digest"))
    address = f"{base}/c/{slug}/digest.atom" + (f"?{urlencode({'key': key})}" if key else "")
    feed.link(href=address, rel="self")
    feed.updated(updated)
    feed.author({"name": "copbot"})
    for post in reversed(posts):  # feedgen lists entries newest first when added oldest first
        entry = feed.add_entry()
        entry.id(f"tag:copbot,2026:{slug}/digest/{post.period_end:%Y-%m-%dT%H:%M:%SZ}")
        entry.title(xml_text(post.title))
        entry.updated(post.posted_at)
        entry.published(post.posted_at)
        entry.content(xml_text(post.html), type="html")
        entry.summary(xml_text(post.text[:500]))
    atom: bytes = feed.atom_str(pretty=True)  # feedgen has no type hints
    return atom


def render_for(digest: Digest, capabilities: frozenset[Capability]) -> list[Content]:
    """Cards where the platform draws them richly (Discord embeds, Matrix HTML), plain text elsewhere.

    One card where the platform takes a message of any length and splits it only at its own limit
    (Matrix: an event's 64 KiB), which a digest rarely reaches; cards cut to Discord's embed limits
    elsewhere, which on Matrix made a long digest several messages with "(continued)" sections."""
    from plugins.digest.render import as_card, as_cards, as_text

    if Capability.LONG_MESSAGES in capabilities and Capability.RICH_TEXT in capabilities:
        return [Content("", card=as_card(digest))]
    if Capability.BUTTONS in capabilities or Capability.RICH_TEXT in capabilities:
        return [Content("", card=card) for card in as_cards(digest)]
    return [Content(as_text(digest))]


def job_id(slug: str) -> str:
    return f"digest:{slug}"
