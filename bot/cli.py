"""The command line of `copbot` and `python -m bot`: run, check-config, db upgrade, db snapshot, export.

Whatever stops copbot from starting ends as one line on stderr, ``copbot: <what is wrong and what to
change>``, and a non-zero exit: an operator at a terminal or reading a service log needs that line, which a
traceback would bury. Tracebacks of code that fails while copbot runs go to the log, never into the chat.

Both entry points prepare the process first (``bot/launch.py``) and only then import this module.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TextIO

from bot.config import ConfigError, Settings
from bot.errors import StartupError
from bot.plugin_config_check import load_checked

DEFAULT_CONFIG = Path("config.toml")
CONSOLE_LOG = "copbot.log"
"""Where the console platform logs when ``log_file`` is empty: its terminal is the chat."""
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _config_path(given: str | None) -> Path | None:
    """An explicit path, else $COPBOT_CONFIG, else ./config.toml if present; none means the defaults."""
    if given:
        return Path(given)
    if os.environ.get("COPBOT_CONFIG"):
        return Path(os.environ["COPBOT_CONFIG"])
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def _load(path: Path | None) -> Settings:
    """The checked settings; every bad key is printed (with the warnings) and copbot exits 2."""
    source = str(path) if path else "(defaults)"
    try:
        loaded = load_checked(path)
    except ConfigError as error:
        _print_warnings(error.source, error.warnings)
        for problem in error.problems:
            print(f"{error.source}: {problem}", file=sys.stderr)
        raise SystemExit(2) from None
    _print_warnings(source, loaded.warnings)
    return loaded.settings


def _print_warnings(source: str, warnings: list[str]) -> None:
    for warning in warnings:
        print(f"{source}: warning: {warning}", file=sys.stderr)


def log_target(settings: Settings) -> str | None:
    """The log file, or None for stderr: ``log_file`` if set ("-" = stderr), else a file when the console
    chat owns the terminal, else stderr (where service managers and Docker collect logs)."""
    if settings.log_file:
        return None if settings.log_file == "-" else settings.log_file
    return CONSOLE_LOG if settings.console_enabled else None


class OneLineFormatter(logging.Formatter):
    """A record as one line, with no traceback: the person at the console chat needs to know that
    something went wrong and where to read about it, not the traceback between two chat lines."""

    def __init__(self, log_file: str) -> None:
        super().__init__()
        self.log_file = log_file

    def format(self, record: logging.LogRecord) -> str:
        lines = record.getMessage().strip().splitlines() or [record.name]
        return f"copbot: {record.levelname.lower()}: {lines[0]} — details in {self.log_file}"


def log_handlers(settings: Settings, stderr: TextIO | None = None) -> list[logging.Handler]:
    """Everything to the log file, and a one-line note of each warning or error on stderr; or, without a
    log file, everything to stderr."""
    stderr = stderr if stderr is not None else sys.stderr
    target = log_target(settings)
    if target is None:
        full = logging.StreamHandler(stderr)
        full.setFormatter(logging.Formatter(LOG_FORMAT))
        return [full]
    try:
        to_file: logging.Handler = logging.FileHandler(target, encoding="utf-8")
    except OSError as error:
        reason = error.strerror or error
        raise StartupError(
            f"cannot write the log file {target}: {reason}; check permissions or set log_file"
        ) from None
    to_file.setFormatter(logging.Formatter(LOG_FORMAT))
    brief = logging.StreamHandler(stderr)
    brief.setLevel(logging.WARNING)
    brief.setFormatter(OneLineFormatter(target))
    return [to_file, brief]


def _configure_logging(settings: Settings) -> None:
    root = logging.getLogger()
    for handler in log_handlers(settings):
        root.addHandler(handler)
    root.setLevel(settings.log_level)
    if settings.log_level != "DEBUG":  # matrix-nio logs every event it parses at INFO: two lines per command
        logging.getLogger("nio").setLevel(logging.WARNING)


def cmd_run(args: argparse.Namespace) -> int:
    settings = _load(_config_path(args.config))
    try:
        _configure_logging(settings)
        _migrate_in_a_child_process(settings, args.config)
        from bot.app import CopBot

        return asyncio.run(CopBot(settings).run())
    except StartupError as error:
        print(f"copbot: {error}", file=sys.stderr)
        return 1


def _migrate_in_a_child_process(settings: Settings, config: str | None) -> None:
    """Check the database, and bring it up to date in a short-lived child process when it is behind.

    Alembic and Mako would otherwise stay in the bot's memory for its whole life (~12 MB) for a job done
    once; the bot's own start-up then finds the database current and never imports them. A database
    copbot cannot use raises :class:`StartupError` here, before anything is started.
    """
    from bot import migrate, schema_snapshot
    from bot.db_check import check_database, open_database

    async def _behind() -> bool:
        database = open_database(settings.database_url)
        try:
            await check_database(database)
            if schema_snapshot.create_from_snapshot(settings.database_url):
                return False  # a new SQLite database, created at the newest revision in milliseconds
            return await migrate.current_revision(database) != migrate.head_from_files()
        finally:
            await database.close()

    if asyncio.run(_behind()):
        command = [sys.executable, "-m", "bot", "db", "upgrade", *(["--config", config] if config else [])]
        if subprocess.run(command, stdout=subprocess.DEVNULL).returncode != 0:
            raise StartupError("upgrading the database failed (the reason is above); nothing was started")


def cmd_check_config(args: argparse.Namespace) -> int:
    if args.path and args.config and args.path != args.config:
        print(f"copbot: two files given ({args.path}, {args.config}); check one at a time", file=sys.stderr)
        return 2
    path = _config_path(args.path or args.config)
    settings = _load(path)
    platforms = settings.platforms_configured or ["console"]
    communities = ", ".join(c.slug for c in settings.community_list())
    share = ""
    if settings.partitioned:  # one of several processes: say which part is this one's
        served = ", ".join(c.slug for c in settings.served_communities())
        share = f"; this process (instance {settings.instance_name}) serves: {served}"
    print(
        f"{path or '(defaults)'}: OK — platforms: {', '.join(platforms)}; communities: {communities}{share}"
    )
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = _load(_config_path(args.config))
    from bot import migrate
    from bot.db_check import check_database, open_database, plain_database_errors

    async def _upgrade() -> str | None:
        database = open_database(settings.database_url)
        try:
            await check_database(database)
            async with plain_database_errors(database):
                await migrate.upgrade(database)
                return await migrate.current_revision(database)
        finally:
            await database.close()

    try:
        revision = asyncio.run(_upgrade())
    except StartupError as error:
        print(f"copbot: {error}", file=sys.stderr)
        return 1
    print(f"database at revision {revision} ({settings.database_url.split('@')[-1]})")
    return 0


def cmd_db_snapshot(args: argparse.Namespace) -> int:
    """Migrate a scratch SQLite database the long way and write its schema as the snapshot new SQLite
    databases are created from (bot/schema_snapshot.py)."""
    import tempfile

    from bot import migrate, schema_snapshot
    from bot.db import Database

    async def _migrate(url: str) -> None:
        database = Database(url)
        try:
            await migrate.upgrade(database)
        finally:
            await database.close()

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "snapshot.db"
        asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
        script = schema_snapshot.dump(path)
    target = Path(args.output) if args.output else schema_snapshot.SNAPSHOT
    try:
        target.write_text(script, encoding="utf-8")
    except OSError as error:
        print(f"copbot: cannot write {target}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(f"schema at revision {schema_snapshot.snapshot_revision(script)} written to {target}")
    return 0


def cmd_export_repertoire(args: argparse.Namespace) -> int:
    """The same file ``repertoire export`` gives in chat, for backups and newsletters."""
    settings = _load(_config_path(args.config))
    from sqlalchemy.engine import make_url

    from bot import migrate
    from bot.db import async_url
    from bot.db_check import check_database, open_database, plain_database_errors
    from plugins.repertoire.export import as_json, as_markdown
    from plugins.repertoire.queries import all_items

    url = make_url(async_url(settings.database_url))
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).is_file():  # reading must not leave an empty database behind
            print(f"copbot: there is no database at {url.database}: nothing to export", file=sys.stderr)
            return 1

    async def _export() -> bytes:
        database = open_database(settings.database_url)
        try:
            await check_database(database)
            from sqlalchemy import select

            from bot.tables import CommunityRow

            if await migrate.current_revision(database) is None:
                raise StartupError(
                    f"{url.database or url.host}: copbot has stored nothing there yet (no tables): "
                    "nothing to export"
                )
            async with plain_database_errors(database), database.session() as session:
                row = await session.scalar(select(CommunityRow).where(CommunityRow.slug == args.community))
                if row is None or row.id is None:
                    known = ", ".join(c.slug for c in settings.community_list())
                    raise StartupError(
                        f"no community {args.community!r} in the database (communities: {known})"
                    )
                items = await all_items(session, row.id)
            from datetime import UTC, datetime

            now = datetime.now(UTC)
            if args.format == "json":
                return as_json(row.name, items, now)
            zones = {c.slug: c.timezone for c in settings.community_list()}  # dated as the page dates them
            return as_markdown(row.name, items, now, zones.get(args.community, settings.timezone))
        finally:
            await database.close()

    try:
        data = asyncio.run(_export())
    except StartupError as error:
        print(f"copbot: {error}", file=sys.stderr)
        return 1
    if args.output:
        try:
            Path(args.output).write_bytes(data)
        except OSError as error:
            print(f"copbot: cannot write {args.output}: {error.strerror or error}", file=sys.stderr)
            return 1
        print(f"wrote {args.output} ({len(data):,} bytes)", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="copbot", description="A bot for Communities of Practice.")
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="run the bot (the console when no platform is configured)")
    run.add_argument("--config", "-c", help="path to config.toml (default: ./config.toml if present)")
    run.set_defaults(func=cmd_run)
    check = commands.add_parser("check-config", help="validate a configuration file and name any bad key")
    check.add_argument("path", nargs="?", help="path to config.toml (default: ./config.toml if present)")
    check.add_argument("--config", "-c", dest="config", help="the same path, as copbot run takes it")
    check.set_defaults(func=cmd_check_config)
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply the Alembic migrations in migrations/")
    upgrade.add_argument("--config", "-c", help="path to config.toml")
    upgrade.set_defaults(func=cmd_db_upgrade)
    snapshot = db_commands.add_parser(
        "snapshot", help="write the schema new SQLite databases start from (after adding a migration)"
    )
    snapshot.add_argument("--output", "-o", help="where to write it (default: migrations/schema-sqlite.sql)")
    snapshot.set_defaults(func=cmd_db_snapshot)
    export = commands.add_parser("export", help="export a community's data")
    export_commands = export.add_subparsers(dest="export_command", required=True)
    repertoire = export_commands.add_parser("repertoire", help="the repertoire as Markdown or JSON")
    repertoire.add_argument("--community", required=True, help="the community's slug")
    repertoire.add_argument("--format", choices=("md", "json"), default="md")
    repertoire.add_argument("--output", "-o", help="a file to write (default: standard output)")
    repertoire.add_argument("--config", "-c", help="path to config.toml")
    repertoire.set_defaults(func=cmd_export_repertoire)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; without one, show the usage (exit 2) rather than guess that ``run`` was meant."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C before the bot's own signal handling is installed
        return 130
