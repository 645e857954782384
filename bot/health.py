"""Failure streaks: a part that keeps failing says so once, says once when it works again, and /healthz
shows it meanwhile.

A homeserver that is down, a revoked token, a database that refuses writes: each is retried with back-off,
and each retry fails the same way. Logging every attempt (worse, with a traceback) buries the one line an
operator needs — what is wrong and what to do — under hundreds that say nothing new. A :class:`Trouble`
is that one line: :meth:`Trouble.failed` logs at the first failure of a streak and only counts the rest;
:meth:`Trouble.recovered` logs once that it works again, after how long and how many failed attempts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass
class Trouble:
    """One part's current failure streak (none while it works)."""

    part: str
    """What /healthz and the log call it: "database", "matrix", "discord"."""
    logger: logging.Logger = field(repr=False)
    since: datetime | None = None
    """When the streak began (wall clock, UTC); None while the part works."""
    reason: str = ""
    failures: int = 0
    announced: bool = False
    _started: float = field(default=0.0, repr=False)

    @property
    def failing(self) -> bool:
        return self.since is not None

    def failed(
        self,
        reason: str,
        *,
        advice: str = "",
        level: int = logging.WARNING,
        announce: bool = True,
        exc_info: BaseException | None = None,
    ) -> bool:
        """Count one failure; the first of a streak (or the first announced one) is logged. True if logged.

        ``announce=False`` starts the streak quietly (a routine reconnect that usually lasts a moment);
        :meth:`announce` says it later if it lasts. ``exc_info`` adds a traceback to that one line, for
        failures whose cause is not understood.
        """
        if self.since is None:
            self.since = datetime.now(UTC)
            self._started = time.monotonic()
            self.failures = 0
            self.announced = False
        self.failures += 1
        self.reason = reason
        if announce and not self.announced:
            self.announced = True
            message = f"{self.part}: {reason}" + (f"; {advice}" if advice else "")
            self.logger.log(level, "%s", message, exc_info=exc_info)
            return True
        return False

    def announce(self, *, advice: str = "", level: int = logging.WARNING) -> bool:
        """Log a quietly started streak that is still going on; True if this logged it."""
        if self.since is None or self.announced:
            return False
        self.announced = True
        message = f"{self.part}: {self.reason}" + (f"; {advice}" if advice else "")
        self.logger.log(level, "%s", message)
        return True

    def recovered(self, what: str = "works again") -> bool:
        """End the streak; logged (once) if its start was. True if there was a streak."""
        if self.since is None:
            return False
        if self.announced:
            seconds = time.monotonic() - self._started
            self.logger.info(
                "%s: %s after %s (%d failed attempt%s)",
                self.part,
                what,
                _duration(seconds),
                self.failures,
                "" if self.failures == 1 else "s",
            )
        self.since = None
        self.reason = ""
        self.failures = 0
        self.announced = False
        return True

    def describe(self) -> str:
        """For /healthz: the reason, since when, how many attempts failed."""
        if self.since is None:
            return ""
        return (
            f"{self.reason} (since {self.since:%Y-%m-%d %H:%M:%S} UTC, "
            f"{self.failures} failed attempt{'' if self.failures == 1 else 's'})"
        )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
