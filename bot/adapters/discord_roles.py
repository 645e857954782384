"""Participation levels as Discord roles: one PATCH gives the level's role and takes the other levels' away.

A configured role *name* the guild lacks is created once (no permissions, not mentionable; Discord puts a
new role at the bottom, below copbot's own). A role copbot may not give or take — above its own highest
role, managed by an integration, or without Manage Roles — raises :class:`~bot.errors.RoleRefused` saying
what to change in the server's settings; Discord is not asked in vain.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

import discord

from bot.config import Level, is_level
from bot.errors import RoleRefused

log = logging.getLogger(__name__)


class LevelRoles:
    """Gives members their level's role, for one Discord client (every guild it is in)."""

    def __init__(self, client: discord.Client) -> None:
        self.client = client
        self._created: dict[tuple[int, str], discord.Role] = {}  # level roles copbot made, by name
        self._lock = asyncio.Lock()

    async def set(
        self, guild_id: str, level_roles: Mapping[Level, str], member_id: str, level: str, reason: str
    ) -> bool:
        """The level's role and none of the others' (``level_roles``: level → role id or name); sent only
        when that changes the member's roles, so the walk at start-up sends nothing for members whose roles
        are right. True if the level has a role."""
        guild = self.client.get_guild(int(guild_id))
        target = guild.get_member(int(member_id)) if guild else None
        if guild is None or target is None:
            return False
        ref = level_roles.get(level) if is_level(level) else None
        wanted = await self._level_role(guild, ref) if ref is not None else None
        others = {
            role.id
            for name, other in level_roles.items()
            if name != level and (role := self._known_role(guild, other)) is not None
        }
        current = [role for role in target.roles if not role.is_default()]
        roles = [role for role in current if role.id not in others and role != wanted]
        if wanted is not None and wanted not in roles:
            roles.append(wanted)
        changed = set(roles).symmetric_difference(current)
        if not changed:
            return wanted is not None
        _check_manageable(guild, sorted(changed))
        try:
            await target.edit(roles=roles, reason=reason[:512] or f"copbot: participation level {level}")
        except discord.Forbidden as error:
            names = ", ".join(f"'{role.name}'" for role in sorted(changed))
            raise RoleRefused(
                f"discord: Discord refused to change the roles {names} ({error.text}); give copbot's role "
                "Manage Roles and move it above the level roles in Server Settings → Roles",
                role=names,
            ) from error
        except discord.HTTPException:
            self._created.pop((guild.id, ref or ""), None)  # a role copbot made, deleted since?
            raise
        return wanted is not None

    def _known_role(self, guild: discord.Guild, ref: str) -> discord.Role | None:
        """A level role by id or name — or one copbot created that the gateway has not announced yet."""
        role = guild.get_role(int(ref)) if ref.isdigit() else discord.utils.get(guild.roles, name=ref)
        created = self._created.get((guild.id, ref))
        if role is None and created is not None:
            role = guild.get_role(created.id) or created
        return role

    async def _level_role(self, guild: discord.Guild, ref: str) -> discord.Role:
        """The role for a level; a configured name the guild lacks is created, once (never an id)."""
        role = self._known_role(guild, ref)
        if role is not None:
            return role
        if ref.isdigit():
            raise RoleRefused(
                f"discord: there is no role with the id {ref} in {guild.name}; correct level_roles "
                "(a role's name is created if missing, an id is not)",
                role=ref,
            )
        async with self._lock:  # two promotions at once create the role once
            role = self._known_role(guild, ref)
            if role is None:
                _check_manageable(guild, [])
                try:
                    role = await guild.create_role(
                        name=ref,
                        permissions=discord.Permissions.none(),
                        mentionable=False,
                        reason="copbot: a participation level's role",
                    )
                except discord.Forbidden as error:
                    raise RoleRefused(
                        f"discord: Discord refused to create the role '{ref}' ({error.text}); give copbot's "
                        "role Manage Roles in Server Settings → Roles, or create the role yourself",
                        role=ref,
                    ) from error
                self._created[(guild.id, ref)] = role
                log.info("discord: created the level role %r in %s", ref, guild.name)
        return role


def _check_manageable(guild: discord.Guild, roles: Sequence[discord.Role]) -> None:
    """Raise RoleRefused unless Discord's hierarchy lets copbot give and take ``roles``."""
    me = guild.me
    if me.id == guild.owner_id:
        return
    if not me.guild_permissions.manage_roles:
        raise RoleRefused(
            f"discord: copbot lacks the Manage Roles permission in {guild.name}; give copbot's role "
            "Manage Roles in Server Settings → Roles",
            role="Manage Roles",
        )
    for role in roles:
        if role.managed or role.is_default():
            raise RoleRefused(
                f"discord: the role '{role.name}' belongs to Discord or an integration and cannot be "
                "given to members; choose another role in level_roles",
                role=role.name,
            )
        if role >= me.top_role:
            raise RoleRefused(
                f"discord: the role '{role.name}' is above copbot's own role; move copbot's role above "
                "it in Server Settings → Roles",
                role=role.name,
            )
