"""The community dashboard on the web: is the community healthy? For coordinators, and for anyone when the
community is public.

``/`` lists the public communities this copbot serves, each with its members and last 30 days at a glance
(private ones are not listed). ``/c/<slug>`` draws the bulb — members per level, core in the centre — with
activity per week over twelve weeks, newcomer conversion, the moves between levels in the last 30 days
(names only of members who chose to show theirs), then every plugin's panels (``Plugin.panels``: upcoming
meetings, open polls, the latest digest …). Everything is drawn on the server as SVG and HTML: the pages
work with JavaScript off, and what members wrote is escaped everywhere.

A private community's pages (the default) need the signed link that ``dashboard`` sends a moderator by
direct message, valid for ``[plugins.dashboard] link_hours``; without a valid one the answer is 403 and
shows nothing of the community. The figures are computed afresh on every request (bench/dashboard.py: a
community of 10,000 members and a million activity rows within 100 ms), nothing is cached.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import Field

from bot.context import Context
from bot.errors import Refused, UsageError
from bot.plugin import Panel, Plugin, PluginConfig, command, route
from bot.timeparse import format_when
from bot.web.links import pages_address, sign, signing_key

if TYPE_CHECKING:
    from aiohttp import web


class DashboardConfig(PluginConfig):
    link_hours: int = Field(
        default=72, ge=1, le=24 * 366, description="how long a link from `dashboard` works, in hours"
    )


class Dashboard(Plugin):
    name = "dashboard"
    description = "the community's dashboard on the web: the bulb, activity, moves, every plugin's panels"
    Config = DashboardConfig
    config: DashboardConfig

    # --- the link ---------------------------------------------------------------------------------------

    @command("dashboard", mod=True, examples=("dashboard",))
    async def dashboard(self, ctx: Context) -> None:
        """A link to the community's dashboard, sent to you in a direct message; it works for a while."""
        community = ctx.community
        if community is None or ctx.author is None:
            raise UsageError("this room belongs to no community")
        web = self.services.settings.web
        url = f"{pages_address(web)}/c/{community.slug}"
        if community.public:
            await ctx.reply(f"The dashboard of {community.name} is public: {url}")
            return
        from bot.web.pages import DASHBOARD

        now = ctx.now()
        expires = now + timedelta(hours=self.config.link_hours)
        key = await signing_key(ctx.session, web.secret, now)
        link = f"{url}?key={sign(key, f'{DASHBOARD}:{community.slug}', expires)}"
        text = (
            f"The dashboard of {community.name}: {link}\n"
            f"The link works until {format_when(expires, ctx.timezone)}. Whoever has it can see the "
            f"dashboard (names only of members who chose to show theirs); ask again with "
            f"{ctx.prefix}dashboard for a new one."
        )
        if ctx.room.is_direct:
            await ctx.reply(text)
            return
        try:
            await ctx.send_direct(ctx.author, text)
        except Exception:  # the platform refused (direct messages closed): say so, never show the link here
            self.log.warning("could not send the dashboard link to %s", ctx.author.key, exc_info=True)
            raise Refused(
                "I could not send you a direct message, so there is no link this time; allow direct "
                f"messages from this community's members and ask again with {ctx.prefix}dashboard."
            ) from None
        await ctx.reply(f"I sent you the link to the dashboard in a direct message ({_hours(self)}).")

    # --- the pages --------------------------------------------------------------------------------------

    @route("/")
    async def home(self, request: web.Request) -> web.Response:
        """The public communities, each at a glance; private ones are not listed."""
        import aiohttp_jinja2

        from bot.web.pages import community_url
        from plugins.dashboard import figures  # the pages' figures: loaded by the first page asked for

        registry = self.services.registry
        assert registry is not None
        public = sorted(
            (
                (community_id, community)
                for community_id, community in registry.communities.items()
                if community.public
            ),
            key=lambda pair: pair[1].name.lower(),
        )
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            glances = await figures.glance(session, [community_id for community_id, _ in public], now)
        rows = [
            {
                "community": community,
                "glance": glances[community_id],
                "url": community_url(community.slug),
            }
            for community_id, community in public
        ]
        return aiohttp_jinja2.render_template("dashboard/home.html", request, {"rows": rows})

    @route("/c/{slug}")
    async def community_page(self, request: web.Request) -> web.Response:
        """The bulb, activity per week, newcomer conversion, moves between levels, and every plugin's
        panels — for a private community only with the signed link."""
        import aiohttp_jinja2

        from bot.web.pages import community_nav, open_community
        from plugins.dashboard import drawing, figures

        community, carry = await open_community(request, self.services)
        registry = self.services.registry
        assert registry is not None
        community_id = registry.community_ids[community.slug]
        now = self.services.clock.now()
        database = self.services.db

        async def activity(weeks: range) -> list[figures.Week]:
            async with database.session() as session:
                return await figures.weekly(session, community_id, now, only=weeks)

        async def members() -> tuple[dict[str, int], figures.Conversion, list[figures.Move]]:
            async with database.session() as session:
                return (
                    *await figures.bulb(session, community_id, now),
                    await figures.moves(session, community_id, now - figures.MONTH, now),
                )

        # Side by side, each on a connection of its own (SQLite reads in parallel in WAL mode): the weekly
        # counts, which read the most rows, in two halves; the members' figures; the plugins' panels.
        half = figures.WEEKS // 2
        older, newer, (counts, converted, moved), panels = await asyncio.gather(
            activity(range(half)),
            activity(range(half, figures.WEEKS)),
            members(),
            self._panels(community_id, now, community.timezone),
        )
        weeks = older + newer
        total = sum(counts.values())
        context = {
            "community": community,
            "nav": community_nav(self.services, community.slug, carry),
            "total": total,
            "levels": [
                (level, counts[level], f"{counts[level] / total:.0%}" if total else "–")
                for level in figures.LEVELS
            ],
            "rings": drawing.bulb(figures.LEVELS, counts),
            "bulb": {
                "width": drawing.BULB_WIDTH,
                "height": drawing.BULB_HEIGHT,
                "cx": drawing.CENTRE[0],
                "cy": drawing.CENTRE[1],
                "label_x": drawing.LABEL_X,
            },
            "weeks": weeks,
            "week_total": sum(week.count for week in weeks),
            "bars": drawing.bars([(w.start, w.end, w.count) for w in weeks], community.timezone),
            "chart": {
                "width": drawing.CHART_WIDTH,
                "height": drawing.CHART_HEIGHT,
                "base": drawing.BAR_BOTTOM,
            },
            "conversion": converted,
            "moves": moved,
            "panels": [
                (panel, _panel_link(community.slug, carry, panel.link[1]) if panel.link else None)
                for panel in panels
            ],
            "now": format_when(now, community.timezone),
            "until": _until(request.query.get("key", ""), community.timezone) if carry else None,
        }
        return aiohttp_jinja2.render_template("dashboard/community.html", request, context)

    async def _panels(self, community_id: int, now: datetime, tz: str) -> list[Panel]:
        """Every plugin's panels, in their order. A plugin whose panels fail is left out (and logged), its
        work rolled back so that the others' go on (PostgreSQL refuses more in an aborted transaction)."""
        registry = self.services.registry
        assert registry is not None
        found: list[Panel] = []
        async with self.services.db.sessions() as session:
            for plugin in registry.plugins.values():
                if type(plugin).panels is Plugin.panels:
                    continue  # no panels of its own
                try:
                    found += await plugin.panels(session, community_id, now, tz)
                except Exception:
                    self.log.exception("plugin %s failed to make its dashboard panels", plugin.name)
                    await session.rollback()
            await session.commit()  # what the panels keep (the links' secret, made once)
        return sorted(found, key=lambda panel: panel.order)


def _panel_link(slug: str, carry: str, target: str) -> str:
    """A panel's link, relative to the community's pages: one that brings its own key (a feed's signed
    link) is kept as it is; any other carries the page's key."""
    from bot.web.pages import community_url

    if "?" in target:
        return f"{community_url(slug)}/{target}"
    return community_url(slug, target, carry)


def _until(key: str, tz: str) -> str | None:
    """Until when the link of this page works (the expiry its key carries), in the community's zone."""
    until, _, _ = key.partition(".")
    if not until.isdigit() or until == "0":
        return None
    return format_when(datetime.fromtimestamp(int(until), tz=UTC), tz)


def _hours(plugin: Dashboard) -> str:
    hours = plugin.config.link_hours
    if hours % 24 == 0:
        days = hours // 24
        return f"it works for {days} day{'s' if days != 1 else ''}"
    return f"it works for {hours} hour{'s' if hours != 1 else ''}"
