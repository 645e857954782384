"""Signed links to a private community's pages and feeds.

A private community's calendar feed or dashboard is reached with a link that carries its own proof: an
HMAC of what it opens (``ics:water``) and until when, under a secret only copbot knows. No accounts, and a
link can be made to expire. The secret is ``[web] secret`` or, if that is empty, one generated once and
kept in the database, so links survive restarts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.config import WebConfig
from bot.db import Database
from bot.errors import Refused

STATE_SCOPE = "web"


NO_WEB = (
    "I have no address to give: the web part is off here ([web] enabled = false) and no [web] public_url "
    "names one serving it; an operator can turn it on."
)


def pages_address(web: WebConfig) -> str:
    """Where a link to the web part points: ``public_url`` (possibly another process serving it), else this
    process's own server — refused, said once for every link, when neither serves anything."""
    if not web.enabled and not web.public_url:
        raise Refused(NO_WEB)
    return web.base_url()


async def signing_key(source: Database | AsyncSession, configured: str, now: datetime) -> bytes:
    """The key: configured, or generated once and stored. Inside a command, pass its session: a second
    connection writing while the command's transaction is open would wait on it (SQLite has one writer)."""
    if configured:
        return configured.encode()
    if isinstance(source, AsyncSession):
        return (await _stored_secret(source, now)).encode()
    async with source.session() as session:
        return (await _stored_secret(session, now)).encode()


async def _stored_secret(session: AsyncSession, now: datetime) -> str:
    stored = await store.get_state(session, STATE_SCOPE, "secret")
    if stored is None:
        stored = secrets.token_urlsafe(32)
        await store.put_state(session, STATE_SCOPE, "secret", stored, now)
    return stored


async def keyed(
    session: AsyncSession, secret: str, target: str, purpose: str, now: datetime, *, public: bool
) -> str:
    """A community's feed or export (``target``: an address, or a path relative to its pages) as the bot
    hands it out: bare for a public community, else carrying the key for ``purpose`` (``ics:water``)."""
    if public:
        return target
    key = await signing_key(session, secret, now)
    return f"{target}?key={sign(key, purpose)}"


def sign(key: bytes, purpose: str, expires: datetime | None = None) -> str:
    """A token for ``purpose`` (``ics:water``), valid until ``expires`` (None: for as long as the key)."""
    until = str(int(expires.timestamp())) if expires is not None else "0"
    digest = hmac.new(key, f"{purpose}|{until}".encode(), hashlib.sha256).digest()[:18]
    return f"{until}.{base64.urlsafe_b64encode(digest).decode().rstrip('=')}"


def verify(key: bytes, purpose: str, token: str, now: datetime) -> bool:
    """Whether ``token`` opens ``purpose`` now. Whatever arrives in an address is refused, never raised on:
    ``hmac.compare_digest`` raises TypeError for a non-ASCII string (``?key=0.é``), which was a 500."""
    if not token.isascii():
        return False
    until, _, _ = token.partition(".")
    if not (until.isascii() and until.isdigit()) or len(until) > 11:  # "²" is a digit int() refuses
        return False
    expires = datetime.fromtimestamp(int(until), tz=now.tzinfo) if until != "0" else None
    if expires is not None and expires <= now:
        return False
    return hmac.compare_digest(sign(key, purpose, expires), token)
