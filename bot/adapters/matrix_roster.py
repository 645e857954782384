"""Room names and members' display names, read from the raw /sync answers copbot already has.

nio keeps this in ``client.rooms`` only when each sync answer is parsed into its response objects and fed
back to it: a JSON-schema validation of every event, which cost copbot more CPU per command than all of its
own work. The adapter reads the raw JSON instead and keeps here the little it needs — the name of a room
for messages to the operator, and display names for replies — from the state and timeline events.

Only names that differ from the user's localpart are kept (the localpart is the fallback anyway), so the
table holds what it must show and nothing more; a room the bot leaves is forgotten.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bot.adapters.matrix_events import localpart, storable_name


class Roster:
    def __init__(self) -> None:
        self._room_names: dict[str, str] = {}
        self._display_names: dict[str, dict[str, str]] = {}
        self._renamed_at: dict[tuple[str, str], int] = {}
        """(room, member) → the time of the member event the timeline last told of them: a sync's state
        block older than it is not read (see :meth:`read`)."""

    def read(self, room_id: str, events: Iterable[Mapping[str, Any]], *, state: bool = False) -> None:
        """Take what state events (``m.room.name``, ``m.room.member``) say, in order.

        ``state``: the events are a sync's state block, the room's state where its timeline starts — for
        a message sent while its author was being renamed (Synapse tells the rooms of a new name in the
        background), the name from before the rename. Such a member event, older than one the timeline
        already told of, is not taken: the member's name went back to the old one, and the command they
        typed then stored it on their row."""
        for event in events:
            kind = event.get("type")
            if kind == "m.room.member":
                self._member(room_id, event, state=state)
            elif kind == "m.room.name" and event.get("state_key") == "":
                name = (event.get("content") or {}).get("name")
                if isinstance(name, str) and name:
                    self._room_names[room_id] = name
                else:
                    self._room_names.pop(room_id, None)

    def _member(self, room_id: str, event: Mapping[str, Any], *, state: bool = False) -> None:
        user_id = event.get("state_key")
        if not isinstance(user_id, str):
            return
        sent = event.get("origin_server_ts")
        if isinstance(sent, int):
            if state and sent < self._renamed_at.get((room_id, user_id), sent):
                return  # the state before a newer member event the timeline told of
            if not state:
                self._renamed_at[(room_id, user_id)] = sent
        content = event.get("content") or {}
        given = content.get("displayname")
        name = storable_name(given) if isinstance(given, str) else ""  # stored with the member: as it can be
        names = self._display_names.get(room_id)
        if content.get("membership") in ("join", "invite") and name:
            if name != localpart(user_id):
                self._display_names.setdefault(room_id, {})[user_id] = name
                return
        if names is not None:
            names.pop(user_id, None)
            if not names:
                del self._display_names[room_id]

    def room_name(self, room_id: str) -> str | None:
        return self._room_names.get(room_id)

    def knows(self, room_id: str, user_id: str) -> bool:
        """Whether a member event told the member's display name (one equal to their localpart is not
        kept: asked again, it says the same)."""
        return user_id in self._display_names.get(room_id, {})

    def display_name(self, room_id: str, user_id: str) -> str:
        """The member's display name in that room, else the localpart of their id."""
        return self._display_names.get(room_id, {}).get(user_id) or localpart(user_id)

    def any_display_name(self, user_id: str) -> str:
        """The member's display name in any room copbot shares with them, else their localpart: for a
        member named by their id in a command, which says nothing of the room the name comes from."""
        for names in self._display_names.values():
            if user_id in names:
                return names[user_id]
        return localpart(user_id)

    def forget(self, room_id: str) -> None:
        self._room_names.pop(room_id, None)
        self._display_names.pop(room_id, None)
        for key in [key for key in self._renamed_at if key[0] == room_id]:
            del self._renamed_at[key]
