"""Talking to the homeserver reliably: rate limits, network errors, raw requests nio has no method for.

nio can retry by itself, but then a homeserver outage is invisible to the bot (``connected`` would stay
true while requests sleep inside nio) and a rate limit blocks silently. The adapter therefore tells nio
not to retry and does it here, in one visible place: ``M_LIMIT_EXCEEDED`` waits ``retry_after_ms`` and
tries again; connection errors and timeouts back off exponentially and give up after ``deadline``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import ClientConnectionError, ClientPayloadError
from nio import AsyncClient, ErrorResponse

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
        delay = min(self.cap, self.first * 2**self.attempt)
        self.attempt += 1
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.attempt = 0


class MatrixUnavailable(Exception):
    """The homeserver could not be reached within the deadline of one request."""


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
    if isinstance(response, ErrorResponse) and response.status_code in (RATE_LIMITED, "429", 429):
        retry_after = getattr(response, "retry_after_ms", None) or DEFAULT_RETRY_AFTER_MS
    elif isinstance(response, RawResult) and (response.status == 429 or response.errcode == RATE_LIMITED):
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
        delay = rate_limit_delay(response)
        if delay is None:
            return response
        log.warning("matrix %s rate limited; waiting %.1f s as the homeserver asks", what, delay)
        await sleep(delay)


def path(*parts: str, query: dict[str, str] | None = None) -> str:
    """A client-server API v3 path with each part percent-encoded."""
    encoded = "/".join(quote(part, safe="") for part in parts)
    suffix = "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items()) if query else ""
    return f"/_matrix/client/v3/{encoded}{suffix}"


async def raw_request(
    client: AsyncClient,
    method: str,
    api_path: str,
    body: dict[str, Any] | None = None,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 - passed on to aiohttp, which enforces it
) -> RawResult:
    """One request as raw JSON, with the bot's token: for what nio has no method for (leave with a reason,
    account data) and for /sync, whose raw JSON keeps what nio's parser drops (an invite's encryption)."""
    if client.client_session is None:
        await client.whoami()  # nio opens its HTTP session lazily, on its first request
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {client.access_token}"}
    response = await client.send(
        method, api_path, json.dumps(body) if body is not None else None, headers=headers, timeout=timeout
    )
    async with response:
        try:
            parsed = await response.json(content_type=None)
        except (ValueError, ClientPayloadError):
            parsed = {}
    return RawResult(response.status, parsed if isinstance(parsed, dict) else {})
