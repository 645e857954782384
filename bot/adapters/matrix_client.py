"""The Matrix client-server API as copbot uses it: raw JSON over one aiohttp session.

copbot used matrix-nio's client. Measured against the least a nio bot can do (bench/matrix_latency.py),
nio's share of copbot's cost was the largest single one: importing it (with its end-to-end encryption
modules, which copbot cannot use in its rooms anyway) took ~180 ms of every start and ~10 MB of resident
memory, and it validated every event of every answer against a JSON schema before copbot could read it.
copbot reads the JSON itself (it had to for /sync already: nio's parser drops invite state), so the dozen
endpoints it calls are written here, each as one request that answers a :class:`RawResult`; retries, rate
limits and back-off stay in ``matrix_http.call``. Tests still drive members with nio, a real client.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from bot.adapters.matrix_http import RawResult, path

CONNECT_SECONDS = 15.0
"""A connection to the homeserver is given up after this, whatever the request's own allowance: a long
wait is for an answer the homeserver is working on (a catch-up sync), not for a host that does not answer."""


class MatrixClient:
    """One account's session: homeserver, user id, device, access token, and the HTTP connection pool."""

    def __init__(self, homeserver: str, user_id: str, *, request_timeout: float = 30.0) -> None:
        self.homeserver = homeserver.rstrip("/")
        self.user_id = user_id
        self.device_id = ""
        self.access_token = ""
        self.request_timeout = request_timeout
        self._session: aiohttp.ClientSession | None = None

    async def request(
        self,
        method: str,
        api_path: str,
        body: dict[str, Any] | None = None,
        *,
        data: bytes | None = None,
        content_type: str = "application/json",
        timeout: float | None = None,  # noqa: ASYNC109 - passed on to aiohttp, which enforces it
    ) -> RawResult:
        """One request with the access token; the answer's status and JSON body (``{}`` if not JSON).

        Network errors are raised as aiohttp raises them (``matrix_http.call`` retries those)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ttl_dns_cache=300))
        headers = {"Content-Type": content_type}
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        payload = data if data is not None else (json.dumps(body).encode() if body is not None else None)
        seconds = timeout if timeout is not None else self.request_timeout
        async with self._session.request(
            method,
            self.homeserver + api_path,
            data=payload,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=seconds, sock_connect=min(seconds, CONNECT_SECONDS)),
        ) as response:
            try:
                parsed = await response.json(content_type=None)
            except (ValueError, aiohttp.ClientPayloadError):
                parsed = {}
        if isinstance(parsed, list):  # the one list answer copbot asks for: a room's state
            parsed = {"events": parsed}
        return RawResult(response.status, parsed if isinstance(parsed, dict) else {})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- the endpoints copbot calls ---------------------------------------------------------------------

    async def login(self, password: str, device_name: str) -> RawResult:
        """A password login on ``device_id`` (reused across restarts when set); keeps the token."""
        body: dict[str, Any] = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": self.user_id},
            "password": password,
            "initial_device_display_name": device_name,
        }
        if self.device_id:
            body["device_id"] = self.device_id
        self.access_token = ""
        answer = await self.request("POST", path("login"), body)
        if answer.ok:
            self.access_token = str(answer.body.get("access_token", ""))
            self.device_id = str(answer.body.get("device_id", ""))
        return answer

    async def whoami(self) -> RawResult:
        return await self.request("GET", path("account", "whoami"))

    async def join(self, room: str, via: str | None = None) -> RawResult:
        """Join by id or alias; ``via``: a server in the room, for a room id this homeserver does not know."""
        return await self.request("POST", path("join", room, query={"server_name": via} if via else None), {})

    async def create_room(self, body: dict[str, Any]) -> RawResult:
        return await self.request("POST", path("createRoom"), body)

    async def invite(self, room_id: str, user_id: str) -> RawResult:
        return await self.request("POST", path("rooms", room_id, "invite"), {"user_id": user_id})

    async def state_event(self, room_id: str, event_type: str, state_key: str = "") -> RawResult:
        return await self.request("GET", path("rooms", room_id, "state", event_type, state_key))

    async def put_state(
        self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = ""
    ) -> RawResult:
        return await self.request("PUT", path("rooms", room_id, "state", event_type, state_key), content)

    async def room_state(self, room_id: str) -> list[dict[str, Any]]:
        """Every current state event of the room ([] if it cannot be read)."""
        answer = await self.request("GET", path("rooms", room_id, "state"))
        events = answer.body.get("events") if answer.ok else None  # a JSON list: see request()
        return [event for event in events if isinstance(event, dict)] if isinstance(events, list) else []

    async def joined_members(self, room_id: str) -> RawResult:
        return await self.request("GET", path("rooms", room_id, "joined_members"))

    async def joined_rooms(self) -> RawResult:
        return await self.request("GET", path("joined_rooms"))

    async def account_data(self, event_type: str) -> RawResult:
        return await self.request("GET", path("user", self.user_id, "account_data", event_type))

    async def resolve_alias(self, alias: str) -> RawResult:
        return await self.request("GET", path("directory", "room", alias))
