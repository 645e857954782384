"""Web pages, the shared part: templates (Jinja2, escaped by default), the layout every page extends, who
may see a community's pages, and the security headers every response carries.

Pages are rendered on the server (charts as SVG in the HTML) and work with JavaScript off. A plugin serves
its pages with ``@route`` and renders ``"<plugin>/<page>.html"`` from its own ``templates/`` folder; its
templates extend ``"core/layout.html"``.

A private community's pages need a signed link (``dashboard`` gives one, valid for a while): the key is in
the address, carried on every link of the page, and checked on every request; without a valid one the
answer is 403 and shows nothing of the community.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.model import Community
from bot.web.links import signing_key, verify

if TYPE_CHECKING:
    from bot.services import Services

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
async def security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as error:
        response = error
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        raise
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
            text="This page needs a valid link. Ask a moderator of the community for one (dashboard)."
        )
    return community, f"?key={key}"
