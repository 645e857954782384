"""Migrations with data, on SQLite and PostgreSQL: rows written at any revision keep their meaning up to the
head, and one step down and up again keeps every row the step does not remove.

The revisions are read from migrations/versions, so a new migration is covered without editing the tests —
and fails them until it has representative rows: SEEDS holds, per revision, rows for the tables it creates
or changes, written as that revision's schema has them (every column named, as raw Core inserts, not through
today's models). A column a migration adds to (or rewrites in, or drops from) a table that already has rows
says in FILLED_BY what those rows read afterwards. A revision without rows, a table without rows, a seed row
missing a column of its revision, a column nobody says anything about: each fails here, naming what to add.

Rows of older revisions are inserted at a later revision R as the migrations in between would have left
them (FILLED_BY applied), then the database goes up to the head and every row is read back through the
models: the same rows, the same values, timestamps aware and in UTC, the full-text indexes finding them.
"""

from __future__ import annotations

import ast
import inspect as pyinspect
import itertools
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel.main import default_registry

import bot.tables  # noqa: F401  (the core's models)
from bot import migrate
from bot.db import Database, UTCDateTime
from bot.plugin_tables import import_plugin_tables
from plugins.profiles.search import search_profiles
from plugins.repertoire.search import search_items
from tests.core.test_storage import unexpected_schema_differences

import_plugin_tables()


def _scripts() -> list[Script]:
    """The migrations, oldest first (one line of history: the head test in test_storage insists on one)."""
    directory = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    return list(reversed(list(directory.walk_revisions("base", "heads"))))


def _declares_downgrade(script: Script) -> bool:
    """Whether the migration's downgrade does anything: not only ``pass``, a docstring or a raise."""
    function = ast.parse(textwrap.dedent(pyinspect.getsource(script.module.downgrade))).body[0]
    assert isinstance(function, ast.FunctionDef)
    inert = (ast.Pass, ast.Raise)
    return any(
        not isinstance(statement, inert)
        and not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant))
        for statement in function.body
    )


SCRIPTS = _scripts()
REVISIONS = [script.revision for script in SCRIPTS]
HEAD = REVISIONS[-1]
PARENT = {script.revision: script.down_revision for script in SCRIPTS}
REVERSIBLE = [script.revision for script in SCRIPTS if _declares_downgrade(script)]
MODELS = {mapper.local_table.name: mapper.class_ for mapper in default_registry.mappers}


# --- the rows ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    table: str
    row: Mapping[str, Any]
    only_on: str | None = None  # a dialect: the FTS5 tables are SQLite's (PostgreSQL's index is generated)


@dataclass(frozen=True)
class Same:
    """The value of another column of the row, copied by the migration."""

    column: str


@dataclass(frozen=True)
class NewestActivity:
    """The time of the newest activity row of the row's community and member written by then (or None)."""


@dataclass(frozen=True)
class FromLine:
    """The item number a digest entry's line begins with ("#1 [tool] Leak map — Bea"), where the entry shows
    someone's item (``item_by``), else None."""


DROPPED = object()  # FILLED_BY: the migration drops the column


T = datetime(2026, 1, 5, 9, 30, 15, 123456, tzinfo=UTC)  # to the microsecond: kept to the last digit
CET = timezone(timedelta(hours=1))


def at(days: float) -> datetime:
    return T + timedelta(days=days)


OCC1, OCC2, OCC3 = "2026-01-06T08:00:00Z", "2026-01-13T08:00:00Z", "2026-01-20T08:00:00Z"
ITEM_TITLE = "Acoustic leak detection at night"
ITEM_BODY = "Listening sticks find leaks while the network is quiet."
EXPERTISE = "leak detection, pump scheduling"


def _indexed(table: str) -> tuple[Seed, ...]:
    """Items 1 and 2 of 0007 as an FTS5 index of them holds them (SQLite; PostgreSQL's is generated)."""
    return tuple(
        Seed(
            table,
            {
                "rowid": id_,
                "item_id": id_,
                "title": ITEM_TITLE,
                "tags": "leakage night-work",
                "body": ITEM_BODY,
            },
            only_on="sqlite",
        )
        for id_ in (1, 2)
    )


def _item(**columns: Any) -> Seed:
    """A repertoire item saved by hand in community 1 (no origin, link, meeting or copy), as the later
    revisions that only add an index over the items need one: the columns given, the rest plain."""
    plain = {
        "community_id": 1,
        "body": "",
        "url": "",
        "tags": "",
        "author_id": 2,
        "added_by_id": 2,
        "origin_platform": None,
        "origin_room": None,
        "origin_message_id": None,
        "source_link": "",
        "meeting_id": None,
        "copied_from_id": None,
        "removed_at": None,
        "removed_by_id": None,
    }
    return Seed("repertoire_items", {**plain, **columns})


SEEDS: dict[str, tuple[Seed, ...]] = {
    "0001": (
        Seed(
            "communities",
            {
                "id": 1,
                "slug": "cop",
                "name": "Water utilities CoP",
                "domain": "water.example.org",
                "timezone": "Europe/Berlin",
                "created_at": datetime(2026, 1, 1, 10, 0, tzinfo=CET),  # given in CET, read back in UTC
            },
        ),
        Seed(
            "communities",
            {
                "id": 2,
                "slug": "sister",
                "name": "Sister CoP",
                "domain": "",
                "timezone": "UTC",
                "created_at": at(0),
            },
        ),
        Seed(
            "rooms",
            {"id": 1, "platform": "matrix", "room_id": "!cop:x.org", "community_id": 1, "added_at": at(0)},
        ),
        Seed(
            "rooms", {"id": 2, "platform": "discord", "room_id": "900", "community_id": 2, "added_at": at(0)}
        ),
        *(
            Seed(
                "members",
                {
                    "id": id_,
                    "platform": platform,
                    "platform_id": platform_id,
                    "display_name": name,
                    "is_bot": is_bot,
                    "timezone": zone,
                    "first_seen": at(0.01 * id_),
                    "last_seen": at(id_),
                },
            )
            for id_, platform, platform_id, name, is_bot, zone in (
                (1, "matrix", "@ana:x.org", "Ana", False, "Europe/Lisbon"),
                (2, "discord", "1002", "Bea ✨", False, None),
                (3, "matrix", "@copbot:x.org", "copbot", True, None),
            )
        ),
        Seed(
            "activity_events",
            {
                "id": 1,
                "community_id": 1,
                "member_id": 1,
                "kind": "message",
                "platform": "matrix",
                "room_id": "!cop:x.org",
                "detail": "",
                "at": at(0.1),
            },
        ),
        Seed(
            "activity_events",
            {
                "id": 2,
                "community_id": None,
                "member_id": 2,
                "kind": "command",
                "platform": "discord",
                "room_id": "",
                "detail": "help",
                "at": at(0.2),
            },
        ),
        Seed("handled_events", {"platform": "matrix", "event_id": "$event1:x.org", "handled_at": at(0.1)}),
        Seed(
            "state", {"scope": "matrix", "key": "since", "value": "s72594_4483_1934", "updated_at": at(0.3)}
        ),
        Seed(
            "apscheduler_jobs",
            {"id": "digest:cop", "next_run_time": 1767700000.25, "job_state": b"\x80\x05\x00\xffjob"},
        ),
    ),
    "0002": (
        Seed("memberships", {"community_id": 1, "member_id": 1, "joined_at": at(0), "left_at": None}),
        Seed("memberships", {"community_id": 1, "member_id": 2, "joined_at": at(1), "left_at": at(20)}),
    ),
    "0003": (
        Seed(
            "memberships",
            {"community_id": 2, "member_id": 1, "joined_at": at(2), "left_at": None, "level": "core"},
        ),
        Seed(
            "welcome_templates",
            {
                "community_id": 1,
                "template": "Welcome, {name}! Tell us what you work on.",
                "updated_by": 2,
                "updated_at": at(0.5),
            },
        ),
        Seed(
            "profiles",
            {
                "member_id": 1,
                "org": "Stadtwerke Nord",
                "org_type": "utility",
                "country": "DE",
                "expertise": EXPERTISE,
                "interests": "smart metering",
                "intros": True,
                "updated_at": at(0.6),
            },
        ),
        Seed(
            "profiles",
            {
                "member_id": 2,
                "org": "Aqua Consult",
                "org_type": None,
                "country": None,
                "expertise": "",
                "interests": "",
                "intros": False,
                "updated_at": at(0.7),
            },
        ),
        Seed(
            "profiles_fts",
            {"member_id": 1, "expertise": EXPERTISE, "interests": "smart metering", "org": "Stadtwerke Nord"},
            only_on="sqlite",
        ),
        Seed(
            "profiles_fts",
            {"member_id": 2, "expertise": "", "interests": "", "org": "Aqua Consult"},
            only_on="sqlite",
        ),
        Seed(
            "profiles_onboarding",
            {"member_id": 2, "community_id": 1, "step": 2, "started_at": at(1), "expires_at": at(8)},
        ),
        Seed(
            "profiles_introductions",
            {
                "id": 1,
                "community_id": 1,
                "member_a": 1,
                "member_b": 2,
                "kind": "match",
                "round": None,
                "at": at(2),
            },
        ),
        Seed(
            "profiles_introductions",
            {
                "id": 2,
                "community_id": None,
                "member_a": 2,
                "member_b": 1,
                "kind": "round",
                "round": 3,
                "at": at(3),
            },
        ),
    ),
    "0004": (
        Seed(
            "polls",
            {
                "id": 1,
                "community_id": 1,
                "platform": "matrix",
                "room_id": "!cop:x.org",
                "message_id": "$poll1",
                "question": "Next meetup day?",
                "options": '["Tuesday", "Thursday"]',
                "multi": False,
                "anonymous": False,
                "creator_id": 1,
                "created_at": at(1),
                "closes_at": at(8),
                "closed_at": None,
            },
        ),
        Seed(
            "polls",
            {
                "id": 2,
                "community_id": 1,
                "platform": "discord",
                "room_id": "900",
                "message_id": "1201",
                "question": "Which topics?",
                "options": '["Leaks", "Metering", "Pumps"]',
                "multi": True,
                "anonymous": True,
                "creator_id": 2,
                "created_at": at(2),
                "closes_at": None,
                "closed_at": at(9),
            },
        ),
        Seed("polls_votes", {"poll_id": 1, "member_id": 1, "choices": "0", "at": at(1.1)}),
        Seed("polls_votes", {"poll_id": 1, "member_id": 2, "choices": "1", "at": at(1.2)}),
        Seed("polls_voters", {"poll_id": 2, "member_id": 1}),
        Seed("polls_voters", {"poll_id": 2, "member_id": 2}),
        Seed("polls_counts", {"poll_id": 2, "option": 0, "count": 2}),
        Seed("polls_counts", {"poll_id": 2, "option": 1, "count": 0}),
        Seed("polls_counts", {"poll_id": 2, "option": 2, "count": 1}),
    ),
    "0005": (
        Seed(
            "outbox",
            {
                "id": 1,
                "key": "digest:cop:2026-01-12",
                "platform": "matrix",
                "target": "!cop:x.org",
                "content": "This week in the CoP …",
                "created_at": at(7),
                "sent_at": at(7.001),
                "message_id": "$out1",
                "attempts": 1,
                "last_error": "",
            },
        ),
        Seed(
            "outbox",
            {
                "id": 2,
                "key": "reminder:1:2026-01-13",
                "platform": "discord",
                "target": "dm:1002",
                "content": "The leak clinic starts in an hour.",
                "created_at": at(7.5),
                "sent_at": None,
                "message_id": "",
                "attempts": 3,
                "last_error": "HTTP 503",
            },
        ),
    ),
    "0006": (
        Seed(
            "members",
            {
                "id": 4,
                "platform": "matrix",
                "platform_id": "@dora:x.org",
                "display_name": "Dora",
                "is_bot": False,
                "timezone": "UTC",
                "first_seen": at(4),
                "last_seen": at(5),
                "reminders": "dm",
            },
        ),
        Seed(
            "meetings",
            {
                "id": 1,
                "community_id": 1,
                "platform": "matrix",
                "room_id": "!cop:x.org",
                "title": "Weekly leak clinic",
                "place": "https://meet.example.org/leaks",
                "tz": "Europe/Berlin",
                "starts_at": datetime(2026, 1, 6, 8, 0, tzinfo=UTC),
                "duration_minutes": 60,
                "rule": "FREQ=WEEKLY;BYDAY=TU",
                "until_at": datetime(2026, 3, 31, 8, 0, tzinfo=UTC),
                "count": None,
                "cap": 12,
                "creator_id": 1,
                "created_at": at(0.4),
                "updated_at": at(6),
                "sequence": 2,
                "cancelled_at": None,
                "announcement_id": "$ann1",
                "platform_event_id": "",
                "platform_event_for": "",
                "reminded_through": datetime(2026, 1, 13, 7, 0, tzinfo=UTC),
            },
        ),
        Seed(
            "meetings",
            {
                "id": 2,
                "community_id": None,
                "platform": "discord",
                "room_id": "900",
                "title": "Pump vendors' day",
                "place": "",
                "tz": "UTC",
                "starts_at": datetime(2026, 1, 20, 15, 0, tzinfo=UTC),
                "duration_minutes": 90,
                "rule": None,
                "until_at": None,
                "count": 1,
                "cap": None,
                "creator_id": 2,
                "created_at": at(1),
                "updated_at": at(3),
                "sequence": 1,
                "cancelled_at": at(3),
                "announcement_id": "1300",
                "platform_event_id": "555",
                "platform_event_for": "2026-01-20T15:00:00Z",
                "reminded_through": None,
            },
        ),
        Seed("meetings_changes", {"meeting_id": 1, "occurrence": OCC2, "cancelled": True, "moved_to": None}),
        Seed(
            "meetings_changes",
            {
                "meeting_id": 1,
                "occurrence": OCC3,
                "cancelled": False,
                "moved_to": datetime(2026, 1, 21, 8, 0, tzinfo=UTC),
            },
        ),
        Seed(
            "meetings_rsvps",
            {"meeting_id": 1, "occurrence": "*", "member_id": 1, "answer": "yes", "at": at(1)},
        ),
        Seed(
            "meetings_rsvps",
            {"meeting_id": 1, "occurrence": OCC2, "member_id": 2, "answer": "no", "at": at(2)},
        ),
        Seed(
            "meetings_rsvps",
            {"meeting_id": 1, "occurrence": OCC3, "member_id": 4, "answer": "maybe", "at": at(4.5)},
        ),
        Seed(
            "meetings_attendance",
            {"meeting_id": 1, "occurrence": OCC1, "member_id": 2, "confirmed_by": 1, "at": at(1.5)},
        ),
        Seed(
            "meetings_notes",
            {
                "id": 1,
                "meeting_id": 1,
                "occurrence": OCC1,
                "author_id": 1,
                "text": "Minutes: night-time listening works.\nNext: pressure logging.",
                "created_at": at(1.5),
                "updated_at": at(1.6),
            },
        ),
    ),
    "0007": (
        Seed(
            "repertoire_items",
            {
                "id": 1,
                "community_id": 1,
                "kind": "practice",
                "title": ITEM_TITLE,
                "body": ITEM_BODY,
                "url": "https://example.org/leaks",
                "tags": "leakage,night-work",
                "author_id": 2,
                "added_by_id": 1,
                "origin_platform": "matrix",
                "origin_room": "!cop:x.org",
                "origin_message_id": "$msg7",
                "source_link": "https://matrix.to/#/!cop:x.org/$msg7",
                "meeting_id": 1,
                "copied_from_id": None,
                "created_at": at(2),
                "updated_at": at(2.5),
                "removed_at": None,
                "removed_by_id": None,
            },
        ),
        Seed(
            "repertoire_items",
            {
                "id": 2,
                "community_id": 2,
                "kind": "practice",
                "title": ITEM_TITLE,
                "body": ITEM_BODY,
                "url": "",
                "tags": "leakage,night-work",
                "author_id": 2,
                "added_by_id": 1,
                "origin_platform": None,
                "origin_room": None,
                "origin_message_id": None,
                "source_link": "",
                "meeting_id": None,
                "copied_from_id": 1,
                "created_at": at(3),
                "updated_at": at(3),
                "removed_at": at(4),
                "removed_by_id": 1,
            },
        ),
        *_indexed("repertoire_fts"),
        Seed("repertoire_upvotes", {"item_id": 1, "member_id": 1, "at": at(2.2)}),
        Seed("repertoire_uses", {"item_id": 1, "member_id": 2, "at": at(2.3)}),
    ),
    "0008": (
        Seed(
            "members",
            {
                "id": 5,
                "platform": "discord",
                "platform_id": "1005",
                "display_name": "Ana (Discord)",
                "is_bot": False,
                "timezone": None,
                "first_seen": at(5),
                "last_seen": at(6),
                "reminders": "room",
                "person_id": 1,  # linked to her Matrix account
            },
        ),
        Seed(
            "memberships",
            {
                "community_id": 1,
                "member_id": 5,
                "joined_at": at(5),
                "left_at": None,
                "level": "active",
                "level_since": at(9),
                "locked": True,
                "below_since": at(12),
            },
        ),
        Seed(
            "roles_history",
            {
                "id": 1,
                "community_id": 1,
                "member_id": 1,
                "old_level": "peripheral",
                "new_level": "active",
                "actor_id": None,
                "rule": "messages >= 5 in 30 days",
                "reason": "",
                "at": at(9),
            },
        ),
        Seed(
            "roles_history",
            {
                "id": 2,
                "community_id": 1,
                "member_id": 2,
                "old_level": "active",
                "new_level": "core",
                "actor_id": 1,
                "rule": "",
                "reason": "Runs the leak clinic",
                "at": at(10),
            },
        ),
        Seed("roles_link_codes", {"code": "K7Q2M9", "member_id": 1, "expires_at": at(5.01)}),
    ),
    "0009": (
        Seed(
            "digest_posts",
            {
                "id": 1,
                "community_id": 1,
                "period_start": at(0),
                "period_end": at(7),
                "posted_at": at(7.01),
                "title": "CoP digest, 5–12 January",
                "text": "3 new members · 41 messages",
                "html": "<p>3 new members &middot; 41 messages</p>",
                "quiet": False,
            },
        ),
        Seed(
            "digest_posts",
            {
                "id": 2,
                "community_id": 2,
                "period_start": at(0),
                "period_end": at(7),
                "posted_at": at(7.02),
                "title": "Sister CoP digest",
                "text": "",
                "html": "",
                "quiet": True,
            },
        ),
    ),
    "0010": (
        Seed(
            "members",
            {
                "id": 6,
                "platform": "matrix",
                "platform_id": "@eve:x.org",
                "display_name": "Eve",
                "is_bot": False,
                "timezone": None,
                "first_seen": at(10),
                "last_seen": at(11),
                "reminders": "dm",
                "person_id": None,
                "public": True,
                "prompts": False,
                "tracking": False,
            },
        ),
    ),
    "0011": (
        Seed(
            "value_stories",
            {
                "id": 1,
                "community_id": 1,
                "author_id": 1,
                "text": "Night listening cut our losses by a tenth.",
                "cycle": "applied",
                "public": True,
                "source": "prompt",
                "created_at": at(12),
            },
        ),
        Seed(
            "value_stories",
            {
                "id": 2,
                "community_id": 1,
                "author_id": 2,
                "text": "I found a pump vendor through the CoP.",
                "cycle": None,
                "public": False,
                "source": "unprompted",
                "created_at": at(13),
            },
        ),
        Seed(
            "value_prompts",
            {
                "id": 1,
                "community_id": 1,
                "member_id": 1,
                "story_id": 1,
                "step": 2,
                "asked_at": at(11),
                "expires_at": at(18),
                "ended_at": at(12),
                "outcome": "done",
            },
        ),
        Seed(
            "value_prompts",
            {
                "id": 2,
                "community_id": 1,
                "member_id": 4,
                "story_id": None,
                "step": 0,
                "asked_at": at(11),
                "expires_at": at(18),
                "ended_at": None,
                "outcome": "",
            },
        ),
        Seed(
            "value_rounds",
            {
                "id": 1,
                "community_id": 1,
                "period_start": at(-20),
                "period_end": at(11),
                "ran_at": at(11),
                "asked": 2,
            },
        ),
    ),
    "0012": (  # indexes only: rows the new indexes cover
        Seed(
            "activity_events",
            {
                "id": 3,
                "community_id": 1,
                "member_id": 2,
                "kind": "reaction",
                "platform": "discord",
                "room_id": "900",
                "detail": "👍",
                "at": at(2),
            },
        ),
        Seed("repertoire_upvotes", {"item_id": 1, "member_id": 2, "at": at(2.5)}),
    ),
    "0013": (  # an index only: rows it covers
        Seed(
            "activity_events",
            {
                "id": 4,
                "community_id": 1,
                "member_id": 5,
                "kind": "vote",
                "platform": "discord",
                "room_id": "900",
                "detail": "poll 2",
                "at": at(9),
            },
        ),
    ),
    "0014": (  # owners: a job of a community, a process's own job, a message its instance queued
        Seed(
            "apscheduler_jobs",
            {
                "id": "poll:3:close",
                "next_run_time": 1767800000.5,
                "job_state": b"\x80\x05\x00\xfejob",
                "owner": "water",
            },
        ),
        Seed(
            "apscheduler_jobs",
            {
                "id": "recurring:roles.evaluate_all@water",
                "next_run_time": 1767810000.0,
                "job_state": b"\x80\x05\x00\xfdjob",
                "owner": "@water",
            },
        ),
        Seed(
            "outbox",
            {
                "id": 3,
                "key": "poll:3:close@2026-01-14T08:00:00+00:00#0",
                "platform": "matrix",
                "target": '{"room": "!water:x.org"}',
                "content": "Poll #3 closed.",
                "created_at": at(9),
                "sent_at": None,
                "message_id": "",
                "attempts": 0,
                "last_error": "",
                "owner": "water",
            },
        ),
    ),
    "0015": (  # an index only: a removed item it covers (the suggestions for `repertoire restore`)
        _item(
            id=3,
            kind="tool",
            title="Acoustic logger map",
            added_by_id=2,
            created_at=at(9.5),
            updated_at=at(10),
            removed_at=at(10),
            removed_by_id=1,
        ),
    ),
    "0016": _indexed("repertoire_recent"),  # the newest items indexed again on their own (SQLite)
    "0017": (  # an index only (SQLite): an item it covers, with tags, as a search reads it
        _item(
            id=4,
            kind="practice",
            title="Night flow checks",
            body="Minimum night flow, district by district.",
            tags="leakage, night-work",
            author_id=1,
            created_at=at(11),
            updated_at=at(11),
        ),
    ),
    "0018": (  # when a member was last seen in a community: a membership of Bea's in community 2
        Seed(
            "memberships",
            {
                "community_id": 2,
                "member_id": 2,
                "joined_at": at(12),
                "left_at": None,
                "level": "peripheral",
                "level_since": at(12),
                "locked": False,
                "below_since": None,
                "last_seen": at(12.5),
            },
        ),
    ),
    "0019": (  # the keyed mark a forgotten voter's account left in an anonymous poll still open
        Seed("polls_forgotten_voters", {"poll_id": 2, "marker": "3f" * 32}),
    ),
    "0020": (  # where a kept digest names a member (and shows an item of theirs)
        Seed(
            "digest_entries",
            {
                "id": 1,
                "post_id": 1,
                "row": 3,
                "item": 0,
                "line": "#1 [tool] Leak map — Bea",
                "member_id": 2,
                "name": "Bea",
                "at": 21,
                "item_by": 2,
            },
        ),
    ),
    "0021": (  # a forgotten member's "used" mark: off its item, still in the value report
        Seed("repertoire_uses", {"item_id": 1, "member_id": 5, "at": at(7), "withdrawn": True}),
    ),
    "0022": (  # which item a kept digest's line shows
        Seed(
            "digest_entries",
            {
                "id": 2,
                "post_id": 1,
                "row": 7,
                "item": 2,
                "line": "#1 Leak map · 3▲",
                "member_id": None,
                "name": "",
                "at": 0,
                "item_by": 2,
                "item_id": 1,
            },
        ),
    ),
    "0023": (  # copbot's thanks below a message saved with 📌
        _item(
            id=5,
            kind="experience",
            title="Step-testing at night",
            body="Close the valves one by one at 3 am.",
            author_id=1,
            added_by_id=2,
            origin_platform="matrix",
            origin_room="!cop:x.org",
            origin_message_id="$msg23",
            source_link="https://matrix.to/#/!cop:x.org/$msg23",
            thanks_message_id="$thanks23",
            created_at=at(13),
            updated_at=at(13),
        ),
    ),
}

# What rows that existed before a revision read afterwards in the columns it adds (or rewrites, or drops).
FILLED_BY: dict[str, dict[str, dict[str, Any]]] = {
    "0003": {"memberships": {"level": "peripheral"}},
    "0006": {"members": {"reminders": "room"}},
    "0008": {
        "members": {"person_id": None},
        "memberships": {"level_since": Same("joined_at"), "locked": False, "below_since": None},
    },
    "0010": {"members": {"public": False, "prompts": True, "tracking": True}},
    "0014": {"apscheduler_jobs": {"owner": ""}, "outbox": {"owner": ""}},
    "0018": {"memberships": {"last_seen": NewestActivity()}},
    "0021": {"repertoire_uses": {"withdrawn": False}},
    "0022": {"digest_entries": {"item_id": FromLine()}},
    "0023": {"repertoire_items": {"thanks_message_id": None}},
}


def _brought_forward(
    table: str,
    row: Mapping[str, Any],
    since: str | None,
    until: str | None,
    among: Iterable[tuple[str, Mapping[str, Any]]] = (),
) -> dict[str, Any]:
    """A row as it was after ``since``, as the migrations after it up to ``until`` leave it (``among``: the
    rows written with it, which a migration may read)."""
    start = REVISIONS.index(since) + 1 if since is not None else 0
    end = REVISIONS.index(until) + 1 if until is not None else 0
    result = dict(row)
    for revision in REVISIONS[start:end]:
        for column, value in FILLED_BY.get(revision, {}).get(table, {}).items():
            if value is DROPPED:
                result.pop(column, None)
            elif isinstance(value, Same):
                result[column] = result[value.column]
            elif isinstance(value, FromLine):
                number = result["line"].split(" ", 1)[0].removeprefix("#")
                result[column] = int(number) if result["item_by"] is not None and number.isdigit() else None
            elif isinstance(value, NewestActivity):
                result[column] = max(
                    (
                        other["at"]
                        for name, other in among
                        if name == "activity_events"
                        and (other["community_id"], other["member_id"])
                        == (result["community_id"], result["member_id"])
                    ),
                    default=None,
                )
            else:
                result[column] = value
    return result


def _seeds_up_to(revision: str, dialect: str) -> list[tuple[Seed, str]]:
    """The seeds of every revision up to ``revision``, oldest first, each with the revision it belongs to."""
    return [
        (seed, written)
        for written in REVISIONS[: REVISIONS.index(revision) + 1]
        for seed in SEEDS.get(written, ())
        if seed.only_on in (None, dialect)
    ]


# --- reading and writing rows as plain Core, whatever the revision ---------------------------------------


def _type_of(value: Any) -> sa.types.TypeEngine[Any]:
    if isinstance(value, bool):
        return sa.Boolean()
    if isinstance(value, datetime):
        return UTCDateTime()  # as the migrations declare every timestamp: naive UTC text on SQLite
    if isinstance(value, int):
        return sa.Integer()
    if isinstance(value, float):
        return sa.Float()
    if isinstance(value, bytes):
        return sa.LargeBinary()
    if isinstance(value, str):
        return sa.String()
    return sa.types.NullType()


def _table(name: str, *rows: Mapping[str, Any]) -> sa.TableClause:
    """The table with the rows' columns, each typed after its first value that is not None."""
    columns = {column: next((r[column] for r in rows if r[column] is not None), None) for column in rows[0]}
    return sa.table(name, *(sa.column(column, _type_of(value)) for column, value in columns.items()))


def _count_matching(connection: Connection, table: str, row: Mapping[str, Any]) -> int:
    clause = _table(table, row)
    conditions = [clause.c[k].is_(None) if v is None else clause.c[k] == v for k, v in row.items()]
    return connection.execute(sa.select(sa.func.count()).select_from(clause).where(*conditions)).scalar_one()


def _count(connection: Connection, table: str) -> int:
    return connection.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar_one()


def _schema(connection: Connection) -> dict[str, set[str]]:
    """The tables there are and their (written, not generated) columns; not Alembic's, not FTS5's shadows."""
    inspector = sa.inspect(connection)
    columns = {
        table: {column["name"] for column in found if not column.get("computed")}
        for (_schema_name, table), found in inspector.get_multi_columns().items()
    }
    virtual = set()
    if connection.dialect.name == "sqlite":
        virtual = set(
            connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'"
            ).scalars()
        )
    shadows = {
        f"{name}_{part}" for name in virtual for part in ("data", "idx", "content", "docsize", "config")
    }
    return {
        table: found
        for table, found in columns.items()
        if table != "alembic_version" and table not in shadows
    }


def _seed(connection: Connection, revision: str) -> list[tuple[str, dict[str, Any]]]:
    """Writes the rows of every revision up to ``revision`` as its schema has them; returns (table, row)."""
    schema = _schema(connection)
    seeds = _seeds_up_to(revision, connection.dialect.name)
    unseeded = sorted(set(schema) - {seed.table for seed, _ in seeds})
    assert not unseeded, f"tables at {revision} without representative rows in SEEDS: {unseeded}"
    written = []
    for seed, since in seeds:
        row = _brought_forward(seed.table, seed.row, since, revision, [(s.table, s.row) for s, _ in seeds])
        named = set(row) - {"rowid"}  # FTS5's
        missing = sorted(schema[seed.table] - named)
        assert not missing or since != revision, f"SEEDS[{since!r}]: a {seed.table} row without {missing}"
        assert not missing, (
            f"{seed.table}.{missing} came after {since}: say in FILLED_BY what older rows read"
        )
        assert named <= schema[seed.table], (
            f"SEEDS[{since!r}]: {seed.table} has no {named - schema[seed.table]}"
        )
        written.append((seed.table, row))
    for (table, _columns), group in itertools.groupby(written, key=lambda w: (w[0], tuple(w[1]))):
        rows = [row for _table_name, row in group]
        connection.execute(sa.insert(_table(table, *rows)), rows)  # one statement, several rows
    return written


# --- the checks at the head -------------------------------------------------------------------------------


async def _check_rows_at_head(
    database: Database, rows: list[tuple[str, dict[str, Any]]], since: str | None
) -> None:
    """Every row is there once, read through the models with the values it should have; nothing else is."""
    expected: dict[str, list[dict[str, Any]]] = {}
    for table, row in rows:
        expected.setdefault(table, []).append(_brought_forward(table, row, since, HEAD, rows))
    async with database.session() as session:
        for table, wanted in expected.items():
            model = MODELS.get(table)
            if model is None:  # APScheduler's and the full-text tables: no model, compared as plain rows
                connection = await session.connection()
                for row in wanted:
                    assert await connection.run_sync(_count_matching, table, row) == 1, (table, row)
                assert await connection.run_sync(_count, table) == len(wanted), f"{table}: rows added"
                continue
            mapper = sa.inspect(model)
            key = [column.name for column in mapper.primary_key]
            found = {
                tuple(getattr(obj, k) for k in key): obj for obj in await session.scalars(sa.select(model))
            }
            by_key = {tuple(row[k] for k in key): row for row in wanted}
            assert sorted(found) == sorted(by_key), f"{table}: rows lost or added"
            for pk, row in by_key.items():
                unsaid = sorted(set(mapper.columns.keys()) - set(row))
                assert not unsaid, (
                    f"{table}.{unsaid} came after {since}: say in FILLED_BY what older rows read"
                )
                read = {column: getattr(found[pk], column) for column in row}
                wrong = {
                    column: (read[column], value) for column, value in row.items() if read[column] != value
                }
                assert not wrong, f"{table} {pk}: (read, expected) {wrong}"
                naive = [
                    c for c, v in read.items() if isinstance(v, datetime) and v.utcoffset() != timedelta(0)
                ]
                assert not naive, f"{table} {pk}: not aware UTC: {naive}"
        await _check_searches(session, rows)


def _has(rows: Iterable[tuple[str, Mapping[str, Any]]], table: str, **values: Any) -> bool:
    return any(name == table and all(row.get(k) == v for k, v in values.items()) for name, row in rows)


async def _check_searches(session: AsyncSession, rows: list[tuple[str, dict[str, Any]]]) -> None:
    """The full-text indexes (FTS5 on SQLite, tsvector on PostgreSQL) find what was written before."""
    if _has(rows, "repertoire_items", id=1):
        hits = await search_items(session, "leaks", community_ids=[1])
        assert [hit.item_id for hit in hits] == [1]
        assert await search_items(session, "leaks", community_ids=[2]) == []  # the removed copy
    if _has(rows, "profiles", member_id=1) and _has(rows, "memberships", community_id=1, member_id=1):
        hits = await search_profiles(session, "leaks", community_ids=[1])
        assert [hit.member_id for hit in hits] == [1]


async def _check_server_defaults(database: Database) -> None:
    """A row written without the added columns (an older copbot, a hand-written INSERT) gets what the
    migrations declared, also after SQLite copied the tables to add or drop columns."""
    written = (
        (
            "communities",
            {"id": 100, "slug": "defaults", "name": "D", "domain": "", "timezone": "UTC", "created_at": T},
        ),
        (
            "members",
            {"id": 100, "platform": "console", "platform_id": "d", "display_name": "D", "is_bot": False}
            | {"first_seen": T, "last_seen": T},
        ),
        ("memberships", {"community_id": 100, "member_id": 100, "joined_at": T}),
    )
    async with database.engine.begin() as connection:
        for table, row in written:
            await connection.execute(sa.insert(_table(table, row)).values(row))
    async with database.session() as session:
        member = await session.get(MODELS["members"], 100)
        membership = await session.get(MODELS["memberships"], (100, 100))
        assert member is not None and membership is not None
        chosen = (member.reminders, member.public, member.prompts, member.tracking, member.person_id)
        assert chosen == ("room", False, True, True, None)
        assert (membership.level, membership.locked, membership.level_since) == ("peripheral", False, None)


async def _check_schema_matches_the_models(database: Database) -> None:
    async with database.engine.connect() as connection:
        assert await connection.run_sync(unexpected_schema_differences) == []


# --- the tests --------------------------------------------------------------------------------------------


def test_every_migration_has_representative_rows() -> None:
    """A new migration must say what rows it is tried with; rows of a migration that is gone are stale."""
    assert [revision for revision in REVISIONS if not SEEDS.get(revision)] == [], "add them to SEEDS"
    assert sorted(set(SEEDS) - set(REVISIONS)) == []
    assert sorted(set(FILLED_BY) - set(REVISIONS)) == []


@pytest.mark.parametrize("revision", REVISIONS)
async def test_rows_written_at_each_revision_keep_their_meaning_at_the_head(
    database_url: str, revision: str
) -> None:
    assert SEEDS.get(revision), f"migration {revision} has no representative rows: add SEEDS[{revision!r}]"
    database = Database(database_url)
    try:
        await migrate.upgrade(database, revision)
        async with database.engine.begin() as connection:
            rows = await connection.run_sync(_seed, revision)
        await migrate.upgrade(database)
        assert await migrate.current_revision(database) == HEAD
        await _check_rows_at_head(database, rows, since=revision)
        if revision == HEAD:  # the schema at the head is the same whatever the stop on the way
            await _check_server_defaults(database)
    finally:
        await database.close()


@pytest.mark.parametrize("revision", REVERSIBLE)
async def test_one_step_down_and_up_again_keeps_every_row_the_step_does_not_remove(
    database_url: str, revision: str
) -> None:
    parent = PARENT[revision]
    database = Database(database_url)
    try:
        await migrate.upgrade(database, revision)
        async with database.engine.begin() as connection:
            rows = await connection.run_sync(_seed, revision)
        await migrate.downgrade(database, parent or "base")
        assert await migrate.current_revision(database) == parent

        def _kept(connection: Connection) -> list[tuple[str, dict[str, Any]]]:
            """The rows of the tables still there, with the columns still there, each found once."""
            schema = _schema(connection)
            kept = []
            for table, row in rows:
                if table not in schema:
                    continue  # the step dropped the table
                back = {k: v for k, v in row.items() if k in schema[table] or k == "rowid"}
                assert _count_matching(connection, table, back) == 1, f"{table} lost {back} going down"
                kept.append((table, back))
            return kept

        async with database.engine.connect() as connection:
            kept = await connection.run_sync(_kept)
        await migrate.upgrade(database)
        await _check_rows_at_head(database, kept, since=parent)
        await _check_schema_matches_the_models(database)
        await _check_server_defaults(database)
    finally:
        await database.close()


async def test_a_failed_migration_on_sqlite_is_rolled_back_whole(tmp_path: Path) -> None:
    """SQLite runs DDL outside a transaction unless told otherwise: a migration failing halfway must leave the
    database at its revision, without half-copied tables, and foreign keys enforced again."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'orphan.db'}")
    try:
        await migrate.upgrade(database, "0009")  # 0010 copies members to add its columns
        async with database.engine.connect() as connection:  # a reference pointing nowhere fails the check
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await connection.execute(
                sa.text(
                    "INSERT INTO memberships (community_id, member_id, joined_at) VALUES (9, 9, :t)"
                ).bindparams(sa.bindparam("t", type_=UTCDateTime())),
                {"t": T},
            )
            await connection.commit()
            await connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        with pytest.raises(RuntimeError, match="pointing nowhere"):
            await migrate.upgrade(database)
        assert await migrate.current_revision(database) == "0009"
        async with database.engine.connect() as connection:
            schema = await connection.run_sync(_schema)
            assert not [table for table in schema if table.startswith("_alembic_tmp")]
            assert "public" not in schema["members"] and "value_stories" not in schema
            assert (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
    finally:
        await database.close()
