"""Conditional GET for the feeds: calendar apps and feed readers ask every few minutes, for each member
who subscribed, and a reader that has the feed already needs only a 304."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web


def entity_tags(header: str) -> set[str]:
    """The entity tags of an If-None-Match header (weak ones compared as strong: the feeds have no others)."""
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def fresh(request: web.Request, etag: str, updated: datetime | None = None) -> bool:
    """Whether the caller's copy is current: its If-None-Match holds ``etag`` or, when it sends none, its
    If-Modified-Since is no older than ``updated`` (to the second, as HTTP dates go)."""
    if "If-None-Match" in request.headers:
        return etag in entity_tags(request.headers["If-None-Match"])
    since = request.if_modified_since
    return updated is not None and since is not None and int(updated.timestamp()) <= int(since.timestamp())
