"""Named points where a test may kill the process outright, to prove that restarts lose nothing.

``COPBOT_FAILPOINTS=job.committed`` makes the process SIGKILL itself the first time it reaches that point:
no clean-up, no flush, as a power cut or the OOM killer would leave it. The restart tests run copbot in a
child process with one point set at a time and check that the next start finishes the work exactly once
(tests/e2e/test_restart_safety.py for jobs, tests/e2e/test_crash_matrix.py for commands on Matrix).
Unset (always, outside those tests) a point costs one set lookup.
"""

from __future__ import annotations

import os
import signal

ENVIRONMENT = "COPBOT_FAILPOINTS"
_ACTIVE = frozenset(point for point in os.environ.get(ENVIRONMENT, "").split(",") if point)

POINTS = (
    "job.due",  # the scheduler picked a due job; its handler has not run
    "job.handled",  # the handler ran; its unit of work is not committed
    "job.committed",  # the work is committed; its messages are not delivered, the job is still stored
    "job.delivered",  # the messages are delivered; the job is still in the store
    "outbox.sent",  # a message was sent; it is not yet marked as sent (the one window left, see outbox)
    "command.replied",  # a command's handler ran and replied; its unit of work is not committed
    "command.committed",  # its unit of work is committed; a command that wrote nothing is not yet "handled"
    "matrix.handled",  # a sync batch is handled; neither its handled ids nor its token are stored yet
)


def hit(point: str) -> None:
    if point in _ACTIVE:
        os.kill(os.getpid(), signal.SIGKILL)
