"""The aiohttp application: health for operators and orchestrators, metrics for Prometheus."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.errors import WebStartError
from bot.health import Trouble
from bot.services import Services
from bot.web.pages import security_headers, setup_templates

log = logging.getLogger(__name__)
SERVICES = web.AppKey("services", Services)


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers and takes writes, every platform is connected and the scheduler
    runs; 503 otherwise, with ``problems`` naming each failing part: what fails, since when, how often.
    While copbot is still starting (a standby taking over, say) the 503 says ``"starting"``, not
    ``"unhealthy"``: the parts not yet running are not failing.
    ``role`` says "active" (a standby waiting for its turn answers ``"standby"``, see bot/standby.py)."""
    services = request.app[SERVICES]
    writes = services.db.writes
    answers = await services.db.ping()
    database = answers and not writes.failing
    platforms = {name: adapter.connected for name, adapter in sorted(services.adapters.items())}
    scheduler = services.scheduler is not None and services.scheduler.running
    healthy = database and scheduler and all(platforms.values())
    body: dict[str, Any] = {
        "status": "ok" if healthy else "unhealthy" if services.ready else "starting",
        "role": services.role,  # "active"; a standby answers from bot/standby.py until it takes over
        "database": database,
        "platforms": platforms,
        "scheduler": scheduler,
    }
    problems: dict[str, str] = {}
    if writes.failing:
        problems["database"] = writes.describe()
    elif not answers:
        problems["database"] = "the database does not answer"
    for name, connected in platforms.items():
        if not connected:
            trouble: Trouble | None = getattr(services.adapters[name], "trouble", None)  # optional
            problems[name] = trouble.describe() if trouble and trouble.failing else "not connected"
    if not scheduler:
        problems["scheduler"] = "not running"
    if problems:
        body["problems"] = problems
    return web.json_response(body, status=200 if healthy else 503)


async def metrics(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    response = web.Response(body=services.metrics.render())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def create_app(services: Services) -> web.Application:
    # /c/water/ → 308 to /c/water (the query, a private community's key, kept): people type the slash
    trailing_slash = web.normalize_path_middleware(append_slash=False, remove_slash=True)
    app = web.Application(middlewares=[security_headers, trailing_slash])
    app[SERVICES] = services
    setup_templates(app, _plugin_templates(services))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    if services.registry is not None:
        for path, handler in services.registry.routes:
            app.router.add_get(path, handler)
    return app


def _plugin_templates(services: Services) -> dict[str, Path]:
    """Each loaded plugin's ``templates`` folder, if it has one, under the plugin's name."""
    folders: dict[str, Path] = {}
    registry = services.registry
    for name, plugin in registry.plugins.items() if registry is not None else ():
        module = sys.modules.get(type(plugin).__module__)
        if module is not None and module.__file__:
            folder = Path(module.__file__).resolve().parent / "templates"
            if folder.is_dir():
                folders[name] = folder
    return folders


class WebServer:
    """Runs the app on the configured host and port until stopped."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        config = self.services.settings.web
        self._runner = web.AppRunner(create_app(self.services), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, config.host, config.port)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            raise WebStartError(
                f"the web part cannot listen on {config.host}:{config.port} ({error.strerror}); "
                "set [web] port (or COPBOT_WEB__PORT), or [web] enabled = false"
            ) from None
        addresses = self._runner.addresses  # (host, port, …) of each socket the one site listens on
        self.port = int(addresses[0][1]) if addresses else config.port
        log.info("web on http://%s:%s", config.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
