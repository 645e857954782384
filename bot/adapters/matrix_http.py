"""Talking to the homeserver reliably: rate limits, network errors, one place for both.

Every request copbot makes goes through :func:`call`, which makes a homeserver outage visible (``connected``
turns false, /healthz says so) instead of hiding it in a library's own retries: ``M_LIMIT_EXCEEDED`` waits
``retry_after_ms`` and tries again; connection errors and timeouts back off exponentially and give up
after ``deadline``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import ClientConnectionError, ClientPayloadError

log = logging.getLogger(__name__)

NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    ClientConnectionError,
    ClientPayloadError,
    TimeoutError,
    asyncio.TimeoutError,
    ConnectionError,
)
RATE_LIMITED = "M_LIMIT_EXCEEDED"
DEFAULT_RETRY_AFTER_MS = 5000
MAX_RETRY_AFTER_MS = 120_000

R = TypeVar("R")


class Backoff:
    """Exponential back-off with jitter: ``first``, doubling, capped at ``cap`` seconds."""

    def __init__(self, first: float = 0.25, cap: float = 15.0) -> None:
        self.first = first
        self.cap = cap
        self.attempt = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.first * 2.0**self.attempt)
        self.attempt += 1
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.attempt = 0


class MatrixUnavailable(Exception):
    """The homeserver could not be reached within the deadline of one request."""


class MatrixSendError(Exception):
    """The homeserver refused an event the bot tried to send."""


@dataclass(frozen=True, slots=True)
class RawResult:
    """The answer to a raw request: HTTP status and the parsed JSON body."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def errcode(self) -> str | None:
        return self.body.get("errcode") if not self.ok else None


def rate_limit_delay(response: object) -> float | None:
    """Seconds to wait when ``response`` says we are rate limited, else None."""
    if isinstance(response, RawResult) and (response.status == 429 or response.errcode == RATE_LIMITED):
        retry_after = response.body.get("retry_after_ms") or DEFAULT_RETRY_AFTER_MS
    else:
        return None
    return min(float(retry_after), MAX_RETRY_AFTER_MS) / 1000


async def call(
    make: Callable[[], Awaitable[R]],
    *,
    what: str,
    deadline: float = 60.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> R:
    """Run one request, retrying rate limits and network errors; error responses are returned as they are.

    ``make`` must build a fresh request each time and be safe to repeat (sends reuse one transaction id,
    so a retried send never posts a message twice). Raises :class:`MatrixUnavailable` after ``deadline``
    seconds of failed attempts.
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline
    backoff = Backoff()
    while True:
        try:
            response = await make()
        except NETWORK_ERRORS as error:
            if loop.time() >= give_up:
                raise MatrixUnavailable(f"{what}: homeserver unreachable ({error!r})") from error
            level = logging.WARNING if backoff.attempt == 0 else logging.DEBUG  # once per request
            delay = backoff.next_delay()
            log.log(
                level, "matrix %s failed (%r); retrying with back-off for up to %.0f s", what, error, deadline
            )
            await sleep(delay)
            continue
        asked = rate_limit_delay(response)
        if asked is None:
            return response
        log.warning("matrix %s rate limited; waiting %.1f s as the homeserver asks", what, asked)
        await sleep(asked)


def path(*parts: str, query: dict[str, str] | None = None) -> str:
    """A client-server API v3 path with each part percent-encoded."""
    encoded = "/".join(quote(part, safe="") for part in parts)
    suffix = "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items()) if query else ""
    return f"/_matrix/client/v3/{encoded}{suffix}"
