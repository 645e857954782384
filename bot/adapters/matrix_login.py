"""Logging the Matrix account in: at start, and again when the homeserver revokes the token while running.

A configured access token comes first, else the device and token stored at the first login, else a
password login. A password login reuses the stored device id, so restarts (and tokens revoked by a
logout) never pile up devices on the account.
"""

from __future__ import annotations

import logging

from bot.adapters.matrix_client import MatrixClient
from bot.adapters.matrix_session import SessionState
from bot.adapters.matrix_startup import login_refused, reach, token_refused
from bot.config import MatrixConfig
from bot.health import Trouble

log = logging.getLogger(__name__)


class Login:
    """Gives ``client`` its access token and device id, storing what a password login brings."""

    def __init__(
        self, config: MatrixConfig, client: MatrixClient, state: SessionState, trouble: Trouble
    ) -> None:
        self.config = config
        self.client = client
        self.state = state
        self.trouble = trouble
        """The adapter's: a login that fails while running is the homeserver failing (/healthz)."""

    async def start(self) -> None:
        """Configured token, else stored token, else password (on the stored device id, if any)."""
        config = self.config
        stored_device = await self.state.get(self.state.key("device_id"))
        stored_token = await self.state.get(self.state.key("access_token"))
        token = config.access_token or stored_token
        if token:
            self.client.access_token, self.client.device_id = token, stored_device or ""
            who = await reach(config, self.client.whoami, what="whoami")
            if who.ok and who.body.get("user_id") == config.user_id:
                self.client.device_id = str(who.body.get("device_id") or stored_device or "")
                return
            if config.access_token or not config.password:
                raise token_refused(config, who)
            log.info("matrix: the stored access token no longer works; logging in with the password")
        await self.with_password(stored_device)

    async def with_password(self, stored_device: str | None = None) -> None:
        """Log in with the password on the stored device id (if any); store the device and token."""
        config = self.config
        if stored_device is None:
            stored_device = await self.state.get(self.state.key("device_id"))
        self.client.access_token = ""
        self.client.device_id = stored_device or ""
        answer = await reach(
            config, lambda: self.client.login(config.password or "", config.device_name), what="login"
        )
        if not answer.ok or not self.client.access_token:
            raise login_refused(config, answer)
        await self.state.put(self.state.key("device_id"), self.client.device_id)
        await self.state.put(self.state.key("access_token"), self.client.access_token)
        log.info("matrix: logged in as %s (device %s)", answer.body.get("user_id"), self.client.device_id)

    async def again(self) -> bool:
        """The token was revoked (a logout, an admin): log in again with the password, same device.

        Without a password nothing can be done but retry (with back-off, said once): the token in the
        config must be replaced, which takes a restart."""
        user_id = self.config.user_id
        if not self.config.password:
            self.trouble.failed(
                f"the homeserver refused the access token of {user_id} (revoked, or its device was "
                "logged out)",
                advice="set a new [matrix] access_token (or COPBOT_MATRIX__ACCESS_TOKEN), or a password, and "
                "restart copbot; until then sync is retried with back-off",
                level=logging.ERROR,
            )
            return False
        log.warning("matrix: the homeserver refused the access token; logging in again with the password")
        try:
            await self.state.put(self.state.key("access_token"), "")
            await self.with_password()
        except Exception as error:
            self.trouble.failed(
                f"logging in again as {user_id} failed ({error})",
                advice="check [matrix] password; retrying with back-off",
                level=logging.ERROR,
            )
            return False
        return True
