"""Web pages, the shared part: templates (Jinja2, escaped by default), the layout every page extends, who
may see a community's pages, and the security headers every response carries.

Pages are rendered on the server (charts as SVG in the HTML) and work with JavaScript off. A plugin serves
its pages with ``@route`` and renders ``"<plugin>/<page>.html"`` from its own ``templates/`` folder; its
templates extend ``"core/layout.html"`` (and include ``"core/nav.html"`` with :func:`community_nav` for the
links between a community's pages; :func:`community_url` makes any other link, the key carried).

A private community's pages need a signed link (``dashboard`` gives one, valid for a while): the key is in
the address, carried on every link of the page, and checked on every request; without a valid one the
answer is 403 and shows nothing of the community.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlencode

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.model import Community
from bot.web.links import signing_key, verify

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler

    from bot.services import Services

log = logging.getLogger(__name__)
CORE_TEMPLATES = Path(__file__).resolve().parent / "templates"
DASHBOARD = "dashboard"
"""The purpose a dashboard link signs: every page of one community."""

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # a private link's key must not leak to other sites
    "Cache-Control": "no-store",
}


def setup_templates(app: web.Application, plugin_folders: dict[str, Path]) -> None:
    """``core/…`` from bot/web/templates, ``<plugin>/…`` from each plugin's templates folder."""
    loaders: dict[str, jinja2.BaseLoader] = {"core": jinja2.FileSystemLoader(CORE_TEMPLATES)}
    for name, folder in plugin_folders.items():
        loaders[name] = jinja2.FileSystemLoader(folder)
    environment = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PrefixLoader(loaders),
        autoescape=jinja2.select_autoescape(["html", "svg"], default=True),
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["number"] = lambda value: f"{value:,}" if isinstance(value, int) else value


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer carries the headers, a failure's too: aiohttp's own 500 for an exception would go out
    without them (and may be cached), so a handler that fails is logged here and answered as a plain 500."""
    try:
        response = await handler(request)
    except web.HTTPException as error:
        response = error
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        raise
    except Exception:
        log.exception("web: %s %s failed", request.method, request.path)
        response = web.Response(status=500, text="Something went wrong on copbot's side; it is in its log.")
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def open_community(request: web.Request, services: Services) -> tuple[Community, str]:
    """The community of ``/c/{slug}/…`` if the caller may see it, and the query string its links carry
    (``?key=…`` for a private one). 404 for an unknown community, 403 without a valid link."""
    slug = request.match_info.get("slug", "")
    registry = services.registry
    community_id = registry.community_ids.get(slug) if registry is not None else None
    if registry is None or community_id is None:
        raise web.HTTPNotFound(text="No such community here.")
    community = registry.communities[community_id]
    if community.public:
        return community, ""
    key = request.query.get("key", "")
    now = services.clock.now()
    secret = await signing_key(services.db, services.settings.web.secret, now)
    if not verify(secret, f"{DASHBOARD}:{slug}", key, now):
        raise web.HTTPForbidden(
            text="This page needs a valid link, and a link lasts a while only: a moderator of the community "
            f"gets a new one with {services.settings.prefix}dashboard."
        )
    return community, f"?key={key}"


def community_url(slug: str, page: str = "", carry: str = "", **params: str | None) -> str:
    """The address of one of a community's pages (``/c/water/repertoire?tag=gis``) with the query string
    the page carries (``carry``, from :func:`open_community`) — every internal link of a private
    community's page keeps its key. Parameters that are None or empty are left out."""
    path = f"/c/{quote(slug, safe='')}" + (f"/{page}" if page else "")
    query = [(name, value) for name, value in params.items() if value]
    query += parse_qsl(carry.removeprefix("?"))
    return path + ("?" + urlencode(query) if query else "")


def community_pages(services: Services) -> list[tuple[str, str]]:
    """The pages every community has (label, page), from the routes the plugins serve: ``/c/{slug}`` as
    "Overview" and each ``/c/{slug}/<name>`` (not a feed or a file: no dot) as its name."""
    registry = services.registry
    found: list[tuple[str, str]] = []
    for path, _ in registry.routes if registry is not None else ():
        if path == "/c/{slug}":
            found.append(("Overview", ""))
        elif path.startswith("/c/{slug}/"):
            page = path.removeprefix("/c/{slug}/")
            if page and all(mark not in page for mark in "./{"):
                found.append((page.replace("-", " ").capitalize(), page))
    found.sort(key=lambda pair: (pair[1] != "", pair[1]))
    return found


def community_nav(services: Services, slug: str, carry: str) -> list[tuple[str, str]]:
    """(label, address) of the list of communities (if served) and of each of the community's pages,
    carrying the key."""
    routes = services.registry.routes if services.registry is not None else []
    home = [("Communities", "/")] if any(path == "/" for path, _ in routes) else []
    return home + [(label, community_url(slug, page, carry)) for label, page in community_pages(services)]
