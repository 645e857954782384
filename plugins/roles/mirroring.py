"""Levels mirrored onto the platforms (a Discord role, a Matrix power level or room) through the adapters'
RoleAdapter protocol: after each move, and at start-up a walk that repairs drift quietly. A refusal (the
role hierarchy, a permission) is said once, plainly; a failure never undoes the move itself."""

from __future__ import annotations

from collections.abc import Iterable

from bot import store
from bot.adapters.base import RoleAdapter
from bot.config import Settings
from bot.errors import RoleRefused
from bot.model import Capability
from bot.tables import MemberRow
from plugins.roles import queries
from plugins.roles.base import RolesBase

RECONCILE_BATCH = 500
"""Seats whose platform roles the start-up walk checks per database read (and per progress line)."""


class Mirroring(RolesBase):
    async def _mirror(self, slug: str | None, row: MemberRow, level: str, *, repair: bool = False) -> None:
        adapter = self.services.adapters.get(row.platform)
        if slug is None or adapter is None or Capability.ROLES not in adapter.capabilities:
            return
        if not isinstance(adapter, RoleAdapter):
            return
        try:
            await adapter.set_level_role(
                slug,
                store.as_member(row),
                level,
                reason=f"copbot: participation level {level}",
                repair=repair,
            )
        except RoleRefused as refused:  # the hierarchy or a permission forbids it: said once, plainly
            key = (slug, row.platform, refused.role)
            if key not in self._refused:
                self._refused.add(key)
                self.log.warning(
                    "levels of %s are not mirrored on %s: %s", slug, row.platform, refused.message
                )
        except Exception as error:
            self.log.warning("could not give %r the %s role in %s: %s", row.display_name, level, slug, error)

    async def reconcile(self) -> int:
        """Bring every platform's roles in line with the stored levels (at start-up, in the background):
        drift — a role removed by hand, a level changed while copbot was down — is repaired quietly, with
        no announcement and no LevelChanged. The adapters send nothing for members already right. Returns
        how many accounts were checked."""
        registry = self.services.registry
        platforms = {
            platform
            for platform, adapter in self.services.adapters.items()
            if Capability.ROLES in adapter.capabilities and isinstance(adapter, RoleAdapter)
        }
        if registry is None or not platforms:
            return 0
        checked = 0
        served = [
            (community_id, registry.communities[community_id]) for community_id in registry.served.values()
        ]
        for community_id, community in served:
            mirrored = _mirroring(self.services.settings, community.slug, platforms)
            if not mirrored:
                continue  # no level has a role or power level there: nothing to bring in line
            # Page by page (a page of persons, then their seats and accounts): the walk holds one page, so
            # its memory does not grow with the community (every seat at once stays in the process after).
            after: int | None = None
            done = 0
            while True:
                async with self.services.db.session() as session:
                    persons = await queries.persons_after(session, community_id, after, RECONCILE_BATCH)
                    if not persons:
                        break
                    seats = await queries.seats(session, community_id, persons)
                    accounts = await queries.members_of_seats(session, list(seats.values()))
                after = persons[-1]
                for seat in seats.values():
                    if (community_id, seat.person_id) in self._moved:
                        continue  # its move mirrors the newer level itself
                    for row in accounts.get(seat.person_id, []):
                        adapter = self.services.adapters.get(row.platform)
                        if row.platform in mirrored and adapter is not None and adapter.connected:
                            await self._mirror(community.slug, row, seat.level, repair=True)
                            checked += 1
                done += len(persons)
                if done > len(persons) or len(persons) == RECONCILE_BATCH:
                    self.log.info("platform roles of %s: %d members checked", community.slug, done)
        self._moved.clear()
        self.log.info("platform roles checked against the stored levels for %d account(s)", checked)
        return checked


def _mirroring(settings: Settings, slug: str, platforms: Iterable[str]) -> set[str]:
    """Those of ``platforms`` on which the community gives levels a role or power level at all: Discord's
    ``level_roles``, Matrix's ``level_power_levels`` and ``level_rooms``. Another platform's adapter is
    asked about every member, as its configuration is its own."""
    config = next((c for c in settings.community_list() if c.slug == slug), None)
    found: set[str] = set()
    for platform in platforms:
        if platform == "matrix":
            matrix = config.matrix if config is not None else None
            if matrix is not None and (matrix.level_power_levels or matrix.level_rooms):
                found.add(platform)
        elif platform == "discord":
            discord = config.discord if config is not None else None
            if discord is not None and discord.level_roles:
                found.add(platform)
        else:
            found.add(platform)
    return found
