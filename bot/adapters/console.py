"""The console platform: a terminal chat for trying copbot without any account, and for scripted scenarios.

A line is a message from ``you`` (a moderator); ``name> text`` speaks as ``name``; ``name>> text`` is a
direct message to copbot from ``name``; ``:join name`` / ``:leave name`` make members come and go;
``:react name N emoji`` reacts to message N (``:unreact`` takes it back); lines starting with ``#`` are
comments. A name is letters or digits of any script with ``_ . - '`` (``cé``, ``O'Brien``; see
:func:`console_name`). Every message is printed numbered, so reactions can point at them, and the adapter
remembers each message's author and text, so a plugin can look one up again by its number
(``fetch_message``). Piped input is handled line by line, in order, each line finished (replies included)
before the next, and the adapter reports ``finished`` at the end of input.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import threading
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from typing import TextIO

from bot.adapters.base import Dispatch
from bot.clock import Clock
from bot.commands import CommandSpec
from bot.model import (
    Capability,
    Content,
    Event,
    Member,
    MemberJoined,
    MemberLeft,
    Message,
    MessageCreated,
    ReactionAdded,
    ReactionRemoved,
    Room,
)
from bot.render import plain_text
from bot.tasks import cancel_and_wait

DEFAULT_SPEAKER = "you"
BOT_NAME = "copbot"
MAX_NAME = 32
_NAME_MARKS = frozenset("_.-'’")
_SAY = re.compile(r"^([^\s>]+)(>>?)\s?(.*)$")
_JOIN = re.compile(r"^:(join|leave)\s+(.+?)\s*$")
_REACT = re.compile(r"^:(react|unreact)\s+(\S+)\s+(\d+)\s+(\S+)\s*$")
_QUOTED = re.compile(r'^(?:"(.*)"|“(.*)”)$')
_NAME_RULE = (
    "a console name is letters or digits of any script and _ . - ' (no spaces), "
    f"at most {MAX_NAME} characters: :join O'Brien, then O'Brien> hello"
)
_CONSOLE_HELP = (
    "console: 'text' speaks as you · 'name> text' as name · 'name>> text' is a direct message · "
    "':join name' · ':leave name' · ':react name N emoji' · ':unreact name N emoji' · ':quit'"
)


class ConsoleAdapter:
    platform = "console"
    capabilities = frozenset({Capability.DIRECT_MESSAGES, Capability.REACTIONS})

    def __init__(
        self,
        *,
        clock: Clock,
        community: str,
        moderators: Sequence[str] = (DEFAULT_SPEAKER,),
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        interactive: bool | None = None,
    ) -> None:
        self.clock = clock
        self.community = community
        self.moderators = set(moderators)
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.interactive = self.stdin.isatty() if interactive is None else interactive
        self.room = Room(self.platform, "console", community_id=community)
        self.finished = asyncio.Event()
        self._run = uuid.uuid4().hex[:8]  # event ids must not repeat across runs on the same database
        self._counter = 0
        self._messages: dict[int, Message] = {}  # by number: what :react and fetch_message find
        self._dispatch: Dispatch | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = False

    @property
    def connected(self) -> bool:
        return self._connected

    # --- lifecycle --------------------------------------------------------------------------------------

    async def start(self, dispatch: Dispatch) -> None:
        self._dispatch = dispatch
        self._connected = True
        if self.interactive:
            self._print_raw(_CONSOLE_HELP)
        self._task = asyncio.create_task(self._read_loop(), name="console-reader")

    async def install_commands(self, specs: Sequence[CommandSpec]) -> None:
        """The console types commands as text; there is nothing to install."""

    async def stop(self) -> None:
        self._connected = False
        if self._task is not None and not self._task.done():
            await cancel_and_wait(self._task, what="the console's reader")

    async def _read_loop(self) -> None:
        try:
            while True:
                line = await self._next_line()
                if line is None or line.strip() == ":quit":
                    break
                await self.handle_line(line)
        finally:
            self.finished.set()

    async def _next_line(self) -> str | None:
        if self.interactive:
            try:
                import readline  # noqa: F401  (line editing and history for input())
            except ImportError:
                pass
            try:
                line = await _in_daemon_thread(lambda: input("> "))
            except EOFError:
                return None
            if self.stdout.isatty():
                self.stdout.write("\x1b[1A\x1b[2K")  # the numbered echo replaces the typed line
            return line
        line = await _in_daemon_thread(self.stdin.readline)
        return line if line else None

    # --- input ------------------------------------------------------------------------------------------

    async def handle_line(self, line: str) -> None:
        """One console line → one core event, dispatched and finished before returning."""
        line = line.rstrip("\r\n")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            return
        event = self._parse(stripped)
        if event is not None and self._dispatch is not None:
            await self._dispatch(event)

    def _parse(self, line: str) -> Event | None:
        now = self.clock.now()
        if match := _JOIN.match(line):
            action, typed = match.groups()
            name = console_name(_unquoted(typed))
            if name is None:
                self._print_raw(f"(console) '{typed}' cannot join or leave: {_NAME_RULE}")
                return None
            member = self.member(name)
            number = self._print(f"* {name} {'joined' if action == 'join' else 'left'}")
            event_type = MemberJoined if action == "join" else MemberLeft
            return event_type(event_id=self._event_id(number), room=self.room, at=now, member=member)
        if match := _REACT.match(line):
            verb, typed, number_text, emoji = match.groups()
            name = console_name(_unquoted(typed))
            if name is None:
                self._print_raw(f"(console) '{typed}' cannot react: {_NAME_RULE}")
                return None
            number = int(number_text)
            if number not in self._messages:
                self._print_raw(f"(console) there is no message [{number}] to react to")
                return None
            took_back = verb == "unreact"
            said = f"took back {emoji} from" if took_back else f"reacted {emoji} to"
            shown = self._print(f"* {name} {said} [{number}]")
            return (ReactionRemoved if took_back else ReactionAdded)(
                event_id=self._event_id(shown),
                room=self.room,
                at=now,
                member=self.member(name),
                message_id=str(number),
                emoji=emoji,
            )
        if line.startswith(":"):
            self._print_raw(f"(console) unknown console command. {_CONSOLE_HELP}")
            return None
        speaker, direct, text = DEFAULT_SPEAKER, False, line
        if (match := _SAY.match(line)) and (named := console_name(match.group(1))) is not None:
            speaker, direct, text = named, match.group(2) == ">>", match.group(3)
        member = self.member(speaker)
        room = self.direct_room(speaker) if direct else self.room
        label = f"{speaker} → {BOT_NAME} (direct)" if direct else speaker
        number = self._print(f"{label}> {text}")
        message = Message(id=str(number), room=room, author=member, text=text)
        self._messages[number] = message
        return MessageCreated(event_id=self._event_id(number), room=room, at=now, message=message)

    def _event_id(self, number: int) -> str:
        return f"{self._run}:{number}"

    def member(self, name: str) -> Member:
        return Member(self.platform, name, name)

    def direct_room(self, name: str) -> Room:
        return Room(self.platform, f"direct:{name}", community_id=self.community, is_direct=True)

    # --- output -----------------------------------------------------------------------------------------

    async def send(self, room: Room, content: Content, *, reply_to: str | None = None) -> str:
        if room.is_direct:
            name = room.id.removeprefix("direct:")
            return str(self._print(f"{BOT_NAME} → {name} (direct)> {plain_text(content)}"))
        text = plain_text(content)
        number = self._print(f"{BOT_NAME}> {text}")
        copbot = Member(self.platform, BOT_NAME, BOT_NAME, is_bot=True)
        self._messages[number] = Message(id=str(number), room=room, author=copbot, text=text)
        return str(number)

    async def fetch_message(self, room: Room, message_id: str) -> Message | None:
        """Message N as printed, if it was said in ``room`` (a direct message is not the channel's)."""
        message = self._messages.get(int(message_id)) if message_id.isdigit() else None
        return message if message is not None and message.room.id == room.id else None

    def permalink(self, room: Room, message_id: str) -> str:
        """The console has no links; its messages are known by their number only."""
        return ""

    async def send_direct(self, member: Member, content: Content) -> str:
        return await self.send(self.direct_room(member.id), content)

    async def is_moderator(self, member: Member, room: Room) -> bool:
        return member.platform == self.platform and member.id in self.moderators

    def mention(self, member: Member) -> str:
        return f"@{member.display_name or member.id}"

    def parse_mention(self, text: str) -> Member | None:
        name = console_name(text.removeprefix("@")) if text.startswith("@") else None
        return self.member(name) if name is not None else None

    def _print(self, text: str) -> int:
        self._counter += 1
        prefix = f"[{self._counter}] "
        indent = " " * len(prefix)
        lines = text.split("\n")
        self._print_raw(prefix + lines[0] + "".join(f"\n{indent}{line}" for line in lines[1:]))
        return self._counter

    def _print_raw(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()


def console_name(text: str) -> str | None:
    """``text`` as a member's name, or None if it cannot be one. Names are people's names: letters of any
    script with their accents (``cé``, ``Zoë``, ``Dvořák``, ``लता``), digits, and the apostrophes and
    joiners names have (``O'Brien``, ``Jean-Luc``), but no spaces or ``>``, which end a name in
    ``name> text``. The same name typed precomposed or with a combining accent is the same member."""
    name = unicodedata.normalize("NFC", text)
    if not 0 < len(name) <= MAX_NAME:
        return None
    if all(char in _NAME_MARKS or unicodedata.category(char)[0] in "LMN" for char in name):
        return name
    return None


def _unquoted(text: str) -> str:
    """``:join "O'Brien"``: quotes around a name are not part of it."""
    match = _QUOTED.match(text)
    return next((part for part in match.groups() if part is not None), text) if match else text


async def _in_daemon_thread(read: Callable[[], str]) -> str:
    """Run a blocking read of standard input in a daemon thread.

    ``asyncio.to_thread`` would use the loop's executor, which ``asyncio.run`` waits for at exit: a
    SIGTERM would then hang until someone pressed Enter. A daemon thread dies with the process.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def deliver(value: str | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value or "")

    def run() -> None:
        try:
            value, error = read(), None
        except BaseException as caught:  # EOFError from input() included: the reader decides
            value, error = None, caught
        with contextlib.suppress(RuntimeError):  # the loop closed while we were reading
            loop.call_soon_threadsafe(deliver, value, error)

    threading.Thread(target=run, name="console-stdin", daemon=True).start()
    return await future
