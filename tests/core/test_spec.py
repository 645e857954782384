"""Spec derivation: the signature is the schema, and bad declarations fail when plugins load."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Literal

import pytest

from bot.commands import Kind, SpecError, Text, derive_spec
from bot.model import Member


async def schedule(
    ctx: object,
    title: str,
    when: datetime,
    *,
    duration: timedelta = timedelta(minutes=60),
    every: Literal["weekly", "biweekly", "monthly"] | None = None,
    where: str | None = None,
    notify: bool = False,
) -> None:
    """Schedule a meeting.

    Creates the meeting and its reminders.

    Args:
        title: what the meeting is called
        when: when it starts, in your time zone
        every: how often it repeats
    """


def test_options_follow_the_signature() -> None:
    spec = derive_spec(schedule, name="meeting schedule", help="", examples=["meeting schedule T tomorrow"])
    assert spec.name == "meeting schedule"
    assert spec.path == ("meeting", "schedule")
    assert spec.help == "Schedule a meeting."
    assert spec.details == "Creates the meeting and its reminders."
    assert spec.handler_name == "schedule"
    summary = [(o.name, o.kind, o.positional, o.required, o.default, o.help) for o in spec.options]
    assert summary == [
        ("title", Kind.TEXT, True, True, None, "what the meeting is called"),
        ("when", Kind.TIME, True, True, None, "when it starts, in your time zone"),
        ("duration", Kind.DURATION, False, False, timedelta(minutes=60), ""),
        ("every", Kind.CHOICE, False, False, None, "how often it repeats"),
        ("where", Kind.TEXT, False, False, None, ""),
        ("notify", Kind.FLAG, False, False, False, ""),
    ]
    assert spec.options[3].choices == ("weekly", "biweekly", "monthly")


def test_member_list_and_rest_kinds() -> None:
    async def handler(ctx: object, who: Member, tags: list[str], *, limit: int = 5) -> None:
        """x"""

    async def rest(ctx: object, body: Text | None = None) -> None:
        """x"""

    spec = derive_spec(handler, name="x", help="h")
    assert [(o.kind, o.many) for o in spec.options] == [
        (Kind.MEMBER, False),
        (Kind.TEXT, True),
        (Kind.INT, False),
    ]
    rest_spec = derive_spec(rest, name="y", help="h")
    assert (rest_spec.options[0].kind, rest_spec.options[0].required) == (Kind.REST, False)


@pytest.mark.parametrize(
    ("name", "source", "message"),
    [
        ("Bad", "async def f(ctx, a: str): ...", "'Bad' must be 1–32 lowercase"),
        ("x", "async def f(ctx, a): ...", "parameter 'a' needs a type hint"),
        ("x", "async def f(ctx, a: bool): ...", "bool 'a' must be keyword-only"),
        ("x", "async def f(ctx, a: dict): ...", "has a type copbot cannot parse"),
        ("x", "async def f(ctx, a: list[str], b: str): ...", "'a' takes several values and must come last"),
        ("x", "async def f(ctx, a: str | None, b: str): ...", "required 'b' follows an optional argument"),
        ("x", "async def f(ctx, *a: str): ...", "*args/**kwargs cannot be typed options"),
        ("x", "async def f(): ...", "must take the context"),
    ],
)
def test_bad_declarations_are_refused_at_load_time(name: str, source: str, message: str) -> None:
    namespace: dict[str, object] = {}
    exec(source, {"Member": Member}, namespace)
    with pytest.raises(SpecError, match=re.escape(message)):
        derive_spec(namespace["f"], name=name, help="h")  # type: ignore[arg-type]
