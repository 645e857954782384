"""The watchdog fails a hung test with the await it hung on and the run goes on; a test blocked outside
its loop ends the process with every thread's stack, naming the test."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]

HUNG = """
import asyncio
import time

import pytest


@pytest.mark.hang_after(1)
async def test_waits_for_an_event_nobody_sets():
    never = asyncio.Event()
    await never.wait()


def test_after_it():
    pass


@pytest.mark.hang_after(1)
def test_blocked_outside_any_loop():
    time.sleep(60)


async def stubborn():
    while True:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            pass  # swallowed: a retry loop that takes a cancellation for a timeout


@pytest.mark.hang_after(1)
async def test_leaves_a_task_that_swallows_its_cancellation():
    asyncio.create_task(stubborn(), name="the-stubborn-one")
    await asyncio.Event().wait()
"""


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str) -> pytest.RunResult:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_hung=HUNG)
    options = ("-p", "tests.harness.watchdog", "-p", "no:cacheprovider", "-o", "asyncio_mode=auto")
    options += ("-o", "asyncio_default_fixture_loop_scope=function")
    return pytester.runpytest_subprocess(*options, "-o", "hang_grace=1", *args)


def test_a_hung_await_fails_with_its_stack_and_the_run_goes_on(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(pytester, monkeypatch, "-k", "not blocked and not swallows")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "watchdog: test_hung.py::test_waits_for_an_event_nobody_sets hung for 1 s; its 1 tasks, *",
            "*await never.wait()*",
        ]
    )


def test_a_thread_blocked_outside_its_loop_ends_the_run_naming_the_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(pytester, monkeypatch, "-k", "blocked")
    assert result.ret == 70
    result.stderr.fnmatch_lines(
        [
            "watchdog: test_hung.py::test_blocked_outside_any_loop still runs 2 s after it started: *",
            "*, line * in test_blocked_outside_any_loop",
        ]
    )


def test_a_task_that_swallows_its_cancellation_is_named_when_the_process_ends(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its first report went to the test's captured output, lost with the process: printed again."""
    result = _run(pytester, monkeypatch, "-k", "swallows")
    assert result.ret == 70
    result.stderr.fnmatch_lines(
        [
            "watchdog: test_hung.py::test_leaves_a_task_that_swallows_its_cancellation hung for 1 s; *",
            "- the-stubborn-one (cancelling: *)",
            "watchdog: the tasks still there now:",
            "- the-stubborn-one (cancelling: *)",
        ]
    )
