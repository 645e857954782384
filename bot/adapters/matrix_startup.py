"""Why the Matrix adapter cannot start, in one line that says what to change in the config.

At start-up the operator is watching: an unreachable homeserver or a refused password must end copbot
with a sentence naming the setting, not with a raw answer or a chain of aiohttp tracebacks.
The homeserver is retried for ``[matrix] connect_timeout`` seconds first, so a homeserver that starts
alongside copbot (docker compose) is waited for, but a wrong address does not hang start-up.
"""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import (
    ClientConnectorCertificateError,
    ClientConnectorDNSError,
    ClientConnectorError,
    ClientSSLError,
)

from bot.adapters.matrix_http import MatrixUnavailable, RawResult, call
from bot.config import MatrixConfig
from bot.errors import StartupError

R = TypeVar("R")

_TOKEN_REFUSED = ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN", "M_FORBIDDEN")
_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "timed out",
    errno.ECONNRESET: "connection reset",
}


async def reach(config: MatrixConfig, make: Callable[[], Awaitable[R]], *, what: str) -> R:
    """One start-up request, retried for ``connect_timeout`` seconds, then a :class:`StartupError`."""
    try:
        return await call(make, what=what, deadline=config.connect_timeout)
    except MatrixUnavailable as error:
        raise cannot_reach(config, error.__cause__) from None


def cannot_reach(config: MatrixConfig, cause: BaseException | None) -> StartupError:
    return StartupError(
        f"matrix: cannot reach {config.homeserver} ({network_reason(cause)}); check [matrix] homeserver"
    )


def network_reason(cause: BaseException | None) -> str:
    """A few words for a connection failure: what an operator would search for, not a repr."""
    if isinstance(cause, ClientConnectorDNSError):
        return "no such host"
    if isinstance(cause, ClientConnectorCertificateError | ClientSSLError):
        return "TLS certificate not accepted"
    if isinstance(cause, ClientConnectorError):
        words = _ERRNO_WORDS.get(cause.os_error.errno or 0)
        return words or (cause.os_error.strerror or "cannot connect").lower()
    if isinstance(cause, TimeoutError):
        return "no answer in time"
    if isinstance(cause, OSError) and cause.errno in _ERRNO_WORDS:
        return _ERRNO_WORDS[cause.errno]
    return type(cause).__name__ if cause is not None else "no answer"


def token_refused(config: MatrixConfig, answer: RawResult) -> StartupError:
    """The access token (configured, or stored and no password to fall back on) does not log in."""
    owner = answer.body.get("user_id") if answer.ok else None
    if isinstance(owner, str) and owner != config.user_id:
        return StartupError(
            f"matrix: the access token belongs to {owner}, not {config.user_id}; "
            "set [matrix] user_id to match, or use that account's token"
        )
    if answer.errcode in _TOKEN_REFUSED:
        return StartupError(
            f"matrix: the homeserver refused the access token for {config.user_id}; set a valid "
            "[matrix] access_token (or COPBOT_MATRIX__ACCESS_TOKEN), or a password instead"
        )
    return _not_matrix(config, "checking the access token", answer)


def login_refused(config: MatrixConfig, answer: RawResult) -> StartupError:
    if answer.errcode == "M_FORBIDDEN":
        return StartupError(
            f"matrix: the homeserver refused the password for {config.user_id}; "
            "check [matrix] user_id and password (or COPBOT_MATRIX__PASSWORD)"
        )
    if answer.errcode == "M_USER_DEACTIVATED":
        return StartupError(
            f"matrix: the account {config.user_id} is deactivated; use another [matrix] user_id"
        )
    return _not_matrix(config, f"logging in as {config.user_id}", answer)


def first_sync_failed(config: MatrixConfig, status: int, errcode: str | None) -> StartupError:
    return StartupError(
        f"matrix: the first sync with {config.homeserver} failed (HTTP {status}"
        f"{f', {errcode}' if errcode else ''}); check that it is a Matrix homeserver and try again"
    )


def _not_matrix(config: MatrixConfig, doing: str, answer: RawResult) -> StartupError:
    """An answer that is not a Matrix error at all usually means the address points at some other server."""
    if str(answer.errcode or "").startswith("M_"):
        why = f"{answer.errcode}: {answer.body.get('error', '')}"
        return StartupError(f"matrix: {doing} failed ({why}); check the [matrix] settings")
    return StartupError(
        f"matrix: {config.homeserver} did not answer like a Matrix homeserver while {doing}; "
        "check [matrix] homeserver"
    )
