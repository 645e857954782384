"""The commands every copbot has: help, about, status."""

from __future__ import annotations

import platform as python_platform
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version

from bot.commands import CommandSpec, Kind, Text
from bot.context import Context
from bot.errors import NotFound
from bot.model import Content
from bot.plugin import Plugin, command
from bot.timeparse import format_duration

ABOUT = (
    "I am copbot, a helper for Communities of Practice: people who share a domain and learn from each other."
)


def copbot_version() -> str:
    try:
        return version("copbot")
    except PackageNotFoundError:
        return "unknown"


class Core(Plugin):
    name = "core"
    description = "help, about and status"

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
        await ctx.reply("\n".join(lines))


def describe(spec: CommandSpec, prefix: str) -> str:
    """One command's help: usage, what it does, its options, and examples."""
    who = ""
    if spec.mod_only:
        who = " (moderators only)"
    elif spec.owner_only:
        who = " (its creator or a moderator)"
    lines = [spec.usage(prefix), spec.help + who]
    if spec.details:
        lines.append(spec.details)
    for option in spec.options:
        if option.help or option.kind is Kind.CHOICE:
            label = option.flag if not option.positional else f"<{option.placeholder()}>"
            if option.positional and option.kind is Kind.CHOICE:
                label = option.placeholder()
            lines.append(f"  {label}: {option.help}".rstrip(": "))
    if spec.examples:
        lines.append("Examples: " + " · ".join(f"{prefix}{example}" for example in spec.examples))
    return "\n".join(lines)
