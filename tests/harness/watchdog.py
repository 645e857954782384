"""A test that waits forever fails instead, saying where it waited.

An await with no end (an event never set, a lock another connection holds) otherwise hangs the whole run
until CI's own limit ends it with no word of which test it was. After ``hang_after`` seconds (the ini value,
or a test's ``@pytest.mark.hang_after(seconds)``) the watchdog prints the stack of every task on the test's
event loop and cancels them: the test fails with the await it was stuck on in its traceback, and the run
goes on. A test whose thread is blocked outside the loop gets a while longer; then every thread's stack is
printed and the process exits, which pytest-xdist reports as the worker crashing in that test.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import io
import os
import sys
import threading
from collections.abc import Iterator

import pytest

DEFAULT_SECONDS = 300.0
GRACE_SECONDS = 30.0  # for the cancelled test's teardown, before the process is ended


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "hang_after", "seconds a test may take (setup and teardown included) before it is failed as hung"
    )
    parser.addini("hang_grace", "seconds a hung test's teardown may take before the process is ended")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hang_after(seconds): this test may take longer than the ini value")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    marker = item.get_closest_marker("hang_after")
    seconds = float(marker.args[0]) if marker else float(item.config.getini("hang_after") or DEFAULT_SECONDS)
    grace = float(item.config.getini("hang_grace") or GRACE_SECONDS)
    watch = _Watch(item, seconds, grace)
    watch.start()
    try:
        yield
    finally:
        watch.finished.set()


class _Watch(threading.Thread):
    def __init__(self, item: pytest.Item, seconds: float, grace: float) -> None:
        super().__init__(name=f"watchdog {item.nodeid}", daemon=True)
        self.item, self.seconds, self.grace, self.finished = item, seconds, grace, threading.Event()

    def run(self) -> None:
        if self.finished.wait(self.seconds):
            return
        reports: list[str] = []
        for loop in _main_thread_loops():
            loop.call_soon_threadsafe(_report_and_cancel, loop, self.item.nodeid, self.seconds, reports)
        if self.finished.wait(self.grace):
            return
        capture = self.item.config.pluginmanager.getplugin("capturemanager")
        if capture is not None:  # the real stderr back, for what follows
            capture.suspend_global_capture(in_=False)
        print(
            f"\nwatchdog: {self.item.nodeid} still runs {self.seconds + self.grace:.0f} s after it started:"
            " every thread's stack, then exit",
            file=sys.__stderr__,
            flush=True,
        )
        for report in reports:  # the tasks cancelled at first: the test's captured output dies with us
            print(report, file=sys.__stderr__, flush=True)
        print(f"watchdog: the tasks still there now:\n{_task_stacks()}", file=sys.__stderr__, flush=True)
        faulthandler.dump_traceback(file=sys.__stderr__, all_threads=True)
        os._exit(70)


def _main_thread_loops() -> list[asyncio.AbstractEventLoop]:
    """The running loops of the main thread (the tests' servers may run loops of their own in threads:
    those are left alone, later tests need them)."""
    main = threading.main_thread().ident
    loops = [obj for obj in gc.get_objects() if isinstance(obj, asyncio.BaseEventLoop)]
    return [loop for loop in loops if loop.is_running() and getattr(loop, "_thread_id", None) == main]


def _report_and_cancel(
    loop: asyncio.AbstractEventLoop, nodeid: str, seconds: float, reports: list[str]
) -> None:
    """Printed to the test's captured stderr, which its failure report shows; kept in ``reports`` too, for
    when the test never ends (a task that swallows its cancellation) and the process must."""
    tasks = asyncio.all_tasks(loop)
    report = f"watchdog: {nodeid} hung for {seconds:.0f} s; its {len(tasks)} tasks, cancelled:\n"
    report += _task_stacks(loop)
    reports.append(report)
    print(report, file=sys.stderr)
    for task in tasks:
        task.cancel(f"watchdog: {nodeid} hung")


def _task_stacks(loop: asyncio.AbstractEventLoop | None = None) -> str:
    """Each task's name and stack, of ``loop`` (or of every running loop of the main thread)."""
    stacks = io.StringIO()
    for each in [loop] if loop is not None else _main_thread_loops():
        for task in asyncio.all_tasks(each):
            print(f"- {task.get_name()} (cancelling: {task.cancelling()})", file=stacks)
            task.print_stack(limit=12, file=stacks)
    return stacks.getvalue()
