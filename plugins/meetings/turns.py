"""Where one meeting of a series may move: between the meetings before and after it, and not past the
series' end (see :meth:`Series.move_window`) — a rule of its own, with the refusal that explains it and an
example move that would be taken."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.errors import UsageError
from bot.timeparse import format_when
from plugins.meetings.recurrence import MoveWindow, Occurrence, Series


def check_turn(
    meeting_id: int | None,
    times: Series,
    target: Occurrence,
    start: datetime,
    *,
    now: datetime,
    zone: str,
    prefix: str,
    given_day: bool,
) -> None:
    """A meeting of a series moves only between the one before it and the one after it (see
    :meth:`Series.move_window`); the refusal's example is a move that would be taken."""
    window = times.move_window(target, now)
    if _fits(start, window, now):
        return
    new = format_when(start, zone)
    between = "in a series, a meeting moves only to a time between the meetings before and after it"
    if window.before is not None and start >= window.before and window.ends:
        problem = (
            f"{new} is past the end of the series; its last meeting can move only to before "
            f"{format_when(window.before, zone)}"
        )
    elif window.before is not None and start >= window.before:
        problem = (
            f"{new} is not before the series' next meeting ({format_when(window.before, zone)}); {between}"
        )
    else:
        assert window.after is not None
        problem = (
            f"{new} is not after the series' meeting before it ({format_when(window.after, zone)}); {between}"
        )
    example = None
    for step in (timedelta(days=1), timedelta(hours=1), timedelta(hours=-1)):
        if _fits(moved := target.start + step, window, now):
            example = f"{prefix}meeting move {meeting_id} {moved.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M}"
            if given_day:
                # the day as the caller's calendar has it, as --occurrence is read (MeetingsBase._occurrence)
                example += f" --occurrence {target.original.astimezone(ZoneInfo(zone)):%Y-%m-%d}"
            break
    raise UsageError(problem, example=example)


def _fits(moment: datetime, window: MoveWindow, now: datetime) -> bool:
    return (
        moment > now
        and (window.after is None or moment > window.after)
        and (window.before is None or moment < window.before)
    )
