"""What issue 16 changed on every command's path behaves as before: the tokenizer's plain-words shortcut,
one member's events in turn, the metrics' remembered children."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.metrics import Metrics
from bot.model import Member
from bot.tokens import _tokenize_quoted, tokenize
from bot.turns import Turns
from tests.core.fuzzing import any_text

WORDS = st.text(alphabet=st.sampled_from(["a", "-", "=", "9", " ", "\t", "\u3000", "\x1f", "\u200b"]))


def _tokens(line: str, split: object = tokenize) -> list[tuple[str, int, bool, str]]:
    return [(t.text, t.start, t.quoted, t.unclosed) for t in split(line)]  # type: ignore[operator]


@settings(max_examples=500, deadline=None, database=None)
@given(any_text | WORDS)
def test_plain_words_are_split_as_the_quote_aware_tokenizer_splits_them(line: str) -> None:
    assert _tokens(line) == _tokens(line, _tokenize_quoted)


def test_a_members_events_take_turns_and_leave_no_lock_behind() -> None:
    in_turn = Turns()  # Pipeline.in_turn, without a pipeline around it

    ada, bob = Member("console", "ada", "Ada"), Member("console", "bob", "Bob")
    order: list[str] = []

    async def event(member: Member, name: str, pause: float) -> None:
        async with in_turn(member):
            order.append(f"{name} starts")
            await asyncio.sleep(pause)
            order.append(f"{name} ends")

    async def scenario() -> None:
        first = asyncio.create_task(event(ada, "ada 1", 0.05))
        await asyncio.sleep(0)
        second = asyncio.create_task(event(ada, "ada 2", 0))
        other = asyncio.create_task(event(bob, "bob", 0))
        waiting = asyncio.create_task(event(ada, "ada 3", 0))
        await asyncio.sleep(0.01)
        waiting.cancel()  # given up while waiting for its turn
        await asyncio.gather(first, second, other, waiting, return_exceptions=True)
        async with in_turn(None):  # no member: no turn to take
            order.append("nobody")

    asyncio.run(scenario())
    assert order.index("bob ends") < order.index("ada 1 ends")  # another member does not wait
    assert order.index("ada 1 ends") < order.index("ada 2 starts")  # the same member does
    assert "ada 3 starts" not in order
    assert len(in_turn) == 0  # no lock left behind


def test_remembered_children_count_in_prometheus() -> None:
    metrics = Metrics()
    metrics.child(metrics.commands, "ping", "ok").inc()
    metrics.child(metrics.commands, "ping", "ok").inc()
    metrics.commands.labels("ping", "ok").inc()
    assert metrics.child(metrics.commands, "ping", "ok") is metrics.commands.labels("ping", "ok")
    assert b'copbot_commands_total{command="ping",outcome="ok"} 3.0' in metrics.render()
