"""The commands every copbot has: help, about, status, and a member's own data (export, forget)."""

from __future__ import annotations

import logging
import platform as python_platform
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import field_validator

from bot.commands import CommandSpec, Kind, Text
from bot.context import Context
from bot.errors import NotFound, Refused, UsageError
from bot.model import Content, Member
from bot.plugin import Plugin, PluginConfig, command
from bot.timeparse import format_duration

log = logging.getLogger(__name__)
ABOUT = (
    "I am copbot, a helper for Communities of Practice: people who share a domain and learn from each other."
)


def copbot_version() -> str:
    try:
        return version("copbot")
    except PackageNotFoundError:
        return "unknown"


class CoreConfig(PluginConfig):
    """``[plugins.core]``: it has only ``enabled``, and that may not be false."""

    @field_validator("enabled")
    @classmethod
    def _always_on(cls, value: bool) -> bool:
        # Turned off, every command a member is told to type (`help`, named by every error) answered that it
        # was turned off, and nobody could export or forget their data: a config that cannot work is refused.
        if not value:
            raise ValueError(
                "the core plugin cannot be turned off: copbot needs its help, about, status and profile "
                "export and forget commands, like enabled = true (or leave the key out)"
            )
        return value


class Core(Plugin):
    name = "core"
    description = "help, about and status; your own data (export, forget)"
    Config = CoreConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._forget_asked: dict[int, datetime] = {}
        """Accounts that asked to be forgotten, and when: ``--confirm`` must follow within the window. Kept
        in memory only, so that asking changes nothing stored (after a restart, one simply asks again)."""

    @command("help", examples=("help", "help poll create"))
    async def help(self, ctx: Context, command: Text | None = None) -> None:
        """List the commands you can use, or explain one.

        Args:
            command: a command or group to explain, like "poll create" or "poll"
        """
        registry = ctx.services.registry
        assert registry is not None
        visible = [spec for spec in registry.specs if ctx.is_moderator or not spec.mod_only]
        if command is None:
            lines = [f"Commands you can use (type {ctx.prefix}help <command> for details):"]
            lines += [
                f"{ctx.prefix}{spec.name} — {spec.help}" for spec in sorted(visible, key=lambda s: s.name)
            ]
            await ctx.reply(Content("\n".join(lines), ephemeral=True))
            return
        wanted = " ".join(command.lower().removeprefix(ctx.prefix).split())
        exact = [spec for spec in visible if spec.name == wanted]
        group = [spec for spec in visible if spec.name.startswith(wanted + " ")]
        if exact:
            text = describe(exact[0], ctx.prefix)
            if group:  # `profile` is a command and a group: show the whole group too
                text += f"\nAlso in {ctx.prefix}{wanted}:\n" + "\n".join(
                    f"{spec.usage(ctx.prefix)} — {spec.help}" for spec in group
                )
            await ctx.reply(Content(text, ephemeral=True))
            return
        if group:
            lines = [f"{ctx.prefix}{wanted} commands:"]
            lines += [f"{spec.usage(ctx.prefix)} — {spec.help}" for spec in group]
            await ctx.reply(Content("\n".join(lines), ephemeral=True))
            return
        if any(spec.name == wanted for spec in registry.specs):
            await ctx.reply(Content(f"{ctx.prefix}{wanted} is for moderators only.", ephemeral=True))
            return
        off = registry.turned_off_for(wanted.split())
        if off is not None and off[0] == wanted:
            raise NotFound(registry.turned_off_line(ctx.prefix, *off))
        if wanted:  # a typo gets the command meant, as the typo typed as a command does
            raise NotFound(registry.unknown_message(wanted.split(), ctx.prefix, moderator=ctx.is_moderator))
        raise NotFound(f"There is no command {ctx.prefix}{wanted}; type {ctx.prefix}help for the list.")

    @command("about", examples=("about",))
    async def about(self, ctx: Context) -> None:
        """What copbot is and which communities it serves."""
        registry = ctx.services.registry
        assert registry is not None
        names = [f"{c.name}" + (f" ({c.domain})" if c.domain else "") for c in registry.communities.values()]
        served = "; ".join(names) if names else "no community yet"
        doing = "; ".join(
            f"{plugin.name}: {plugin.description}"
            for plugin in registry.plugins.values()
            if plugin.description
        )
        await ctx.reply(
            f"{ABOUT} Serving: {served}. Here I do — {doing}. Type {ctx.prefix}help to see what you can ask."
        )

    @command("status", mod=True, examples=("status",))
    async def status(self, ctx: Context) -> None:
        """Version, uptime, platforms, plugins, scheduled jobs and database."""
        services = ctx.services
        registry = services.registry
        assert registry is not None
        uptime = services.clock.now() - services.started_at
        platforms = ", ".join(
            f"{name} ({'connected' if adapter.connected else 'disconnected'})"
            for name, adapter in sorted(services.adapters.items())
        )
        jobs = await services.scheduler.job_ids() if services.scheduler is not None else []
        lines = [
            f"copbot {copbot_version()} on Python {python_platform.python_version()}, "
            f"up {format_duration(max(uptime, timedelta(0)) // timedelta(seconds=1) * timedelta(seconds=1))}",
            f"Platforms: {platforms or 'none'}",
            f"Plugins: {', '.join(sorted(registry.plugins))}",
            f"Scheduled jobs: {len(jobs)}"
            + (f" ({', '.join(sorted(jobs)[:5])}{'…' if len(jobs) > 5 else ''})" if jobs else ""),
            f"Database: {services.db.backend}",
        ]
        refused = services.pipeline.outbox.refused if services.pipeline is not None else {}
        lines += [f"Cannot post: {why}" for why in sorted(set(refused.values()))]  # what a moderator fixes
        await ctx.reply("\n".join(lines))

    # --- the member's own data --------------------------------------------------------------------------

    @command("profile export", examples=("profile export",), reads_activity=True)
    async def profile_export(self, ctx: Context) -> None:
        """Everything copbot stores about you, as a JSON file sent to you by direct message."""
        from bot import privacy  # loaded by the commands that need it

        assert ctx.author is not None and ctx.author_id is not None
        data = await privacy.export_data(self.services, ctx.session, ctx.author_id)
        content = privacy.export_content(data, ctx.adapter.capabilities, ctx.now())
        await _send_privately(ctx, content, what="your data")
        if not ctx.room.is_direct:
            await ctx.reply(
                Content("I sent you everything I store about you, by direct message.", ephemeral=True)
            )

    @command("profile forget", examples=("profile forget", "profile forget --confirm"))
    async def profile_forget(
        self, ctx: Context, *, confirm: bool = False, remove_items: bool = False
    ) -> None:
        """Delete what copbot stores about you (asks you to confirm first).

        Args:
            confirm: go ahead: type it within 10 minutes of profile forget
            remove_items: delete your repertoire items and value stories instead of keeping them unnamed
        """
        from bot import privacy

        assert ctx.author is not None and ctx.author_id is not None
        now = ctx.now()
        asked = self._forget_asked.get(ctx.author_id)
        if not confirm:
            self._forget_asked[ctx.author_id] = now
            await ctx.reply(Content(privacy.forget_preview(ctx.prefix), ephemeral=True))
            return
        if asked is None or now - asked > privacy.CONFIRM_WINDOW:
            raise UsageError(
                f"first type {ctx.prefix}profile forget to see what it does; then confirm within "
                f"{int(privacy.CONFIRM_WINDOW.total_seconds() // 60)} minutes",
                example=f"{ctx.prefix}profile forget",
            )
        pipeline = self.services.pipeline
        if pipeline is not None:  # activity still in memory is written first, so it is forgotten too
            await pipeline.journal.flush()
        done = await privacy.forget_person(
            self.services, ctx.session, ctx.author_id, remove_items=remove_items
        )
        self._forget_asked.pop(ctx.author_id, None)
        lines = ["Done: copbot has forgotten you. What it did:"]
        lines += [f"• {sentence}" for sentence in done.said]
        await _send_privately(ctx, Content("\n".join(lines)), what="what was kept")
        if not ctx.room.is_direct:
            await ctx.reply(
                Content(
                    "Done: copbot has forgotten you; I sent you what was kept by direct message.",
                    ephemeral=True,
                )
            )
        for member, row in done.accounts:
            ctx.member_changed(member)  # the platform account maps to no row now
            ctx.after_commit.append(_untrack(self, row))
        ctx.author_id = None  # this very command is recorded for nobody


def _untrack(core: Core, row: Any) -> Any:
    async def remember() -> None:
        pipeline = core.services.pipeline
        if pipeline is not None:  # anything counted for the anonymised row later is not recorded
            pipeline.journal.remember(Member(row.platform, row.platform_id, row.display_name), row)

    return remember


async def _send_privately(ctx: Context, content: Content, *, what: str) -> None:
    """In a direct chat, the answer; elsewhere a direct message — never in the room. If the platform
    refuses the direct message, nothing is done (the unit of work rolls back) and the member is told."""
    assert ctx.author is not None
    if ctx.room.is_direct:
        await ctx.reply(content)
        return
    try:
        await ctx.send_direct(ctx.author, content)
    except Exception:  # direct messages closed: said plainly, never answered in the room instead
        log.warning("could not send %s to %s by direct message", what, ctx.author.key, exc_info=True)
        raise Refused(
            f"I could not send you {what} by direct message, so nothing was done; allow direct messages "
            f"from this community's members, or ask me in a direct message."
        ) from None


def describe(spec: CommandSpec, prefix: str) -> str:
    """One command's help: usage, what it does, its options, and examples."""
    # A command for its owner says in its own words whose it is (an item's author, a poll's creator, with or
    # without moderators): a suffix here would repeat that, or contradict it (moderators edit no item).
    who = " (moderators only)" if spec.mod_only else ""
    lines = [spec.usage(prefix), spec.help + who]
    if spec.details:
        lines.append(spec.details)
    for option in spec.options:
        if option.help or option.kind is Kind.CHOICE:
            if not option.positional:
                label = option.flag
            elif option.kind is Kind.CHOICE:  # by its name: its choices are in the usage line already
                label = f"<{option.name.replace('_', '-')}>"
            else:
                label = f"<{option.placeholder()}>"
            lines.append(f"  {label}: {option.help}".rstrip(": "))
    if spec.examples:
        lines.append("Examples: " + " · ".join(f"{prefix}{example}" for example in spec.examples))
    return "\n".join(lines)
