"""The repertoire published: ``repertoire export`` (a file, or a link where files can't go), the export
itself at ``/c/<slug>/repertoire.md|json``, and the page that browses and searches it,
``/c/<slug>/repertoire``. A private community's pages and links need the signed key the bot hands out."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from bot.arguments import storable
from bot.context import Context
from bot.errors import UsageError
from bot.model import Attachment, Capability, Community, Content
from bot.plugin import Plugin, command, route
from bot.web.links import keyed, pages_address, signing_key, verify
from plugins.repertoire import queries
from plugins.repertoire.export import as_json, as_markdown
from plugins.repertoire.models import KINDS
from plugins.repertoire.rules import day_in, split_tags
from plugins.repertoire.search import closest_tags, search_items, snippet
from plugins.repertoire.search import words as search_words

if TYPE_CHECKING:
    from aiohttp import web

Format = Literal["md", "json"]
MIME = {"md": "text/markdown", "json": "application/json"}
PAGE_ITEMS = 50  # items on the web page
MAX_QUERY, MAX_TAG = 300, 41


class Publishing(Plugin):
    # --- export -----------------------------------------------------------------------------------------

    @command("repertoire export", examples=("repertoire export", "repertoire export json"))
    async def export(self, ctx: Context, format: Format = "md") -> None:
        """The whole repertoire as a file (Markdown to read, JSON to keep), or a link where files can't go.

        Args:
            format: md or json
        """
        community = ctx.community
        if community is None or ctx.community_id is None:
            raise UsageError("this room belongs to no community")
        if Capability.FILES in ctx.adapter.capabilities:
            data = await self.render_export(ctx.session, ctx.community_id, community, format)
            name = f"{community.slug}-repertoire.{format}"
            await ctx.reply(
                Content(
                    f"The repertoire of {community.name}, as {format}.",
                    attachment=Attachment(name, data, MIME[format]),
                )
            )
            return
        web = self.services.settings.web
        address = f"{pages_address(web)}/c/{community.slug}/repertoire.{format}"
        purpose = f"repertoire:{community.slug}"
        url = await keyed(ctx.session, web.secret, address, purpose, ctx.now(), public=community.public)
        await ctx.reply(f"The repertoire of {community.name} as {format}: {url}")

    async def render_export(
        self,
        session: AsyncSession,
        community_id: int,
        community: Community,
        format: str,
        *,
        web: bool = False,
    ) -> bytes:
        """The export file. ``web``: served at ``/c/<slug>/repertoire.<format>``, where anyone with the
        link reads it (anyone at all, for a public community), so authors are named there only if they
        chose ``profile set public on``, as on the repertoire's page; a file sent in the chat names them
        as the chat does."""
        items = await queries.all_items(session, community_id, web=web)
        now = self.services.clock.now()
        if format == "json":
            return as_json(community.name, items, now)
        return as_markdown(community.name, items, now, community.timezone)

    @route("/c/{slug}/repertoire.{format}")
    async def export_page(self, request: web.Request) -> web.Response:
        """The repertoire as Markdown or JSON; a private community's needs the link's key."""
        from aiohttp import web

        slug, format = request.match_info["slug"], request.match_info["format"]
        registry = self.services.registry
        assert registry is not None
        community_id = registry.community_ids.get(slug)
        if community_id is None or format not in MIME:
            raise web.HTTPNotFound(text="no such page")
        community = registry.communities[community_id]
        if not community.public:
            now = self.services.clock.now()
            key = await signing_key(self.services.db, self.services.settings.web.secret, now)
            if not verify(key, f"repertoire:{slug}", request.query.get("key", ""), now):
                raise web.HTTPForbidden(
                    text="this export needs the link copbot gives with `repertoire export`"
                )
        async with self.services.db.session() as session:
            data = await self.render_export(session, community_id, community, format, web=True)
        return web.Response(
            body=data,
            content_type=MIME[format],
            charset="utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{slug}-repertoire.{format}"',
                "X-Content-Type-Options": "nosniff",
            },
        )

    # --- the web page ---------------------------------------------------------------------------------

    @route("/c/{slug}/repertoire")
    async def browse_page(self, request: web.Request) -> web.Response:
        """Browse and search the repertoire (``?q=``, ``?kind=``, ``?tag=``): ranked as in chat with words,
        newest first without; authors named only if they chose to show their name. A private community's
        page needs the dashboard's signed link, which every link here carries."""
        import aiohttp_jinja2

        from bot.web.pages import community_nav, community_url, open_community

        community, carry = await open_community(request, self.services)
        registry = self.services.registry
        assert registry is not None
        community_id = registry.community_ids[community.slug]
        # storable, as a command's words are: PostgreSQL refuses a NUL in text ("?tag=%00" was a 500)
        words = storable(request.query.get("q", "")).strip()[:MAX_QUERY]
        asked_kind = request.query.get("kind", "").strip().lower()
        kind = asked_kind if asked_kind in KINDS else None
        tag = (
            storable(request.query.get("tag", "")).strip().removeprefix("#").strip().lower()[:MAX_TAG] or None
        )
        snippets: dict[int, str] = {}
        common = bool(words) and not search_words(words)  # "the", "don't": as chat, not "nothing matches"
        async with self.services.db.session() as session:
            if common:
                items, total, near = [], 0, []
            elif words:
                hits = await search_items(
                    session, words, community_ids=[community_id], kind=kind, tag=tag, limit=PAGE_ITEMS
                )
                found = await queries.by_ids(session, [hit.item_id for hit in hits])
                items = [found[hit.item_id] for hit in hits if hit.item_id in found]
                snippets = {hit.item_id: hit.snippet for hit in hits}
                total = len(items)
                # the tag may be what found nothing: tags close to it, not to the words (as in chat)
                near = (
                    [] if items else await closest_tags(session, tag or words, community_ids=[community_id])
                )
            else:
                items, total = await queries.newest(session, community_id, kind, tag, limit=PAGE_ITEMS)
                near = []
            upvotes, uses = await queries.counts(session, [item.id for item in items if item.id is not None])
            names = await queries.public_names(session, [item.author_id for item in items])

        def here(**params: str | None) -> str:
            return community_url(community.slug, "repertoire", carry, **params)

        entries = [
            {
                "item": item,
                "day": day_in(item.created_at, community.timezone),  # the community's day, as in chat
                "author": names.get(item.author_id),
                "upvotes": upvotes.get(item.id or 0, 0),
                "used": uses.get(item.id or 0, 0),
                "snippet": _marked(snippets.get(item.id or 0) or snippet(None, None, item.body, item.title)),
                "tags": [(each, here(tag=each)) for each in split_tags(item.tags)],
                "url": item.url if _web_link(item.url) else "",
                "source": item.source_link if _web_link(item.source_link) else "",
            }
            for item in items
        ]
        context = {
            "community": community,
            "nav": community_nav(self.services, community.slug, carry),
            "q": words,
            "common": common,
            "kind": kind or "",
            "tag": tag or "",
            "kinds": KINDS,
            "key": request.query.get("key", "") if carry else "",
            "entries": entries,
            "total": total,
            "near": [(each, here(tag=each)) for each in near],
            "clear": here(),
            "limit": PAGE_ITEMS,
        }
        return aiohttp_jinja2.render_template("repertoire/browse.html", request, context)


def _marked(text: str) -> list[tuple[str, bool]]:
    """A snippet in pieces, each saying whether it is a matched word («word»): the page marks those with
    <mark> and escapes every piece."""
    pieces: list[tuple[str, bool]] = []
    for part in re.split(r"(«[^«»]*»)", text):
        if part.startswith("«") and part.endswith("»") and len(part) > 1:
            pieces.append((part[1:-1], True))
        elif part:
            pieces.append((part, False))
    return pieces


def _web_link(url: str) -> bool:
    """Only http(s) addresses become links on the web page (never javascript: or data:)."""
    return url.lower().startswith(("https://", "http://"))
