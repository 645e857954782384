"""`copbot` / `python -m bot`: run, check-config, db upgrade."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

from bot.config import ConfigError, Settings, load_settings

DEFAULT_CONFIG = Path("config.toml")


def _config_path(given: str | None) -> Path | None:
    """An explicit path, else $COPBOT_CONFIG, else ./config.toml if present; none means the defaults."""
    if given:
        return Path(given)
    if os.environ.get("COPBOT_CONFIG"):
        return Path(os.environ["COPBOT_CONFIG"])
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def _load(path: Path | None) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as error:
        for problem in error.problems:
            print(f"{error.source}: {problem}", file=sys.stderr)
        raise SystemExit(2) from None


def _configure_logging(settings: Settings) -> None:
    level = settings.log_level
    if (
        settings.console_enabled
        and not settings.platforms_configured
        and "COPBOT_LOG_LEVEL" not in os.environ
    ):
        level = "WARNING" if level == "INFO" else level  # keep the console chat readable
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if level != "DEBUG":  # matrix-nio logs every event it parses at INFO: two lines per command
        logging.getLogger("nio").setLevel(logging.WARNING)


def cmd_run(args: argparse.Namespace) -> int:
    settings = _load(_config_path(args.config))
    _configure_logging(settings)
    from bot.app import CopBot
    from bot.errors import WebStartError

    _migrate_in_a_child_process(settings, args.config)
    try:
        return asyncio.run(CopBot(settings).run())
    except WebStartError as error:
        print(f"copbot: {error}", file=sys.stderr)
        return 1


def _migrate_in_a_child_process(settings: Settings, config: str | None) -> None:
    """Bring the database up to date in a short-lived child process when it is behind.

    Alembic and Mako would otherwise stay in the bot's memory for its whole life (~12 MB) for a job done
    once; the bot's own start-up then finds the database current and never imports them.
    """
    from bot import migrate
    from bot.db import Database

    async def _behind() -> bool:
        database = Database(settings.database_url)
        try:
            return await migrate.current_revision(database) != migrate.head_from_files()
        finally:
            await database.close()

    if asyncio.run(_behind()):
        command = [sys.executable, "-m", "bot", "db", "upgrade", *(["--config", config] if config else [])]
        if subprocess.run(command, stdout=subprocess.DEVNULL).returncode != 0:
            print(
                "copbot: upgrading the database failed (the error is above); nothing was started",
                file=sys.stderr,
            )
            raise SystemExit(1)


def cmd_check_config(args: argparse.Namespace) -> int:
    path = _config_path(args.path)
    settings = _load(path)
    platforms = settings.platforms_configured or ["console"]
    communities = ", ".join(c.slug for c in settings.community_list())
    print(f"{path or '(defaults)'}: OK — platforms: {', '.join(platforms)}; communities: {communities}")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = _load(_config_path(args.config))
    from bot import migrate
    from bot.db import Database

    async def _upgrade() -> str | None:
        database = Database(settings.database_url)
        try:
            await migrate.upgrade(database)
            return await migrate.current_revision(database)
        finally:
            await database.close()

    revision = asyncio.run(_upgrade())
    print(f"database at revision {revision} ({settings.database_url.split('@')[-1]})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="copbot", description="A bot for Communities of Practice.")
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="run the bot (the console when no platform is configured)")
    run.add_argument("--config", "-c", help="path to config.toml (default: ./config.toml if present)")
    run.set_defaults(func=cmd_run)
    check = commands.add_parser("check-config", help="validate a configuration file and name any bad key")
    check.add_argument("path", nargs="?", help="path to config.toml (default: ./config.toml if present)")
    check.set_defaults(func=cmd_check_config)
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply the Alembic migrations in migrations/")
    upgrade.add_argument("--config", "-c", help="path to config.toml")
    upgrade.set_defaults(func=cmd_db_upgrade)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        args = parser.parse_args(["run", *(argv or [])])
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
