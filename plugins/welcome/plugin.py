"""Welcome newcomers where the community says hello, and hand them to onboarding.

A member who left and comes back is welcomed back, not greeted as new (and is not onboarded again).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field, ValidationInfo, field_validator
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.commands import Text
from bot.config_values import RoomMap, is_platform, warn
from bot.context import Context
from bot.errors import Undeliverable, UsageError
from bot.model import Content, MemberJoined, MemberWelcomed, Room
from bot.plugin import Plugin, PluginConfig, command, listen
from bot.tables import CommunityRow, Membership
from plugins.welcome.models import WelcomeTemplate

PLACEHOLDERS = ("member", "community", "domain", "rules")
MAX_TEMPLATE = 1500
# Read left to right as str.format reads it: a doubled brace is a literal one, then a whole placeholder,
# then a brace that belongs to none ("{{member}}" is the text "{member}", "{{{member}}}" a braced name).
_BRACES = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_LITERAL = {"{{": "{", "}}": "}"}
_EMPTY = "\ue002"  # private use: where a placeholder was filled with nothing
_EMPTY_AND_SPACES = re.compile(f"([ \t]?){_EMPTY}([ \t]?)")
_WRITTEN_LIKE = "placeholders are written like {member}, a literal brace as {{ or }}"

DEFAULT_TEMPLATE = (
    "Welcome to {community}, {member}! We share what works in {domain}. {rules} "
    "Say hello and tell us what you are working on."
)
DEFAULT_BACK = "Welcome back to {community}, {member}! Good to see you again."


class WelcomeConfig(PluginConfig):
    template: str = Field(default=DEFAULT_TEMPLATE, max_length=MAX_TEMPLATE)
    welcome_back: str = Field(default=DEFAULT_BACK, max_length=MAX_TEMPLATE)
    rooms: RoomMap = Field(
        default_factory=dict,
        description="community slug → platform → room id where welcomes go; default: where they joined",
    )

    @field_validator("template", "welcome_back")
    @classmethod
    def _usable_template(cls, value: str, info: ValidationInfo) -> str:
        """The rules of `welcome set`, so that a text refused in chat is refused in the config file too."""
        try:
            checked = check_template(value)
        except UsageError as error:
            raise ValueError(error.message) from None
        who = "the newcomer" if info.field_name == "template" else "the returning member"
        for note in template_notes(checked, who):
            warn(info, note)
        return checked


def check_template(template: str) -> str:
    """A template may use only the known placeholders, in whole braces: a typo would otherwise greet
    people with a literal '{membr}' or 'Hello }'. The first problem from the left is the one reported."""
    template = template.strip()
    if not template:
        raise UsageError("the welcome text is empty")
    if len(template) > MAX_TEMPLATE:
        raise UsageError(f"the welcome text has {len(template)} characters; at most {MAX_TEMPLATE}")
    for match in _BRACES.finditer(template):
        _check_braces(template, match)
    return template


def _check_braces(template: str, match: re.Match[str]) -> None:
    token = match.group(0)
    if token in _LITERAL:
        return
    if token == "{":
        fragment = template[match.start() :].split()[0][:24]
        raise UsageError(f"'{fragment}' is missing its closing '}}'; {_WRITTEN_LIKE}")
    if token == "}":
        raise UsageError(f"the '}}' at character {match.start() + 1} closes nothing; {_WRITTEN_LIKE}")
    name = token[1:-1]
    if name not in PLACEHOLDERS:
        raise UsageError(f"unknown placeholder {{{name}}}{_placeholder_hint(name)}")


def _placeholder_hint(name: str) -> str:
    import difflib  # on use: not loaded at start-up (memory)

    close = difflib.get_close_matches(name.strip().lower(), PLACEHOLDERS, n=1, cutoff=0.6)
    if close:
        return f" — did you mean {{{close[0]}}}?"
    return "; you can use " + ", ".join("{" + known + "}" for known in PLACEHOLDERS)


def _placeholders(template: str) -> list[str]:
    return [match.group(1) for match in _BRACES.finditer(template) if match.group(1) is not None]


def template_notes(template: str, who: str = "the newcomer") -> list[str]:
    """What is allowed but probably unintended: without {member} nobody is greeted by name."""
    if "member" not in _placeholders(template):
        return [f"it has no {{member}}, so {who} will not be mentioned"]
    return []


def render(template: str, values: dict[str, str]) -> str:
    """Fill the placeholders and undouble the escaped braces, in one pass: a value that itself holds
    braces or a placeholder's name (a community called "{rules}") is shown as it is, never read again.

    A placeholder with nothing to fill in (a community without rules) takes a space beside it along, so
    that "… in water. {rules} Say hello" reads "… in water. Say hello", not with two spaces."""
    values = {name: value.replace(_EMPTY, "") for name, value in values.items()}
    filled = _BRACES.sub(lambda match: _filled(match, values) or _EMPTY, template)
    return _EMPTY_AND_SPACES.sub(lambda match: " " if match.group(1) and match.group(2) else "", filled)


def _filled(match: re.Match[str], values: dict[str, str]) -> str:
    token = match.group(0)
    if token in _LITERAL:
        return _LITERAL[token]
    name = match.group(1)
    return values.get(name, token) if name is not None else token


class Welcome(Plugin):
    name = "welcome"
    description = "greets newcomers and starts their onboarding"
    Config = WelcomeConfig
    config: WelcomeConfig

    @listen(MemberJoined)
    async def on_join(self, ctx: Context, event: MemberJoined) -> None:
        if ctx.community is None or ctx.community_id is None or event.member.is_bot:
            return
        if not event.returning and ctx.author_id is not None:
            await ctx.session.execute(
                update(Membership)
                .where(
                    col(Membership.community_id) == ctx.community_id,
                    col(Membership.member_id) == ctx.author_id,
                )
                .values(level="peripheral")
            )
        template = self.config.welcome_back if event.returning else await self._template(ctx)
        text = render(template, self._values(ctx, ctx.mention(event.member)))
        greeted = self._room(ctx, event.room)
        try:
            await ctx.send(greeted, Content(text, mentions=(event.member,)))
        except Undeliverable as error:  # copbot may not post there: the newcomer is still onboarded
            self.log.warning(
                "welcome of %s not posted: %s; or set [plugins.welcome] rooms to a room copbot may post "
                "in (onboarding goes on by direct message)",
                event.member.key,
                error,
            )
        if not event.returning:  # in the room they were greeted in: onboarding speaks there if it must
            await ctx.emit(
                MemberWelcomed(
                    event_id=f"welcomed:{event.event_id}", room=greeted, at=event.at, member=event.member
                )
            )

    @command("welcome preview", mod=True, examples=("welcome preview",))
    async def preview(self, ctx: Context) -> None:
        """Show the welcome text as a newcomer would see it."""
        if ctx.community is None:
            raise UsageError("this room belongs to no community")
        template = await self._template(ctx)
        shown = render(template, self._values(ctx, "@newcomer"))
        await ctx.reply(Content(f"Newcomers see: {shown}\nTemplate: {template}", ephemeral=True))

    @command(
        "welcome set",
        mod=True,
        examples=("welcome set Welcome {member} to {community}! Read the rules: {rules}",),
    )
    async def set_template(self, ctx: Context, template: Text) -> None:
        """Change the welcome text; {member}, {community}, {domain} and {rules} are filled in.

        Args:
            template: the new welcome text
        """
        if ctx.community_id is None:
            raise UsageError("this room belongs to no community")
        checked = check_template(template)
        row = await ctx.session.get(WelcomeTemplate, ctx.community_id)
        if row is None:
            row = WelcomeTemplate(community_id=ctx.community_id, template=checked, updated_at=ctx.now())
            ctx.session.add(row)
        row.template, row.updated_by, row.updated_at = checked, ctx.author_id, ctx.now()
        shown = render(checked, self._values(ctx, "@newcomer"))
        notes = "".join(f"\nNote: {note}." for note in template_notes(checked))
        await ctx.reply(f"Welcome text saved. Newcomers will see: {shown}{notes}")

    # --- the member's own data --------------------------------------------------------------------------

    async def _set_by(self, session: AsyncSession, member_ids: Sequence[int]) -> list[tuple[str, Any]]:
        rows = await session.execute(
            select(col(CommunityRow.slug), col(WelcomeTemplate.updated_at))
            .join(CommunityRow, col(CommunityRow.id) == col(WelcomeTemplate.community_id))
            .where(col(WelcomeTemplate.updated_by).in_(member_ids))
        )
        return [(slug, at) for slug, at in rows.all()]

    async def personal_data(self, session: AsyncSession, member_ids: Sequence[int]) -> Mapping[str, Any]:
        """Only which communities' welcome text the member (a moderator) changed last, and when."""
        from bot.privacy import iso  # loaded when a member's data is exported

        texts = await self._set_by(session, member_ids)
        if not texts:
            return {}
        return {"welcome_texts_you_last_changed": [{"community": s, "at": iso(at)} for s, at in texts]}

    async def forget(
        self, session: AsyncSession, member_ids: Sequence[int], *, remove_items: bool
    ) -> Sequence[str]:
        texts = await self._set_by(session, member_ids)
        if not texts:
            return ()
        await session.execute(
            update(WelcomeTemplate)
            .where(col(WelcomeTemplate.updated_by).in_(member_ids))
            .values(updated_by=None)
        )
        where = ", ".join(slug for slug, _ in texts)
        return (f"The welcome text you last changed ({where}) kept; who changed it is no longer recorded.",)

    async def _template(self, ctx: Context) -> str:
        stored = await ctx.session.get(WelcomeTemplate, ctx.community_id) if ctx.community_id else None
        return stored.template if stored is not None else self.config.template

    def _values(self, ctx: Context, member: str) -> dict[str, str]:
        community = ctx.community
        assert community is not None
        return {
            "member": member,
            "community": community.name,
            "domain": community.domain or "our field",  # "We share what works in our field."
            "rules": community.rules,
        }

    def _room(self, ctx: Context, joined: Room) -> Room:
        community = ctx.community
        configured = self.config.rooms.get(community.slug, {}) if community else {}
        room_id = configured.get(joined.platform) if is_platform(joined.platform) else None
        return Room(joined.platform, room_id, community_id=joined.community_id) if room_id else joined
